"""The GroupBuy table.

- session ``SESSION#id / META`` (gsi1: ``SESSIONS``, newest first; gsi3: ``PRODUCT#id``). On the hot path (join,
  payment, leave, expiry) its counters move by conditional atomic ``ADD``, the condition stating the invariant
  (reserved + paid ≤ target, through the ``remaining_quantity`` it keeps: a condition cannot add), so buyers
  do not refuse each other; everything else is a version-checked write (optimistic concurrency), and every
  write bumps the version, so those writers still see that the counters moved;
- participation ``SESSION#id / PART#pid`` (gsi1: ``USER#uid`` for "my participations"; gsi2:
  ``STALLED`` while its invoice is not attached yet, for the repair job);
- buyer lock ``SESSION#id / BUYER#uid``: one active participation per buyer per session (GB-3),
  enforced by a conditional put in the join transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from patungan.adapters.dynamodb import DynamoTable, Transaction
from patungan.adapters.outbox import Outbox
from patungan.core.errors import ConcurrentUpdate, Conflict, DomainError, NotFound
from patungan.core.events import DomainEvent
from patungan.core.pagination import Page, decode_cursor, encode_cursor
from patungan.groupbuy.models import JOINABLE, Participation, PaymentSummary, Session

META = "META"
SESSIONS_INDEX_KEY = "SESSIONS"
STALLED_INDEX_KEY = "STALLED"
# target - reserved - paid, stored beside them and moved with them, for the join's condition.
REMAINING = "remaining_quantity"
_KEY_ATTRIBUTES = {"pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk"}
_COUNTER_NAMES = {
    "#status": "status",
    "#reserved": "reserved_quantity",
    "#paid": "paid_quantity",
    "#remaining": REMAINING,
    "#lock": "price_locked_at_fill_percent",
}
_OPEN = {":active": "active", ":moq_reached": "moq_reached"}  # JOINABLE, as condition values


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


def _stale(old: dict[str, Any] | None) -> DomainError:
    return StaleSession("the session changed while this request ran; retry")


def _join_refused(quantity: int) -> Callable[[dict[str, Any] | None], DomainError]:
    """Why a reservation's condition failed, from the session as the write found it."""

    def refused(old: dict[str, Any] | None) -> DomainError:
        if old is None:
            return NotFound("no such session")
        session = Session.model_validate(_plain(old))
        if session.status not in JOINABLE:
            return Conflict(f"the session is {session.status}, not open for joining", code="session_not_open")
        if session.open_quantity < quantity:
            left = max(session.open_quantity, 0)
            return Conflict(f"only {left} units are left", code="insufficient_quantity")
        return _stale(old)

    return refused


def _leave_refused(old: dict[str, Any] | None) -> DomainError:
    if old is not None and (status := old.get("status")) not in JOINABLE:
        return Conflict(f"the session is {status}: too late to leave", code="session_not_open")
    return _stale(old)


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
                REMAINING: session.open_quantity,
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
        # The version check makes the whole item what was read: its remaining quantity is known exactly.
        sets, names, values = _set_clause(
            {**changes, "version": changed.version, REMAINING: changed.open_quantity}, "s"
        )
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

    def _count(
        self,
        tx: Transaction,
        session: Session,
        *,
        now: str,
        conditions: list[str],
        values: dict[str, Any],
        on_fail: Callable[[dict[str, Any] | None], DomainError],
        reserved: int = 0,
        paid: int = 0,
        participants: int = 0,
        **changes: Any,
    ) -> Session:
        """Move the session's counters by atomic ``ADD`` (and set ``changes``), valid only under ``conditions``:
        the invariant as the write finds the item, not the version it was read at (hot path, issue 8)."""
        adds = {
            "reserved_quantity": reserved,
            "paid_quantity": paid,
            "participant_count": participants,
            REMAINING: -(reserved + paid),
            "version": 1,
        }
        adds = {name: delta for name, delta in adds.items() if delta}
        sets, set_names, set_values = _set_clause({**changes, "updated_at": now}, "s")
        add_clause = ", ".join(f"#a{i} :a{i}" for i in range(len(adds)))
        condition = " AND ".join(conditions)
        tx.update(
            self.table,
            _session_key(session.id),
            f"SET {sets} ADD {add_clause}",
            condition=condition,
            names={
                **set_names,
                **{f"#a{i}": name for i, name in enumerate(adds)},
                **{k: v for k, v in _COUNTER_NAMES.items() if k in condition},
            },
            values={**set_values, **{f":a{i}": delta for i, delta in enumerate(adds.values())}, **values},
            on_fail=on_fail,
        )
        return session.model_copy(
            update={
                "reserved_quantity": session.reserved_quantity + reserved,
                "paid_quantity": session.paid_quantity + paid,
                "participant_count": session.participant_count + participants,
                **changes,
                "updated_at": now,
            }
        )

    def reserve(self, tx: Transaction, session: Session, quantity: int, now: str) -> None:
        """Hold ``quantity`` for a new join while the session is open and has it left (reserved + paid never
        past the target); refused with the reason the write found."""
        self._count(
            tx,
            session,
            now=now,
            reserved=quantity,
            participants=1,
            conditions=["#status IN (:active, :moq_reached)", "#remaining >= :quantity"],
            values={**_OPEN, ":quantity": quantity},
            on_fail=_join_refused(quantity),
        )

    def capture(self, tx: Transaction, session: Session, quantity: int, now: str) -> Session:
        """A reserved ``quantity`` is paid while the session is open: the paid fill with what it changes (the
        tier it locks, ``moq_reached`` once: GB-6, PAY-7) as computed from the session read, valid while the
        paid quantity the write finds crosses no threshold that computation did not (``paid_band``)."""
        changes = session.paid_changes(quantity, now)
        changes.pop("paid_quantity")
        conditions = ["#reserved >= :quantity"]
        values: dict[str, Any] = {":quantity": quantity}
        if "status" in changes:  # this payment reaches the MOQ: only from active, so only once
            conditions.append("#status = :active")
            values[":active"] = "active"
        else:
            conditions.append("#status IN (:active, :moq_reached)")
            values.update(_OPEN)
        if changes["price_locked_at_fill_percent"] == session.price_locked_at_fill_percent:
            del changes["price_locked_at_fill_percent"]
        elif session.price_locked_at_fill_percent is None:  # a higher lock set meanwhile is never lowered
            conditions.append("(attribute_not_exists(#lock) OR attribute_type(#lock, :null))")
            values[":null"] = "NULL"
        else:
            conditions.append("#lock = :locked")
            values[":locked"] = session.price_locked_at_fill_percent
        low, high = session.paid_band(quantity)
        if low > 0:
            conditions.append("#paid >= :low")
            values[":low"] = low
        if high is not None:
            conditions.append("#paid < :high")
            values[":high"] = high
        return self._count(
            tx,
            session,
            now=now,
            reserved=-quantity,
            paid=quantity,
            conditions=conditions,
            values=values,
            on_fail=_stale,
            **changes,
        )

    def release_paid(self, tx: Transaction, session: Session, quantity: int, now: str) -> Session:
        """A paid buyer leaves an open session: their quantity no longer counts. The status and the tier paid
        fill reached stay (GB-2 has no way back from moq_reached; PAY-7)."""
        return self._count(
            tx,
            session,
            now=now,
            paid=-quantity,
            participants=-1,
            conditions=["#status IN (:active, :moq_reached)", "#paid >= :quantity"],
            values={**_OPEN, ":quantity": quantity},
            on_fail=_leave_refused,
        )

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
        self._count(
            tx,
            session,
            now=now,
            reserved=-participation.quantity,
            participants=-1,
            conditions=["#reserved >= :quantity"],
            values={":quantity": participation.quantity},
            on_fail=_stale,
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
