"""The ledger on moto: postings are atomic with the caller's transaction and happen once (PAY-5, PAY-6);
a wallet never goes below zero, even under concurrent debits (WAL-1)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from patungan.adapters.aws import client
from patungan.adapters.dynamodb import DynamoTable, Transaction
from patungan.adapters.outbox import Outbox
from patungan.core.clock import FixedClock, parse_iso
from patungan.core.errors import NotFound
from patungan.core.events import new_event
from patungan.ledger import accounts
from patungan.ledger.models import Entry, Movement
from patungan.ledger.repository import CurrencyMismatch, InsufficientFunds, MovementAlreadyPosted, ledger
from tests.support.ledger import AT, wallet_credit, wallet_debit


def wallet_lines(user_id: str) -> list:
    return ledger().wallet_transactions(user_id, 100, None).items


def test_a_credit_and_debits_move_the_wallet_and_keep_the_ledger_balanced(aws):
    ledger().post(wallet_credit("usr_1", 100_000, "refund:par_1"))
    ledger().post(wallet_debit("usr_1", 30_000, "wallet_debit:ord_1", created_at="2026-11-21T10:05:00Z"))

    assert ledger().wallet_balance("usr_1") == 70_000
    assert ledger().balance(accounts.buyer_wallet("usr_1")) == -70_000
    assert ledger().balance(accounts.GATEWAY_CLEARING) == 100_000
    assert ledger().balance(accounts.PLATFORM_REVENUE) == -30_000
    trial = ledger().trial_balance()
    assert trial.balanced
    assert trial.currencies["IDR"].model_dump() == {"debit": 130_000, "credit": 130_000}
    assert [(line.id, line.amount) for line in wallet_lines("usr_1")] == [
        ("wallet_debit:ord_1", -30_000),
        ("refund:par_1", 100_000),
    ]


def test_an_account_never_posted_to_is_zero(aws):
    assert ledger().balance(accounts.session_escrow("ses_none")) == 0
    assert ledger().wallet("usr_none").model_dump() == {"balance": 0, "currency": "IDR"}
    assert ledger().trial_balance().model_dump() == {"balanced": True, "currencies": {}, "accounts": []}


def test_a_wallet_debit_beyond_the_balance_is_refused_and_changes_nothing(aws):
    with pytest.raises(InsufficientFunds):
        ledger().post(wallet_debit("usr_1", 1, "wallet_debit:ord_0"))
    ledger().post(wallet_credit("usr_1", 50_000, "refund:par_1"))
    before = ledger().trial_balance()

    with pytest.raises(InsufficientFunds) as refused:
        ledger().post(wallet_debit("usr_1", 50_001, "wallet_debit:ord_1"))
    ledger().post(wallet_debit("usr_1", 50_000, "wallet_debit:ord_2"))

    assert refused.value.status == 409
    assert refused.value.code == "insufficient_funds"
    assert before.balanced and ledger().trial_balance().balanced
    assert ledger().wallet_balance("usr_1") == 0
    assert [line.id for line in wallet_lines("usr_1")] == ["wallet_debit:ord_2", "refund:par_1"]


def test_posting_the_same_movement_twice_is_refused_and_changes_nothing(aws):
    tier_refund = wallet_credit("usr_1", 25_000, "tier_refund:par_9")
    ledger().post(tier_refund)
    before = ledger().trial_balance()

    with pytest.raises(MovementAlreadyPosted) as refused:
        ledger().post(tier_refund)

    assert refused.value.status == 409
    assert refused.value.code == "already_posted"
    assert ledger().trial_balance() == before
    assert ledger().wallet_balance("usr_1") == 25_000
    assert len(wallet_lines("usr_1")) == 1


def test_a_retried_wallet_debit_is_already_posted_even_once_the_wallet_is_empty(aws):
    """A caller retrying after a lost response must learn that its debit happened, not that funds are short."""
    ledger().post(wallet_credit("usr_1", 10_000, "refund:par_1"))
    ledger().post(wallet_debit("usr_1", 10_000, "wallet_debit:ord_1"))

    with pytest.raises(MovementAlreadyPosted):
        ledger().post(wallet_debit("usr_1", 10_000, "wallet_debit:ord_1"))


def test_a_movement_in_a_transaction_that_fails_is_not_posted(aws):
    tx = Transaction()
    tx.check(
        DynamoTable(aws.tables["CatalogTable"]),
        {"pk": "FACTORY#fac_missing", "sk": "META"},
        "attribute_exists(pk)",
        on_fail=NotFound("no factory fac_missing"),
    )
    release = Movement(
        id="escrow_release:ses_1",
        type="escrow_release",
        entries=[
            Entry(account=accounts.session_escrow("ses_1"), debit=100_000),
            Entry(account=accounts.factory_payable("fac_missing"), credit=95_000),
            Entry(account=accounts.PLATFORM_REVENUE, credit=5_000),
        ],
        created_at=AT,
    )
    ledger().add_to(tx, release)

    with pytest.raises(NotFound):
        tx.commit()

    assert ledger().trial_balance().accounts == []
    # Nothing of the movement was left behind: it can still be posted, once.
    ledger().post(release)
    assert ledger().balance(accounts.factory_payable("fac_missing")) == -95_000


def test_a_refused_wallet_debit_refuses_the_callers_whole_transaction(aws):
    outbox = Outbox(DynamoTable(aws.tables["OutboxTable"]), ttl_days=7)
    tx = Transaction()
    clock = FixedClock(parse_iso(AT))
    outbox.add(tx, new_event("payment.completed", "pay_1", {"method": "wallet"}, clock))
    ledger().add_to(tx, wallet_debit("usr_1", 10_000, "wallet_debit:pay_1"))

    with pytest.raises(InsufficientFunds):
        tx.commit()

    assert aws.dynamodb().scan(TableName=aws.tables["OutboxTable"])["Items"] == []


def test_entries_on_one_account_are_merged_into_one_write(aws):
    """DynamoDB lets a transaction touch an item once: a wallet both credited and debited in one movement."""
    wallet = accounts.buyer_wallet("usr_1")
    ledger().post(
        Movement(
            id="refund:par_1",
            type="refund",
            entries=[
                Entry(account=accounts.session_escrow("ses_1"), debit=100_000),
                Entry(account=wallet, credit=100_000),
                Entry(account=wallet, debit=100_000),
                Entry(account=accounts.GATEWAY_CLEARING, credit=100_000),
            ],
            created_at=AT,
        )
    )

    assert ledger().wallet_balance("usr_1") == 0
    assert [line.amount for line in wallet_lines("usr_1")] == [0]


def test_an_account_keeps_one_currency(aws):
    ledger().post(wallet_credit("usr_1", 10_000, "refund:par_1"))
    in_dollars = wallet_debit("usr_1", 1, "wallet_debit:ord_1").model_copy(update={"currency": "USD"})

    with pytest.raises(CurrencyMismatch):
        ledger().post(in_dollars)

    assert ledger().wallet("usr_1").model_dump() == {"balance": 10_000, "currency": "IDR"}


def test_concurrent_debits_never_overdraw_a_wallet(aws, monkeypatch):
    """20 debits race for a wallet that holds enough for 5: exactly 5 are posted and it ends at zero.

    moto's transact_write_items is not thread-safe (it loses updates under threads), so the test serialises
    only the call into moto, as DynamoDB serialises transactions on one item. Everything the ledger does before
    that call runs concurrently, so a balance checked in Python (read, then write) would let more than 5 through.
    """
    threads, price = 20, 10_000
    ledger().post(wallet_credit("usr_1", 5 * price, "refund:par_1"))
    dynamodb = client("dynamodb")
    unserialised = dynamodb.transact_write_items
    one_at_a_time = threading.Lock()

    def serialised(**request):
        with one_at_a_time:
            return unserialised(**request)

    monkeypatch.setattr(dynamodb, "transact_write_items", serialised)
    start = threading.Barrier(threads)

    def spend(order: int) -> str:
        start.wait()
        try:
            ledger().post(wallet_debit("usr_1", price, f"wallet_debit:ord_{order}"))
        except InsufficientFunds:
            return "refused"
        return "posted"

    with ThreadPoolExecutor(threads) as pool:
        outcomes = list(pool.map(spend, range(threads)))

    assert outcomes.count("posted") == 5
    assert outcomes.count("refused") == 15
    assert ledger().wallet_balance("usr_1") == 0
    assert ledger().trial_balance().balanced
    assert sorted(line.amount for line in wallet_lines("usr_1")) == [-price] * 5 + [5 * price]
