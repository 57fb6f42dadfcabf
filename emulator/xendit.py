"""The local Xendit: the Xendit endpoints Patungan calls, a checkout page and simulations (as stripe-mock
is for Stripe).

``LocalXendit(callback_token, webhook_base_url, *, settle_delay_seconds=1.0, time_scale=1.0,
payout_settle_delay_seconds=5.0)``; the local stack mounts its ``wsgi_app`` under ``/_xendit`` (serve it
threaded) and calls ``close()`` on exit. The adapter
(``patungan.adapters.xendit``) talks to it through the real xendit-python SDK, so every answer is a complete
object the SDK's strictly typed models accept. State lives in memory, behind one lock.

API (Basic auth with any ``key:`` required, 401 otherwise; errors are ``{"error_code", "message"}``):

    POST /v2/invoices/                 create an invoice (PENDING); it expires by itself at its expiry_date
    GET  /v2/invoices/{id}             one invoice
    GET  /v2/invoices?external_id=...  the invoices with that external_id, newest first
    POST /invoices/{id}/expire!        expire a PENDING invoice; a paid or expired one answers
                                       404 INVOICE_NOT_FOUND_ERROR, as Xendit does
    POST /refunds                      refund a paid invoice (``invoice_id``); the same ``idempotency-key``
                                       answers the same refund
    GET  /refunds/{id}                 one refund
    POST /v2/payouts                   send a payout; ``idempotency-key`` required, the same key answers the
                                       same payout
    GET  /v2/payouts/{id}              one payout (404 DATA_NOT_FOUND if there is none)
    GET  /v2/payouts?reference_id=...  ``{"data": [...], "has_more": false}``: the payouts sent for it

Pages and simulations (no auth):

    GET  /                                every invoice, refund and payout, newest first, with links to the
                                          checkout pages; JSON (the API's objects) with Accept: application/json
    GET  /invoices/{id}                   the checkout page; its Pay button POSTs the form back to it
    POST /simulate/invoices/{id}/pay      optional body {"payment_method": "RETAIL_OUTLET"} (see below)
    POST /simulate/invoices/{id}/expire
                                          both take ``?deliver=false``: the invoice changes here but no
                                          webhook is sent, as if Xendit's callback were lost (drift for
                                          reconciliation to find)
    POST /simulate/refunds/{id}/fail      optional body {"failure_code": "..."} (default REFUND_FAILED)
    POST /simulate/refunds/{id}/succeed   settle a PENDING refund now
                                          (either refund simulation with ?deliver=false sends no webhook)
    POST /simulate/payouts/{id}/succeed   an ACCEPTED payout SUCCEEDED
    POST /simulate/payouts/{id}/fail      an ACCEPTED payout FAILED; optional body {"failure_code": "..."}
                                          (default INVALID_DESTINATION)
    POST /simulate/payouts/{id}/reverse   a SUCCEEDED payout REVERSED (the bank sent the money back)

Each payout simulation delivers the payout's webhook; with ``?deliver=false`` it only changes the payout's
state (drift for reconciliation to find: Xendit's record moved on, no callback ever came).

Paying or expiring an invoice that is no longer PENDING, or settling a refund or payout that is already
final another way (reversing one that is not SUCCEEDED), answers 409 and sends nothing. Settling a refund or
payout the way it already is settled (a payout that succeeded by itself before the simulation came) answers
it, unchanged, and sends its callback again, as Xendit re-sends one (``?deliver=false``: nothing).

A paid invoice (its resource and its PAID callback) carries ``fees``: Xendit's fee for the payment method
and the VAT on it, in whole rupiah (``INVOICE_FEES``: a virtual account 4 000 + 440 VAT, QRIS 0.7 %, e-wallets
1.5 %, ...), with ``fees_paid_amount`` their sum and ``adjusted_received_amount`` what is left of the amount.

How refunds and payouts turn out:

- A refund is accepted PENDING and succeeds ``settle_delay_seconds`` later, unless failed first (a test
  that fails refunds starts the local Xendit with a long settle delay).
- How the invoice was paid decides what can be refunded (``payment_method`` of the pay simulation or of
  the checkout page's select; default BANK_TRANSFER): an invoice paid at a RETAIL_OUTLET cannot be
  refunded (400 REFUND_NOT_SUPPORTED) and one paid by QR_CODE cannot be refunded in part
  (400 PARTIAL_REFUND_NOT_SUPPORTED). Callers fall back to a wallet credit.
- A payout is accepted (ACCEPTED) and succeeds by itself ``payout_settle_delay_seconds`` later (5 s by
  default, whatever the time scale: a scenario that only approves a withdrawal sees it completed within
  seconds, and one that fails the payout right after approving it is first), unless settled first by a
  simulation. A payout to account number 131313 stays ACCEPTED until simulated, as in Xendit's test mode, so
  a test never races the settlement.

Webhooks are POSTed (emulator/webhooks.py) from a few background threads (never inside the request that caused
them, so a caller that waits on this server cannot deadlock) with ``x-callback-token`` to
``{webhook_base_url}/_url/XenditInvoiceWebhook/``, ``.../XenditRefundWebhook/`` and
``.../XenditPayoutWebhook/``, in Xendit's callback formats. The callbacks of one invoice, refund or payout
are POSTed one at a time, in the order they happened; those of different ones in parallel. Connection
errors and 5xx are retried a few times with backoff; like Xendit, a read timeout is not retried.

``time_scale`` shortens invoice lifetimes the way the local stack shortens Wait states (LOCAL_TIME_SCALE): an
invoice's expiry_date is real, but it expires after ``duration / time_scale`` seconds.
"""

from __future__ import annotations

import base64
import contextlib
import html
import json
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from emulator.webhooks import Scheduler, WebhookSender, delivers

BUSINESS_ID = "local-business"
MERCHANT_NAME = "Patungan (local Xendit)"
DEFAULT_INVOICE_DURATION_SECONDS = 86_400
HELD_PAYOUT_ACCOUNT_NUMBER = "131313"
PAYOUT_SETTLE_DELAY_SECONDS = 5.0

# invoice payment_method -> (channel a simulated payment uses, payment_method_type shown on its refunds)
PAYMENT_METHODS = {
    "BANK_TRANSFER": ("BCA", "VIRTUAL_ACCOUNT"),
    "EWALLET": ("OVO", "EWALLET"),
    "QR_CODE": ("QRIS", "QR_CODE"),
    "RETAIL_OUTLET": ("ALFAMART", "OVER_THE_COUNTER"),
    "CREDIT_CARD": ("CREDIT_CARD", "CARD"),
}
DEFAULT_PAYMENT_METHOD = "BANK_TRANSFER"
# invoice payment_method -> (Xendit's flat fee in rupiah, its share of the amount in basis points); VAT is
# charged on that fee. A paid invoice lists both in ``fees`` and Xendit keeps them (VA: 4 000 + 440 VAT).
INVOICE_FEES = {
    "BANK_TRANSFER": (4_000, 0),
    "EWALLET": (0, 150),
    "QR_CODE": (0, 70),
    "RETAIL_OUTLET": (5_000, 0),
    "CREDIT_CARD": (2_000, 290),
}
VAT_BASIS_POINTS = 1_100
PAYOUT_FAILURE_CODES = frozenset(
    {"INSUFFICIENT_BALANCE", "REJECTED_BY_CHANNEL", "TEMPORARY_TRANSFER_ERROR", "INVALID_DESTINATION", "TRANSFER_ERROR"}
)
# simulation -> (the status it moves a payout to, the status the payout must be in)
PAYOUT_SIMULATIONS = {
    "succeed": ("SUCCEEDED", "ACCEPTED"),
    "fail": ("FAILED", "ACCEPTED"),
    "reverse": ("REVERSED", "SUCCEEDED"),
}


class XenditError(Exception):
    """An error answered in Xendit's shape."""

    def __init__(self, status: int, error_code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message

    def response(self) -> Response:
        return _json({"error_code": self.error_code, "message": self.message}, self.status)


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def _timestamp(moment: datetime) -> str:
    """Xendit's time format: UTC, milliseconds, ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _now() -> datetime:
    return datetime.now(UTC)


def _present(fields: dict[str, Any]) -> dict[str, Any]:
    """Xendit leaves absent optional fields out rather than sending nulls."""
    return {key: value for key, value in fields.items() if value is not None}


def _rupiah(amount: int) -> str:
    return "Rp" + f"{amount:,}".replace(",", ".")


def _is_positive_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _whole_amount(value: Any) -> int:
    """IDR has no minor unit: the SDK sends floats, but only whole, positive rupiah are valid."""
    if not _is_positive_number(value) or not float(value).is_integer():
        raise XenditError(400, "API_VALIDATION_ERROR", "amount must be a positive whole number of rupiah")
    return int(value)


def invoice_fees(payment_method: str, amount: int) -> list[dict[str, Any]]:
    """The ``fees`` of an invoice paid by ``payment_method``: Xendit's fee and the VAT on it, whole rupiah."""
    flat, basis_points = INVOICE_FEES[payment_method]
    fee = flat + _share(amount, basis_points)
    return [{"type": "ADMIN", "value": fee}, {"type": "VAT", "value": _share(fee, VAT_BASIS_POINTS)}]


def _share(amount: int, basis_points: int) -> int:
    """``basis_points`` of ``amount`` in whole rupiah, halves rounded up."""
    return (2 * amount * basis_points + 10_000) // 20_000


def _invoice_duration(body: dict[str, Any]) -> float:
    duration = body.get("invoice_duration", DEFAULT_INVOICE_DURATION_SECONDS)
    if not _is_positive_number(duration):
        raise XenditError(400, "API_VALIDATION_ERROR", "invoice_duration must be a positive number of seconds")
    return float(duration)


def _required_text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise XenditError(400, "API_VALIDATION_ERROR", f"{name} is required")
    return value


@dataclass
class LocalInvoice:
    id: str
    external_id: str
    amount: int
    currency: str
    description: str | None
    payer_email: str | None
    success_redirect_url: str | None
    failure_redirect_url: str | None
    metadata: dict[str, Any] | None
    invoice_url: str
    created: datetime
    expiry_date: datetime
    updated: datetime
    status: str = "PENDING"
    payment_method: str | None = None
    payment_channel: str | None = None
    payment_id: str | None = None
    paid_at: datetime | None = None
    refunded_amount: int = 0

    def resource(self) -> dict[str, Any]:
        """The invoice object of the Invoice API."""
        return _present(
            {
                "id": self.id,
                "external_id": self.external_id,
                "user_id": BUSINESS_ID,
                "status": self.status,
                "merchant_name": MERCHANT_NAME,
                "merchant_profile_picture_url": "https://example.invalid/patungan.png",
                "amount": self.amount,
                "payer_email": self.payer_email,
                "description": self.description,
                "expiry_date": _timestamp(self.expiry_date),
                "invoice_url": self.invoice_url,
                "available_banks": [
                    {
                        "bank_code": code,
                        "collection_type": "POOL",
                        "transfer_amount": self.amount,
                        "bank_branch": "Virtual Account",
                        "account_holder_name": MERCHANT_NAME,
                    }
                    for code in ("BCA", "BNI", "BRI", "MANDIRI", "PERMATA")
                ],
                "available_retail_outlets": [{"retail_outlet_name": "ALFAMART"}, {"retail_outlet_name": "INDOMARET"}],
                "available_ewallets": [{"ewallet_type": name} for name in ("OVO", "DANA", "SHOPEEPAY", "LINKAJA")],
                "available_qr_codes": [{"qr_code_type": "QRIS"}],
                "available_direct_debits": [],
                "available_paylaters": [],
                "should_exclude_credit_card": False,
                "should_send_email": False,
                "success_redirect_url": self.success_redirect_url,
                "failure_redirect_url": self.failure_redirect_url,
                "created": _timestamp(self.created),
                "updated": _timestamp(self.updated),
                "currency": self.currency,
                "metadata": self.metadata,
                **self._payment_fields(),
            }
        )

    def callback(self) -> dict[str, Any]:
        """The invoice callback Xendit POSTs when the invoice is paid or expires."""
        return _present(
            {
                "id": self.id,
                "external_id": self.external_id,
                "user_id": BUSINESS_ID,
                "is_high": False,
                "status": self.status,
                "merchant_name": MERCHANT_NAME,
                "amount": self.amount,
                "payer_email": self.payer_email,
                "description": self.description,
                "created": _timestamp(self.created),
                "updated": _timestamp(self.updated),
                "currency": self.currency,
                "success_redirect_url": self.success_redirect_url,
                "failure_redirect_url": self.failure_redirect_url,
                **self._payment_fields(),
            }
        )

    def _payment_fields(self) -> dict[str, Any]:
        if self.paid_at is None or self.payment_method is None:
            return {}
        fees = invoice_fees(self.payment_method, self.amount)
        fees_paid = sum(fee["value"] for fee in fees)
        return {
            "paid_amount": self.amount,
            "paid_at": _timestamp(self.paid_at),
            "payment_method": self.payment_method,
            "payment_channel": self.payment_channel,
            "payment_destination": f"8808{self.id[-8:].upper()}",
            "payment_id": self.payment_id,
            "bank_code": self.payment_channel if self.payment_method == "BANK_TRANSFER" else None,
            "fees": fees,
            "fees_paid_amount": fees_paid,
            "adjusted_received_amount": self.amount - fees_paid,
        }


@dataclass
class LocalRefund:
    id: str
    invoice: LocalInvoice
    reference_id: str | None
    amount: int
    reason: str
    created: datetime
    updated: datetime
    status: str = "PENDING"
    failure_code: str | None = None

    def resource(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "payment_request_id": None,
            "invoice_id": self.invoice.id,
            "payment_id": self.invoice.payment_id,
            "amount": self.amount,
            "payment_method_type": PAYMENT_METHODS[self.invoice.payment_method or DEFAULT_PAYMENT_METHOD][1],
            "channel_code": self.invoice.payment_channel,
            "currency": self.invoice.currency,
            "country": "ID",
            "status": self.status,
            "reason": self.reason,
            "reference_id": self.reference_id,
            "failure_code": self.failure_code,
            "refund_fee_amount": 0,
            "created": _timestamp(self.created),
            "updated": _timestamp(self.updated),
            "metadata": None,
        }

    def callback(self) -> dict[str, Any]:
        event = "refund.succeeded" if self.status == "SUCCEEDED" else "refund.failed"
        return {
            "event": event,
            "business_id": BUSINESS_ID,
            "created": _timestamp(self.updated),
            "data": self.resource(),
        }


@dataclass
class LocalPayout:
    id: str
    reference_id: str
    amount: int
    currency: str
    channel_code: str
    channel_properties: dict[str, Any]
    description: str | None
    metadata: dict[str, Any] | None
    created: datetime
    updated: datetime
    status: str = "ACCEPTED"
    failure_code: str | None = None

    def resource(self) -> dict[str, Any]:
        return _present(
            {
                "id": self.id,
                "amount": self.amount,
                "channel_code": self.channel_code,
                "currency": self.currency,
                "status": self.status,
                "description": self.description,
                "reference_id": self.reference_id,
                "created": _timestamp(self.created),
                "updated": _timestamp(self.updated),
                "estimated_arrival_time": _timestamp(self.created + timedelta(minutes=30)),
                "business_id": BUSINESS_ID,
                "channel_properties": self.channel_properties,
                "failure_code": self.failure_code,
                "metadata": self.metadata,
            }
        )

    def callback(self) -> dict[str, Any]:
        event = f"payout.{self.status.lower()}"
        return {
            "event": event,
            "business_id": BUSINESS_ID,
            "created": _timestamp(self.updated),
            "data": self.resource(),
        }


class LocalXendit:
    """The local Xendit as a WSGI app (``wsgi_app``); ``close()`` stops its background threads."""

    def __init__(
        self,
        callback_token: str,
        webhook_base_url: str,
        *,
        settle_delay_seconds: float = 1.0,
        time_scale: float = 1.0,
        payout_settle_delay_seconds: float = PAYOUT_SETTLE_DELAY_SECONDS,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self._settle_delay = settle_delay_seconds
        self._payout_settle_delay = payout_settle_delay_seconds
        self._time_scale = time_scale
        self._lock = threading.Lock()
        self._invoices: dict[str, LocalInvoice] = {}
        self._refunds: dict[str, LocalRefund] = {}
        self._payouts: dict[str, LocalPayout] = {}
        # idempotency-key -> (request body, id of what it created)
        self._refund_keys: dict[str, tuple[dict[str, Any], str]] = {}
        self._payout_keys: dict[str, tuple[dict[str, Any], str]] = {}
        self._scheduler = Scheduler("local-xendit")
        self._webhooks = WebhookSender(
            webhook_base_url, self._scheduler, sender="local Xendit", headers={"x-callback-token": callback_token}
        )
        api, public = partial(_route, authenticated=True), partial(_route, authenticated=False)
        self._routes = Map(
            [
                api("POST", "/v2/invoices/", self._create_invoice),
                api("GET", "/v2/invoices", self._list_invoices),
                api("GET", "/v2/invoices/<invoice_id>", self._get_invoice),
                api("POST", "/invoices/<invoice_id>/expire!", self._expire_invoice),
                api("POST", "/refunds", self._create_refund),
                api("GET", "/refunds/<refund_id>", self._get_refund),
                api("POST", "/v2/payouts", self._create_payout),
                api("GET", "/v2/payouts", self._list_payouts),
                api("GET", "/v2/payouts/<payout_id>", self._get_payout),
                public("GET", "/", self._overview),
                public("GET", "/invoices/<invoice_id>", self._checkout_page),
                public("POST", "/invoices/<invoice_id>", self._checkout_page),
                public("POST", "/simulate/invoices/<invoice_id>/pay", self._simulate_pay),
                public("POST", "/simulate/invoices/<invoice_id>/expire", self._simulate_expire),
                public("POST", "/simulate/refunds/<refund_id>/fail", self._simulate_refund_failure),
                public("POST", "/simulate/refunds/<refund_id>/succeed", self._simulate_refund_success),
                public("POST", "/simulate/payouts/<payout_id>/<outcome>", self._simulate_payout),
            ],
            strict_slashes=False,
        )

    def wsgi_app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        try:
            (handler, authenticated), args = self._routes.bind_to_environ(environ).match()
            if authenticated:
                _require_api_key(request)
            response = handler(request, **args)
        except XenditError as exc:
            response = exc.response()
        except HTTPException as exc:  # no such route, or a method it does not take
            code = "NOT_FOUND" if exc.code == 404 else "INVALID_REQUEST"
            response = XenditError(exc.code or 400, code, exc.description or exc.name).response()
        return response(environ, start_response)

    def close(self) -> None:
        self._scheduler.close()
        self._webhooks.close()

    # --- overview -------------------------------------------------------------------------------------

    def _overview(self, request: Request) -> Response:
        with self._lock:
            invoices, refunds, payouts = (
                sorted(things.values(), key=lambda thing: thing.created, reverse=True)
                for things in (self._invoices, self._refunds, self._payouts)
            )
            if request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json":
                return _json(
                    {
                        "invoices": [invoice.resource() for invoice in invoices],
                        "refunds": [refund.resource() for refund in refunds],
                        "payouts": [payout.resource() for payout in payouts],
                    }
                )
            page = _overview_html(invoices, refunds, payouts)
        return Response(page, mimetype="text/html")

    # --- invoices -------------------------------------------------------------------------------------

    def _create_invoice(self, request: Request) -> Response:
        body = _json_body(request)
        now = _now()
        duration = _invoice_duration(body)
        invoice_id = secrets.token_hex(12)  # Xendit invoice ids are 24 hex digits
        invoice = LocalInvoice(
            id=invoice_id,
            external_id=_required_text(body, "external_id"),
            amount=_whole_amount(body.get("amount")),
            currency=body.get("currency") or "IDR",
            description=body.get("description"),
            payer_email=body.get("payer_email"),
            success_redirect_url=body.get("success_redirect_url"),
            failure_redirect_url=body.get("failure_redirect_url"),
            metadata=body.get("metadata"),
            invoice_url=f"{request.root_url}invoices/{invoice_id}",
            created=now,
            updated=now,
            expiry_date=now + timedelta(seconds=duration),
        )
        with self._lock:
            self._invoices[invoice.id] = invoice
            resource = invoice.resource()
        self._scheduler.call_later(
            duration / self._time_scale, partial(_unless_already_final, self._transition, invoice.id, "EXPIRED")
        )
        return _json(resource)

    def _list_invoices(self, request: Request) -> Response:
        external_id = request.args.get("external_id")
        limit = int(request.args.get("limit", 10, type=float))
        with self._lock:
            matching = [
                invoice
                for invoice in self._invoices.values()
                if external_id is None or invoice.external_id == external_id
            ]
            matching.sort(key=lambda invoice: invoice.created, reverse=True)
            return _json([invoice.resource() for invoice in matching[:limit]])

    def _get_invoice(self, request: Request, invoice_id: str) -> Response:
        with self._lock:
            return _json(self._invoice(invoice_id).resource())

    def _expire_invoice(self, request: Request, invoice_id: str) -> Response:
        try:
            invoice = self._transition(invoice_id, "EXPIRED")
        except XenditError as exc:
            if exc.status != 409:
                raise
            raise XenditError(404, "INVOICE_NOT_FOUND_ERROR", "Could not find and update PENDING invoice") from exc
        return _json(invoice)

    def _simulate_pay(self, request: Request, invoice_id: str) -> Response:
        method = _json_body(request, required=False).get("payment_method", DEFAULT_PAYMENT_METHOD)
        return _json(self._transition(invoice_id, "PAID", payment_method=method, deliver=delivers(request)))

    def _simulate_expire(self, request: Request, invoice_id: str) -> Response:
        return _json(self._transition(invoice_id, "EXPIRED", deliver=delivers(request)))

    def _transition(
        self, invoice_id: str, status: str, payment_method: str = DEFAULT_PAYMENT_METHOD, *, deliver: bool = True
    ) -> dict[str, Any]:
        """Move a PENDING invoice to PAID (by ``payment_method``) or EXPIRED and send its callback, unless
        ``deliver`` is false (a callback lost on the way); an invoice that is no longer PENDING is a 409."""
        if payment_method not in PAYMENT_METHODS:
            raise XenditError(400, "API_VALIDATION_ERROR", f"payment_method must be one of {sorted(PAYMENT_METHODS)}")
        with self._lock:
            invoice = self._invoice(invoice_id)
            if invoice.status != "PENDING":
                raise XenditError(409, "INVOICE_NOT_PENDING", f"invoice {invoice_id} is already {invoice.status}")
            invoice.status = status
            invoice.updated = _now()
            if status == "PAID":
                invoice.payment_method = payment_method
                invoice.payment_channel = PAYMENT_METHODS[payment_method][0]
                invoice.payment_id = f"py-{uuid.uuid4()}"
                invoice.paid_at = invoice.updated
            resource, callback = invoice.resource(), invoice.callback()
        if deliver:
            self._webhooks.send("XenditInvoiceWebhook", invoice_id, callback)
        return resource

    def _invoice(self, invoice_id: str) -> LocalInvoice:
        invoice = self._invoices.get(invoice_id)
        if invoice is None:
            raise XenditError(404, "INVOICE_NOT_FOUND_ERROR", f"Could not find invoice {invoice_id}")
        return invoice

    def _checkout_page(self, request: Request, invoice_id: str) -> Response:
        notice, status = "", 200
        if request.method == "POST":
            try:
                method = request.form.get("payment_method", DEFAULT_PAYMENT_METHOD)
                self._transition(invoice_id, "PAID", payment_method=method)
                notice = "Payment received. Thank you!"
            except XenditError as exc:
                notice, status = exc.message, exc.status
        with self._lock:
            invoice = self._invoice(invoice_id)
            page = _checkout_html(invoice, notice)
        return Response(page, status=status, mimetype="text/html")

    # --- refunds --------------------------------------------------------------------------------------

    def _create_refund(self, request: Request) -> Response:
        body = _json_body(request)
        key = request.headers.get("idempotency-key")
        with self._lock:
            if key and (earlier := self._replay(self._refund_keys, key, body)) is not None:
                return _json(self._refunds[earlier].resource())
            invoice = self._invoice_to_refund(body)
            amount = _whole_amount(body["amount"]) if body.get("amount") is not None else invoice.amount
            _check_refundable(invoice, amount)
            now = _now()
            refund = LocalRefund(
                id=f"rfd-{uuid.uuid4()}",
                invoice=invoice,
                reference_id=body.get("reference_id"),
                amount=amount,
                reason=body.get("reason") or "OTHERS",
                created=now,
                updated=now,
            )
            invoice.refunded_amount += amount
            self._refunds[refund.id] = refund
            if key:
                self._refund_keys[key] = (body, refund.id)
            resource = refund.resource()
        self._scheduler.call_later(
            self._settle_delay,
            partial(_unless_already_final, self._settle_refund, refund.id, "SUCCEEDED", None, by_itself=True),
        )
        return _json(resource)

    def _invoice_to_refund(self, body: dict[str, Any]) -> LocalInvoice:
        invoice = self._invoices.get(_required_text(body, "invoice_id"))
        if invoice is None:
            raise XenditError(404, "DATA_NOT_FOUND", "no invoice with this invoice_id")
        if invoice.status != "PAID":
            raise XenditError(400, "INELIGIBLE_TRANSACTION", f"invoice is {invoice.status}, not PAID")
        return invoice

    def _get_refund(self, request: Request, refund_id: str) -> Response:
        with self._lock:
            refund = self._refunds.get(refund_id)
            if refund is None:
                raise XenditError(404, "DATA_NOT_FOUND", f"no refund {refund_id}")
            return _json(refund.resource())

    def _simulate_refund_failure(self, request: Request, refund_id: str) -> Response:
        failure_code = _json_body(request, required=False).get("failure_code", "REFUND_FAILED")
        return _json(self._settle_refund(refund_id, "FAILED", failure_code, deliver=delivers(request)))

    def _simulate_refund_success(self, request: Request, refund_id: str) -> Response:
        return _json(self._settle_refund(refund_id, "SUCCEEDED", None, deliver=delivers(request)))

    def _settle_refund(
        self, refund_id: str, status: str, failure_code: str | None, *, deliver: bool = True, by_itself: bool = False
    ) -> dict[str, Any]:
        """``by_itself``: the scheduled settlement, which does nothing to a refund a simulation settled."""
        with self._lock:
            refund = self._refunds.get(refund_id)
            if refund is None:
                raise XenditError(404, "DATA_NOT_FOUND", f"no refund {refund_id}")
            if refund.status != "PENDING" and (by_itself or refund.status != status):
                raise XenditError(409, "REFUND_NOT_PENDING", f"refund {refund_id} is already {refund.status}")
            if refund.status == "PENDING":
                refund.status, refund.failure_code, refund.updated = status, failure_code, _now()
                if status == "FAILED":
                    refund.invoice.refunded_amount -= refund.amount  # a failed refund gives the amount back
            resource, callback = refund.resource(), refund.callback()
        if deliver:
            self._webhooks.send("XenditRefundWebhook", refund_id, callback)
        return resource

    # --- payouts --------------------------------------------------------------------------------------

    def _create_payout(self, request: Request) -> Response:
        key = request.headers.get("idempotency-key")
        if not key:
            raise XenditError(400, "API_VALIDATION_ERROR", "the idempotency-key header is required")
        body = _json_body(request)
        channel_properties = body.get("channel_properties")
        if not isinstance(channel_properties, dict) or not channel_properties.get("account_number"):
            raise XenditError(400, "API_VALIDATION_ERROR", "channel_properties.account_number is required")
        with self._lock:
            if (earlier := self._replay(self._payout_keys, key, body)) is not None:
                return _json(self._payouts[earlier].resource())
            now = _now()
            payout = LocalPayout(
                id=f"disb-{uuid.uuid4()}",
                reference_id=_required_text(body, "reference_id"),
                amount=_whole_amount(body.get("amount")),
                currency=_required_text(body, "currency"),
                channel_code=_required_text(body, "channel_code"),
                channel_properties=channel_properties,
                description=body.get("description"),
                metadata=body.get("metadata"),
                created=now,
                updated=now,
            )
            self._payouts[payout.id] = payout
            self._payout_keys[key] = (body, payout.id)
            resource = payout.resource()
        if channel_properties["account_number"] != HELD_PAYOUT_ACCOUNT_NUMBER:
            self._scheduler.call_later(
                self._payout_settle_delay,
                partial(_unless_already_final, self._settle_payout, payout.id, "succeed", by_itself=True),
            )
        return _json(resource)

    def _get_payout(self, request: Request, payout_id: str) -> Response:
        with self._lock:
            return _json(self._payout(payout_id).resource())

    def _list_payouts(self, request: Request) -> Response:
        reference_id = _required_text(request.args.to_dict(), "reference_id")
        with self._lock:
            matching = [payout for payout in self._payouts.values() if payout.reference_id == reference_id]
            matching.sort(key=lambda payout: payout.created, reverse=True)
            return _json({"data": [payout.resource() for payout in matching], "has_more": False})

    def _payout(self, payout_id: str) -> LocalPayout:
        payout = self._payouts.get(payout_id)
        if payout is None:
            raise XenditError(404, "DATA_NOT_FOUND", f"no payout {payout_id}")
        return payout

    def _simulate_payout(self, request: Request, payout_id: str, outcome: str) -> Response:
        if outcome not in PAYOUT_SIMULATIONS:
            raise XenditError(404, "NOT_FOUND", f"a payout can only {' / '.join(PAYOUT_SIMULATIONS)}")
        failure_code = None
        if outcome == "fail":
            failure_code = _json_body(request, required=False).get("failure_code", "INVALID_DESTINATION")
            if failure_code not in PAYOUT_FAILURE_CODES:
                raise XenditError(
                    400, "API_VALIDATION_ERROR", f"failure_code must be one of {sorted(PAYOUT_FAILURE_CODES)}"
                )
        return _json(self._settle_payout(payout_id, outcome, failure_code, deliver=delivers(request)))

    def _settle_payout(
        self,
        payout_id: str,
        outcome: str,
        failure_code: str | None = None,
        *,
        deliver: bool = True,
        by_itself: bool = False,
    ) -> dict[str, Any]:
        """``by_itself``: the scheduled settlement, which does nothing to a payout a simulation settled."""
        status, required = PAYOUT_SIMULATIONS[outcome]
        with self._lock:
            payout = self._payout(payout_id)
            if payout.status != required and (by_itself or payout.status != status):
                raise XenditError(
                    409, "PAYOUT_NOT_" + required, f"payout {payout_id} is {payout.status}, not {required}"
                )
            if payout.status == required:
                payout.status, payout.updated = status, _now()
                payout.failure_code = failure_code if status == "FAILED" else payout.failure_code
            resource, callback = payout.resource(), payout.callback()
        if deliver:
            self._webhooks.send("XenditPayoutWebhook", payout_id, callback)
        return resource

    @staticmethod
    def _replay(keys: dict[str, tuple[dict[str, Any], str]], key: str, body: dict[str, Any]) -> str | None:
        """The id an idempotency key already created; the same key with another body is refused."""
        if key not in keys:
            return None
        earlier_body, created_id = keys[key]
        if earlier_body != body:
            raise XenditError(409, "IDEMPOTENCY_ERROR", "this idempotency-key was used with a different request")
        return created_id


def _route(method: str, path: str, handler: Callable[..., Response], *, authenticated: bool) -> Rule:
    return Rule(path, methods=[method], endpoint=(handler, authenticated))


def _unless_already_final(action: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Run a scheduled expiry or settlement, unless a simulation already moved the thing on (a 409)."""
    with contextlib.suppress(XenditError):
        action(*args, **kwargs)


def _check_refundable(invoice: LocalInvoice, amount: int) -> None:
    if invoice.payment_method == "RETAIL_OUTLET":
        raise XenditError(400, "REFUND_NOT_SUPPORTED", "payments at a retail outlet cannot be refunded")
    if invoice.payment_method == "QR_CODE" and amount != invoice.amount:
        raise XenditError(400, "PARTIAL_REFUND_NOT_SUPPORTED", "QR code payments can only be refunded in full")
    if amount > invoice.amount - invoice.refunded_amount:
        raise XenditError(400, "MAXIMUM_REFUND_AMOUNT_REACHED", "the refund exceeds what is left to refund")


def _require_api_key(request: Request) -> None:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    try:
        key = base64.b64decode(encoded, validate=True).decode()
    except ValueError:
        key = ""
    if scheme != "Basic" or not key.endswith(":") or len(key) < 2:
        raise XenditError(401, "INVALID_API_KEY", "send the secret API key as Basic auth: base64('<key>:')")


def _json_body(request: Request, *, required: bool = True) -> dict[str, Any]:
    if not request.get_data() and not required:
        return {}
    body = request.get_json(silent=True, force=True)  # curl -d sends a form content type
    if not isinstance(body, dict):
        raise XenditError(400, "API_VALIDATION_ERROR", "the body must be a JSON object")
    return body


def _table(title: str, headings: list[str], rows: list[list[str]]) -> str:
    """A section of the overview page; cells are HTML already escaped."""
    if not rows:
        return f"<h2>{title}</h2><p>None yet.</p>"
    head = "".join(f"<th>{heading}</th>" for heading in headings)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<h2>{title} ({len(rows)})</h2><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _invoice_link(invoice: LocalInvoice) -> str:
    return f'<a href="{html.escape(invoice.invoice_url)}">{html.escape(invoice.id)}</a>'


def _overview_html(invoices: list[LocalInvoice], refunds: list[LocalRefund], payouts: list[LocalPayout]) -> str:
    text = html.escape
    sections = [
        _table(
            "Invoices",
            ["id (checkout page)", "external_id", "amount", "status", "created", "expiry"],
            [
                [
                    _invoice_link(invoice),
                    text(invoice.external_id),
                    _rupiah(invoice.amount),
                    invoice.status,
                    _timestamp(invoice.created),
                    _timestamp(invoice.expiry_date),
                ]
                for invoice in invoices
            ],
        ),
        _table(
            "Refunds",
            ["id", "invoice", "amount", "status", "reason", "failure_code", "created"],
            [
                [
                    text(refund.id),
                    _invoice_link(refund.invoice),
                    _rupiah(refund.amount),
                    refund.status,
                    text(refund.reason),
                    text(refund.failure_code or ""),
                    _timestamp(refund.created),
                ]
                for refund in refunds
            ],
        ),
        _table(
            "Payouts",
            ["id", "reference_id", "amount", "channel", "account", "status", "failure_code", "created"],
            [
                [
                    text(payout.id),
                    text(payout.reference_id),
                    _rupiah(payout.amount),
                    text(payout.channel_code),
                    text(str(payout.channel_properties.get("account_number", ""))),
                    payout.status,
                    text(payout.failure_code or ""),
                    _timestamp(payout.created),
                ]
                for payout in payouts
            ],
        ),
    ]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{text(MERCHANT_NAME)}</title>
<style>body{{font-family:sans-serif;margin:2rem}}table{{border-collapse:collapse}}
th,td{{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;font-size:.9rem}}</style></head>
<body><main>
<h1>{text(MERCHANT_NAME)}</h1>
<p>Newest first. Open an invoice to pay it; the same as JSON with <code>Accept: application/json</code>.</p>
{"".join(sections)}
</main></body></html>
"""


def _checkout_html(invoice: LocalInvoice, notice: str) -> str:
    amount = _rupiah(invoice.amount)
    options = "".join(
        f'<option value="{method}">{method.replace("_", " ").title()} ({channel})</option>'
        for method, (channel, _) in PAYMENT_METHODS.items()
    )
    form = (
        f'<form method="post"><label>Pay with <select name="payment_method">{options}</select></label> '
        f'<button type="submit">Pay {amount}</button></form>'
        if invoice.status == "PENDING"
        else ""
    )
    back = (
        f'<p><a href="{html.escape(invoice.success_redirect_url)}">Back to the shop</a></p>'
        if invoice.status == "PAID" and invoice.success_redirect_url
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Invoice {html.escape(invoice.id)} - local Xendit</title>
<style>body{{font-family:sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}}
.amount{{font-size:2rem;font-weight:bold}}.notice{{padding:.5rem;background:#eef}}
button{{font-size:1.1rem;padding:.5rem 1.5rem}}</style></head>
<body><main>
<h1>{html.escape(MERCHANT_NAME)}</h1>
<p class="amount">{amount}</p>
<p>{html.escape(invoice.description or "")}</p>
<p>Status: <strong id="status">{invoice.status}</strong> &middot; expires {_timestamp(invoice.expiry_date)}</p>
{f'<p class="notice" role="status">{html.escape(notice)}</p>' if notice else ""}
{form}{back}
</main></body></html>
"""
