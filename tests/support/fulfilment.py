"""Shipment helpers (issue 11): a courier that books as Biteship does (one order per reference_id) and can be down
or lose its answer, orders ready to ship (retail through the real checkout saga, group-buying as settlement writes
them, with their purchase order), the booking, shipment, label and tracking routes, and the courier's webhook."""

from __future__ import annotations

import base64
import copy
import itertools
import json
import threading
from dataclasses import dataclass, field
from typing import Any

import boto3

from patungan import composition
from patungan.accounts.models import AddressInput
from patungan.adapters.dynamodb import Transaction
from patungan.checkout.cart import CartItemInput, Shopper
from patungan.checkout.confirm import ConfirmRequest
from patungan.core.auth import Principal, Role
from patungan.core.clock import to_iso
from patungan.inventory.stock_repository import AuditQuery
from patungan.ledger.models import AdjustmentInput
from patungan.ledger.service import ledger_service
from patungan.logistics.courier import CourierUnavailable
from patungan.logistics.models import CourierBooked, CourierBooking, CourierStatus
from patungan.orders.models import Order, OrderLine
from tests.support.checkout import CatalogPricing, Started, Tokens, confirm_service
from tests.support.lambdas import ApiResponse, api_event, call_api, claims, invoke, load_event
from tests.support.stock import ADDRESS

WAREHOUSE = claims("packer-1", "warehouse")
ADMIN = claims("admin-1", "admin")
SELLER = claims("seller-staff-1", "seller", seller_id="sel_toko")
OTHER_SELLER = claims("seller-staff-2", "seller", seller_id="sel_lain")
WEBHOOK_TOKEN = "tests-courier-webhook-token"  # a fake, local value


@dataclass
class FakeCourier:
    """Biteship's order booking: the same reference_id answers the same order. ``down`` refuses to answer;
    ``lose_answers`` books and then loses the answer (a timeout after the courier acted); ``crash_after_booking``
    books and then the caller's process dies; ``refuses`` names the couriers that answer a booking 4xx (an area or
    service they do not serve); ``waybill_later`` names the couriers that answer a booking without its waybill (it
    comes by the ``order.waybill_id`` webhook)."""

    orders: dict[str, CourierBooked] = field(default_factory=dict)
    bookings: list[CourierBooking] = field(default_factory=list)
    down: bool = False
    lose_answers: int = 0
    crash_after_booking: int = 0
    refuses: set[str] = field(default_factory=set)
    waybill_later: set[str] = field(default_factory=set)
    _numbers: Any = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def book(self, booking: CourierBooking) -> CourierBooked:
        if self.down:
            raise CourierUnavailable("ConnectTimeoutError", attempts=3)
        if booking.courier in self.refuses:
            raise CourierUnavailable(f"HTTP 400: {booking.courier} does not serve this route", attempts=1, refused=True)
        with self._lock:
            self.bookings.append(booking)
            if booking.reference_id not in self.orders:
                n = next(self._numbers)
                waybill_id = None if booking.courier in self.waybill_later else f"WAYBILL{n:06d}"
                self.orders[booking.reference_id] = CourierBooked(
                    f"courier-order-{n}", waybill_id, f"track-{n}", CourierStatus.CONFIRMED, 9_000
                )
            booked = self.orders[booking.reference_id]
            if self.lose_answers:
                self.lose_answers -= 1
                raise CourierUnavailable("ReadTimeoutError", attempts=3)
            if self.crash_after_booking:
                self.crash_after_booking -= 1
                raise RuntimeError("the function died after the courier answered")
        return booked


def use_courier(courier: FakeCourier) -> FakeCourier:
    composition.shipment_service().courier = courier
    return courier


def book(order_id: str, who: dict[str, str] = WAREHOUSE, body: dict[str, Any] | None = None) -> ApiResponse:
    return call_api(
        "BookShipmentFunction",
        "POST",
        f"/v1/orders/{order_id}/shipments",
        resource="/v1/orders/{id}/shipments",
        path_parameters={"id": order_id},
        body=body,
        claims=who,
    )


def get_shipment(shipment_id: str, who: dict[str, str]) -> ApiResponse:
    return call_api(
        "GetShipmentFunction",
        "GET",
        f"/v1/shipments/{shipment_id}",
        resource="/v1/shipments/{id}",
        path_parameters={"id": shipment_id},
        claims=who,
    )


def tracking(order_id: str, who: dict[str, str]) -> ApiResponse:
    return call_api(
        "GetOrderTrackingFunction",
        "GET",
        f"/v1/orders/{order_id}/tracking",
        resource="/v1/orders/{id}/tracking",
        path_parameters={"id": order_id},
        claims=who,
    )


def label(shipment_id: str, who: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """The label route's status, headers and body as bytes (a PDF comes base64-encoded, as Lambda answers it)."""
    response = invoke(
        "GetShipmentLabelFunction",
        api_event(
            "GET",
            f"/v1/shipments/{shipment_id}/label",
            resource="/v1/shipments/{id}/label",
            path_parameters={"id": shipment_id},
            claims=who,
            headers={"Accept": "application/pdf"},
        ),
    )
    body = response.get("body") or ""
    raw = base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    headers |= {k.lower(): v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()}
    return response["statusCode"], headers, raw


def retail_order(warehouse_id: str, product_id: str, method: str = "cod", buyer: str = "buyer-1") -> Order:
    """A retail order of 2 units through the real confirm and saga: ``cod`` (processing) or ``wallet`` (paid,
    from a funded wallet), its stock held until it ships."""
    shopper = Shopper(customer_id=buyer)
    if method == "wallet":
        ledger_service().adjust_wallet(
            Principal("admin-1", frozenset({Role.ADMIN})), buyer, AdjustmentInput(amount=100_000, reason="top-up")
        )
    composition.cart_service().add_item(shopper, CartItemInput(product_id=product_id, quantity=2))
    pricing = CatalogPricing(warehouse_id)
    quote = pricing.quote(shopper, None, composition.cart_service().get_for(shopper))
    composition.checkout_repository().remember_preview(shopper.owner_key, quote)
    request = ConfirmRequest(
        address=ADDRESS,
        shipping_method_id="jne:reg",
        payment_method=method,
        prices_validated_at=quote.prices_validated_at,
    )
    checkout_id = confirm_service(pricing, Started()).confirm(shopper, request, f"key-{buyer}").checkout_id
    saga = composition.checkout_saga()
    saga.task_tokens = Tokens()
    saga.reserve(checkout_id)
    saga.place_orders(checkout_id)
    saga.create_payment(checkout_id)
    saga.hold_for_fulfilment(checkout_id)
    [order_id] = composition.checkout_repository().get(checkout_id).order_ids
    return composition.order_service().repository.get(order_id)


def groupbuy_order(session_id: str, product_id: str, quantity: int, buyer: str) -> Order:
    """A paid group-buying order as settlement writes it (ORD-4): no seller, no address, no warehouse."""
    now = to_iso(composition.CLOCK.now())
    order = Order(
        id=f"ord_{session_id}_{buyer}",
        user_id=buyer,
        session_id=session_id,
        factory_id="fac_1",
        status="paid",
        lines=[
            OrderLine(
                product_id=product_id, name="Kopi", quantity=quantity, unit_price=10_000, amount=quantity * 10_000
            )
        ],
        subtotal=quantity * 10_000,
        total=quantity * 10_000,
        currency="IDR",
        payment_id=f"pay_{buyer}",
        created_at=now,
        updated_at=now,
    )
    tx = Transaction()
    composition.order_service().add_to(tx, order)
    tx.commit()
    return order


def raise_purchase_order(session_id: str, product_id: str, quantity: int) -> str:
    tx = Transaction()
    po = composition.purchase_order_service().raise_for_session(
        tx, session_id=session_id, factory_id="fac_1", product_id=product_id, variant_id=None,
        product_name="Kopi", quantity=quantity,
    )  # fmt: skip
    tx.commit()
    return po.id


def receive_purchase_order(po_id: str, quantity: int, warehouse_id: str) -> ApiResponse:
    return call_api(
        "ReceivePurchaseOrderFunction",
        "POST",
        f"/v1/purchase-orders/{po_id}/receive",
        resource="/v1/purchase-orders/{id}/receive",
        path_parameters={"id": po_id},
        body={"received_quantity": quantity, "warehouse_id": warehouse_id},
        claims=WAREHOUSE,
    )


def give_default_address(user_id: str) -> None:
    composition.address_service().add(user_id, AddressInput(**ADDRESS))


def commits(reference: str) -> list[Any]:
    """The audited ``commit`` records of the stock a reservation or shipment took."""
    records, _ = composition.stock_service().audit.page(AuditQuery(action="commit"), limit=100, cursor=None)
    return [record for record in records if record.reference == reference]


def accept_webhook_token(world: Any) -> None:
    """The courier webhook's secret, where the stack reads it (SSM)."""
    name = world.aws.environment["COURIER_WEBHOOK_TOKEN_PARAMETER"]
    boto3.client("ssm").put_parameter(Name=name, Value=WEBHOOK_TOKEN, Type="SecureString", Overwrite=True)


def courier_webhook(body: dict[str, Any], token: str | None = WEBHOOK_TOKEN) -> ApiResponse:
    """Biteship's webhook POST to the CourierWebhook Function URL, the secret in its ``?token=``."""
    event = copy.deepcopy(load_event("xendit_invoice_paid.json"))
    event["headers"].pop("x-callback-token")
    event["headers"]["user-agent"] = "Biteship"
    event["body"] = base64.b64encode(json.dumps(body).encode()).decode()
    event["isBase64Encoded"] = True
    if token is not None:
        event["rawQueryString"] = f"token={token}"
        event["queryStringParameters"] = {"token": token}
    response = invoke("CourierWebhook", event)
    return ApiResponse(response["statusCode"], {}, json.loads(response["body"]) if response.get("body") else None)


def waybill_event(courier_order_id: str, waybill_id: str, token: str | None = WEBHOOK_TOKEN) -> ApiResponse:
    """Biteship's ``order.waybill_id``: the waybill a courier assigned after the booking."""
    body = {
        "event": "order.waybill_id",
        "order_id": courier_order_id,
        "courier_tracking_id": "trk-1",
        "courier_waybill_id": waybill_id,
        "status": "allocated",
        "updated_at": "2026-11-30T10:00:00+07:00",
    }
    return courier_webhook(body, token)
