"""Postal addresses as API.md shows them ("Addresses and shipping rates"): a buyer's address and a
warehouse's address take the same fields, validated the same way (ACC-2)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from patungan.core.inputs import StrictBool, single_line
from patungan.core.pagination import ListOf
from patungan.core.phone import MAX_PHONE_LENGTH, normalize_indonesian_phone

PostalCode = Annotated[str, Field(pattern=r"^[0-9]{5}$", examples=["12190"], description="5 digits")]


def _to_centimetres(degrees: float) -> float:
    # 7 decimal places of a degree are about 1 cm; finer is noise, and DynamoDB stores no number below 1e-130.
    return round(degrees, 7) + 0.0  # + 0.0 turns -0.0 into 0.0


Latitude = Annotated[float, Field(ge=-90, le=90), AfterValidator(_to_centimetres)]
Longitude = Annotated[float, Field(ge=-180, le=180), AfterValidator(_to_centimetres)]
RecipientName = single_line(200)
AddressLine = single_line(300)
OptionalAddressLine = single_line(300, min_length=0)
Region = single_line(100)
Label = single_line(50, min_length=0)


def _any_indonesian_phone(value: str) -> str:
    # A courier calls a landline as well as a mobile.
    return normalize_indonesian_phone(value, mobile_only=False)


ContactPhone = Annotated[
    str,
    Field(max_length=MAX_PHONE_LENGTH, examples=["+6281234567890"], description="normalised to E.164 (+62…)"),
    AfterValidator(_any_indonesian_phone),
]


HALF_A_COORDINATE = "give both latitude and longitude, or neither"


class Coordinates(BaseModel):
    """A point, or none: half of one locates nothing (an instant courier prices only with both)."""

    latitude: Latitude | None = None
    longitude: Longitude | None = None

    @model_validator(mode="after")
    def _both_or_neither(self) -> Coordinates:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError(HALF_A_COORDINATE)
        return self


class PostalAddress(Coordinates):
    """Where a parcel goes or comes from: what a courier needs to find the door and call the recipient."""

    model_config = ConfigDict(extra="forbid")

    recipient_name: RecipientName
    phone: ContactPhone
    line1: AddressLine
    line2: OptionalAddressLine = ""
    city: Region
    province: Region
    postal_code: PostalCode


class AddressInput(PostalAddress):
    """POST /v1/addresses. A user's first address is their default whatever ``is_default`` says."""

    label: Label = Field("", examples=["Rumah"])
    is_default: StrictBool = False


class AddressUpdate(BaseModel):
    """PATCH /v1/addresses/{id}: the fields sent change; ``latitude``/``longitude`` may be cleared with null.
    ``is_default: true`` makes this the default (the previous one stops being it in the same write);
    ``false`` on the default is refused: a user with addresses always has one default (make another one it)."""

    model_config = ConfigDict(extra="forbid")

    label: Label | None = None
    recipient_name: RecipientName | None = None
    phone: ContactPhone | None = None
    line1: AddressLine | None = None
    line2: OptionalAddressLine | None = None
    city: Region | None = None
    province: Region | None = None
    postal_code: PostalCode | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    is_default: StrictBool | None = None

    @model_validator(mode="after")
    def _coordinates_change_together(self) -> AddressUpdate:
        # The patch is applied field by field: changing or clearing one coordinate alone would leave half a point.
        sent = {"latitude", "longitude"} & self.model_fields_set
        if sent and (len(sent) == 1 or (self.latitude is None) != (self.longitude is None)):
            raise ValueError(HALF_A_COORDINATE)
        return self

    @field_validator(
        "label", "recipient_name", "phone", "line1", "line2", "city", "province", "postal_code", "is_default"
    )
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Only an explicit null reaches here (defaults are not validated): these fields cannot be cleared.
        if value is None:
            raise ValueError("may be left out, not null")
        return value


class Address(PostalAddress):
    """A user's saved address (API.md **address**)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    label: str
    is_default: bool
    created_at: str
    updated_at: str


class AddressList(ListOf[Address]):
    pass
