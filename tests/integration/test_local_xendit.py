"""The Xendit adapter driven through the real xendit-python SDK against the local Xendit on loopback
(PAY-1, PAY-2, GB-5, GB-7, GB-11, WAL-2): amounts, retries and dedupe, refusals, refunds, payouts,
webhooks, the checkout page and invoice expiry."""

from __future__ import annotations

import io
import json
import queue
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
import requests
from aws_lambda_powertools.utilities import parameters
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.wrappers import Request, Response
from xendit import ApiClient
from xendit.invoice.model.invoice_callback import InvoiceCallback

from emulator.xendit import LocalXendit
from patungan.adapters.xendit import (
    ExpireOutcome,
    InvoiceFee,
    InvoiceStatus,
    PaymentRejected,
    PayoutStatus,
    RefundNotSupported,
    RefundReason,
    RefundStatus,
    XenditGateway,
    load_callback_token,
    load_secret_key,
)
from patungan.core.clock import parse_iso, to_iso
from patungan.core.config import get_settings
from patungan.core.errors import DependencyUnavailable
from tests.support.lambdas import load_event
from tests.support.servers import serving

TOKEN = "local-callback-token"
FAKE_SECRET_KEY = "xnd_development_local_fake_key"
AMOUNT = 150_000


@dataclass(frozen=True)
class Delivery:
    path: str
    token: str | None
    body: dict[str, Any]


@dataclass
class WebhookReceiver:
    """Stands in for the local stack's Function URLs: records every delivery, answers scripted statuses."""

    statuses: list[int] = field(default_factory=list)
    deliveries: queue.Queue[Delivery] = field(default_factory=queue.Queue)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        self.deliveries.put(Delivery(request.path, request.headers.get("x-callback-token"), request.get_json()))
        return Response(status=self.statuses.pop(0) if self.statuses else 200)(environ, start_response)

    def next(self) -> Delivery:
        return self.deliveries.get(timeout=30)  # generous: a busy machine delivers late, never wrongly

    def assert_no_more(self) -> None:
        with pytest.raises(queue.Empty):
            self.deliveries.get(timeout=0.3)


@dataclass
class Recorded:
    method: str
    path: str
    body: bytes


@dataclass
class Faults:
    """In front of the local Xendit: answers scripted faults first (one per request) and records requests."""

    app: Callable[..., Any]
    scripted: list[Callable[..., Any]] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        self.requests.append(Recorded(environ["REQUEST_METHOD"], environ["PATH_INFO"], body))
        respond = self.scripted.pop(0) if self.scripted else self.app
        return respond(environ, start_response)

    def answer(self, status: int, error_code: str) -> None:
        body = json.dumps({"error_code": error_code, "message": f"scripted {status}"})
        self.scripted.append(Response(body, status=status, mimetype="application/json"))

    def lose_response_after_processing(self, delay_seconds: float) -> None:
        """The request is processed, but its answer arrives after the client has given up."""

        def respond(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            response = Response.from_app(self.app, environ, buffered=True)
            time.sleep(delay_seconds)
            return response(environ, start_response)

        self.scripted.append(respond)

    def calls(self, method: str, path: str) -> int:
        return sum(1 for r in self.requests if (r.method, r.path) == (method, path))


@dataclass
class Stack:
    url: str  # where the local Xendit is mounted, as the local stack mounts it
    local: LocalXendit
    faults: Faults
    webhooks: WebhookReceiver
    sleeps: list[float] = field(default_factory=list)

    def gateway(self, *, max_attempts: int = 3, timeout_seconds: float = 3.0, url: str | None = None) -> XenditGateway:
        return XenditGateway(
            url or self.url,
            FAKE_SECRET_KEY,
            timeout_seconds=timeout_seconds,
            max_attempts=max_attempts,
            sleep=self.sleeps.append,
        )

    def simulate(self, path: str, body: dict[str, Any] | None = None) -> requests.Response:
        return requests.post(f"{self.url}/simulate/{path}", json=body, timeout=3)

    def invoice(self, gateway: XenditGateway, external_id: str = "pay_1", duration_seconds: int = 3600):
        return gateway.create_invoice(
            external_id, AMOUNT, "2 x Kaos Polos <Premium>", None, duration_seconds, None, {"session_id": "ses_1"}
        )


@contextmanager
def local_stack(**options: Any) -> Iterator[Stack]:
    webhooks = WebhookReceiver()
    with serving(webhooks) as webhook_url:
        local = LocalXendit(
            TOKEN, webhook_url, **{"settle_delay_seconds": 0.05, "payout_settle_delay_seconds": 0.05, **options}
        )
        faults = Faults(local.wsgi_app)
        root = DispatcherMiddleware(Response("not the local Xendit", status=404), {"/_xendit": faults})
        try:
            with serving(root) as url:
                yield Stack(f"{url}/_xendit", local, faults, webhooks)
        finally:
            local.close()


@pytest.fixture
def stack() -> Iterator[Stack]:
    with local_stack() as running:
        yield running


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def as_invoice_callback(body: dict[str, Any]) -> Any:
    class _Response:
        data = json.dumps(body)

    return ApiClient().deserialize(_Response(), (InvoiceCallback,), True)


def sample_callback(name: str) -> dict[str, Any]:
    return json.loads(load_event(name)["body"])


# --- invoices ---------------------------------------------------------------------------------------------


def test_an_invoice_is_created_with_int_money_that_crosses_the_sdk_as_a_float(stack):
    invoice = stack.invoice(stack.gateway())

    [create] = [r for r in stack.faults.requests if r.path == "/v2/invoices/"]
    sent = json.loads(create.body)
    assert isinstance(sent["amount"], float)
    assert sent["amount"] == AMOUNT
    assert sent["external_id"] == "pay_1"
    assert sent["currency"] == "IDR"
    assert invoice.amount == AMOUNT
    assert isinstance(invoice.amount, int)
    assert invoice.status is InvoiceStatus.PENDING
    assert invoice.invoice_url == f"{stack.url}/invoices/{invoice.id}"
    assert invoice.expires_at.endswith("Z")
    assert stack.gateway().get_invoice_by_external_id("pay_1") == invoice
    assert stack.gateway().get_invoice_by_external_id("pay_unknown") is None


def test_a_retry_after_a_lost_response_returns_the_invoice_already_created(stack):
    stack.faults.lose_response_after_processing(delay_seconds=1.5)

    invoice = stack.invoice(stack.gateway(timeout_seconds=0.5))

    assert stack.faults.calls("POST", "/v2/invoices/") == 1
    assert stack.faults.calls("GET", "/v2/invoices") == 1  # the lookup before the retry found it
    listed = requests.get(
        f"{stack.url}/v2/invoices", params={"external_id": "pay_1"}, auth=(FAKE_SECRET_KEY, ""), timeout=3
    ).json()
    assert [i["id"] for i in listed] == [invoice.id]


def test_503_and_429_are_retried_with_backoff(stack):
    stack.faults.answer(503, "SERVER_ERROR")
    stack.faults.answer(429, "RATE_LIMIT_EXCEEDED")

    invoice = stack.invoice(stack.gateway(max_attempts=3))

    assert invoice.status is InvoiceStatus.PENDING
    # create → 503; lookup before the retry → 429; lookup (nothing there) and create → the invoice
    assert stack.faults.calls("POST", "/v2/invoices/") == 2
    assert stack.faults.calls("GET", "/v2/invoices") == 2
    assert len(stack.sleeps) == 2
    assert all(0 <= delay <= 0.5 for delay in stack.sleeps)


def test_a_400_is_refused_at_once_without_a_retry(stack):
    stack.faults.answer(400, "API_VALIDATION_ERROR")

    with pytest.raises(PaymentRejected) as refused:
        stack.invoice(stack.gateway())

    assert refused.value.gateway_code == "API_VALIDATION_ERROR"
    assert refused.value.status == 422
    assert len(stack.faults.requests) == 1
    assert stack.sleeps == []


def test_xendit_answering_only_5xx_is_a_dependency_unavailable(stack):
    for _ in range(3):
        stack.faults.answer(503, "SERVER_ERROR")

    with pytest.raises(DependencyUnavailable):
        stack.gateway(max_attempts=3).get_invoice_by_external_id("pay_1")

    assert len(stack.faults.requests) == 3
    assert len(stack.sleeps) == 2


def test_xendit_unreachable_is_a_dependency_unavailable_after_every_attempt(stack):
    with pytest.raises(DependencyUnavailable):
        stack.invoice(stack.gateway(max_attempts=3, url=closed_port_url()))

    assert len(stack.sleeps) == 2


def test_the_local_xendit_requires_basic_auth_and_a_refused_key_is_not_retried(stack):
    unauthenticated = requests.get(f"{stack.url}/v2/invoices", timeout=3)
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["error_code"] == "INVALID_API_KEY"

    keyless = XenditGateway(stack.url, "", timeout_seconds=3, max_attempts=3, sleep=stack.sleeps.append)
    with pytest.raises(DependencyUnavailable, match="credentials"):
        keyless.get_invoice_by_external_id("pay_1")
    assert stack.sleeps == []


def test_expiring_reports_expired_already_expired_and_already_paid(stack):
    gateway = stack.gateway()
    pending = stack.invoice(gateway, "pay_pending")
    paid = stack.invoice(gateway, "pay_paid")
    assert stack.simulate(f"invoices/{paid.id}/pay").status_code == 200

    first = gateway.expire_invoice(pending.id)
    again = gateway.expire_invoice(pending.id)
    too_late = gateway.expire_invoice(paid.id)

    assert (first.outcome, first.invoice.status) == (ExpireOutcome.EXPIRED, InvoiceStatus.EXPIRED)
    assert (again.outcome, again.invoice.status) == (ExpireOutcome.ALREADY_EXPIRED, InvoiceStatus.EXPIRED)
    assert (too_late.outcome, too_late.invoice.status) == (ExpireOutcome.ALREADY_PAID, InvoiceStatus.PAID)


# --- webhooks, checkout page, expiry ---------------------------------------------------------------------


def test_paying_delivers_the_paid_callback_with_the_token_in_xendits_format(stack):
    invoice = stack.invoice(stack.gateway())

    paid = stack.simulate(f"invoices/{invoice.id}/pay", {"payment_method": "EWALLET"})

    assert paid.status_code == 200
    assert paid.json()["status"] == "PAID"
    delivery = stack.webhooks.next()
    assert delivery.path == "/_url/XenditInvoiceWebhook/"
    assert delivery.token == TOKEN
    callback = as_invoice_callback(delivery.body)
    assert (callback.id, callback.external_id, callback.status) == (invoice.id, "pay_1", "PAID")
    assert (callback.amount, callback.paid_amount) == (AMOUNT, AMOUNT)
    assert (callback.payment_method, callback.payment_channel) == ("EWALLET", "OVO")
    assert delivery.body.keys() - {"bank_code"} <= sample_callback("xendit_invoice_paid.json").keys()
    assert stack.gateway().get_invoice_by_external_id("pay_1").status is InvoiceStatus.PAID


def test_the_checkout_page_pays_once_and_a_paid_invoice_cannot_be_expired(stack):
    invoice = stack.invoice(stack.gateway())
    page_url = invoice.invoice_url

    page = requests.get(page_url, timeout=3)
    assert page.status_code == 200
    assert "Rp150.000" in page.text
    assert "2 x Kaos Polos &lt;Premium&gt;" in page.text
    assert '<button type="submit">Pay Rp150.000</button>' in page.text
    assert "PENDING" in page.text

    paid_page = requests.post(page_url, data={"payment_method": "BANK_TRANSFER"}, timeout=3)
    assert paid_page.status_code == 200
    assert ">PAID<" in paid_page.text
    assert "<button" not in paid_page.text
    assert stack.webhooks.next().body["status"] == "PAID"

    assert requests.post(page_url, data={"payment_method": "BANK_TRANSFER"}, timeout=3).status_code == 409
    expire = stack.simulate(f"invoices/{invoice.id}/expire")
    assert expire.status_code == 409
    assert expire.json()["error_code"] == "INVOICE_NOT_PENDING"
    stack.webhooks.assert_no_more()


def test_concurrent_payments_of_one_invoice_pay_it_once(stack):
    invoice = stack.invoice(stack.gateway())

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(lambda _: stack.simulate(f"invoices/{invoice.id}/pay").status_code, range(8)))

    assert statuses == [200] + [409] * 7
    assert stack.webhooks.next().body["status"] == "PAID"
    stack.webhooks.assert_no_more()


def test_paying_an_expired_invoice_is_refused(stack):
    invoice = stack.invoice(stack.gateway())

    assert stack.simulate(f"invoices/{invoice.id}/expire").json()["status"] == "EXPIRED"
    assert stack.simulate(f"invoices/{invoice.id}/pay").status_code == 409

    expired = stack.webhooks.next()
    assert expired.body["status"] == "EXPIRED"
    assert expired.body.keys() <= sample_callback("xendit_invoice_expired.json").keys()
    stack.webhooks.assert_no_more()


def test_an_invoice_expires_by_itself_at_its_expiry_date():
    with local_stack(time_scale=600) as stack:  # 60 s of invoice life pass in 0.1 s
        invoice = stack.invoice(stack.gateway(), duration_seconds=60)

        delivery = stack.webhooks.next()

        assert (delivery.body["id"], delivery.body["status"]) == (invoice.id, "EXPIRED")
        assert stack.gateway().get_invoice_by_external_id("pay_1").status is InvoiceStatus.EXPIRED


def test_a_webhook_answered_with_5xx_is_delivered_again(stack):
    stack.webhooks.statuses.append(503)
    invoice = stack.invoice(stack.gateway())

    stack.simulate(f"invoices/{invoice.id}/pay")

    first, second = stack.webhooks.next(), stack.webhooks.next()
    assert first == second
    stack.webhooks.assert_no_more()


def test_deliver_false_pays_or_expires_the_invoice_without_sending_its_callback(stack):
    """API.md "Local stack only": drift for reconciliation, as if Xendit's callback were lost (issue 7)."""
    gateway = stack.gateway()
    quiet_paid, quiet_expired, loud = (stack.invoice(gateway, f"pay_{name}") for name in ("paid", "expired", "loud"))

    paid = requests.post(
        f"{stack.url}/simulate/invoices/{quiet_paid.id}/pay?deliver=false",
        json={"payment_method": "QR_CODE"},
        timeout=3,
    )
    expired = requests.post(f"{stack.url}/simulate/invoices/{quiet_expired.id}/expire?deliver=false", timeout=3)
    stack.simulate(f"invoices/{loud.id}/pay")

    assert (paid.json()["status"], expired.json()["status"]) == ("PAID", "EXPIRED")
    # Callbacks go out in the order things happen: the first one sent is the loud invoice's.
    assert stack.webhooks.next().body["id"] == loud.id
    stack.webhooks.assert_no_more()
    assert gateway.get_invoice(quiet_paid.id).status is InvoiceStatus.PAID
    assert gateway.get_invoice(quiet_expired.id).status is InvoiceStatus.EXPIRED


def test_a_paid_invoice_shows_what_was_paid_how_and_the_fees_xendit_kept(stack):
    """PAY-5: the repair path books the fee from Xendit's own record, so the adapter reads it (integer rupiah)."""
    gateway = stack.gateway()
    invoice = stack.invoice(gateway)
    assert (invoice.paid_amount, invoice.paid_at, invoice.payment_method, invoice.fees) == (None, None, None, ())
    stack.simulate(f"invoices/{invoice.id}/pay", {"payment_method": "QR_CODE"})

    paid = gateway.get_invoice(invoice.id)

    assert (paid.paid_amount, paid.payment_method) == (AMOUNT, "QR_CODE")
    assert paid.fees == (InvoiceFee("ADMIN", 1_050), InvoiceFee("VAT", 116))  # 0.7 %, and 11 % VAT on it
    assert all(isinstance(fee.value, int) for fee in paid.fees)
    callback = stack.webhooks.next().body
    assert paid.paid_at == to_iso(parse_iso(callback["paid_at"]))
    assert (callback["fees"], callback["fees_paid_amount"]) == (
        [{"type": "ADMIN", "value": 1_050}, {"type": "VAT", "value": 116}],
        1_166,
    )


# --- refunds and payouts ---------------------------------------------------------------------------------


def paid_invoice(stack: Stack, payment_method: str = "BANK_TRANSFER"):
    invoice = stack.invoice(stack.gateway())
    assert stack.simulate(f"invoices/{invoice.id}/pay", {"payment_method": payment_method}).status_code == 200
    assert stack.webhooks.next().body["status"] == "PAID"
    return invoice


def test_the_same_refund_id_twice_is_one_refund(stack):
    invoice = paid_invoice(stack)
    gateway = stack.gateway()

    first = gateway.create_refund("rfn_1", invoice.id, AMOUNT, RefundReason.CANCELLATION)
    again = gateway.create_refund("rfn_1", invoice.id, AMOUNT, RefundReason.CANCELLATION)

    assert first == again
    assert (first.status, first.amount) == (RefundStatus.PENDING, AMOUNT)
    with pytest.raises(PaymentRejected) as nothing_left:  # the invoice was refunded once, in full
        gateway.create_refund("rfn_2", invoice.id, AMOUNT, RefundReason.CANCELLATION)
    assert nothing_left.value.gateway_code == "MAXIMUM_REFUND_AMOUNT_REACHED"
    succeeded = stack.webhooks.next()
    assert succeeded.path == "/_url/XenditRefundWebhook/"
    assert succeeded.token == TOKEN
    assert succeeded.body["event"] == "refund.succeeded"
    assert (succeeded.body["data"]["id"], succeeded.body["data"]["reference_id"]) == (first.id, "rfn_1")
    assert succeeded.body["data"].keys() == sample_callback("xendit_refund_succeeded.json")["data"].keys()
    stack.webhooks.assert_no_more()


@pytest.mark.parametrize(
    ("payment_method", "amount", "gateway_code"),
    [
        ("RETAIL_OUTLET", AMOUNT, "REFUND_NOT_SUPPORTED"),
        ("QR_CODE", AMOUNT - 50_000, "PARTIAL_REFUND_NOT_SUPPORTED"),
    ],
)
def test_a_channel_that_cannot_refund_is_a_refund_not_supported(stack, payment_method, amount, gateway_code):
    invoice = paid_invoice(stack, payment_method)

    with pytest.raises(RefundNotSupported) as refused:
        stack.gateway().create_refund("rfn_1", invoice.id, amount, RefundReason.CANCELLATION)

    assert refused.value.gateway_code == gateway_code
    assert stack.sleeps == []


def test_a_refund_can_be_made_to_fail():
    with local_stack(settle_delay_seconds=30) as stack:
        refund = stack.gateway().create_refund("rfn_1", paid_invoice(stack).id, AMOUNT, RefundReason.CANCELLATION)

        assert stack.simulate(f"refunds/{refund.id}/fail").json()["status"] == "FAILED"

        failed = stack.webhooks.next()
        assert (failed.body["event"], failed.body["data"]["failure_code"]) == ("refund.failed", "REFUND_FAILED")
        assert stack.simulate(f"refunds/{refund.id}/succeed").status_code == 409


@pytest.mark.parametrize(("simulation", "status"), [("succeed", RefundStatus.SUCCEEDED), ("fail", RefundStatus.FAILED)])
def test_a_refund_settled_with_deliver_false_sends_no_webhook_and_reads_back_settled(simulation, status):
    """Drift for reconciliation (PAY-8): Xendit settles the refund and the callback never comes; Xendit's record,
    read by its id, says how it ended."""
    with local_stack(settle_delay_seconds=30) as stack:
        invoice = paid_invoice(stack)
        gateway = stack.gateway()
        refund = gateway.create_refund("rfn_1", invoice.id, AMOUNT, RefundReason.CANCELLATION)

        assert requests.post(f"{stack.url}/simulate/refunds/{refund.id}/{simulation}?deliver=false", timeout=3).ok

        stack.webhooks.assert_no_more()
        found = gateway.get_refund(refund.id)
        assert (found.id, found.status, found.amount) == (refund.id, status, AMOUNT)
        assert (found.reference_id, found.invoice_id, found.currency) == ("rfn_1", invoice.id, "IDR")
        with pytest.raises(PaymentRejected) as unknown:
            gateway.get_refund("rfd-unknown")
        assert unknown.value.gateway_code == "DATA_NOT_FOUND"


def test_a_payout_is_sent_once_per_payout_id_and_its_success_is_delivered(stack):
    gateway = stack.gateway()

    payout = gateway.create_payout("wdr_1", 250_000, "ID_BCA", "1234567890", "Budi Santoso", "withdrawal")
    again = gateway.create_payout("wdr_1", 250_000, "ID_BCA", "1234567890", "Budi Santoso", "withdrawal")

    # The same payout, whether or not it settled in between (a busy machine may be slower than the settle delay).
    assert (again.id, again.amount) == (payout.id, payout.amount)
    assert (payout.status, payout.amount) == (PayoutStatus.PENDING, 250_000)
    [create, _] = [r for r in stack.faults.requests if r.path == "/v2/payouts"]
    assert json.loads(create.body)["amount"] == 250_000.0
    delivery = stack.webhooks.next()
    assert (delivery.path, delivery.token) == ("/_url/XenditPayoutWebhook/", TOKEN)
    assert delivery.body["event"] == "payout.succeeded"
    assert (delivery.body["data"]["id"], delivery.body["data"]["reference_id"]) == (payout.id, "wdr_1")
    assert delivery.body["data"].keys() == sample_callback("xendit_payout_succeeded.json")["data"].keys()
    stack.webhooks.assert_no_more()


def test_a_payout_held_in_accepted_can_be_made_to_fail(stack):
    payout = stack.gateway().create_payout("wdr_1", 250_000, "ID_BCA", "131313", "Budi Santoso", "withdrawal")

    failed = stack.simulate(f"payouts/{payout.id}/fail", {"failure_code": "REJECTED_BY_CHANNEL"})

    assert failed.json()["status"] == "FAILED"
    delivery = stack.webhooks.next()
    assert (delivery.body["event"], delivery.body["data"]["failure_code"]) == ("payout.failed", "REJECTED_BY_CHANNEL")
    assert stack.simulate(f"payouts/{payout.id}/succeed").status_code == 409
    stack.webhooks.assert_no_more()


def test_payouts_succeed_and_reverse_by_simulation_and_are_found_by_id_and_by_reference(stack):
    """Issue 7: what the payout webhook and reconciliation rely on (WAL-2, PAY-8)."""
    gateway = stack.gateway()
    payout = gateway.create_payout("wdr_2", 250_000, "ID_BCA", "131313", "Budi Santoso", "withdrawal")

    assert stack.simulate(f"payouts/{payout.id}/reverse").status_code == 409  # only a SUCCEEDED one
    assert stack.simulate(f"payouts/{payout.id}/succeed").json()["status"] == "SUCCEEDED"
    assert stack.webhooks.next().body["data"]["status"] == "SUCCEEDED"
    assert stack.simulate(f"payouts/{payout.id}/reverse").json()["status"] == "REVERSED"
    reversed_ = stack.webhooks.next().body
    assert (reversed_["event"], reversed_["data"]["status"]) == ("payout.reversed", "REVERSED")

    found = gateway.get_payout(payout.id)
    assert (found.id, found.status, found.amount, found.currency) == (payout.id, PayoutStatus.REVERSED, 250_000, "IDR")
    assert found.reference_id == "wdr_2"
    assert gateway.find_payout_by_reference("wdr_2") == found
    assert gateway.find_payout_by_reference("wdr_never_sent") is None
    assert gateway.get_payout("disb-unknown") is None
    stack.webhooks.assert_no_more()


def test_a_payout_simulation_without_delivery_changes_the_state_only(stack):
    gateway = stack.gateway()
    payout = gateway.create_payout("wdr_3", 1_000, "ID_BCA", "131313", "Budi Santoso", "withdrawal")

    drifted = requests.post(f"{stack.url}/simulate/payouts/{payout.id}/fail?deliver=false", timeout=5)

    assert drifted.json()["status"] == "FAILED"
    assert gateway.get_payout(payout.id).status == PayoutStatus.FAILED
    stack.webhooks.assert_no_more()


def test_a_payout_waits_its_settle_delay_however_fast_the_clock_runs():
    """rhttp defect 2: a scenario fails a payout right after approving it, also on a stack started with a large
    LOCAL_TIME_SCALE: the payout's settle delay is not divided by the time scale (nor is it the quick refund
    delay), so the payout is still ACCEPTED when the failure is simulated."""
    with local_stack(payout_settle_delay_seconds=3600, settle_delay_seconds=0.01, time_scale=3600 * 100) as stack:
        payout = stack.gateway().create_payout("wdr_4", 1_000, "ID_BCA", "1234567890", "Budi Santoso", "withdrawal")

        stack.webhooks.assert_no_more()
        assert stack.gateway().get_payout(payout.id).status == PayoutStatus.PENDING
        assert stack.simulate(f"payouts/{payout.id}/fail").json()["status"] == "FAILED"
        assert stack.webhooks.next().body["data"]["status"] == "FAILED"


def test_a_payout_or_refund_simulated_into_the_state_it_already_is_in_answers_it_and_calls_back_again(stack):
    """rhttp defect 3: a scenario approves a withdrawal, reads it, then simulates the payout's success and finds
    it settled by itself meanwhile (as a refund does after its settle delay). Asking for the state it is in is
    no conflict: 200 with the payout, and its callback comes again (a duplicate, which the webhook ignores);
    ?deliver=false sends nothing. Another outcome is still a 409."""
    payout = stack.gateway().create_payout("wdr_6", 1_000, "ID_BCA", "1234567890", "Budi Santoso", "withdrawal")
    assert stack.webhooks.next().body["data"]["status"] == "SUCCEEDED"  # by itself

    again = stack.simulate(f"payouts/{payout.id}/succeed")

    assert (again.status_code, again.json()["id"], again.json()["status"]) == (200, payout.id, "SUCCEEDED")
    assert stack.webhooks.next().body["data"] == again.json()
    assert requests.post(f"{stack.url}/simulate/payouts/{payout.id}/succeed?deliver=false", timeout=3).ok
    assert stack.simulate(f"payouts/{payout.id}/fail").status_code == 409
    refund = stack.gateway().create_refund("rfn_6", paid_invoice(stack).id, AMOUNT, RefundReason.CANCELLATION)
    assert stack.webhooks.next().body["data"]["status"] == "SUCCEEDED"  # by itself
    refund_again = stack.simulate(f"refunds/{refund.id}/succeed")
    assert (refund_again.status_code, refund_again.json()["status"]) == (200, "SUCCEEDED")
    assert stack.webhooks.next().body["data"]["id"] == refund.id
    assert stack.simulate(f"refunds/{refund.id}/fail").status_code == 409
    stack.webhooks.assert_no_more()


# --- secrets --------------------------------------------------------------------------------------------


def test_the_secret_key_and_callback_token_are_read_from_ssm_securestrings(aws):
    settings = get_settings()
    ssm = boto3.client("ssm")
    ssm.put_parameter(
        Name=settings.xendit_secret_key_parameter, Value=FAKE_SECRET_KEY, Type="SecureString", Overwrite=True
    )
    ssm.put_parameter(Name=settings.xendit_callback_token_parameter, Value=TOKEN, Type="SecureString", Overwrite=True)
    parameters.clear_caches()
    try:
        assert load_secret_key(settings) == FAKE_SECRET_KEY
        assert load_callback_token(settings) == TOKEN
    finally:
        parameters.clear_caches()
