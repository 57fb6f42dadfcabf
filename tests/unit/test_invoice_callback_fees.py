"""The fees of an invoice callback as integer rupiah (PAY-5, issue 7): what Xendit kept is booked to the
ledger, so only whole, non-negative amounts are read; anything else is malformed, never guessed at."""

from __future__ import annotations

import pytest

from emulator.xendit import invoice_fees
from patungan.payments.models import InvoiceCallback, MalformedFees


def callback(fees):
    return InvoiceCallback(id="inv_1", external_id="pay_1", status="PAID", fees=fees)


@pytest.mark.parametrize(
    ("fees", "total"),
    [
        (None, 0),
        ([], 0),
        ([{"type": "ADMIN", "value": 4000}, {"type": "VAT", "value": 440}], 4440),
        ([{"type": "ADMIN", "value": 4000.0}], 4000),  # a number Xendit sends as a float, yet whole
        ([{"type": "ADMIN", "value": 0}], 0),
    ],
    ids=["absent", "none", "va-with-vat", "whole-float", "zero"],
)
def test_the_fees_add_up_to_whole_rupiah(fees, total):
    assert callback(fees).fee_total() == total


@pytest.mark.parametrize(
    "fees",
    [
        [{"type": "ADMIN", "value": -1}],
        [{"type": "ADMIN", "value": 4000.5}],
        [{"type": "ADMIN", "value": "4000"}],
        [{"type": "ADMIN", "value": True}],
        [{"type": "ADMIN", "value": None}],
        [{"type": "ADMIN"}],
        ["4000"],
        [{"type": "ADMIN", "value": float("inf")}],
        [{"type": "ADMIN", "value": float("nan")}],
        [{"type": "ADMIN", "value": 4000}, {"type": "VAT", "value": -440}],
    ],
    ids=["negative", "fraction", "text", "bool", "null", "no-value", "not-an-object", "inf", "nan", "one-of-two"],
)
def test_fees_that_are_not_whole_non_negative_rupiah_are_malformed(fees):
    with pytest.raises(MalformedFees):
        callback(fees).fee_total()


@pytest.mark.parametrize(
    ("method", "amount", "expected"),
    [
        ("BANK_TRANSFER", 100_000, [4_000, 440]),
        ("QR_CODE", 100_000, [700, 77]),
        ("EWALLET", 100_000, [1_500, 165]),
        ("EWALLET", 90_033, [1_350, 149]),  # 1 350.495 and 148.5: whole rupiah
    ],
)
def test_the_local_xendit_charges_a_fee_per_method_and_vat_on_it_in_whole_rupiah(method, amount, expected):
    fees = invoice_fees(method, amount)

    assert [fee["value"] for fee in fees] == expected
    assert all(isinstance(fee["value"], int) for fee in fees)
    assert callback(fees).fee_total() == sum(expected)
