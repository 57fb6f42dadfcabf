"""The Ledger table: double-entry bookkeeping (PAY-5) and the wallets it holds (WAL-1).

Items: each movement once (``MOVEMENT#id`` / ``META``); per account its running totals (``ACCOUNT#name`` /
``BALANCE`` for a wallet; for any other account ``BALANCE_SHARDS`` items ``ACCOUNT#name#nn`` / ``BALANCE``; the
only items in index gsi1) and one entry line per movement and account (``ENTRY#created_at#movement id``) in the
partition of the balance item the movement added to (a wallet's lines are its transactions, listed newest first). Other contexts
post a movement inside the transaction of the state change that causes it (``Ledger.add_to``), so the two
happen together or not at all.

Balances that are not hot (issue 8, DESIGN "Hot paths"): every capture of the platform adds to the clearing
and fees accounts, every capture of a session to its escrow. One item per account would take them all, and
concurrent transactions on one item fail with TransactionConflict, so an account other than a wallet keeps
its totals over ``BALANCE_SHARDS`` items: a movement adds to the shard its id picks, a reading sums them. Each
shard is a partition of its own, with the entry lines of the movements it took: DynamoDB also caps the writes of
one partition (about 1 000 a second), and time-ordered entry lines under one key would all land on it. A wallet
keeps one item, because WAL-1 (never below zero) is a condition on its whole balance.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from functools import cache
from typing import Any

from patungan.adapters.dynamodb import DynamoTable, FailureFactory, Transaction
from patungan.core.config import get_settings
from patungan.core.errors import BadRequest, Conflict, DomainError
from patungan.core.pagination import Page, decode_cursor, encode_cursor
from patungan.ledger import accounts
from patungan.ledger.models import (
    AccountBalance,
    AccountChange,
    CurrencyTotals,
    Movement,
    TrialBalance,
    Wallet,
    WalletTransaction,
)

META = "META"
# A wallet's one balance item, and how the sort key of every balance item begins.
BALANCE = "BALANCE"
ENTRY_PREFIX = "ENTRY#"
# The items an account other than a wallet keeps its totals over: at 2 000 captures a second, 125 writes a
# second on each shard of the clearing account (DynamoDB takes about 1 000 a second on one item, half that in
# transactions).
BALANCE_SHARDS = 16
# Every posting rewrites the index entries of the balance items it adds to; spread over index partitions by
# item (not by account: the shards of the clearing account would all land on one), a flash sale's postings do
# not all land on (and throttle) one. The trial balance reads every partition.
BALANCE_INDEX_SHARDS = 32


class MovementAlreadyPosted(Conflict):
    code = "already_posted"


class InsufficientFunds(Conflict):
    code = "insufficient_funds"


class CurrencyMismatch(Conflict):
    code = "currency_mismatch"


def _movement_key(movement_id: str) -> dict[str, str]:
    return {"pk": f"MOVEMENT#{movement_id}", "sk": META}


def _account_pk(account: str) -> str:
    return f"ACCOUNT#{account}"


def _balance_index_pk(shard: int) -> str:
    return f"BALANCES#{shard}"


def _bucket(name: str, buckets: int) -> int:
    # crc32, not hash(): the same name must pick the same bucket in every process.
    return zlib.crc32(name.encode()) % buckets


def _shard_key(account: str, shard: int) -> dict[str, str]:
    return {"pk": f"{_account_pk(account)}#{shard:02d}", "sk": BALANCE}


def _balance_keys(account: str, movement_id: str) -> list[dict[str, str]]:
    """The balance items a movement may add to on ``account``, the one it picks first: a wallet's only item, or
    the shard the movement's id picks and then the others in turn."""
    if accounts.is_wallet(account):
        return [{"pk": _account_pk(account), "sk": BALANCE}]
    first = _bucket(movement_id, BALANCE_SHARDS)
    return [_shard_key(account, (first + offset) % BALANCE_SHARDS) for offset in range(BALANCE_SHARDS)]


def _all_balance_keys(account: str) -> list[dict[str, str]]:
    """Every item that may hold part of ``account``'s totals: its one item (a wallet's, or an account's from
    before accounts were sharded) and, for any other account, its shards."""
    single = {"pk": _account_pk(account), "sk": BALANCE}
    if accounts.is_wallet(account):
        return [single]
    return [single, *(_shard_key(account, shard) for shard in range(BALANCE_SHARDS))]


def _wallet_debit_refusal(mismatch: CurrencyMismatch, currency: str, amount: int) -> FailureFactory:
    def refusal(old: dict[str, Any] | None) -> DomainError:
        if old is not None and old.get("currency") != currency:
            return mismatch
        return InsufficientFunds(f"the wallet holds less than the {amount} to debit")

    return refusal


def _summed(items: Iterable[dict[str, Any]]) -> list[AccountBalance]:
    """Balance items summed per account (its shards, and a balance item written before accounts were sharded),
    sorted by account. Each shard checks the currency on its own, so an account posted to in two currencies
    would show once per currency, never as one sum of two currencies."""
    sums: dict[tuple[str, str], AccountBalance] = {}
    for item in items:
        part = AccountBalance.model_validate(item)
        total = sums.setdefault(
            (part.account, part.currency), AccountBalance(account=part.account, currency=part.currency)
        )
        total.debit += part.debit
        total.credit += part.credit
        total.balance += part.balance
    return [sums[key] for key in sorted(sums)]


class Ledger:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    # ---- posting
    def add_to(self, tx: Transaction, movement: Movement) -> Transaction:
        """Add ``movement`` to the caller's transaction: it is posted exactly when the transaction commits."""
        balance_keys = {account: self._balance_key_in(tx, account, movement.id) for account in movement.changes()}
        # The movement goes first: a retried posting fails as already posted, whatever else changed since.
        tx.put(
            self.table,
            {**_movement_key(movement.id), **movement.model_dump()},
            condition="attribute_not_exists(pk)",
            on_fail=MovementAlreadyPosted(f"movement {movement.id} is already posted"),
        )
        for account, change in movement.changes().items():
            self._add_balance_change(tx, balance_keys[account], movement.currency, account, change)
            tx.put(self.table, self._entry_line(balance_keys[account]["pk"], movement, account, change))
        return tx

    def post(self, movement: Movement) -> None:
        """Post ``movement`` on its own."""
        self.add_to(Transaction(), movement).commit()

    def posted_at(self, movement_id: str) -> str | None:
        """When the movement was posted, or None if it never was."""
        item = self.table.get(_movement_key(movement_id))
        return item["created_at"] if item else None

    def _balance_key_in(self, tx: Transaction, account: str, movement_id: str) -> dict[str, str]:
        """The balance item of ``account`` the movement adds to: one the caller's transaction does not write yet
        (DynamoDB refuses a transaction that names an item twice), so two movements in one transaction may both
        post to an account, each on its own shard. Not a wallet's: its one item takes one movement per
        transaction, as WAL-1's condition is on the balance before the transaction."""
        for key in _balance_keys(account, movement_id):
            if not tx.holds(self.table, key):
                return key
        raise ValueError(
            f"movement {movement_id}: its transaction already writes every balance item of {account}; "
            "post the movements on it in separate transactions or merge them into one movement"
        )

    def _add_balance_change(
        self, tx: Transaction, key: dict[str, str], currency: str, account: str, change: AccountChange
    ) -> None:
        net_debit = change.debit - change.credit
        mismatch = CurrencyMismatch(f"account {account} is not kept in {currency}")
        condition = "attribute_not_exists(#currency) OR #currency = :currency"
        values: dict[str, Any] = {
            ":account": account,
            ":currency": currency,
            ":index_pk": _balance_index_pk(_bucket(key["pk"], BALANCE_INDEX_SHARDS)),
            ":debit": change.debit,
            ":credit": change.credit,
            ":change": net_debit,
        }
        on_fail: FailureFactory = mismatch
        if accounts.is_wallet(account) and net_debit > 0:
            # WAL-1. A wallet is credit-normal: its owner may spend -balance, which must stay >= 0 after this
            # change, so the balance now must be <= -net_debit. A wallet never posted to has no balance, the
            # comparison fails and the debit is refused: there is nothing to spend.
            condition = "#currency = :currency AND #balance <= :floor"
            values[":floor"] = -net_debit
            on_fail = _wallet_debit_refusal(mismatch, currency, net_debit)
        tx.update(
            self.table,
            key,
            "SET #account = :account, #currency = :currency, gsi1pk = :index_pk, gsi1sk = :account "
            "ADD #debit :debit, #credit :credit, #balance :change",
            condition=condition,
            names={
                "#account": "account",
                "#currency": "currency",
                "#debit": "debit",
                "#credit": "credit",
                "#balance": "balance",
            },
            values=values,
            on_fail=on_fail,
        )

    @staticmethod
    def _entry_line(partition: str, movement: Movement, account: str, change: AccountChange) -> dict[str, Any]:
        return {
            "pk": partition,
            "sk": f"{ENTRY_PREFIX}{movement.created_at}#{movement.id}",
            "movement_id": movement.id,
            "type": movement.type,
            "account": account,
            "currency": movement.currency,
            "debit": change.debit,
            "credit": change.credit,
            "reference": movement.reference,
            "created_at": movement.created_at,
        }

    # ---- balances
    def account_balance(self, account: str) -> AccountBalance:
        """The account's totals, summed over its balance items (read consistently: a movement adds to one item
        of an account, so a reading holds it whole or not at all); zero (in the default currency) if nothing was
        ever posted to it. Refuses an account whose shards were posted to in two currencies (each shard checks
        the currency on its own): there is no one sum of it."""
        summed = _summed(self.table.get_many(_all_balance_keys(account), consistent=True))
        if len(summed) > 1:
            raise CurrencyMismatch(
                f"account {account} holds balances in {', '.join(b.currency for b in summed)}: an account keeps one"
            )
        return summed[0] if summed else AccountBalance(account=account)

    def balance(self, account: str) -> int:
        """Debit - credit."""
        return self.account_balance(account).balance

    def wallet(self, user_id: str) -> Wallet:
        totals = self.account_balance(accounts.buyer_wallet(user_id))
        return Wallet(balance=-totals.balance, currency=totals.currency)

    def wallet_balance(self, user_id: str) -> int:
        """What the user may spend: credit - debit of their wallet."""
        return self.wallet(user_id).balance

    def wallet_transactions(self, user_id: str, limit: int, cursor: str | None) -> Page[WalletTransaction]:
        """The wallet's entry lines, newest first."""
        pk = _account_pk(accounts.buyer_wallet(user_id))
        result = self.table.query(
            "pk = :pk AND begins_with(sk, :entries)",
            values={":pk": pk, ":entries": ENTRY_PREFIX},
            limit=limit,
            start_key=self._entries_start_key(pk, cursor),
            forward=False,
            consistent=True,
        )
        transactions = [
            WalletTransaction(
                id=line["movement_id"],
                type=line["type"],
                amount=line["credit"] - line["debit"],
                reference=line["reference"],
                created_at=line["created_at"],
            )
            for line in result.items
        ]
        return Page(transactions, encode_cursor(result.last_key))

    @staticmethod
    def _entries_start_key(pk: str, cursor: str | None) -> dict[str, Any] | None:
        # A cursor is only ever a position among this account's entry lines: one from another listing
        # (another user's wallet) would make DynamoDB fail the query, or read what the caller may not see.
        start = decode_cursor(cursor)
        if start is not None and (
            set(start) != {"pk", "sk"} or start["pk"] != pk or not str(start["sk"]).startswith(ENTRY_PREFIX)
        ):
            raise BadRequest("cursor is not one this API returned", code="invalid_cursor")
        return start

    # ---- reconciliation
    def trial_balance(self) -> TrialBalance:
        """Every account's totals and, per currency, whether the debits equal the credits.

        Reads the balance index, so it costs one read per balance item (a wallet's one, an account's shards),
        never one per entry. The index is eventually consistent: while movements are being posted a reading may
        catch one half indexed and show it unbalanced; a real imbalance persists on the next reading, a
        half-indexed one does not."""
        balances = _summed(self._balance_items())
        currencies: dict[str, CurrencyTotals] = {}
        for balance in balances:
            totals = currencies.setdefault(balance.currency, CurrencyTotals())
            totals.debit += balance.debit
            totals.credit += balance.credit
        return TrialBalance(
            balanced=all(t.debit == t.credit for t in currencies.values()),
            currencies=currencies,
            accounts=balances,
        )

    def _balance_items(self) -> Iterator[dict[str, Any]]:
        for shard in range(BALANCE_INDEX_SHARDS):
            start_key = None
            while True:
                result = self.table.query(
                    "gsi1pk = :pk", index="gsi1", values={":pk": _balance_index_pk(shard)}, start_key=start_key
                )
                yield from result.items
                start_key = result.last_key
                if start_key is None:
                    break


@cache
def ledger() -> Ledger:
    return Ledger(DynamoTable(get_settings().ledger_table))
