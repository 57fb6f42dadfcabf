"""The local courier: the courier aggregator's API as Patungan calls it (Biteship's shapes, EXTERNAL_APIS.md),
plus a page and simulations, as the local Xendit is for payments.

``LocalCourier(*, slow_delay_seconds=10.0)``; the local stack mounts its ``wsgi_app`` under ``/_courier``
(serve it threaded) and calls ``close()`` on exit. State lives in memory, behind one lock.

API (an ``Authorization`` header with the API key required, 401 otherwise; errors are Biteship's
``{"success": false, "error", "code"}``):

    POST /v1/rates/couriers   Biteship's rates request -> ``{"success": true, "object": "courier_pricing",
                              "origin", "destination", "pricing": [...]}``

Pages and simulations (no auth):

    GET  /                         every rates request answered (or not), newest first, and the outage
                                   mode; JSON with Accept: application/json
    POST /simulate/outage          ``{"mode": "down" | "slow" | "up", "delay_seconds"?: n}``: ``down`` answers
                                   every API request 503, ``slow`` answers after ``delay_seconds`` (default
                                   ``slow_delay_seconds``, beyond the adapter's timeout), ``up`` as normal

Prices are plausible, not real: each service charges per started kilogram of the parcel (the items' weight
times quantity) by how far the parcel goes, read off the postal codes (the same first three digits: the same
city; the same first digit: the same region; otherwise between islands), and quotes how many days it takes
that far. The instant courier (gojek) answers only within one city and only when both ends have coordinates,
priced by the straight-line distance, as Biteship's instant couriers need coordinates.

Shipments (orders, tracking, status webhooks) are the next resources: each gets its routes in ``_routes``, its
records beside ``_quotes`` and its section on the page.
"""

from __future__ import annotations

import html
import json
import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

SLOW_DELAY_SECONDS = 10.0
MAX_SLOW_DELAY_SECONDS = 120.0
QUOTES_KEPT = 200
GRAMS_PER_KG = 1000
EARTH_RADIUS_KM = 6371.0
SAME_CITY, SAME_REGION, OTHER_ISLAND = 0, 1, 2


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

    def __init__(self, *, slow_delay_seconds: float = SLOW_DELAY_SECONDS) -> None:
        self._slow_delay = slow_delay_seconds
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._mode = OutageMode.UP
        self._mode_delay = slow_delay_seconds
        self._quotes: deque[QuoteRecord] = deque(maxlen=QUOTES_KEPT)
        api, public = _routes_of(authenticated=True), _routes_of(authenticated=False)
        self._routes = Map(
            [
                api("POST", "/v1/rates/couriers", self._rates),
                public("GET", "/", self._overview),
                public("POST", "/simulate/outage", self._simulate_outage),
            ],
            strict_slashes=False,
        )

    def wsgi_app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        try:
            (handler, authenticated), args = self._routes.bind_to_environ(environ).match()
            if authenticated:
                _require_api_key(request)
                self._outage(request)
            response = handler(request, **args)
        except CourierError as exc:
            response = exc.response()
        except HTTPException as exc:  # no such route, or a method it does not take
            response = CourierError(exc.code or 400, 40400000, exc.description or exc.name).response()
        return response(environ, start_response)

    def close(self) -> None:
        self._closed.set()

    # --- outages --------------------------------------------------------------------------------------

    def _outage(self, request: Request) -> None:
        """What the outage mode does to an API request: nothing, a 503, or a wait beyond the caller's timeout."""
        with self._lock:
            mode, delay = self._mode, self._mode_delay
        if mode is OutageMode.DOWN:
            self._record(request, "503 (simulated outage)")
            raise CourierError(503, 50300000, "service unavailable (simulated outage)")
        if mode is OutageMode.SLOW:
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

    # --- the page -------------------------------------------------------------------------------------

    def _overview(self, request: Request) -> Response:
        with self._lock:
            quotes, mode, delay = list(self._quotes), self._mode, self._mode_delay
        if request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json":
            resources = [quote.resource() for quote in quotes]
            return _json({"outage": {"mode": mode.value, "delay_seconds": delay}, "quotes": resources})
        return Response(_overview_html(quotes, mode, delay), mimetype="text/html")


def _routes_of(*, authenticated: bool) -> Callable[[str, str, Callable[..., Response]], Rule]:
    def route(method: str, path: str, handler: Callable[..., Response]) -> Rule:
        return Rule(path, methods=[method], endpoint=(handler, authenticated))

    return route


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


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
    price = "Rp" + f"{entry['price']:,}".replace(",", ".")
    return f"{entry['courier_code']} {entry['courier_service_code']} {price}"


def _overview_html(quotes: list[QuoteRecord], mode: OutageMode, delay: float) -> str:
    text = html.escape
    state = {"up": "up: answering", "down": "down: every request 503", "slow": f"slow: answering after {delay:g} s"}
    if quotes:
        head = "".join(f"<th>{h}</th>" for h in ("at", "from", "to", "couriers", "weight (g)", "answer"))
        rows = "".join(
            "<tr>"
            + "".join(
                f"<td>{text(str(cell) if cell is not None else '')}</td>"
                for cell in (
                    _timestamp(quote.at),
                    quote.origin,
                    quote.destination,
                    quote.couriers,
                    quote.weight_grams,
                    quote.answer,
                )
            )
            + "</tr>"
            for quote in quotes
        )
        table = f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    else:
        table = "<p>None yet.</p>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Local courier</title>
<style>body{{font-family:sans-serif;margin:2rem}}table{{border-collapse:collapse}}
th,td{{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;font-size:.9rem}}</style></head>
<body><main>
<h1>Local courier (Biteship-shaped)</h1>
<p>Now {text(state[mode.value])}. Change it with <code>POST /_courier/simulate/outage</code>
<code>{{"mode": "down" | "slow" | "up"}}</code>. The same as JSON with <code>Accept: application/json</code>.</p>
<h2>Rates requests ({len(quotes)}, newest first)</h2>
{table}
</main></body></html>
"""
