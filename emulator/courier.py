"""The local courier: the courier aggregator's API as Patungan calls it (Biteship's shapes, EXTERNAL_APIS.md),
plus a page and simulations, as the local Xendit is for payments.

``LocalCourier(*, slow_delay_seconds=10.0, webhook_base_url="http://127.0.0.1:3000",
webhook_token="local-courier-webhook-token")``; the local stack mounts its ``wsgi_app`` under ``/_courier``
(serve it threaded) and calls ``close()`` on exit. State lives in memory, behind one lock.

API (an ``Authorization`` header with the API key required, 401 otherwise; errors are Biteship's
``{"success": false, "error", "code"}``):

    POST /v1/rates/couriers   Biteship's rates request -> ``{"success": true, "object": "courier_pricing",
                              "origin", "destination", "pricing": [...]}``
    POST /v1/orders           book a pickup (Biteship's order request) -> the order, ``status: "confirmed"``,
                              with ``courier: {waybill_id, tracking_id, company, type}`` and its ``price``; a
                              ``reference_id`` already booked answers the order booked for it, unchanged (a
                              booking retried after a timeout books once). The instant courier (gojek) answers
                              ``waybill_id: null``: its waybill is assigned when a driver is (the order moves to
                              ``allocated`` or further) and announced by the ``order.waybill_id`` webhook
    GET  /v1/orders/{id}      one order
    GET  /v1/trackings/{id}   an order's tracking (by its tracking id or order id): ``history: [{note, status,
                              updated_at}]``, oldest first

Pages and simulations (no auth):

    GET  /                         every rates request answered (or not), newest first, and the outage
                                   mode; JSON with Accept: application/json
    GET  /                         every order (with buttons that move it on) and every rates request
                                   answered (or not), newest first, and the outage mode; JSON with
                                   Accept: application/json
    POST /simulate/outage          ``{"mode": "down" | "slow" | "up", "delay_seconds"?: n}``: ``down`` answers
                                   every API request 503, ``slow`` answers after ``delay_seconds`` (default
                                   ``slow_delay_seconds``, beyond the adapter's timeout), ``up`` as normal
    POST /simulate/orders/{id}/status
                                   ``{"status": <a Biteship status>, "note"?: text}`` (or the page's form):
                                   the order moves to it, its history gains the step with an ``updated_at``
                                   later than the last one, and the ``order.status`` webhook goes out (an
                                   order without a waybill moving past ``scheduled`` gets one: the
                                   ``order.waybill_id`` webhook goes out first). The
                                   status it already has: nothing changes and the webhook goes out again (a
                                   duplicate, as couriers send them). A finished order (delivered, returned,
                                   disposed, cancelled, rejected, courier_not_found) answers 409. With
                                   ``?deliver=false`` the order moves but no webhook goes out (a webhook lost:
                                   what the tracking poll is for)

Webhooks (emulator/webhooks.py): Biteship's ``order.status`` ``{event, order_id, courier_tracking_id,
courier_waybill_id, courier_company, courier_type, status, updated_at, order_price}`` and ``order.waybill_id``
(the same fields, ``event: "order.waybill_id"``) POSTed to
``{webhook_base_url}/_url/CourierWebhook/?token={webhook_token}`` (Biteship can only be given a URL, so the
secret is in it), the webhooks of one order one at a time, in order. What each delivery got (the HTTP status; a
404 while no CourierWebhook function is deployed) is on the order and the page.

Prices are plausible, not real: each service charges per started kilogram of the parcel (the items' weight
times quantity) by how far the parcel goes, read off the postal codes (the same first three digits: the same
city; the same first digit: the same region; otherwise between islands), and quotes how many days it takes
that far. The instant courier (gojek) answers only within one city and only when both ends have coordinates,
priced by the straight-line distance, as Biteship's instant couriers need coordinates.

An order's price is the rates answer for its courier service; the outage mode answers orders and tracking as
it answers rates.
"""

from __future__ import annotations

import html
import json
import math
import secrets
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from emulator.webhooks import DeliveryOutcome, Scheduler, WebhookSender, delivers

SLOW_DELAY_SECONDS = 10.0
MAX_SLOW_DELAY_SECONDS = 120.0
QUOTES_KEPT = 200
GRAMS_PER_KG = 1000
EARTH_RADIUS_KM = 6371.0
SAME_CITY, SAME_REGION, OTHER_ISLAND = 0, 1, 2
DEFAULT_WEBHOOK_BASE_URL = "http://127.0.0.1:3000"  # the local stack on its default port
DEFAULT_WEBHOOK_TOKEN = "local-courier-webhook-token"  # noqa: S105 - the documented local default
WEBHOOK_FUNCTION = "CourierWebhook"
RATES_PATH = "/v1/rates/couriers"
# Biteship's order statuses.
STATUSES = (
    "confirmed",
    "scheduled",
    "allocated",
    "picking_up",
    "picked",
    "dropping_off",
    "on_hold",
    "delivered",
    "return_in_transit",
    "returned",
    "disposed",
    "cancelled",
    "rejected",
    "courier_not_found",
)
FINAL_STATUSES = frozenset({"delivered", "returned", "disposed", "cancelled", "rejected", "courier_not_found"})
# An order booked without a waybill (an instant courier) gets one once a driver is allocated, not while it waits or
# after the courier gave the pickup up.
NO_WAYBILL_YET = frozenset({"confirmed", "scheduled", "cancelled", "rejected", "courier_not_found"})
WAYBILL_EVENT, STATUS_EVENT = "order.waybill_id", "order.status"
# A parcel's usual next step (to the door, or back to the sender): the page's first button.
NEXT_STEP = {
    "confirmed": "allocated",
    "scheduled": "allocated",
    "allocated": "picking_up",
    "picking_up": "picked",
    "picked": "dropping_off",
    "on_hold": "dropping_off",
    "dropping_off": "delivered",
    "return_in_transit": "returned",
}
NOTES = {
    "confirmed": "Order confirmed, waiting for a courier",
    "scheduled": "Pickup scheduled",
    "allocated": "Courier allocated",
    "picking_up": "Courier on the way to pick up the parcel",
    "picked": "Parcel picked up",
    "dropping_off": "Parcel on the way to the recipient",
    "on_hold": "Parcel on hold",
    "delivered": "Parcel delivered to the recipient",
    "return_in_transit": "Parcel on the way back to the sender",
    "returned": "Parcel returned to the sender",
    "disposed": "Parcel disposed of",
    "cancelled": "Order cancelled",
    "rejected": "Order rejected by the courier",
    "courier_not_found": "No courier found",
}


class OutageMode(StrEnum):
    UP = "up"
    DOWN = "down"
    SLOW = "slow"


@dataclass(frozen=True)
class Service:
    """A courier service: rupiah per started kilogram and days on the way, by distance (same city, same
    region, other island)."""

    courier: str
    courier_name: str
    code: str
    name: str
    per_kg: tuple[int, int, int]
    days: tuple[tuple[int, int], tuple[int, int], tuple[int, int]]


@dataclass(frozen=True)
class InstantService:
    """A motorbike courier within one city: a flat fee plus a price per km, for parcels up to ``max_grams``."""

    courier: str
    courier_name: str
    code: str
    name: str
    flat: int
    per_km: int
    max_grams: int


SERVICES = (
    Service("jne", "JNE", "reg", "Reguler", (9_000, 14_000, 38_000), ((1, 2), (2, 3), (3, 5))),
    Service("jne", "JNE", "yes", "Yakin Esok Sampai", (18_000, 24_000, 62_000), ((1, 1), (1, 1), (1, 2))),
    Service("sicepat", "SiCepat", "reg", "Reguler", (8_500, 13_000, 36_000), ((1, 2), (2, 3), (3, 5))),
    Service("sicepat", "SiCepat", "best", "Besok Sampai Tujuan", (15_000, 21_000, 55_000), ((1, 1), (1, 1), (1, 2))),
    Service("anteraja", "AnterAja", "reg", "Regular", (8_000, 12_500, 35_000), ((1, 2), (2, 4), (4, 6))),
)
INSTANT_SERVICES = (InstantService("gojek", "Gojek", "instant", "Instant", 15_000, 2_500, 20_000),)


class CourierError(Exception):
    """An error answered in Biteship's shape."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> Response:
        return _json({"success": False, "error": self.message, "code": self.code}, self.status)


@dataclass(frozen=True)
class Endpoint:
    postal_code: int
    latitude: float | None
    longitude: float | None

    @property
    def has_coordinates(self) -> bool:
        return self.latitude is not None and self.longitude is not None

    def resource(self) -> dict[str, Any]:
        return {
            "postal_code": self.postal_code,
            "latitude": self.latitude,
            "longitude": self.longitude,
            "country_code": "ID",
            "country_name": "Indonesia",
        }


@dataclass(frozen=True)
class QuoteRecord:
    """A rates request as the page lists it: what was asked and what was answered."""

    at: datetime
    origin: int | None
    destination: int | None
    couriers: str
    weight_grams: int | None
    answer: str

    def resource(self) -> dict[str, Any]:
        return {
            "at": _timestamp(self.at),
            "origin_postal_code": self.origin,
            "destination_postal_code": self.destination,
            "couriers": self.couriers,
            "weight_grams": self.weight_grams,
            "answer": self.answer,
        }


@dataclass
class WebhookDelivery:
    """An ``order.status`` (or ``order.waybill_id``) webhook sent, and what its delivery got so far."""

    status: str
    updated_at: str
    event: str = STATUS_EVENT
    outcome: str = "sending"

    def resource(self) -> dict[str, Any]:
        return {"event": self.event, "status": self.status, "updated_at": self.updated_at, "outcome": self.outcome}


@dataclass
class LocalOrder:
    """A booked pickup: what was asked (``request``) and where the parcel is (``status``, ``history``)."""

    id: str
    reference_id: str | None
    request: dict[str, Any]
    company: str
    type: str
    waybill_id: str | None
    tracking_id: str
    price: int
    created: datetime
    status: str = "confirmed"
    history: list[dict[str, str]] = field(default_factory=list)
    webhooks: list[WebhookDelivery] = field(default_factory=list)

    def started(self) -> LocalOrder:
        self.move(self.status, NOTES[self.status], self.created)
        return self

    def move(self, status: str, note: str, at: datetime) -> str:
        """Record the step; its ``updated_at`` is later than the last one's, even within one millisecond. A driver
        allocated to an order without a waybill assigns it."""
        if self.waybill_id is None and status not in NO_WAYBILL_YET:
            self.waybill_id = _waybill(self.company)
        updated_at = _timestamp(at)
        if self.history and updated_at <= self.history[-1]["updated_at"]:
            updated_at = _timestamp(_parse_timestamp(self.history[-1]["updated_at"]) + timedelta(milliseconds=1))
        self.status = status
        self.history.append({"note": note, "status": status, "updated_at": updated_at})
        return updated_at

    @property
    def updated_at(self) -> str:
        return self.history[-1]["updated_at"]

    def _end(self, end: str) -> dict[str, Any]:
        body = self.request
        return {
            "contact_name": body.get(f"{end}_contact_name"),
            "contact_phone": body.get(f"{end}_contact_phone"),
            "address": body.get(f"{end}_address"),
            "note": body.get(f"{end}_note", ""),
            "postal_code": body.get(f"{end}_postal_code"),
            "coordinate": body.get(f"{end}_coordinate", {"latitude": None, "longitude": None}),
        }

    def resource(self) -> dict[str, Any]:
        body = self.request
        cod = body.get("destination_cash_on_delivery")
        return {
            "success": True,
            "object": "order",
            "id": self.id,
            "shipper": {
                "name": body.get("shipper_contact_name"),
                "phone": body.get("shipper_contact_phone"),
                "email": body.get("shipper_contact_email"),
                "organization": body.get("shipper_organization"),
            },
            "origin": self._end("origin"),
            "destination": {
                **self._end("destination"),
                "cash_on_delivery": None
                if cod is None
                else {"amount": cod, "amount_currency": "IDR", "type": body.get("destination_cash_on_delivery_type")},
            },
            "courier": {
                "tracking_id": self.tracking_id,
                "waybill_id": self.waybill_id,
                "company": self.company,
                "type": self.type,
                "name": None,
                "phone": None,
                "link": None,
                "insurance": {"amount": 0, "fee": 0, "note": ""},
            },
            "delivery": {"datetime": _timestamp(self.created), "note": None, "type": body.get("delivery_type")},
            "reference_id": self.reference_id,
            "items": body.get("items"),
            "currency": "IDR",
            "price": self.price,
            "note": body.get("order_note", ""),
            "status": self.status,
            "history": self.history,
            "webhooks": [delivery.resource() for delivery in self.webhooks],
        }

    def tracking(self) -> dict[str, Any]:
        return {
            "success": True,
            "messsage": "Successfully get tracking info",  # sic: Biteship's field name
            "object": "tracking",
            "id": self.tracking_id,
            "waybill_id": self.waybill_id,
            "courier": {"company": self.company, "name": None, "phone": None},
            "origin": {
                "contact_name": self.request.get("origin_contact_name"),
                "address": self.request.get("origin_address"),
            },
            "destination": {
                "contact_name": self.request.get("destination_contact_name"),
                "address": self.request.get("destination_address"),
            },
            "history": self.history,
            "link": None,
            "order_id": self.id,
            "status": self.status,
        }

    def webhook(self, event: str = STATUS_EVENT) -> dict[str, Any]:
        """Biteship's ``order.status`` (or ``order.waybill_id``) webhook for the order as it is now."""
        return {
            "event": event,
            "order_id": self.id,
            "courier_tracking_id": self.tracking_id,
            "courier_waybill_id": self.waybill_id,
            "courier_company": self.company,
            "courier_type": self.type,
            "courier_driver_name": None,
            "courier_driver_phone": None,
            "courier_link": None,
            "order_price": self.price,
            "status": self.status,
            "updated_at": self.updated_at,
        }


def distance_band(origin: int, destination: int) -> int:
    """How far a parcel goes, read off the postal codes (first three digits: a city; first digit: a region)."""
    a, b = f"{origin:05d}", f"{destination:05d}"
    if a[:3] == b[:3]:
        return SAME_CITY
    return SAME_REGION if a[0] == b[0] else OTHER_ISLAND


def _km(origin: Endpoint, destination: Endpoint) -> float:
    """Straight-line (haversine) distance between two coordinates."""
    lat1, lon1, lat2, lon2 = map(
        math.radians, (origin.latitude, origin.longitude, destination.latitude, destination.longitude)
    )  # type: ignore[arg-type]
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))


def pricing(origin: Endpoint, destination: Endpoint, couriers: set[str], weight_grams: int) -> list[dict[str, Any]]:
    """Biteship's ``pricing`` entries for the couriers asked, cheapest first."""
    band = distance_band(origin.postal_code, destination.postal_code)
    started_kgs = max(1, math.ceil(weight_grams / GRAMS_PER_KG))
    entries = [
        _entry(service, service.per_kg[band] * started_kgs, "{} - {}".format(*service.days[band]), "days")
        for service in SERVICES
        if service.courier in couriers
    ]
    if band == SAME_CITY and origin.has_coordinates and destination.has_coordinates:
        km = _km(origin, destination)
        entries += [
            _entry(service, service.flat + service.per_km * math.ceil(km), "1 - 3", "hours")
            for service in INSTANT_SERVICES
            if service.courier in couriers and weight_grams <= service.max_grams
        ]
    return sorted(entries, key=lambda entry: entry["price"])


def _entry(service: Service | InstantService, price: int, duration_range: str, unit: str) -> dict[str, Any]:
    return {
        "available_collection_method": ["pickup"],
        "available_for_cash_on_delivery": False,
        "available_for_proof_of_delivery": False,
        "available_for_instant_waybill_id": True,
        "available_for_insurance": True,
        "company": service.courier,
        "courier_name": service.courier_name,
        "courier_code": service.courier,
        "courier_service_name": service.name,
        "courier_service_code": service.code,
        "currency": "IDR",
        "description": f"{service.courier_name} {service.name}",
        "duration": f"{duration_range} {unit}",
        "shipment_duration_range": duration_range,
        "shipment_duration_unit": unit,
        "service_type": "standard" if unit == "days" else "same_day",
        "shipping_type": "parcel",
        "shipping_fee": price,
        "shipping_fee_discount": 0,
        "shipping_fee_surcharge": 0,
        "insurance_fee": 0,
        "price": price,
        "tax_lines": [],
        "type": service.code,
    }


class LocalCourier:
    """The local courier as a WSGI app (``wsgi_app``); ``close()`` releases requests held by the slow mode."""

    def __init__(
        self,
        *,
        slow_delay_seconds: float = SLOW_DELAY_SECONDS,
        webhook_base_url: str = DEFAULT_WEBHOOK_BASE_URL,
        webhook_token: str = DEFAULT_WEBHOOK_TOKEN,
    ) -> None:
        self._slow_delay = slow_delay_seconds
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._mode = OutageMode.UP
        self._mode_delay = slow_delay_seconds
        self._quotes: deque[QuoteRecord] = deque(maxlen=QUOTES_KEPT)
        self._orders: dict[str, LocalOrder] = {}
        self._order_by_reference: dict[str, str] = {}
        self._order_by_tracking: dict[str, str] = {}
        self._scheduler = Scheduler("local-courier")
        self._webhooks = WebhookSender(
            webhook_base_url, self._scheduler, sender="local courier", query={"token": webhook_token}
        )
        api, public = _routes_of(authenticated=True), _routes_of(authenticated=False)
        self._routes = Map(
            [
                api("POST", RATES_PATH, self._rates),
                api("POST", "/v1/orders", self._create_order),
                api("GET", "/v1/orders/<order_id>", self._get_order),
                api("GET", "/v1/trackings/<tracking_id>", self._get_tracking),
                public("GET", "/", self._overview),
                public("POST", "/simulate/outage", self._simulate_outage),
                public("POST", "/simulate/orders/<order_id>/status", self._simulate_status),
            ],
            strict_slashes=False,
        )

    def wsgi_app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        try:
            (handler, authenticated), args = self._routes.bind_to_environ(environ).match()
            if authenticated:
                _require_api_key(request)
                self._outage(request, recorded=handler == self._rates)
            response = handler(request, **args)
        except CourierError as exc:
            response = exc.response()
        except HTTPException as exc:  # no such route, or a method it does not take
            response = CourierError(exc.code or 400, 40400000, exc.description or exc.name).response()
        return response(environ, start_response)

    def close(self) -> None:
        self._closed.set()
        self._scheduler.close()
        self._webhooks.close()

    # --- outages --------------------------------------------------------------------------------------

    def _outage(self, request: Request, *, recorded: bool) -> None:
        """What the outage mode does to an API request: nothing, a 503, or a wait beyond the caller's timeout;
        ``recorded``: a rates request, listed on the page with what it got."""
        with self._lock:
            mode, delay = self._mode, self._mode_delay
        if mode is OutageMode.DOWN:
            if recorded:
                self._record(request, "503 (simulated outage)")
            raise CourierError(503, 50300000, "service unavailable (simulated outage)")
        if mode is OutageMode.SLOW:
            if recorded:
                self._record(request, f"held {delay:g} s (simulated slowness)")
            self._closed.wait(delay)

    def _simulate_outage(self, request: Request) -> Response:
        body = _json_body(request)
        try:
            mode = OutageMode(body.get("mode"))
        except ValueError:
            raise CourierError(400, 40000001, 'mode must be "down", "slow" or "up"') from None
        delay = body.get("delay_seconds", self._slow_delay)
        if isinstance(delay, bool) or not isinstance(delay, int | float) or not 0 <= delay <= MAX_SLOW_DELAY_SECONDS:
            raise CourierError(400, 40000001, f"delay_seconds must be a number from 0 to {MAX_SLOW_DELAY_SECONDS:g}")
        self.set_outage(mode, float(delay))
        return _json({"mode": mode.value, "delay_seconds": float(delay)})

    def set_outage(self, mode: OutageMode, delay_seconds: float | None = None) -> None:
        """What ``POST /simulate/outage`` does, for a test that holds the courier itself."""
        with self._lock:
            self._mode = mode
            self._mode_delay = self._slow_delay if delay_seconds is None else delay_seconds

    def quotes(self) -> list[dict[str, Any]]:
        """The rates requests answered (or not), newest first, as the page's JSON lists them (for tests)."""
        with self._lock:
            return [quote.resource() for quote in self._quotes]

    # --- rates ----------------------------------------------------------------------------------------

    def _rates(self, request: Request) -> Response:
        body = _json_body(request)
        try:
            origin, destination = _endpoint(body, "origin"), _endpoint(body, "destination")
            couriers = _couriers(body)
            weight_grams = _weight_grams(body)
        except CourierError as exc:
            self._record(request, f"{exc.status} {exc.message}")
            raise
        entries = pricing(origin, destination, couriers, weight_grams)
        self._record(request, f"{len(entries)} rates: " + ", ".join(_rate_text(entry) for entry in entries))
        return _json(
            {
                "success": True,
                "object": "courier_pricing",
                "message": "Success to retrieve courier pricing",
                "code": 20001003,
                "origin": origin.resource(),
                "destination": destination.resource(),
                "pricing": entries,
            }
        )

    def _record(self, request: Request, answer: str) -> None:
        body = request.get_json(silent=True, force=True)
        body = body if isinstance(body, dict) else {}
        items = body.get("items") if isinstance(body.get("items"), list) else []
        try:
            weight: int | None = sum(int(item["weight"]) * int(item["quantity"]) for item in items)
        except (KeyError, TypeError, ValueError):
            weight = None
        record = QuoteRecord(
            datetime.now(UTC),
            _int_or_none(body.get("origin_postal_code")),
            _int_or_none(body.get("destination_postal_code")),
            str(body.get("couriers", "")),
            weight,
            answer,
        )
        with self._lock:
            self._quotes.appendleft(record)

    # --- orders and tracking ---------------------------------------------------------------------------

    def _create_order(self, request: Request) -> Response:
        body = _json_body(request)
        reference_id = body.get("reference_id")
        if reference_id is not None and (not isinstance(reference_id, str) or not reference_id.strip()):
            raise CourierError(400, 40002001, "reference_id must be a non-empty string")
        with self._lock:  # a reference booked already answers its order: the check and the booking are one step
            if reference_id is not None and reference_id in self._order_by_reference:
                return _json(self._orders[self._order_by_reference[reference_id]].resource())
            order = _new_order(body, reference_id)
            self._orders[order.id] = order
            self._order_by_tracking[order.tracking_id] = order.id
            if reference_id is not None:
                self._order_by_reference[reference_id] = order.id
            return _json({**order.resource(), "message": "Order successfully created"})

    def _get_order(self, request: Request, order_id: str) -> Response:
        with self._lock:
            return _json(self._order(order_id).resource())

    def _get_tracking(self, request: Request, tracking_id: str) -> Response:
        with self._lock:
            order_id = self._order_by_tracking.get(tracking_id, tracking_id)
            return _json(self._order(order_id).tracking())

    def _order(self, order_id: str) -> LocalOrder:
        order = self._orders.get(order_id)
        if order is None:
            raise CourierError(404, 40400001, f"no order {order_id}")
        return order

    def _simulate_status(self, request: Request, order_id: str) -> Response:
        sent = request.get_json(silent=True, force=True)  # curl -d sends JSON as a form content type
        from_page = not isinstance(sent, dict) and "status" in request.form  # the page's buttons post a form
        body = dict(request.form) if from_page else _json_body(request)
        status, note = body.get("status"), body.get("note") or ""
        if status not in STATUSES:
            raise CourierError(400, 40000001, f"status must be one of Biteship's: {', '.join(STATUSES)}")
        if not isinstance(note, str):
            raise CourierError(400, 40000001, "note must be text")
        resource = self.move_order(order_id, status, note or NOTES[status], deliver=delivers(request))
        if from_page:
            return Response(status=303, headers={"Location": f"{request.script_root}/"})
        return _json(resource)

    def move_order(self, order_id: str, status: str, note: str, *, deliver: bool = True) -> dict[str, Any]:
        """What ``POST /simulate/orders/{id}/status`` does, for a test that holds the courier itself."""
        with self._lock:
            order = self._order(order_id)
            had_waybill = order.waybill_id is not None
            if status != order.status:
                if order.status in FINAL_STATUSES:
                    raise CourierError(409, 40900001, f"order {order_id} is {order.status} already")
                order.move(status, note, datetime.now(UTC))
            if deliver:
                events = [WAYBILL_EVENT] if order.waybill_id is not None and not had_waybill else []
                for event in [*events, STATUS_EVENT]:
                    delivery = WebhookDelivery(order.status, order.updated_at, event)
                    order.webhooks.append(delivery)
                    self._webhooks.send(WEBHOOK_FUNCTION, order.id, order.webhook(event), self._recorder(delivery))
            return order.resource()

    def _recorder(self, delivery: WebhookDelivery) -> Callable[[DeliveryOutcome], None]:
        def record(outcome: DeliveryOutcome) -> None:
            with self._lock:
                delivery.outcome = outcome.text

        return record

    def orders(self) -> list[dict[str, Any]]:
        """Every order, newest first, as the page's JSON lists them (for tests)."""
        with self._lock:
            return [order.resource() for order in self._newest_orders()]

    def _newest_orders(self) -> list[LocalOrder]:
        return sorted(self._orders.values(), key=lambda order: order.created, reverse=True)

    # --- the page -------------------------------------------------------------------------------------

    def _overview(self, request: Request) -> Response:
        with self._lock:
            quotes, mode, delay = list(self._quotes), self._mode, self._mode_delay
            orders = self._newest_orders()
            if request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json":
                return _json(
                    {
                        "outage": {"mode": mode.value, "delay_seconds": delay},
                        "orders": [order.resource() for order in orders],
                        "quotes": [quote.resource() for quote in quotes],
                    }
                )
            page = _overview_html(quotes, mode, delay, orders, request.script_root)
        return Response(page, mimetype="text/html")


def _routes_of(*, authenticated: bool) -> Callable[[str, str, Callable[..., Response]], Rule]:
    def route(method: str, path: str, handler: Callable[..., Response]) -> Rule:
        return Rule(path, methods=[method], endpoint=(handler, authenticated))

    return route


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _parse_timestamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _require_api_key(request: Request) -> None:
    if not request.headers.get("Authorization", "").strip():
        raise CourierError(401, 40100001, "send the API key in the Authorization header")


def _json_body(request: Request) -> dict[str, Any]:
    body = request.get_json(silent=True, force=True)  # curl -d sends a form content type
    if not isinstance(body, dict):
        raise CourierError(400, 40000001, "the body must be a JSON object")
    return body


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _endpoint(body: dict[str, Any], end: str) -> Endpoint:
    postal_code = body.get(f"{end}_postal_code")
    if isinstance(postal_code, str) and postal_code.isdigit():
        postal_code = int(postal_code)
    if isinstance(postal_code, bool) or not isinstance(postal_code, int) or not 10_000 <= postal_code <= 99_999:
        raise CourierError(400, 40001001, f"{end}_postal_code must be an Indonesian postal code (5 digits)")
    latitude, longitude = body.get(f"{end}_latitude"), body.get(f"{end}_longitude")
    if (latitude is None) != (longitude is None):
        raise CourierError(400, 40001001, f"give both {end}_latitude and {end}_longitude, or neither")
    for value in (latitude, longitude):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise CourierError(400, 40001001, f"{end} coordinates must be numbers")
    return Endpoint(postal_code, latitude, longitude)


def _new_order(body: dict[str, Any], reference_id: str | None) -> LocalOrder:
    """An order for Biteship's order request, priced as the rates request for its service would be; what
    Biteship would refuse is a 400."""
    for end in ("origin", "destination"):
        for name in ("contact_name", "contact_phone", "address"):
            value = body.get(f"{end}_{name}")
            if not isinstance(value, str) or not value.strip():
                raise CourierError(400, 40002001, f"{end}_{name} is required")
    origin, destination = _order_endpoint(body, "origin"), _order_endpoint(body, "destination")
    company, service = body.get("courier_company"), body.get("courier_type")
    if not isinstance(company, str) or not isinstance(service, str):
        raise CourierError(400, 40002001, "courier_company and courier_type are required")
    if body.get("delivery_type") not in ("now", "scheduled"):
        raise CourierError(400, 40002001, 'delivery_type must be "now" or "scheduled"')
    cod = body.get("destination_cash_on_delivery")
    if cod is not None and not _positive_int(cod):
        raise CourierError(400, 40002001, "destination_cash_on_delivery must be a positive whole number of rupiah")
    company, service = company.lower(), service.lower()
    offered = [
        entry
        for entry in pricing(origin, destination, {company}, _weight_grams(body))
        if entry["courier_service_code"] == service
    ]
    if not offered:
        raise CourierError(400, 40002002, f"{company} {service} does not carry this parcel on this route")
    return LocalOrder(
        id=secrets.token_hex(12),
        reference_id=reference_id,
        request=body,
        company=company,
        type=service,
        waybill_id=None if any(service.courier == company for service in INSTANT_SERVICES) else _waybill(company),
        tracking_id=secrets.token_hex(12),
        price=offered[0]["price"],
        created=datetime.now(UTC),
    ).started()


def _waybill(company: str) -> str:
    return f"{company.upper()}{secrets.randbelow(10**12):012d}"


def _order_endpoint(body: dict[str, Any], end: str) -> Endpoint:
    """An order's end, in the rates request's terms (Biteship's orders take ``{end}_coordinate``)."""
    coordinate = body.get(f"{end}_coordinate") or {}
    if not isinstance(coordinate, dict):
        raise CourierError(400, 40002001, f"{end}_coordinate must be {{latitude, longitude}}")
    return _endpoint(
        {
            f"{end}_postal_code": body.get(f"{end}_postal_code"),
            f"{end}_latitude": coordinate.get("latitude"),
            f"{end}_longitude": coordinate.get("longitude"),
        },
        end,
    )


def _couriers(body: dict[str, Any]) -> set[str]:
    couriers = body.get("couriers")
    if not isinstance(couriers, str) or not couriers.strip():
        raise CourierError(400, 40001001, "couriers must be a comma-separated list of courier codes")
    return {code.strip().lower() for code in couriers.split(",") if code.strip()}


def _weight_grams(body: dict[str, Any]) -> int:
    items = body.get("items")
    if not isinstance(items, list) or not items:
        raise CourierError(400, 40001001, "items must be a non-empty list")
    total = 0
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise CourierError(400, 40001001, "every item needs a name")
        weight, quantity, value = item.get("weight"), item.get("quantity"), item.get("value")
        if not _positive_int(weight) or not _positive_int(quantity):
            raise CourierError(400, 40001001, "every item needs a positive weight (grams) and quantity")
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise CourierError(400, 40001001, "every item needs a value (rupiah)")
        total += weight * quantity
    return total


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _rate_text(entry: dict[str, Any]) -> str:
    return f"{entry['courier_code']} {entry['courier_service_code']} {_rupiah(entry['price'])}"


def _overview_html(
    quotes: list[QuoteRecord], mode: OutageMode, delay: float, orders: list[LocalOrder], root: str
) -> str:
    text = html.escape
    state = {"up": "up: answering", "down": "down: every request 503", "slow": f"slow: answering after {delay:g} s"}
    quote_rows = [
        [
            _timestamp(quote.at),
            quote.origin,
            quote.destination,
            quote.couriers,
            quote.weight_grams,
            quote.answer,
        ]
        for quote in quotes
    ]
    quotes_table = _table(["at", "from", "to", "couriers", "weight (g)", "answer"], quote_rows)
    orders_table = _table(
        ["booked", "order id", "reference", "courier", "waybill", "to", "COD", "price", "status", "last webhook"],
        [
            [
                _timestamp(order.created),
                order.id,
                order.reference_id,
                f"{order.company} {order.type}",
                order.waybill_id or "(assigned with a driver)",
                f"{order.request.get('destination_contact_name')}, {order.request.get('destination_postal_code')}",
                _rupiah(order.request["destination_cash_on_delivery"])
                if order.request.get("destination_cash_on_delivery") is not None
                else "",
                _rupiah(order.price),
                order.status,
                f"{order.webhooks[-1].status}: {order.webhooks[-1].outcome}" if order.webhooks else "",
            ]
            for order in orders
        ],
        actions=[_order_actions(order, root) for order in orders],
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Local courier</title>
<style>body{{font-family:sans-serif;margin:2rem}}table{{border-collapse:collapse}}
th,td{{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;font-size:.9rem}}form{{display:inline}}</style>
</head><body><main>
<h1>Local courier (Biteship-shaped)</h1>
<p>Now {text(state[mode.value])}. Change it with <code>POST /_courier/simulate/outage</code>
<code>{{"mode": "down" | "slow" | "up"}}</code>. The same as JSON with <code>Accept: application/json</code>.</p>
<h2>Orders ({len(orders)}, newest first)</h2>
<p>Move a parcel on with its buttons (or <code>POST /_courier/simulate/orders/{{id}}/status</code>
<code>{{"status": "picked"}}</code>): each step sends the <code>order.status</code> webhook to
<code>/_url/{WEBHOOK_FUNCTION}/</code>.</p>
{orders_table}
<h2>Rates requests ({len(quotes)}, newest first)</h2>
{quotes_table}
</main></body></html>
"""


def _table(headings: list[str], rows: list[list[Any]], actions: list[str] | None = None) -> str:
    if not rows:
        return "<p>None yet.</p>"
    text = html.escape
    head = "".join(f"<th>{text(heading)}</th>" for heading in headings) + ("<th></th>" if actions else "")
    body = "".join(
        "<tr>"
        + "".join(f"<td>{text(str(cell) if cell is not None else '')}</td>" for cell in row)
        + (f"<td>{actions[index]}</td>" if actions else "")
        + "</tr>"
        for index, row in enumerate(rows)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _order_actions(order: LocalOrder, root: str) -> str:
    """A button for the parcel's usual next step, and a choice of any other status; none once final."""
    if order.status in FINAL_STATUSES:
        return ""
    action = html.escape(f"{root}/simulate/orders/{order.id}/status", quote=True)
    step = NEXT_STEP[order.status]
    next_button = f'<form method="post" action="{action}"><button name="status" value="{step}">{step}</button></form>'
    options = "".join(f'<option value="{status}">{status}</option>' for status in STATUSES if status != order.status)
    chooser = (
        f'<form method="post" action="{action}"><select name="status">{options}</select><button>move</button></form>'
    )
    return f"{next_button} {chooser}"


def _rupiah(amount: int) -> str:
    return "Rp" + f"{amount:,}".replace(",", ".")
