"""A movement that could unbalance the ledger cannot even be built (PAY-5); account names (DESIGN "Ledger")."""

import pytest

from patungan.ledger import accounts
from patungan.ledger.models import AccountChange, AdjustmentInput, Entry, Movement, transfer

WALLET = accounts.buyer_wallet("usr_1")
AT = "2026-11-21T10:00:00Z"


def movement(entries, **overrides):
    return Movement(**{"id": "capture:pay_1", "type": "capture", "entries": entries, "created_at": AT, **overrides})


def test_account_names_are_the_documented_ones():
    assert accounts.buyer_wallet("usr_1") == "buyer:usr_1:wallet"
    assert accounts.session_escrow("ses_1") == "escrow:session:ses_1"
    assert accounts.factory_payable("fac_1") == "factory:fac_1:payable"
    assert accounts.is_wallet(WALLET)
    assert not accounts.is_wallet(accounts.session_escrow("ses_1"))
    assert not accounts.is_wallet(accounts.PLATFORM_REVENUE)
    with pytest.raises(ValueError):
        accounts.buyer_wallet("")


def test_a_balanced_movement_merges_its_entries_per_account():
    capture = movement(
        [
            Entry(account=accounts.GATEWAY_CLEARING, debit=97_000),
            Entry(account=accounts.GATEWAY_FEES, debit=3_000),
            Entry(account=accounts.session_escrow("ses_1"), credit=60_000),
            Entry(account=accounts.session_escrow("ses_1"), credit=40_000),
        ]
    )

    assert capture.changes() == {
        accounts.GATEWAY_CLEARING: AccountChange(debit=97_000, credit=0),
        accounts.GATEWAY_FEES: AccountChange(debit=3_000, credit=0),
        accounts.session_escrow("ses_1"): AccountChange(debit=0, credit=100_000),
    }
    assert capture.currency == "IDR"


def test_created_at_is_normalised_to_utc_seconds_so_entries_sort_by_time():
    assert (
        movement(transfer(debit="a", credit="b", amount=1), created_at="2026-11-21T17:00:00.123+07:00").created_at == AT
    )


@pytest.mark.parametrize(
    "entries",
    [
        pytest.param([], id="no entries"),
        pytest.param([Entry(account="a", debit=100), Entry(account="b", credit=99)], id="unbalanced"),
        pytest.param([Entry(account="a", debit=100), Entry(account="a", credit=100)], id="one account only"),
    ],
)
def test_a_movement_that_would_unbalance_or_move_nothing_is_a_programming_error(entries):
    with pytest.raises(ValueError):
        movement(entries)


@pytest.mark.parametrize(
    "sides",
    [
        pytest.param({"debit": -100}, id="negative"),
        pytest.param({"debit": 100.0}, id="float"),
        pytest.param({"debit": "100"}, id="string"),
        pytest.param({"debit": 100, "credit": 100}, id="both sides"),
        pytest.param({}, id="neither side"),
    ],
)
def test_an_entry_is_an_int_on_exactly_one_side(sides):
    with pytest.raises(ValueError):
        Entry(account="a", **sides)


def test_a_movement_has_a_known_type_and_currency_code():
    with pytest.raises(ValueError):
        movement(transfer(debit="a", credit="b", amount=1), type="gift")
    with pytest.raises(ValueError):
        movement(transfer(debit="a", credit="b", amount=1), currency="rupiah")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"amount": 0, "reason": "correction"}, id="zero"),
        pytest.param({"amount": 100, "reason": "  "}, id="blank reason"),
        pytest.param({"amount": 100}, id="no reason"),
        pytest.param({"amount": 1.5, "reason": "correction"}, id="fractional"),
    ],
)
def test_an_adjustment_changes_the_balance_and_says_why(body):
    with pytest.raises(ValueError):
        AdjustmentInput.model_validate(body)
