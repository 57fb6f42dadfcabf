"""The GroupBuy table.

- session ``SESSION#id / META`` (gsi1: ``SESSIONS``, newest first; gsi3: ``PRODUCT#id``); counters change only through a
  version-checked write, so what was read is what is changed (optimistic concurrency, no lost update);
- participation ``SESSION#id / PART#pid`` (gsi1: ``USER#uid`` for "my participations"; gsi2:
  ``STALLED`` while its invoice is not attached yet, for the repair job);
- buyer lock ``SESSION#id / BUYER#uid``: one active participation per buyer per session (GB-3),
  enforced by a conditional put in the join transaction.
"""

from __future__ import annotations

from typing import Any

from patungan.adapters.dynamodb import DynamoTable, Transaction
from patungan.adapters.outbox import Outbox
from patungan.core.errors import ConcurrentUpdate, Conflict, NotFound
from patungan.core.events import DomainEvent
from patungan.core.pagination import Page, decode_cursor, encode_cursor
from patungan.groupbuy.models import Participation, PaymentSummary, Session

META = "META"
SESSIONS_INDEX_KEY = "SESSIONS"
STALLED_INDEX_KEY = "STALLED"
_KEY_ATTRIBUTES = {"pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk"}


class StaleSession(ConcurrentUpdate):
    """The session changed between read and write; the caller re-reads and tries again."""


def _session_key(session_id: str) -> dict[str, str]:
    return {"pk": f"SESSION#{session_id}", "sk": META}


def _participation_key(session_id: str, participation_id: str) -> dict[str, str]:
    return {"pk": f"SESSION#{session_id}", "sk": f"PART#{participation_id}"}


def _lock_key(session_id: str, user_id: str) -> dict[str, str]:
    return {"pk": f"SESSION#{session_id}", "sk": f"BUYER#{user_id}"}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in _KEY_ATTRIBUTES}


def _set_clause(changes: dict[str, Any], prefix: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    names = {f"#{prefix}{i}": name for i, name in enumerate(changes)}
    values = {f":{prefix}{i}": value for i, value in enumerate(changes.values())}
    sets = ", ".join(f"#{prefix}{i} = :{prefix}{i}" for i in range(len(changes)))
    return sets, names, values


class GroupBuyRepository:
    def __init__(self, table: DynamoTable, outbox: Outbox) -> None:
        self.table = table
        self.outbox = outbox

    # ---- sessions
    def add_session(self, session: Session, event: DomainEvent) -> None:
        tx = Transaction()
        tx.put(
            self.table,
            {
                **_session_key(session.id),
                "gsi1pk": SESSIONS_INDEX_KEY,
                "gsi1sk": f"{session.created_at}#{session.id}",
                "gsi3pk": f"PRODUCT#{session.product_id}",
                "gsi3sk": f"{session.created_at}#{session.id}",
                **session.model_dump(),
            },
            condition="attribute_not_exists(pk)",
        )
        self.outbox.add(tx, event)
        tx.commit()

    def get_session(self, session_id: str) -> Session:
        item = self.table.get(_session_key(session_id))
        if item is None:
            raise NotFound(f"no session {session_id}")
        return Session.model_validate(_plain(item))

    def change_session(self, tx: Transaction, session: Session, **changes: Any) -> Session:
        """Add a write of ``changes`` to ``tx``, valid only if the session is still the version read."""
        changed = session.model_copy(update={**changes, "version": session.version + 1})
        sets, names, values = _set_clause({**changes, "version": changed.version}, "s")
        tx.update(
            self.table,
            _session_key(session.id),
            f"SET {sets}",
            condition="#version = :expected_version",
            names={**names, "#version": "version"},
            values={**values, ":expected_version": session.version},
            on_fail=StaleSession("the session changed while this request ran; retry"),
        )
        return changed

    def list_sessions(
        self,
        *,
        limit: int,
        cursor: str | None,
        status: str | None = None,
        factory_id: str | None = None,
        category: str | None = None,
    ) -> Page[Session]:
        result = self.table.query_page(
            "gsi1pk = :pk",
            index="gsi1",
            limit=limit,
            start_key=decode_cursor(cursor),
            values={":pk": SESSIONS_INDEX_KEY},
            equal_to={"status": status, "factory_id": factory_id, "category": category},
            forward=False,
        )
        return Page([Session.model_validate(_plain(i)) for i in result.items], encode_cursor(result.last_key))

    def session_ids_of_product(self, product_id: str) -> list[str]:
        ids, cursor = [], None
        while True:
            result = self.table.query(
                "gsi3pk = :pk", index="gsi3", values={":pk": f"PRODUCT#{product_id}"}, start_key=cursor
            )
            ids += [item["pk"].removeprefix("SESSION#") for item in result.items]  # a keys-only index
            if result.last_key is None:
                return ids
            cursor = result.last_key

    # ---- participations
    def add_participation(self, tx: Transaction, participation: Participation, *, stalled_since: str | None) -> None:
        """The buyer's lock (one active participation per session, GB-3) and the participation itself."""
        tx.put(
            self.table,
            {
                **_lock_key(participation.session_id, participation.user_id),
                "participation_id": participation.id,
                "active": True,
            },
            condition="attribute_not_exists(pk) OR #active = :inactive",
            names={"#active": "active"},
            values={":inactive": False},
            on_fail=Conflict("you have already joined this session", code="already_joined"),
        )
        item = {**_participation_key(participation.session_id, participation.id), **participation.model_dump()}
        if not participation.is_platform:
            # The platform's top-up is never listed as a buyer's participation (GB-12).
            item.update(gsi1pk=f"USER#{participation.user_id}", gsi1sk=f"{participation.created_at}#{participation.id}")
        if stalled_since is not None:
            item.update(gsi2pk=STALLED_INDEX_KEY, gsi2sk=stalled_since)
        tx.put(self.table, item, condition="attribute_not_exists(pk)")

    def remove_participation(self, tx: Transaction, participation: Participation) -> None:
        """Undo a join whose payment could not be created: as if it never happened."""
        self.release_lock(tx, participation)
        tx.delete(
            self.table,
            _participation_key(participation.session_id, participation.id),
            condition="#status = :pending",
            names={"#status": "status"},
            values={":pending": "pending_payment"},
        )

    def end_unpaid(
        self,
        tx: Transaction,
        session: Session,
        participation: Participation,
        *,
        status: str,
        payment: PaymentSummary,
        now: str,
    ) -> Participation:
        """An unpaid join ends (its invoice expired, or the buyer left): the buyer may join again and the
        quantity it held is released (GB-7, GB-8)."""
        ended = self.change_participation(
            tx,
            participation,
            expected_status="pending_payment",
            clear_stalled=True,
            status=status,
            payment=payment,
            updated_at=now,
        )
        self.release_lock(tx, participation)
        self.release_reservation(tx, session, participation, now)
        return ended

    def release_reservation(self, tx: Transaction, session: Session, participation: Participation, now: str) -> None:
        self.change_session(
            tx,
            session,
            reserved_quantity=session.reserved_quantity - participation.quantity,
            participant_count=session.participant_count - 1,
            updated_at=now,
        )

    def release_lock(self, tx: Transaction, participation: Participation) -> None:
        """The buyer may join again (after an expiry or leaving, GB-7/GB-8)."""
        tx.update(
            self.table,
            _lock_key(participation.session_id, participation.user_id),
            "SET #active = :inactive",
            condition="participation_id = :participation",
            names={"#active": "active"},
            values={":inactive": False, ":participation": participation.id},
        )

    def change_participation(
        self,
        tx: Transaction,
        participation: Participation,
        *,
        expected_status: str | frozenset[str],
        on_fail: Conflict | None = None,
        clear_stalled: bool = False,
        once: str | None = None,
        **changes: Any,
    ) -> Participation:
        """Move a participation on, only from the state(s) it was read in (forward-only transitions); with
        ``once``, only while that attribute is not set yet (a marker written once, e.g. ``reminded_at``)."""
        expected = {expected_status} if isinstance(expected_status, str) else set(expected_status)
        changed = participation.model_copy(update=changes)
        sets, names, values = _set_clause(changes, "p")
        placeholders = {f":expected{i}": status for i, status in enumerate(sorted(expected))}
        expression = f"SET {sets} REMOVE gsi2pk, gsi2sk" if clear_stalled else f"SET {sets}"
        tx.update(
            self.table,
            _participation_key(participation.session_id, participation.id),
            expression,
            condition=f"#status IN ({', '.join(placeholders)})" + (" AND attribute_not_exists(#once)" if once else ""),
            names={**names, "#status": "status", **({"#once": once} if once else {})},
            values={**values, **placeholders},
            on_fail=on_fail or Conflict(f"participation {participation.id} is no longer {'/'.join(sorted(expected))}"),
        )
        return changed

    def get_participation(self, session_id: str, participation_id: str) -> Participation:
        item = self.table.get(_participation_key(session_id, participation_id))
        if item is None:
            raise NotFound(f"no participation {participation_id}")
        return Participation.model_validate(_plain(item))

    def latest_participation_of(self, session_id: str, user_id: str) -> Participation | None:
        """The buyer's most recent participation in the session, whatever its status (the buyer lock names
        it); None when they never joined, or their only join was rolled back."""
        lock = self.table.get(_lock_key(session_id, user_id))
        if lock is None:
            return None
        item = self.table.get(_participation_key(session_id, lock["participation_id"]))
        return Participation.model_validate(_plain(item)) if item else None

    def active_participation_of(self, session_id: str, user_id: str) -> Participation | None:
        lock = self.table.get(_lock_key(session_id, user_id))
        if lock is None or not lock.get("active"):
            return None
        return self.get_participation(session_id, lock["participation_id"])

    def participations_page(self, session_id: str, *, limit: int, cursor: str | None) -> Page[Participation]:
        result = self.table.query(
            "pk = :pk AND begins_with(sk, :prefix)",
            values={":pk": f"SESSION#{session_id}", ":prefix": "PART#"},
            limit=limit,
            start_key=decode_cursor(cursor),
            consistent=True,
        )
        return Page([Participation.model_validate(_plain(i)) for i in result.items], encode_cursor(result.last_key))

    def participations_of_user(
        self, user_id: str, *, limit: int, cursor: str | None, session_id: str | None = None
    ) -> Page[Participation]:
        result = self.table.query_page(
            "gsi1pk = :pk",
            index="gsi1",
            limit=limit,
            start_key=decode_cursor(cursor),
            values={":pk": f"USER#{user_id}"},
            equal_to={"session_id": session_id},
            forward=False,
        )
        return Page([Participation.model_validate(_plain(i)) for i in result.items], encode_cursor(result.last_key))

    def stalled_participations(self, *, older_than: str, limit: int) -> list[Participation]:
        """Joins whose invoice was never attached (a crash, or a failed rollback): for the repair job."""
        result = self.table.query(
            "gsi2pk = :pk AND gsi2sk < :before",
            index="gsi2",
            values={":pk": STALLED_INDEX_KEY, ":before": older_than},
            limit=limit,
        )
        return [Participation.model_validate(_plain(i)) for i in result.items]

    def mark_stuck(self, session_id: str, *, step: str, error: dict[str, str], at: str) -> None:
        """Show on the session which lifecycle step kept failing, and why. Only these diagnostic fields are
        written (no version bump): a stuck mark must land whatever else is changing the session."""
        self.table.update(
            _session_key(session_id),
            "SET stuck_step = :step, lifecycle_error = :error, stuck_at = :at",
            condition="attribute_exists(pk)",
            values={":step": step, ":error": error, ":at": at},
            on_fail=NotFound(f"no session {session_id}"),
        )
