"""The Xendit adapter's pure parts (PAY-1, PAY-2): money at the SDK boundary, status mapping, backoff, the
callback token check, and the sample Xendit callbacks in events/ (valid for the SDK's callback models)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from xendit import ApiClient
from xendit.invoice.model.invoice_callback import InvoiceCallback
from xendit.payout.model.payout import Payout as SdkPayout
from xendit.refund.model.refund_callback import RefundCallback

from patungan.adapters.xendit import (
    InvoiceStatus,
    PayoutStatus,
    RefundStatus,
    amount_from_xendit,
    backoff_seconds,
    invoice_status_from_xendit,
    payout_status_from_xendit,
    refund_status_from_xendit,
    to_xendit_amount,
    verify_callback_token,
)
from patungan.core import retry
from tests.support.lambdas import load_event

TOKEN = "local-callback-token"


def test_the_callback_token_must_match_exactly():
    assert verify_callback_token(TOKEN, TOKEN)
    assert not verify_callback_token("local-callback-tokeN", TOKEN)
    assert not verify_callback_token(TOKEN + "x", TOKEN)
    assert not verify_callback_token(None, TOKEN)
    assert not verify_callback_token("", TOKEN)


def test_an_unset_expected_token_accepts_nothing():
    # A missing secret must not turn into "an empty header is valid".
    assert not verify_callback_token("", "")


@given(st.integers(min_value=1, max_value=10**15))
def test_whole_rupiah_survive_the_sdk_float_and_back(amount):
    sent = to_xendit_amount(amount)
    assert isinstance(sent, float)
    assert amount_from_xendit(sent) == amount
    assert isinstance(amount_from_xendit(sent), int)


@pytest.mark.parametrize("amount", [150000.0, "150000", True])
def test_only_int_money_goes_to_xendit(amount):
    with pytest.raises(TypeError):
        to_xendit_amount(amount)


@pytest.mark.parametrize("amount", [0, -1])
def test_xendit_amounts_are_positive(amount):
    with pytest.raises(ValueError, match="positive"):
        to_xendit_amount(amount)


def test_a_fractional_rupiah_amount_from_xendit_is_refused():
    with pytest.raises(ValueError, match="fractional"):
        amount_from_xendit(150000.5)


@pytest.mark.parametrize(
    ("convert", "xendit_status", "ours"),
    [
        (invoice_status_from_xendit, "PENDING", InvoiceStatus.PENDING),
        (invoice_status_from_xendit, "PAID", InvoiceStatus.PAID),
        (invoice_status_from_xendit, "SETTLED", InvoiceStatus.PAID),
        (invoice_status_from_xendit, "EXPIRED", InvoiceStatus.EXPIRED),
        (refund_status_from_xendit, "SUCCEEDED", RefundStatus.SUCCEEDED),
        (refund_status_from_xendit, "FAILED", RefundStatus.FAILED),
        (payout_status_from_xendit, "ACCEPTED", PayoutStatus.PENDING),
        (payout_status_from_xendit, "REQUESTED", PayoutStatus.PENDING),
        (payout_status_from_xendit, "SUCCEEDED", PayoutStatus.SUCCEEDED),
        (payout_status_from_xendit, "REVERSED", PayoutStatus.REVERSED),
    ],
)
def test_xendit_statuses_map_to_ours(convert, xendit_status, ours):
    assert convert(xendit_status) is ours


def test_an_unknown_status_is_an_error_not_a_guess():
    with pytest.raises(ValueError, match="unknown Xendit invoice status"):
        invoice_status_from_xendit("UNKNOWN_ENUM_VALUE")


def test_backoff_is_full_jitter_under_an_exponential_capped_ceiling(monkeypatch):
    ceilings = []
    monkeypatch.setattr(retry.random, "uniform", lambda low, high: ceilings.append((low, high)) or high)

    for attempt in range(1, 7):
        backoff_seconds(attempt)

    assert ceilings == [(0, 0.25), (0, 0.5), (0, 1.0), (0, 2.0), (0, 4.0), (0, 4.0)]


class _Body:
    """What ApiClient.deserialize reads a response body from."""

    def __init__(self, body: dict) -> None:
        self.data = json.dumps(body)


def _callback(event_name: str) -> tuple[dict, dict]:
    event = load_event(event_name)
    return event, json.loads(event["body"])


@pytest.mark.parametrize(
    ("event_name", "model", "status"),
    [
        ("xendit_invoice_paid.json", InvoiceCallback, "PAID"),
        ("xendit_invoice_expired.json", InvoiceCallback, "EXPIRED"),
        ("xendit_refund_succeeded.json", RefundCallback, "SUCCEEDED"),
        ("xendit_refund_failed.json", RefundCallback, "FAILED"),
    ],
)
def test_sample_callbacks_are_function_url_events_the_sdk_models_accept(event_name, model, status):
    event, body = _callback(event_name)

    assert event["version"] == "2.0"
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["headers"]["x-callback-token"] == TOKEN
    ApiClient().deserialize(_Body(body), (model,), True)
    assert (body.get("data") or body)["status"] == status


def test_sample_payout_callback_carries_a_payout_the_sdk_model_accepts():
    event, body = _callback("xendit_payout_succeeded.json")

    assert event["headers"]["x-callback-token"] == TOKEN
    assert body["event"] == "payout.succeeded"
    payout = ApiClient().deserialize(_Body(body["data"]), (SdkPayout,), True)
    assert payout_status_from_xendit(payout.status) is PayoutStatus.SUCCEEDED
    assert amount_from_xendit(payout.amount) == 250000
