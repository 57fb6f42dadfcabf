"""Withdrawals in the Payments table: ``WITHDRAWAL#id`` / ``META``, in the reconciliation index (gsi1, by
UTC day of creation) and in their owner's index (gsi2, newest first). Every status change is conditional
on the states it may come from (forward-only)."""

from __future__ import annotations

from typing import Any

from patungan.adapters.dynamodb import DynamoTable, Transaction
from patungan.core.errors import Conflict, NotFound
from patungan.core.pagination import Page, encode_cursor
from patungan.reconciliation.index import IndexedKind, index_keys
from patungan.wallet.models import WITHDRAWAL_TRANSITIONS, Withdrawal

META = "META"
_KEYS = frozenset({"pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk"})


class WithdrawalAlreadyRequested(Conflict):
    code = "withdrawal_already_requested"


class WithdrawalMovedOn(Conflict):
    """The withdrawal is no longer in a state this change may start from."""

    code = "withdrawal_state_conflict"


def _key(withdrawal_id: str) -> dict[str, str]:
    return {"pk": f"WITHDRAWAL#{withdrawal_id}", "sk": META}


def _owner_partition(user_id: str) -> str:
    return f"USER#{user_id}#WITHDRAWALS"


def withdrawal_from_item(item: dict[str, Any]) -> Withdrawal:
    """A stored item (as read from the table or an index) as a withdrawal."""
    return Withdrawal.model_validate({k: v for k, v in item.items() if k not in _KEYS})


class WithdrawalsRepository:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    def add(self, tx: Transaction, withdrawal: Withdrawal) -> None:
        tx.put(
            self.table,
            {
                **_key(withdrawal.id),
                **withdrawal.model_dump(),
                **index_keys(IndexedKind.PAYOUTS, withdrawal.created_at, withdrawal.id),
                "gsi2pk": _owner_partition(withdrawal.user_id),
                "gsi2sk": f"{withdrawal.created_at}#{withdrawal.id}",
            },
            condition="attribute_not_exists(pk)",
            on_fail=WithdrawalAlreadyRequested(f"withdrawal {withdrawal.id} was already requested"),
        )

    def find(self, withdrawal_id: str) -> Withdrawal | None:
        item = self.table.get(_key(withdrawal_id))
        return None if item is None else withdrawal_from_item(item)

    def get(self, withdrawal_id: str) -> Withdrawal:
        withdrawal = self.find(withdrawal_id)
        if withdrawal is None:
            raise NotFound(f"no withdrawal {withdrawal_id}")
        return withdrawal

    def change(self, tx: Transaction, withdrawal: Withdrawal, **changes: Any) -> Withdrawal:
        """Write ``changes``: a new ``status`` only from the states it may follow (WITHDRAWAL_TRANSITIONS), and
        every change only while the status is still the one read: the money a change books depends on the
        state it leaves (a reversal after a payout, a release before one). A payout id, once set, never
        changes."""
        status = changes.get("status", withdrawal.status)
        on_fail = WithdrawalMovedOn(f"withdrawal {withdrawal.id} cannot become {status} now")
        if "status" in changes and withdrawal.status not in WITHDRAWAL_TRANSITIONS[status]:
            raise on_fail
        names = {f"#c{i}": name for i, name in enumerate(changes)}
        values: dict[str, Any] = {f":c{i}": value for i, value in enumerate(changes.values())}
        values[":read"] = withdrawal.status
        condition = "#status = :read"
        if changes.get("payout_id") is not None:
            condition += " AND (attribute_not_exists(#payout) OR #payout = :payout)"
            names["#payout"] = "payout_id"
            values[":payout"] = changes["payout_id"]
        tx.update(
            self.table,
            _key(withdrawal.id),
            "SET " + ", ".join(f"#c{i} = :c{i}" for i in range(len(changes))),
            condition=condition,
            names={**names, "#status": "status"},
            values=values,
            on_fail=on_fail,
        )
        return withdrawal.model_copy(update=changes)

    def list_for_user(self, user_id: str, limit: int, cursor_key: dict[str, Any] | None) -> Page[Withdrawal]:
        """The user's withdrawals, newest first."""
        result = self.table.query_page(
            "gsi2pk = :pk",
            index="gsi2",
            values={":pk": _owner_partition(user_id)},
            limit=limit,
            start_key=cursor_key,
            forward=False,
        )
        return Page([withdrawal_from_item(item) for item in result.items], encode_cursor(result.last_key))
