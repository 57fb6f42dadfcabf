"""The courier adapter: Biteship's rates (LOG-1, ``POST /v1/rates/couriers``), orders (LOG-2, ``POST
/v1/orders``) and tracking (``GET /v1/trackings/{id}``) APIs (EXTERNAL_APIS.md), the only place that speaks HTTP
to the courier aggregator. In the local stack it talks to the local courier (emulator/courier.py), which answers
the same shapes.

Every call has a timeout; timeouts, connection errors, 429 and 5xx are retried with exponential backoff and
full jitter, a bounded number of times. A refusal (any other 4xx) is never retried: the same request would be
refused again. Either way the caller gets ``CourierUnavailable`` and decides what the buyer sees.

A booking is retried like any call, with the same ``reference_id`` (our shipment id): the courier answers the
order it already booked for that reference, so a booking whose answer was lost to a timeout books once.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import quote as url_quote

import urllib3

from patungan.adapters.aws import read_secret
from patungan.core.config import Settings
from patungan.core.money import DEFAULT_CURRENCY
from patungan.core.observability import logger
from patungan.core.retry import full_jitter
from patungan.logistics.models import (
    CourierBooked,
    CourierBooking,
    CourierStatus,
    CourierTracking,
    CourierTrackingEvent,
    ParcelItem,
    Place,
    Quote,
    courier_time,
)

RATES_PATH = "/v1/rates/couriers"
ORDERS_PATH = "/v1/orders"
TRACKINGS_PATH = "/v1/trackings"
BACKOFF_BASE_SECONDS = 0.1
BACKOFF_CAP_SECONDS = 1.0
HOURS_PER_DAY = 24
_Parsed = TypeVar("_Parsed")
# Biteship's duration: "2 - 3" (or "1") in shipment_duration_range, the unit in shipment_duration_unit.
_DURATION = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


class CourierUnavailable(Exception):
    """The courier gave no usable answer: down, too slow, refused our request or answered nonsense.
    ``refused``: it answered a 4xx, which means our request (or our key) is wrong, not that it is down."""

    def __init__(self, reason: str, *, attempts: int, refused: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts
        self.refused = refused


def load_api_key(settings: Settings) -> str:
    """The courier API key; SSM not answering is our dependency down, not the courier's: 503, and no fallback
    price hides it."""
    return read_secret(settings.courier_api_key_parameter, "the courier's API key")


def rates_request(origin: Place, destination: Place, items: Sequence[ParcelItem], couriers: Sequence[str]) -> dict:
    """Biteship's rates request: postal codes (numbers, as Biteship takes them), coordinates when both ends
    have them (instant couriers price only with coordinates), the couriers asked, and the items with their
    value (rupiah) and weight (grams) per unit. Products carry no dimensions yet: Biteship then prices by
    weight alone."""
    body: dict[str, Any] = {
        "origin_postal_code": int(origin.postal_code),
        "destination_postal_code": int(destination.postal_code),
    }
    if origin.has_coordinates and destination.has_coordinates:
        body |= {
            "origin_latitude": origin.latitude,
            "origin_longitude": origin.longitude,
            "destination_latitude": destination.latitude,
            "destination_longitude": destination.longitude,
        }
    body["couriers"] = ",".join(couriers)
    body["items"] = _items(items)
    return body


def _items(items: Sequence[ParcelItem]) -> list[dict[str, Any]]:
    return [
        {"name": item.name, "value": item.value, "weight": item.weight_grams, "quantity": item.quantity}
        for item in items
    ]


def order_request(booking: CourierBooking) -> dict[str, Any]:
    """Biteship's order request: the sender (the warehouse's contact), both ends' contact, address and postal
    code (coordinates when known), the courier and service, picked up now, our shipment id as
    ``reference_id``, the items, and the cash to collect at the door for a COD order."""
    body: dict[str, Any] = {
        "shipper_contact_name": booking.origin.recipient_name,
        "shipper_contact_phone": booking.origin.phone,
    }
    for end, address in (("origin", booking.origin), ("destination", booking.destination)):
        body |= {
            f"{end}_contact_name": address.recipient_name,
            f"{end}_contact_phone": address.phone,
            f"{end}_address": ", ".join(
                part for part in (address.line1, address.line2, address.city, address.province) if part
            ),
            f"{end}_postal_code": int(address.postal_code),
        }
        if address.latitude is not None and address.longitude is not None:
            body[f"{end}_coordinate"] = {"latitude": address.latitude, "longitude": address.longitude}
    body |= {
        "courier_company": booking.courier,
        "courier_type": booking.service,
        "delivery_type": "now",
        "order_note": booking.note,
        "reference_id": booking.reference_id,
        "items": _items(booking.items),
    }
    if booking.cod_amount is not None:
        body["destination_cash_on_delivery"] = booking.cod_amount
    return body


def booked_from(answer: Any, booking: CourierBooking) -> CourierBooked:
    """The courier's order in Biteship's answer. Without an order id, for another reference, with a status or a
    price we cannot read, the answer is refused as a whole: a shipment is booked completely or not at all. The
    waybill may be null (absent): some couriers assign it after the booking (the ``order.waybill_id`` webhook);
    one that is there must be an id."""
    if not isinstance(answer, dict) or answer.get("success") is False:
        raise ValueError("the answer is not a successful order")
    courier = answer.get("courier")
    if not isinstance(courier, dict):
        raise ValueError("the answer names no courier")
    order_id, waybill_id, tracking_id = answer.get("id"), courier.get("waybill_id"), courier.get("tracking_id")
    if not _text(order_id):
        raise ValueError(f"no order id: {order_id!r}")
    if waybill_id is not None and not _text(waybill_id):
        raise ValueError(f"order {order_id}: waybill_id is not an id: {waybill_id!r}")
    if tracking_id is not None and not _text(tracking_id):
        raise ValueError(f"order {order_id}: tracking_id is not an id: {tracking_id!r}")
    reference = answer.get("reference_id", booking.reference_id)
    if reference != booking.reference_id:
        raise ValueError(f"order {order_id} is for reference {reference!r}, not {booking.reference_id!r}")
    price = answer.get("price")
    if isinstance(price, bool) or not isinstance(price, int | float) or price < 0 or not float(price).is_integer():
        raise ValueError(f"order {order_id}: the price is not a whole number of rupiah: {price!r}")
    return CourierBooked(order_id, waybill_id, tracking_id, _status(answer.get("status")), int(price))


def tracking_from(answer: Any) -> CourierTracking:
    """The parcel's history in Biteship's tracking answer, oldest first, each ``updated_at`` in UTC, and its
    ``waybill_id`` (null until the courier assigns it)."""
    history = answer.get("history") if isinstance(answer, dict) else None
    if not isinstance(history, list):
        raise ValueError("the answer has no history list")
    waybill_id = answer.get("waybill_id")
    if waybill_id is not None and not _text(waybill_id):
        raise ValueError(f"waybill_id is not an id: {waybill_id!r}")
    events = [_event(entry) for entry in history]
    return CourierTracking(sorted(events, key=lambda event: event.updated_at), waybill_id)


def _event(entry: Any) -> CourierTrackingEvent:
    if not isinstance(entry, dict):
        raise ValueError(f"a history entry is not an object: {entry!r}")
    updated_at, note = entry.get("updated_at"), entry.get("note", "")
    if not isinstance(updated_at, str):
        raise ValueError(f"a history entry has no updated_at: {entry!r}")
    try:
        at = courier_time(updated_at)
    except ValueError as exc:
        raise ValueError(f"unreadable updated_at: {updated_at!r}") from exc
    return CourierTrackingEvent(_status(entry.get("status")), note if isinstance(note, str) else "", at)


def _status(value: Any) -> CourierStatus:
    try:
        return CourierStatus(value)
    except ValueError:
        raise ValueError(f"unknown courier status: {value!r}") from None


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def quotes_from(answer: Any, couriers: Sequence[str]) -> list[Quote]:
    """The quotes in Biteship's answer (``pricing``) for the couriers we asked; an answer that is not what
    Biteship sends (no pricing list, a price that is not a whole positive number of rupiah, a duration we
    cannot read) is refused as a whole: a wrong price must not reach a buyer."""
    pricing = answer.get("pricing") if isinstance(answer, dict) else None
    if not isinstance(pricing, list):
        raise ValueError("the answer has no pricing list")
    asked = set(couriers)
    cheapest: dict[tuple[str, str], Quote] = {}
    for quote in map(_quote, pricing):
        key = (quote.courier, quote.service)
        if quote.courier in asked and (key not in cheapest or quote.price < cheapest[key].price):
            cheapest[key] = quote  # one rate per service: shipping_method_id names it
    return list(cheapest.values())


def _quote(entry: Any) -> Quote:
    if not isinstance(entry, dict):
        raise ValueError(f"a pricing entry is not an object: {entry!r}")
    courier, service, price = entry.get("courier_code"), entry.get("courier_service_code"), entry.get("price")
    if not isinstance(courier, str) or not courier or not isinstance(service, str) or not service:
        raise ValueError(f"a pricing entry names no courier or service: {entry!r}")
    if isinstance(price, bool) or not isinstance(price, int | float) or price <= 0 or not float(price).is_integer():
        raise ValueError(f"{courier} {service}: the price is not a whole positive number of rupiah: {price!r}")
    if entry.get("currency", DEFAULT_CURRENCY) != DEFAULT_CURRENCY:
        raise ValueError(f"{courier} {service}: priced in {entry.get('currency')!r}, not {DEFAULT_CURRENCY}")
    return Quote(courier.lower(), service.lower(), int(price), _etd_days(entry))


def _etd_days(entry: dict[str, Any]) -> int:
    """The longest the parcel is on the way, in whole days (hours: the same day, 0)."""
    match = _DURATION.match(str(entry.get("shipment_duration_range", "")))
    if match is None:
        raise ValueError(f"unreadable shipment_duration_range: {entry.get('shipment_duration_range')!r}")
    longest = int(match.group(2) or match.group(1))
    unit = str(entry.get("shipment_duration_unit", "days")).lower()
    if unit == "hours":
        return 0 if longest < HOURS_PER_DAY else -(-longest // HOURS_PER_DAY)
    if unit != "days":
        raise ValueError(f"unknown shipment_duration_unit: {unit!r}")
    return longest


class BiteshipCourier:
    def __init__(
        self,
        api_url: str,
        api_key: Callable[[], str],
        *,
        timeout_seconds: float,
        max_attempts: int,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._url = api_url.rstrip("/")
        self._api_key = api_key
        self._timeout = urllib3.Timeout(total=timeout_seconds)
        self._max_attempts = max_attempts
        self._sleep = sleep
        self._http = urllib3.PoolManager(retries=False)  # this class retries; urllib3's would multiply them

    @classmethod
    def from_settings(cls, settings: Settings, *, sleep: Callable[[float], None] = time.sleep) -> BiteshipCourier:
        return cls(
            settings.courier_api_url,
            lambda: load_api_key(settings),
            timeout_seconds=settings.courier_timeout_seconds,
            max_attempts=settings.courier_max_attempts,
            sleep=sleep,
        )

    def rates(
        self, origin: Place, destination: Place, items: Sequence[ParcelItem], couriers: Sequence[str]
    ) -> list[Quote]:
        answer, attempts = self._call("POST", RATES_PATH, rates_request(origin, destination, items, couriers))
        return _read(attempts, lambda: quotes_from(answer, couriers))

    def book(self, booking: CourierBooking) -> CourierBooked:
        """Book a pickup (LOG-2); retried with the same ``reference_id``, which the courier answers once."""
        answer, attempts = self._call("POST", ORDERS_PATH, order_request(booking))
        return _read(attempts, lambda: booked_from(answer, booking))

    def tracking(self, tracking_id: str) -> CourierTracking:
        """A parcel's history, oldest first, and its waybill, by its courier order id or tracking id."""
        answer, attempts = self._call("GET", f"{TRACKINGS_PATH}/{url_quote(tracking_id, safe='')}")
        return _read(attempts, lambda: tracking_from(answer))

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[Any, int]:
        """The JSON answer to a request and how many attempts it took; CourierUnavailable when none came."""
        headers = {"Authorization": self._api_key()}
        payload = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            payload = json.dumps(body).encode()
        attempt = 1
        while True:
            try:
                response = self._http.request(
                    method, f"{self._url}{path}", body=payload, headers=headers, timeout=self._timeout
                )
            except urllib3.exceptions.HTTPError as exc:  # timeouts and connection errors
                reason = type(exc).__name__
            else:
                if response.status == 200:
                    try:
                        return json.loads(response.data), attempt
                    except ValueError as exc:
                        raise CourierUnavailable("the courier's answer is not JSON", attempts=attempt) from exc
                reason = f"HTTP {response.status} {_error_text(response.data)}".strip()
                if response.status != 429 and response.status < 500:
                    raise CourierUnavailable(reason, attempts=attempt, refused=True)
            if attempt >= self._max_attempts:
                raise CourierUnavailable(reason, attempts=attempt)
            delay = full_jitter(attempt, base=BACKOFF_BASE_SECONDS, cap=BACKOFF_CAP_SECONDS)
            logger.warning(
                "courier call failed; retrying",
                extra={"method": method, "path": path, "attempt": attempt, "delay_seconds": delay, "reason": reason},
            )
            self._sleep(delay)
            attempt += 1


def _read(attempts: int, parse: Callable[[], _Parsed]) -> _Parsed:
    try:
        return parse()
    except ValueError as exc:
        raise CourierUnavailable(f"the courier's answer is not Biteship's: {exc}", attempts=attempts) from exc


def _error_text(data: bytes) -> str:
    """Biteship's ``{"success": false, "error": "...", "code": ...}``, or the start of whatever came."""
    try:
        answer = json.loads(data)
    except ValueError:
        return data[:200].decode(errors="replace")
    return str(answer.get("error", ""))[:200] if isinstance(answer, dict) else ""
