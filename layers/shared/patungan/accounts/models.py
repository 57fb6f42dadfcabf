"""Postal addresses as API.md shows them ("Addresses and shipping rates"): a buyer's address and a
warehouse's address take the same fields, validated the same way (ACC-2)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from patungan.core.inputs import single_line
from patungan.core.phone import MAX_PHONE_LENGTH, normalize_indonesian_phone

PostalCode = Annotated[str, Field(pattern=r"^[0-9]{5}$", examples=["12190"], description="5 digits")]
Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]


class PostalAddress(BaseModel):
    """Where a parcel goes or comes from: what a courier needs to find the door and call the recipient."""

    model_config = ConfigDict(extra="forbid")

    recipient_name: single_line(200)
    phone: Annotated[
        str,
        Field(max_length=MAX_PHONE_LENGTH, examples=["+6281234567890"], description="normalised to E.164 (+62…)"),
    ]
    line1: single_line(300)
    line2: single_line(300, min_length=0) = ""
    city: single_line(100)
    province: single_line(100)
    postal_code: PostalCode
    latitude: Latitude | None = None
    longitude: Longitude | None = None

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        # A courier calls a landline as well as a mobile.
        return normalize_indonesian_phone(value, mobile_only=False)
