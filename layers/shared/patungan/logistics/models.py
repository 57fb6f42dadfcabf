"""Shipping rates as the API shows them (API.md "Addresses and shipping rates"), the places and parcel
contents a courier prices (LOG-1), and the bookings and tracking the courier adapter speaks in (LOG-2)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from patungan.accounts.models import Coordinates, PostalAddress, PostalCode
from patungan.core.inputs import Quantity, ResourceId

MAX_RATE_ITEMS = 100


class RateSource(StrEnum):
    COURIER = "courier"
    FALLBACK = "fallback"  # the courier could not answer: priced from the configured rate table (LOG-1)


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DestinationInput(Coordinates, _Input):
    postal_code: PostalCode


class RateItemInput(_Input):
    product_id: ResourceId
    variant_id: ResourceId | None = None
    quantity: Quantity


class RatesRequest(_Input):
    destination: DestinationInput | None = None
    address_id: ResourceId | None = Field(None, description="one of the signed-in caller's addresses")
    items: Annotated[list[RateItemInput], Field(min_length=1, max_length=MAX_RATE_ITEMS)]

    @model_validator(mode="after")
    def _one_destination(self) -> RatesRequest:
        if (self.destination is None) == (self.address_id is None):
            raise ValueError("give either destination or address_id")
        return self


class Rate(BaseModel):
    shipping_method_id: str = Field(description="stable for a courier and service: checkout snapshots it")
    courier: str
    service: str
    price: int = Field(description="minor units (IDR: rupiah)")
    currency: str
    etd_days: int = Field(description="at most this many days on the way (0: the same day)")
    source: RateSource


class ShippingRates(BaseModel):
    origin_warehouse_id: str
    rates: list[Rate]


def shipping_method_id(courier: str, service: str) -> str:
    """One id per courier and service, whichever source priced it (a colon is in no courier's code)."""
    return f"{courier}:{service}"


@dataclass(frozen=True)
class Place:
    """Where a parcel leaves from or goes to, as a courier finds it: a postal code, and coordinates, which
    instant couriers need."""

    postal_code: str
    latitude: float | None = None
    longitude: float | None = None

    @classmethod
    def of(cls, address: PostalAddress | DestinationInput) -> Place:
        return cls(address.postal_code, address.latitude, address.longitude)

    @property
    def has_coordinates(self) -> bool:
        return self.latitude is not None and self.longitude is not None


@dataclass(frozen=True)
class ParcelItem:
    """One line of a parcel: ``value`` and ``weight_grams`` per unit."""

    name: str
    value: int
    weight_grams: int
    quantity: int


def parcel_weight_grams(items: list[ParcelItem]) -> int:
    return sum(item.weight_grams * item.quantity for item in items)


@dataclass(frozen=True)
class Quote:
    courier: str
    service: str
    price: int
    etd_days: int


# --- Shipments (LOG-2): a booked courier pickup and its tracking, as the courier adapter hands them over ------


class CourierStatus(StrEnum):
    """Biteship's order statuses (EXTERNAL_APIS.md), the only statuses the adapter lets through."""

    CONFIRMED = "confirmed"
    SCHEDULED = "scheduled"
    ALLOCATED = "allocated"
    PICKING_UP = "picking_up"
    PICKED = "picked"
    DROPPING_OFF = "dropping_off"
    ON_HOLD = "on_hold"
    DELIVERED = "delivered"
    RETURN_IN_TRANSIT = "return_in_transit"
    RETURNED = "returned"
    DISPOSED = "disposed"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    COURIER_NOT_FOUND = "courier_not_found"


@dataclass(frozen=True)
class CourierBooking:
    """A pickup to book. ``reference_id`` is our shipment id: the courier answers the same order for the same
    reference, so a booking retried after a timeout books once. ``origin`` is the warehouse's address (its
    ``recipient_name``/``phone`` are the sender's contact), ``destination`` the buyer's. ``cod_amount``: rupiah
    the courier collects at the door (cash on delivery, CHK-9); None when the order is paid."""

    reference_id: str
    courier: str
    service: str
    origin: PostalAddress
    destination: PostalAddress
    items: Sequence[ParcelItem]
    cod_amount: int | None = None
    note: str = ""


@dataclass(frozen=True)
class CourierBooked:
    """The courier's order for a booking: its ids (``courier_order_id`` is what its webhooks name as
    ``order_id``), the waybill to print (None: some couriers, instant ones among them, assign it after the
    booking and announce it by the ``order.waybill_id`` webhook), its status, and what it charges (rupiah)."""

    courier_order_id: str
    waybill_id: str | None
    tracking_id: str | None
    status: CourierStatus
    price: int


def courier_time(text: str) -> str:
    """A courier's ``updated_at`` (ISO 8601, any offset: Biteship answers in WIB) as UTC to the millisecond with a
    ``Z``, so that two of them compare as text in time order: steps a second apart or less stay ordered, and the
    tracking answer and the webhooks (core.clock.parse_iso reads both) agree. ValueError when unreadable, and when
    it has no offset: read as UTC, a WIB wall-clock time would be seven hours ahead and make every real update
    after it look stale."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset (Z or +07:00)")
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class CourierTrackingEvent:
    """One step of a parcel's history; ``updated_at`` as ``courier_time`` writes it."""

    status: CourierStatus
    note: str
    updated_at: str


@dataclass(frozen=True)
class CourierTracking:
    """A parcel's tracking: its history, oldest first, and its waybill when the courier has assigned one."""

    history: list[CourierTrackingEvent]
    waybill_id: str | None = None
