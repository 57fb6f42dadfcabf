"""The ledger on moto: postings are atomic with the caller's transaction and happen once (PAY-5, PAY-6);
a wallet never goes below zero, even under concurrent debits (WAL-1)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from patungan.adapters.aws import client
from patungan.adapters.dynamodb import DynamoTable, Transaction
from patungan.adapters.outbox import Outbox
from patungan.core.clock import FixedClock, parse_iso
from patungan.core.errors import ConcurrentUpdate, NotFound
from patungan.core.events import new_event
from patungan.ledger import accounts
from patungan.ledger.models import Entry, Movement, transfer
from patungan.ledger.repository import (
    BALANCE_SHARDS,
    CurrencyMismatch,
    InsufficientFunds,
    MovementAlreadyPosted,
    ledger,
)
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


# ---- issue 8: balances that are not hot
def capture(payment: str, amount: int, fee: int = 0, session: str = "ses_1") -> Movement:
    """A capture as payments/service.py books it: clearing -> the session's escrow, the fee Xendit kept to fees."""
    entries = transfer(debit=accounts.GATEWAY_CLEARING, credit=accounts.session_escrow(session), amount=amount)
    if fee:
        entries += transfer(debit=accounts.GATEWAY_FEES, credit=accounts.GATEWAY_CLEARING, amount=fee)
    return Movement(id=f"capture:{payment}", type="capture", entries=entries, created_at=AT)


def balance_items(aws, account: str) -> dict[str, tuple[int, int]]:
    """The stored balance items of ``account``: ``BALANCE`` (its one item) or ``BALANCE#nn`` (shard nn, a partition
    ``ACCOUNT#name#nn`` of its own) -> (debit, credit)."""
    items = aws.dynamodb().scan(
        TableName=aws.tables["LedgerTable"],
        FilterExpression="#account = :account AND sk = :balance",
        ExpressionAttributeNames={"#account": "account"},
        ExpressionAttributeValues={":account": {"S": account}, ":balance": {"S": "BALANCE"}},
    )["Items"]
    return {
        "BALANCE" + item["pk"]["S"].removeprefix(f"ACCOUNT#{account}"): (
            int(item["debit"]["N"]),
            int(item["credit"]["N"]),
        )
        for item in items
    }


def test_captures_with_different_movement_ids_add_to_different_balance_items(aws):
    """Issue 8, PAY-5: the clearing, fees and escrow balances are not one item every capture writes: each capture
    adds to the shard its movement id picks, and every reading sums the shards."""
    ledger().post(capture("pay_1", 100_000, fee=3_000))
    ledger().post(capture("pay_2", 50_000, fee=2_000))

    clearing = balance_items(aws, accounts.GATEWAY_CLEARING)
    assert len(clearing) == 2 and all(sk.startswith("BALANCE#") for sk in clearing)
    assert sorted(clearing.values()) == [(50_000, 2_000), (100_000, 3_000)]
    assert len(balance_items(aws, accounts.GATEWAY_FEES)) == 2
    assert sorted(balance_items(aws, accounts.session_escrow("ses_1")).values()) == [(0, 50_000), (0, 100_000)]
    # DynamoDB caps a partition's writes too: each shard, with the entry lines of the movements it took, is one.
    lines = aws.dynamodb().scan(
        TableName=aws.tables["LedgerTable"],
        FilterExpression="#account = :account AND begins_with(sk, :entry)",
        ExpressionAttributeNames={"#account": "account"},
        ExpressionAttributeValues={":account": {"S": accounts.GATEWAY_CLEARING}, ":entry": {"S": "ENTRY#"}},
    )["Items"]
    assert sorted(
        "BALANCE" + line["pk"]["S"].removeprefix(f"ACCOUNT#{accounts.GATEWAY_CLEARING}") for line in lines
    ) == (sorted(clearing))

    assert ledger().account_balance(accounts.GATEWAY_CLEARING).model_dump() == {
        "account": accounts.GATEWAY_CLEARING,
        "currency": "IDR",
        "debit": 150_000,
        "credit": 5_000,
        "balance": 145_000,
    }
    assert ledger().balance(accounts.GATEWAY_FEES) == 5_000
    assert ledger().balance(accounts.session_escrow("ses_1")) == -150_000
    trial = ledger().trial_balance()
    assert trial.balanced
    assert trial.currencies["IDR"].model_dump() == {"debit": 155_000, "credit": 155_000}
    # Each account once, summed over its shards.
    assert [(a.account, a.debit, a.credit, a.balance) for a in trial.accounts] == [
        (accounts.session_escrow("ses_1"), 0, 150_000, -150_000),
        (accounts.GATEWAY_CLEARING, 150_000, 5_000, 145_000),
        (accounts.GATEWAY_FEES, 5_000, 0, 5_000),
    ]


def test_a_balance_item_written_before_accounts_were_sharded_is_still_counted(aws):
    """Issue 8: a ledger kept with one ``BALANCE`` item per account reads the same after the change: that item
    and the new shards are summed."""
    aws.dynamodb().put_item(
        TableName=aws.tables["LedgerTable"],
        Item={
            "pk": {"S": f"ACCOUNT#{accounts.GATEWAY_CLEARING}"},
            "sk": {"S": "BALANCE"},
            "account": {"S": accounts.GATEWAY_CLEARING},
            "currency": {"S": "IDR"},
            "debit": {"N": "70000"},
            "credit": {"N": "0"},
            "balance": {"N": "70000"},
            "gsi1pk": {"S": "BALANCES#0"},
            "gsi1sk": {"S": accounts.GATEWAY_CLEARING},
        },
    )
    ledger().post(capture("pay_1", 30_000))

    assert ledger().balance(accounts.GATEWAY_CLEARING) == 100_000
    [clearing] = [a for a in ledger().trial_balance().accounts if a.account == accounts.GATEWAY_CLEARING]
    assert (clearing.debit, clearing.credit) == (100_000, 0)


def test_a_wallet_keeps_one_balance_item_and_still_refuses_an_overdraft(aws):
    """WAL-1 is a condition on the wallet's whole balance, so a wallet is never sharded: credits and debits of
    many movements all add to its one item, and a debit beyond it is refused."""
    for number in range(4):
        ledger().post(wallet_credit("usr_1", 10_000, f"refund:par_{number}"))
    ledger().post(wallet_debit("usr_1", 15_000, "wallet_debit:ord_1"))

    with pytest.raises(InsufficientFunds):
        ledger().post(wallet_debit("usr_1", 25_001, "wallet_debit:ord_2"))

    assert balance_items(aws, accounts.buyer_wallet("usr_1")) == {"BALANCE": (15_000, 40_000)}
    assert ledger().wallet_balance("usr_1") == 25_000
    assert ledger().trial_balance().balanced


def test_movements_in_one_transaction_on_one_account_each_take_their_own_shard(aws):
    """DynamoDB refuses a transaction naming an item twice: movements that pick the same shard of the clearing
    account in one transaction take the next free one, so as many as there are shards all post; one more is
    refused before anything is sent, as is a second movement on one wallet (its one item)."""
    tx = Transaction()
    for number in range(BALANCE_SHARDS):
        ledger().add_to(tx, capture(f"pay_{number}", 1_000, session=f"ses_{number}"))
    with pytest.raises(ValueError, match="already writes every balance item of gateway:xendit:clearing"):
        ledger().add_to(tx, capture("pay_extra", 1_000))
    tx.commit()

    assert list(balance_items(aws, accounts.GATEWAY_CLEARING).values()) == [(1_000, 0)] * BALANCE_SHARDS
    assert ledger().balance(accounts.GATEWAY_CLEARING) == BALANCE_SHARDS * 1_000
    assert ledger().trial_balance().balanced

    ledger().post(wallet_credit("usr_1", 10_000, "refund:par_1"))
    two_debits = ledger().add_to(Transaction(), wallet_debit("usr_1", 5_000, "wallet_debit:ord_1"))
    with pytest.raises(ValueError, match="already writes every balance item of buyer:usr_1:wallet"):
        ledger().add_to(two_debits, wallet_debit("usr_1", 5_000, "wallet_debit:ord_2"))


class DynamoDBConflicts:
    """What DynamoDB does and moto does not: a transaction naming an item that another transaction in flight names
    fails with TransactionConflict. Every transaction is held until ``together`` of them are in flight (a flash
    sale's burst), then each commits into moto one at a time (moto's transact_write_items is not thread-safe)."""

    def __init__(self, transact, together: int) -> None:
        self.transact = transact
        self.together = threading.Barrier(together)
        self.lock, self.moto = threading.Lock(), threading.Lock()
        self.in_flight: set[tuple[str, str, str]] = set()

    def __call__(self, **request):
        operations = [next(iter(item.values())) for item in request["TransactItems"]]
        items = [
            (body["TableName"], (key := body.get("Key") or body["Item"])["pk"]["S"], key["sk"]["S"])
            for body in operations
        ]
        with self.lock:
            conflicts = [item in self.in_flight for item in items]
            if not any(conflicts):
                self.in_flight.update(items)
        self.together.wait()
        if any(conflicts):
            reasons = [{"Code": "TransactionConflict" if c else "None"} for c in conflicts]
            error = {"Error": {"Code": "TransactionCanceledException", "Message": "conflict"}}
            raise ClientError({**error, "CancellationReasons": reasons}, "TransactWriteItems")
        try:
            with self.moto:
                return self.transact(**request)
        finally:
            with self.lock:
                self.in_flight.difference_update(items)


def test_concurrent_captures_on_one_session_do_not_conflict_and_all_land(aws, monkeypatch):
    """Issue 8, PAY-5: 16 captures in flight at once on one session, with real threads: with one balance item
    for clearing, fees and escrow all but one would fail with TransactionConflict (a 409 storm); with the
    balances sharded by movement id (ids picking distinct shards, as a burst spreads), none conflicts, and the
    sums are exact."""
    threads = BALANCE_SHARDS
    payments = [f"pay_{n}" for n in (32, 3, 4, 35, 5, 34, 33, 2, 7, 8, 19, 18, 1, 6, 0, 9)]
    dynamodb = client("dynamodb")
    monkeypatch.setattr(dynamodb, "transact_write_items", DynamoDBConflicts(dynamodb.transact_write_items, threads))

    def pay(number: int) -> str:
        try:
            ledger().post(capture(payments[number], 10_000 + number, fee=100))
        except ConcurrentUpdate:
            return "conflict"
        return "posted"

    with ThreadPoolExecutor(threads) as pool:
        outcomes = list(pool.map(pay, range(threads)))

    assert outcomes == ["posted"] * threads
    paid = sum(10_000 + number for number in range(threads))
    assert len(balance_items(aws, accounts.GATEWAY_CLEARING)) == BALANCE_SHARDS
    assert ledger().balance(accounts.GATEWAY_CLEARING) == paid - 100 * threads
    assert ledger().balance(accounts.GATEWAY_FEES) == 100 * threads
    assert ledger().balance(accounts.session_escrow("ses_1")) == -paid
    assert ledger().trial_balance().balanced


def test_an_account_posted_to_in_two_currencies_on_two_shards_is_never_summed_into_one(aws):
    """Issue 8: each shard checks the currency on its own, so two movements in two currencies that pick two shards
    of one account both post; reading that account then refuses (there is no one sum of rupiah and dollars),
    and the trial balance keeps each currency's totals apart, each still balanced."""
    ledger().post(capture("pay_1", 100_000))
    ledger().post(capture("pay_2", 50, session="ses_2").model_copy(update={"currency": "USD"}))

    with pytest.raises(CurrencyMismatch, match="holds balances in IDR, USD"):
        ledger().balance(accounts.GATEWAY_CLEARING)
    trial = ledger().trial_balance()
    assert trial.balanced
    assert {currency: totals.debit for currency, totals in trial.currencies.items()} == {"IDR": 100_000, "USD": 50}
    assert [(a.currency, a.balance) for a in trial.accounts if a.account == accounts.GATEWAY_CLEARING] == [
        ("IDR", 100_000),
        ("USD", 50),
    ]
