"""Callbacks are trusted no further than they can be checked (issue 6 defect 4; PAY-2, PAY-3, PAY-4, PAY-5,
GB-6, SYS-3). A callback that does not match what it names is quarantined: kept with its reason, alarmed,
answered 200 so Xendit stops retrying, and never applied: nothing captured, the MOQ untouched, the ledger
balanced. A charge Xendit confirms on a second invoice is refunded. A request without the token is 403
before its body is read; a body that cannot be read is a 422, never a 500."""

from __future__ import annotations

import copy
import json
import logging
from datetime import timedelta
from unittest import mock

import pytest

from patungan.adapters.dynamodb import Transaction
from patungan.composition import groupbuy_service
from patungan.core.clock import FixedClock
from patungan.ledger import accounts
from tests.support.groupbuy import buyer
from tests.support.lambdas import invoke, load_event

WEBHOOKS = ["XenditInvoiceWebhook", "XenditRefundWebhook"]
NOT_UTF8 = b'{"id": "\xff\xfe", "external_id": "x", "status": "PAID"}'
DEEPLY_NESTED = b'{"id": "a", "external_id": "b", "status": "PAID", "items": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"


def balance(world, account: str) -> int:
    """What ``account`` holds, credit-normal (0 when it never moved)."""
    rows = [a for a in world.trial_balance()["accounts"] if a["account"] == account]
    return sum(a["credit"] - a["debit"] for a in rows)


def assert_nothing_captured(world, session_id: str, *participations) -> None:
    for participation in participations:
        assert world.payment(participation)["status"] == "pending"
    state = world.get_session(session_id)
    assert (state["paid_quantity"], state["status"]) == (0, "active")
    assert balance(world, accounts.session_escrow(session_id)) == 0
    assert world.events("payment.completed") == []
    assert world.events("groupbuy.session.moq_reached") == []
    assert world.trial_balance()["balanced"] is True


def quarantined(world, reason: str) -> dict:
    [item] = world.quarantined()
    assert item["reason"] == reason
    return item


# ---- the token comes first; a body that cannot be read is a 422 (PAY-2, SYS-3)
@pytest.mark.parametrize("function", WEBHOOKS)
@pytest.mark.parametrize("body", [b"not json at all", NOT_UTF8, DEEPLY_NESTED], ids=["not-json", "utf8", "nested"])
@pytest.mark.parametrize("token", [None, "guessed"], ids=["missing", "forged"])
def test_without_the_token_any_body_is_403_before_it_is_read(world, function, body, token):
    """Defect 4: a bad body without a token got 422 (validation ran first), a non-UTF-8 one 500."""
    response = world.webhook(function, body, token=token, base64_encoded=True)

    assert response.status == 403
    assert response.body["error"]["code"] == "invalid_callback_token"
    assert world.items("PaymentsTable", "WEBHOOK#") == []


KEY_TOO_LONG = {
    "XenditInvoiceWebhook": {"id": "x" * 5000, "external_id": "pay_1", "status": "PAID"},
    "XenditRefundWebhook": {"event": "refund.succeeded", "data": {"id": "rfd-1", "reference_id": "x" * 5000}},
}


@pytest.mark.parametrize("function", WEBHOOKS)
@pytest.mark.parametrize("body", [NOT_UTF8, DEEPLY_NESTED, "key-too-long"], ids=["utf8", "nested", "key-too-long"])
def test_with_the_token_an_unreadable_body_is_422_and_changes_nothing(world, function, body):
    """SYS-3: these were 500s (UnicodeDecodeError, RecursionError, a DynamoDB key over 2 KB)."""
    session = world.session()
    joined = world.joined(buyer(1), session["id"])
    if body == "key-too-long":
        body = json.dumps(KEY_TOO_LONG[function]).encode()

    response = world.webhook(function, body, base64_encoded=True)

    assert response.status == 422
    assert response.body["error"]["code"] == "validation_error"
    assert set(response.body["error"]) == {"code", "message", "details"}
    assert world.items("PaymentsTable", "WEBHOOK#") == []
    assert world.quarantined() == []
    assert_nothing_captured(world, session["id"], joined)


@pytest.mark.parametrize("function", WEBHOOKS)
@pytest.mark.parametrize(
    ("body", "base64_encoded"), [("not base64!", True), ('{"id": "\ud800"}', False)], ids=["base64", "surrogate"]
)
def test_with_the_token_a_body_lambda_cannot_decode_is_400(world, function, body, base64_encoded):
    """SYS-3: a Function URL event whose body is broken base64, or text that is not Unicode, was a 500."""
    event = copy.deepcopy(load_event("xendit_invoice_paid.json"))
    event.update(body=body, isBase64Encoded=base64_encoded)

    response = invoke(function, event)

    assert response["statusCode"] == 400
    assert json.loads(response["body"])["error"]["code"] == "invalid_body"
    assert world.items("PaymentsTable", "WEBHOOK#") == []


# ---- a PAID that lies is quarantined, never captured (PAY-2, GB-6)
@pytest.mark.parametrize(
    ("lie", "reason"),
    [
        ({"paid_amount": 1}, "amount_mismatch"),
        ({"amount": 1, "paid_amount": 1}, "amount_mismatch"),
        ({"currency": "USD"}, "currency_mismatch"),
        ({"paid_amount": None}, "amount_mismatch"),
    ],
    ids=["paid-amount-1", "amount-1", "other-currency", "no-paid-amount"],
)
def test_a_paid_callback_with_the_wrong_amount_or_currency_is_quarantined(world, caplog, capsys, lie, reason):
    """Defect 4: a PAID for 1 rupiah or in another currency was captured in full and counted to the MOQ."""
    session = world.session(moq=1)
    joined = world.joined(buyer(1), session["id"], quantity=2)
    world.pay_at_xendit(joined)

    with caplog.at_level(logging.CRITICAL):
        response = world.invoice_callback(joined, "PAID", **lie)

    assert (response.status, response.body) == (200, {"status": "quarantined"})
    assert_nothing_captured(world, session["id"], joined)
    item = quarantined(world, reason)
    assert (item["payment_id"], item["callback_id"], item["kind"]) == (
        joined["payment"]["id"],
        joined["payment"]["invoice_id"],
        "invoice",
    )
    assert json.loads(item["callback"])["external_id"] == joined["payment"]["id"]
    assert any("quarantined" in r.getMessage() for r in caplog.records if r.levelno == logging.CRITICAL)
    assert "WebhookQuarantined" in capsys.readouterr().out
    # Xendit's redelivery of the same lie is a duplicate; the genuine callback still gets through.
    assert world.invoice_callback(joined, "PAID", **lie).body == {"status": "duplicate"}
    assert world.invoice_callback(joined, "PAID").body == {"status": "paid"}
    assert world.get_session(session["id"])["paid_quantity"] == 2
    assert world.trial_balance()["balanced"] is True


def test_a_paid_callback_naming_another_payments_invoice_is_quarantined(world):
    """Defect 4: a PAID carrying buyer 2's invoice id was applied to buyer 1's payment by external_id."""
    session = world.session(moq=1)
    mine = world.joined(buyer(1), session["id"])
    theirs = world.joined(buyer(2), session["id"])
    world.pay_at_xendit(theirs)

    response = world.invoice_callback(mine, "PAID", id=theirs["payment"]["invoice_id"])

    assert response.body == {"status": "quarantined"}
    assert_nothing_captured(world, session["id"], mine, theirs)
    assert quarantined(world, "invoice_mismatch")["payment_id"] == mine["payment"]["id"]


def test_a_paid_callback_for_an_invoice_xendit_does_not_have_is_quarantined(world):
    session = world.session(moq=1)
    joined = world.joined(buyer(1), session["id"])

    response = world.invoice_callback(joined, "PAID", id="ffffffffffffffffffffffff")

    assert response.body == {"status": "quarantined"}
    assert_nothing_captured(world, session["id"], joined)
    quarantined(world, "invoice_mismatch")


def test_a_paid_callback_for_an_unknown_payment_is_quarantined(world):
    """Money paid for a payment we do not have (e.g. a join rolled back after Xendit created the invoice)
    is an operator's case: it is kept and alarmed, not ignored."""
    session = world.session()
    joined = world.joined(buyer(1), session["id"])
    stranger = {"payment": {**joined["payment"], "id": "pay_01UNKNOWN"}}

    response = world.invoice_callback(stranger, "PAID")

    assert response.body == {"status": "quarantined"}
    item = quarantined(world, "unknown_payment")
    assert "payment_id" not in item
    assert_nothing_captured(world, session["id"], joined)


# ---- the repair window: a PAID for a payment whose invoice is not attached yet (GB-5)
class Crash(Exception):
    """The Lambda died here."""


def joined_without_invoice(world, session_id: str) -> dict:
    """A join that died after Xendit created its invoice and before it was attached (the repair job's case);
    the participation as the buyer would have seen it, with the invoice Xendit holds."""
    original, commits = Transaction.commit, []

    def crash_on_the_second_commit(tx):
        commits.append(tx)
        if len(commits) == 2:
            raise Crash("died before attaching the invoice")
        original(tx)

    with mock.patch.object(Transaction, "commit", crash_on_the_second_commit):
        assert world.join(buyer(1), session_id).status == 500
    [payment] = world.items("PaymentsTable", "PAYMENT#")
    assert "invoice_id" not in payment
    [invoice] = world.invoices_at_xendit(session_id)
    return {"payment": {**payment, "invoice_id": invoice.id}}


def test_a_paid_for_an_unattached_payment_is_captured_only_when_xendit_confirms_it(world):
    session = world.session(moq=1)
    joined = joined_without_invoice(world, session["id"])

    forged = world.invoice_callback(joined, "PAID")  # Xendit's invoice is still unpaid
    assert forged.body == {"status": "quarantined"}
    assert quarantined(world, "not_confirmed_by_xendit")["payment_id"] == joined["payment"]["id"]
    assert world.get_session(session["id"])["paid_quantity"] == 0
    assert world.payment(joined)["status"] == "pending"

    world.pay_at_xendit(joined)
    genuine = world.invoice_callback(joined, "PAID")

    assert genuine.body == {"status": "paid"}
    payment = world.payment(joined)
    assert (payment["status"], payment["invoice_id"]) == ("paid", joined["payment"]["invoice_id"])
    assert world.get_session(session["id"])["paid_quantity"] == 1
    assert balance(world, accounts.session_escrow(session["id"])) == 100_000
    assert world.trial_balance()["balanced"] is True
    service = groupbuy_service()
    with mock.patch.object(service, "clock", FixedClock(service.clock.now() + timedelta(minutes=3))):
        assert world.step("RepairStalledJoinsFunction") == {"attached": 0, "rolled_back": 0}


# ---- money taken twice goes back (PAY-5)
def test_a_second_charge_on_another_invoice_is_booked_and_refunded_and_the_payment_keeps_the_first(world):
    """Defect 4: a second PAID for a different invoice on a paid payment answered 200 and kept the money."""
    session = world.session(moq=1)
    joined = world.joined(buyer(1), session["id"])
    world.pay(joined)
    second_invoice = world.second_invoice_at_xendit(joined)

    response = world.invoice_callback(joined, "PAID", id=second_invoice)

    assert response.body == {"status": "refunding_duplicate"}
    refund = world.refund_of(joined)
    assert (refund["reason"], refund["invoice_id"], refund["amount"]) == ("duplicate_charge", second_invoice, 100_000)
    assert balance(world, accounts.DUPLICATE_CHARGES) == 100_000
    assert world.invoice_callback(joined, "PAID", id=second_invoice).body == {"status": "duplicate"}

    world.process_refunds()
    at_xendit = [r for r in world.xendit._refunds.values() if r.reference_id == refund["id"]]
    assert [(r.invoice.id, r.amount, r.reason) for r in at_xendit] == [(second_invoice, 100_000, "DUPLICATE")]
    assert world.refund_callback(world.refund_of(joined)).body == {"status": "refunded_to_xendit"}

    assert world.refund_of(joined)["status"] == "succeeded"
    assert world.payment(joined)["status"] == "paid"
    state = world.get_session(session["id"])
    assert (state["paid_quantity"], state["status"]) == (1, "moq_reached")
    assert [p["status"] for p in world.my_participations(buyer(1))] == ["paid"]
    assert balance(world, accounts.session_escrow(session["id"])) == 100_000
    assert balance(world, accounts.DUPLICATE_CHARGES) == 0
    assert len(world.events("payment.completed")) == 1
    assert world.trial_balance()["balanced"] is True


def test_a_second_charge_the_channel_cannot_refund_goes_to_the_wallet(world):
    session = world.session()
    joined = world.joined(buyer(1), session["id"])
    world.pay(joined, method="RETAIL_OUTLET")
    second_invoice = world.second_invoice_at_xendit(joined)
    world.xendit._invoices[second_invoice].payment_method = "RETAIL_OUTLET"

    world.invoice_callback(joined, "PAID", id=second_invoice)
    world.process_refunds()

    assert world.refund_of(joined)["destination"] == "wallet"
    assert world.wallet(buyer(1)) == 100_000
    assert world.payment(joined)["status"] == "paid"
    assert balance(world, accounts.DUPLICATE_CHARGES) == 0
    assert world.trial_balance()["balanced"] is True


# ---- out of order and duplicated (PAY-3, PAY-4)
def test_a_lying_paid_after_expired_books_no_late_payment_and_the_genuine_one_is_refunded(world):
    """Out of order: our EXPIRED first, then a PAID for 1 rupiah (quarantined: no 100 000 captured and
    refunded for money that never came), then the genuine PAID (a late payment: captured, not counted,
    refunded in full)."""
    session = world.session(moq=1)
    joined = world.joined(buyer(1), session["id"])
    world.pay_at_xendit(joined)
    assert world.invoice_callback(joined, "EXPIRED").body == {"status": "expired"}  # delivered before the PAID

    assert world.invoice_callback(joined, "PAID", paid_amount=1).body == {"status": "quarantined"}
    assert world.payment(joined)["status"] == "expired"
    assert world.items("PaymentsTable", "REFUND#") == []
    assert balance(world, accounts.session_escrow(session["id"])) == 0

    assert world.invoice_callback(joined, "PAID").body == {"status": "paid"}
    state = world.get_session(session["id"])
    assert (state["paid_quantity"], state["status"], state["reserved_quantity"]) == (0, "active", 0)
    assert world.refund_of(joined)["reason"] == "late_payment"
    world.process_refunds()
    world.refund_callback(world.refund_of(joined))
    assert world.payment(joined)["status"] == "refunded"
    assert balance(world, accounts.session_escrow(session["id"])) == 0
    assert world.trial_balance()["balanced"] is True


def test_an_expired_callback_for_another_invoice_does_not_expire_the_payment(world):
    """An orphan duplicate invoice running out must not take the buyer's place: their own is still payable."""
    session = world.session()
    joined = world.joined(buyer(1), session["id"])

    response = world.invoice_callback(joined, "EXPIRED", id="0123456789abcdef01234567")

    assert response.body == {"status": "ignored"}
    assert world.payment(joined)["status"] == "pending"
    assert world.get_session(session["id"])["reserved_quantity"] == 1
    assert world.pay(joined).body == {"status": "paid"}


# ---- refund callbacks are checked too
@pytest.mark.parametrize(
    ("event", "lie", "reason"),
    [
        ("refund.succeeded", {"amount": 1}, "amount_mismatch"),
        ("refund.succeeded", {"currency": "USD"}, "currency_mismatch"),
        ("refund.succeeded", {"invoice_id": "ffffffffffffffffffffffff"}, "invoice_mismatch"),
        ("refund.succeeded", {"id": "rfd-someone-elses"}, "refund_id_mismatch"),
        ("refund.failed", {"amount": 1}, "amount_mismatch"),
    ],
    ids=["amount", "currency", "invoice", "refund-id", "failed-amount"],
)
def test_a_refund_callback_that_does_not_match_our_refund_is_quarantined(world, event, lie, reason):
    """A refund.failed credits the wallet and a refund.succeeded closes the payment: neither on a lie."""
    session = world.session()
    joined = world.joined(buyer(1), session["id"])
    world.pay(joined)
    world.leave(buyer(1), session["id"])
    world.process_refunds()
    sent = world.refund_of(joined)
    assert sent["status"] == "pending"

    response = world.refund_callback(sent, event, **lie)

    assert response.body == {"status": "quarantined"}
    item = quarantined(world, reason)
    assert (item["kind"], item["refund_id"], item["payment_id"]) == ("refund", sent["id"], sent["payment_id"])
    assert world.refund_of(joined)["status"] == "pending"
    assert world.payment(joined)["status"] == "paid"
    assert world.wallet(buyer(1)) == 0
    assert world.trial_balance()["balanced"] is True
    assert world.refund_callback(sent, event).body == {
        "status": f"refunded_to_{'xendit' if 'succ' in event else 'wallet'}"
    }


def test_a_refund_callback_for_a_refund_we_never_asked_for_is_quarantined(world):
    session = world.session()
    joined = world.joined(buyer(1), session["id"])
    world.pay(joined)
    made_up = {"id": "ref_NOT_OURS", "payment_id": joined["payment"]["id"], "provider_refund_id": None, "amount": 100}

    response = world.refund_callback(made_up)

    assert response.body == {"status": "quarantined"}
    assert quarantined(world, "unknown_refund")["callback_id"] == "rfd-none"
    assert world.payment(joined)["status"] == "paid"
    assert world.trial_balance()["balanced"] is True


def test_a_refund_callback_nested_as_xendits_docs_show_it_is_applied(world):
    """EXTERNAL_APIS: the docs nest the refund once more (data.data) than the SDK: both are read."""
    session = world.session()
    joined = world.joined(buyer(1), session["id"])
    world.pay(joined)
    world.leave(buyer(1), session["id"])
    world.process_refunds()
    refund = world.refund_of(joined)
    [at_xendit] = [r for r in world.xendit._refunds.values() if r.reference_id == refund["id"]]
    nested = {**at_xendit.callback(), "status": "SUCCEEDED"}
    nested["data"] = {"data": {**nested["data"], "status": "SUCCEEDED"}}
    nested["event"] = "refund.succeeded"

    response = world.webhook("XenditRefundWebhook", json.dumps(nested).encode())

    assert response.body == {"status": "refunded_to_xendit"}
    assert world.payment(joined)["status"] == "refunded"


def test_two_charges_racing_on_an_unattached_payment_capture_one_and_refund_the_other(world):
    """A race made deterministic: the PAID of a second paid invoice commits between the first PAID's read
    and its commit. The first then finds the payment holding the other invoice: it is a duplicate charge,
    refunded, not a 'stale' callback whose money is kept (PAY-3, PAY-5)."""
    session = world.session(moq=1)
    first = joined_without_invoice(world, session["id"])
    world.pay_at_xendit(first)
    second_invoice = world.second_invoice_at_xendit(first)
    original, commits = Transaction.commit, []

    def the_second_paid_lands_first(tx):
        commits.append(tx)
        if len(commits) == 1:
            assert world.invoice_callback(first, "PAID", id=second_invoice).body == {"status": "paid"}
        original(tx)

    with mock.patch.object(Transaction, "commit", the_second_paid_lands_first):
        response = world.invoice_callback(first, "PAID")

    assert response.body == {"status": "refunding_duplicate"}
    assert world.payment(first)["invoice_id"] == second_invoice
    refund = world.refund_of(first)
    assert (refund["reason"], refund["invoice_id"]) == ("duplicate_charge", first["payment"]["invoice_id"])
    assert world.get_session(session["id"])["paid_quantity"] == 1
    assert balance(world, accounts.session_escrow(session["id"])) == 100_000
    assert balance(world, accounts.DUPLICATE_CHARGES) == 100_000
    assert world.trial_balance()["balanced"] is True


def test_a_crash_after_booking_a_second_charge_then_xendits_retry_refunds_it_once(world):
    """Crash-then-retry: the Lambda dies after the duplicate charge and its refund request committed, before
    answering; Xendit delivers again and gets 'duplicate': one movement, one refund (PAY-3)."""
    session = world.session()
    joined = world.joined(buyer(1), session["id"])
    world.pay(joined)
    second_invoice = world.second_invoice_at_xendit(joined)
    original = Transaction.commit

    def commit_then_die(tx):
        original(tx)
        raise Crash("died before answering Xendit")

    with mock.patch.object(Transaction, "commit", commit_then_die):
        assert world.invoice_callback(joined, "PAID", id=second_invoice).status == 500

    assert world.invoice_callback(joined, "PAID", id=second_invoice).body == {"status": "duplicate"}
    assert [r["invoice_id"] for r in world.items("PaymentsTable", "REFUND#")] == [second_invoice]
    assert balance(world, accounts.DUPLICATE_CHARGES) == 100_000
    assert world.trial_balance()["balanced"] is True
