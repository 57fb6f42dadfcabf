"""The GroupBuy table.

- session ``SESSION#id / META`` (gsi1: ``SESSIONS``, newest first; gsi3: ``PRODUCT#id``): what the session is and
  its status, the tier its paid fill locked (PAY-7) and when it reached the MOQ (GB-6). Every write of it is
  version-checked (optimistic concurrency), and none is on the hot path: joins and payments do not write it.
- capacity shards ``SESSION#id / CAPACITY#nn`` (issue 8): the session's target split into ``shard_count`` shares
  (``shard_count_for``), written with the session. Each holds ``remaining``, ``reserved``, ``paid``,
  ``participants`` and ``open``; the session's counters are their sums. Every change keeps
  remaining + reserved + paid (the share) on the shard, or moves ``remaining`` between shards inside one
  transaction, so the shares always sum to the target, and every write that takes from ``remaining`` is
  conditional on ``remaining`` ≥ what it takes: reserved + paid never exceeds the target, and no condition has to
  add across items. A join reserves on one shard (``plan_reservation``: its home shard, hashed from the
  participation id, else the next with room; when none has room alone, donors move their remaining to one shard
  in the join's own transaction: shares are rebalanced as shards run dry). A payment moves reserved to paid on the
  participation's shard. So at 2 000 paid joins a second the writes spread over the shards, none on META.
  What the paid *sum* reaches (tier lock, ``moq_reached``) is raised on META after the payment (``fill.py``),
  monotonically, by a version-checked write from META read before the shards (``meta_first``); a leave raises it
  in its own transaction before it takes its units away, conditional on every shard's paid count it read, and
  always moves META's version (a raise read before it then refuses: its sum may count the units that left).
  Closing the session (claim, cancel) clears every shard's ``open`` in the transaction that changes META's
  status: no join or payment lands after it.
  The shards sort between ``BUYER#`` and ``META``, so one Query reads the session with its shards.
- participation ``SESSION#id / PART#pid`` (gsi1: ``USER#uid`` for "my participations"; gsi2:
  ``STALLED`` while its invoice is not attached yet, for the repair job); it records its shard;
- buyer lock ``SESSION#id / BUYER#uid``: one active participation per buyer per session (GB-3),
  enforced by a conditional put in the join transaction; it names the request that took it (``JoinRetried``).

A session stored before the shards (counters on META, ``shard_count`` absent) is read as it is, and migrated by the
first write that needs its counters (``session_to_change``): one transaction creates shard 00 from META's counters
under META's version.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from patungan.adapters.dynamodb import MAX_BATCH_GET_KEYS, DynamoTable, Transaction
from patungan.adapters.outbox import Outbox
from patungan.core.errors import ConcurrentUpdate, Conflict, DomainError, NotFound, SettlementInvariantViolated
from patungan.core.events import DomainEvent
from patungan.core.observability import logger
from patungan.core.pagination import Page, decode_cursor, encode_cursor
from patungan.core.retry import retry_stale
from patungan.groupbuy.models import COUNTER_FIELDS, JOINABLE, CapacityShard, Participation, PaymentSummary, Session

META = "META"
CAPACITY = "CAPACITY#"
SESSIONS_INDEX_KEY = "SESSIONS"
STALLED_INDEX_KEY = "STALLED"
# Shards per session: at 2 000 paid joins a second each paid join writes its shard twice (reserve, capture), so 16
# shards take 250 writes a second each, under the 400 target. A small session gets fewer (a share of at least
# MIN_SHARE units): its shards are read together on every join, and a small share runs dry early.
MAX_SHARDS = 16
MIN_SHARE = 20
_KEY_ATTRIBUTES = {"pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk"}
_LEGACY_COUNTERS = "remaining_quantity"  # kept on META before the shards
_SHARD_COUNTERS = ("open", "remaining", "reserved", "paid", "participants")


class StaleSession(ConcurrentUpdate):
    """The session changed between read and write; the caller re-reads and tries again."""


class ShardShort(StaleSession):
    """A shard a join counted on had less left than the join read: ``shard`` is that shard as the write found
    it, so the join plans again without another read."""

    def __init__(self, shard: CapacityShard) -> None:
        super().__init__("the session's capacity moved while this request ran; retry")
        self.shard = shard


class JoinRetried(Conflict):
    """The buyer's lock is held by a join made by this same request (its Idempotency-Key and body, or this very
    call), whose reservation committed although it answered an error: the retry finishes that join
    (``participation_id``)."""

    def __init__(self, participation_id: str) -> None:
        super().__init__("you have already joined this session", code="already_joined")
        self.participation_id = participation_id


class SharesInFlight(StaleSession):
    """The shard items read do not sum to the target: what a read sees of a transaction moving remaining between
    two shards (a Query or BatchGet is read-committed item by item), read again; a broken invariant only if it
    lasts."""

    def __init__(self, session_id: str, shared: int, target: int) -> None:
        super().__init__(f"session {session_id}: its shares read sum to {shared}, not its target {target}")
        self.shared = shared


def shard_count_for(target_quantity: int) -> int:
    return min(MAX_SHARDS, max(1, target_quantity // MIN_SHARE))


def shares_of(target_quantity: int, shard_count: int) -> list[int]:
    """The target split as evenly as whole units allow, summing exactly to it."""
    base, extra = divmod(target_quantity, shard_count)
    return [base + (1 if index < extra else 0) for index in range(shard_count)]


def home_shard(participation_id: str, shard_count: int) -> int:
    return int.from_bytes(hashlib.sha256(participation_id.encode()).digest()[:4], "big") % shard_count


@dataclass(frozen=True)
class Reservation:
    """Where a join takes its quantity: ``shard``, after ``moves`` (donor shard → units of remaining) into it."""

    shard: int
    moves: dict[int, int]


def plan_reservation(shards: Iterable[CapacityShard], quantity: int, home: int) -> Reservation | None:
    """The home shard if it has ``quantity`` left, else the next that has; when none has it alone but together
    they do, the shard with most left, topped up from the others (most left first). None: the session has not
    ``quantity`` left at all."""
    ordered = sorted(shards, key=lambda s: s.index)
    ordered = ordered[home:] + ordered[:home]
    for shard in ordered:
        if shard.remaining >= quantity:
            return Reservation(shard.index, {})
    if sum(max(s.remaining, 0) for s in ordered) < quantity:
        return None
    recipient = max(ordered, key=lambda s: s.remaining)
    need, moves = quantity - recipient.remaining, {}
    for donor in sorted((s for s in ordered if s is not recipient), key=lambda s: -s.remaining):
        if need <= 0:
            break
        if (take := min(donor.remaining, need)) > 0:
            moves[donor.index] = take
            need -= take
    return Reservation(recipient.index, moves)


def _session_key(session_id: str) -> dict[str, str]:
    return {"pk": f"SESSION#{session_id}", "sk": META}


def _shard_key(session_id: str, index: int) -> dict[str, str]:
    return {"pk": f"SESSION#{session_id}", "sk": f"{CAPACITY}{index:02d}"}


def _participation_key(session_id: str, participation_id: str) -> dict[str, str]:
    return {"pk": f"SESSION#{session_id}", "sk": f"PART#{participation_id}"}


def _lock_key(session_id: str, user_id: str) -> dict[str, str]:
    return {"pk": f"SESSION#{session_id}", "sk": f"BUYER#{user_id}"}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in _KEY_ATTRIBUTES}


def _stale(old: dict[str, Any] | None) -> DomainError:
    return StaleSession("the session changed while this request ran; retry")


def _shard_of(item: dict[str, Any]) -> CapacityShard:
    return CapacityShard.model_validate(_plain(item))


def _not_open(action: str) -> Conflict:
    return Conflict(f"the session is closed: too late to {action}", code="session_not_open")


def _shard_short(old: dict[str, Any] | None) -> DomainError:
    """Why a join's take from a shard failed, from the shard as the write found it."""
    if old is None:
        return _stale(old)
    shard = _shard_of(old)
    return ShardShort(shard) if shard.open else _not_open("join")


def _shard_refused(action: str) -> Callable[[dict[str, Any] | None], DomainError]:
    def refused(old: dict[str, Any] | None) -> DomainError:
        return _not_open(action) if old is not None and not old.get("open", True) else _stale(old)

    return refused


def _set_clause(changes: dict[str, Any], prefix: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    names = {f"#{prefix}{i}": name for i, name in enumerate(changes)}
    values = {f":{prefix}{i}": value for i, value in enumerate(changes.values())}
    sets = ", ".join(f"#{prefix}{i} = :{prefix}{i}" for i in range(len(changes)))
    return sets, names, values


def _summed(meta: dict[str, Any], shard_items: list[dict[str, Any]]) -> Session:
    """The session with its counters summed from its shards; a session stored before the shards, as stored."""
    session = Session.model_validate(_plain(meta))
    if session.shard_count is None:
        return session
    shards = sorted((_shard_of(item) for item in shard_items), key=lambda s: s.index)
    if len(shards) != session.shard_count:
        raise StaleSession(f"session {session.id}: {len(shards)} of {session.shard_count} shards read; retry")
    if (shared := sum(s.share for s in shards)) != session.target_quantity:
        raise SharesInFlight(session.id, shared, session.target_quantity)
    return session.model_copy(
        update={
            "shards": shards,
            "paid_quantity": sum(s.paid for s in shards),
            "reserved_quantity": sum(s.reserved for s in shards),
            "participant_count": sum(s.participants for s in shards),
        }
    )


def _shares_checked(session_id: str, read: Callable[[], Session]) -> Session:
    """``read``, again after a backoff while its shares do not sum to the target (a move in flight); if they still
    do not, the invariant is broken: refused loudly (a person has to look)."""
    try:
        return retry_stale(read)
    except SharesInFlight as broken:
        logger.critical(
            "capacity shards do not sum to the target", extra={"session_id": session_id, "sum": broken.shared}
        )
        raise SettlementInvariantViolated(str(broken)) from broken


class GroupBuyRepository:
    def __init__(self, table: DynamoTable, outbox: Outbox) -> None:
        self.table = table
        self.outbox = outbox

    # ---- sessions
    def add_session(self, session: Session, event: DomainEvent) -> Session:
        """The session item and its capacity shards (its whole target open), with its event: one transaction."""
        shard_count = shard_count_for(session.target_quantity)
        created = session.model_copy(update={"shard_count": shard_count})
        tx = Transaction()
        tx.put(
            self.table,
            {
                **_session_key(session.id),
                "gsi1pk": SESSIONS_INDEX_KEY,
                "gsi1sk": f"{session.created_at}#{session.id}",
                "gsi3pk": f"PRODUCT#{session.product_id}",
                "gsi3sk": f"{session.created_at}#{session.id}",
                **created.model_dump(exclude=set(COUNTER_FIELDS)),
            },
            condition="attribute_not_exists(pk)",
        )
        for index, share in enumerate(shares_of(session.target_quantity, shard_count)):
            shard = CapacityShard(index=index, remaining=share)
            tx.put(self.table, {**_shard_key(session.id, index), **shard.model_dump()})
        self.outbox.add(tx, event)
        tx.commit()
        return created

    def get_session(self, session_id: str, *, consistent: bool = True, meta_first: bool = False) -> Session:
        """The session and its shards, counters summed: one Query (the shards sort just before META). Eventually
        consistent where the writes that follow state in their conditions all the read decided on (a join, a
        payment: the shard's ``open`` and ``remaining``), at half the read units.

        A Query is read-committed item by item: its paid sum may add a shard read before a paid leave to another
        read after a later payment, a fill never reached. ``meta_first``: META is read on its own before the
        shards, for a raise written under its version (fill.py): every paid leave moves that version, so the raise
        holds only if none landed after the shards could be read, and payments only add: the sum read is at most
        the paid quantity when the raise commits (GB-6, PAY-7)."""

        def read() -> Session:
            before = self.table.get(_session_key(session_id)) if meta_first else None
            result = self.table.query(
                "pk = :pk AND sk BETWEEN :first AND :meta",
                values={":pk": f"SESSION#{session_id}", ":first": CAPACITY, ":meta": META},
                consistent=consistent,
            )
            meta = before if meta_first else next((item for item in result.items if item["sk"] == META), None)
            if meta is None:
                raise NotFound(f"no session {session_id}")
            return _summed(meta, [item for item in result.items if item["sk"] != META])

        return _shares_checked(session_id, read)

    def session_to_change(self, session_id: str, *, consistent: bool = True, meta_first: bool = False) -> Session:
        """The session as ``get_session`` reads it, its capacity sharded first if it was stored before the shards."""
        session = self.get_session(session_id, consistent=consistent, meta_first=meta_first)
        if session.shard_count is not None:
            return session
        self._shard_legacy(session)
        return self.get_session(session_id, meta_first=meta_first)

    def _shard_legacy(self, session: Session) -> None:
        """Shard 00 holds the whole target, with the counters META kept, created under META's version (a
        concurrent migration or change refuses this one: it re-reads)."""
        shard = CapacityShard(
            index=0,
            remaining=session.open_quantity,
            reserved=session.reserved_quantity,
            paid=session.paid_quantity,
            participants=session.participant_count,
            open=session.status in {"forming", *JOINABLE},
        )
        tx = Transaction()
        tx.put(
            self.table,
            {**_shard_key(session.id, 0), **shard.model_dump()},
            condition="attribute_not_exists(pk)",
            on_fail=_stale,  # another request sharded it first: read it again
        )
        tx.update(
            self.table,
            _session_key(session.id),
            "SET shard_count = :one, version = :next REMOVE " + ", ".join([*sorted(COUNTER_FIELDS), _LEGACY_COUNTERS]),
            condition="version = :expected AND attribute_not_exists(shard_count)",
            values={":one": 1, ":next": session.version + 1, ":expected": session.version},
            on_fail=_stale,
        )
        tx.commit()
        logger.info("session capacity sharded", extra={"session_id": session.id, "shard": shard.model_dump()})

    def _with_counts(self, metas: list[dict[str, Any]]) -> list[Session]:
        """Session items read from an index, their counters summed from their shards: BatchGets of up to 100
        keys (a page of 20 sessions of 16 shards: 4), strongly consistent, so a session just created is never
        read without some of its shards."""
        keys = [_shard_key(meta["id"], index) for meta in metas for index in range(meta.get("shard_count") or 0)]
        found: dict[str, list[dict[str, Any]]] = {}
        for start in range(0, len(keys), MAX_BATCH_GET_KEYS):
            for item in self.table.get_many(keys[start : start + MAX_BATCH_GET_KEYS]):
                found.setdefault(item["pk"], []).append(item)
        return [self._summed_or_read(meta, found.get(meta["pk"], [])) for meta in metas]

    def _summed_or_read(self, meta: dict[str, Any], shard_items: list[dict[str, Any]]) -> Session:
        """A listed session summed from the shards the batch read, or read again when they were read mid-move."""
        try:
            return _summed(meta, shard_items)
        except StaleSession:
            return self.get_session(meta["id"])

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

    def close_capacity(self, tx: Transaction, session: Session, *, pin_paid: bool = False) -> None:
        """No join nor payment lands on the session after ``tx`` (which changes its status): every shard closed.
        ``pin_paid``: only if no payment landed since the read (the claim decides on that paid quantity)."""
        for shard in session.shards:
            condition = "attribute_exists(pk)" + (" AND paid = :paid" if pin_paid else "")
            tx.update(
                self.table,
                _shard_key(session.id, shard.index),
                "SET #open = :closed",
                condition=condition,
                names={"#open": "open"},
                values={":closed": False, **({":paid": shard.paid} if pin_paid else {})},
                on_fail=_stale,
            )

    def _move(
        self,
        tx: Transaction,
        session_id: str,
        index: int,
        *,
        condition: str,
        values: dict[str, Any],
        on_fail: Callable[[dict[str, Any] | None], DomainError],
        **deltas: int,
    ) -> None:
        """Atomic ``ADD`` of ``deltas`` to one shard's counters under ``condition`` (as the write finds it)."""
        deltas = {name: delta for name, delta in deltas.items() if delta}
        tx.update(
            self.table,
            _shard_key(session_id, index),
            "ADD " + ", ".join(f"#{name} :d_{name}" for name in deltas),
            condition=condition,
            names={f"#{name}": name for name in _SHARD_COUNTERS if name in deltas or f"#{name}" in condition},
            values={**{f":d_{name}": delta for name, delta in deltas.items()}, **values},
            on_fail=on_fail,
        )

    def reserve(self, tx: Transaction, session_id: str, reservation: Reservation, quantity: int) -> None:
        """Hold ``quantity`` on ``reservation.shard`` for a new join, its donors' remaining moved into it first,
        while the session is open: each take conditional on what the shard has left, so reserved + paid never
        passes the target (a short shard refuses with ShardShort, the shard as found)."""
        moved_in = sum(reservation.moves.values())
        for donor, units in reservation.moves.items():
            self._move(
                tx,
                session_id,
                donor,
                condition="#open = :open AND #remaining >= :units",
                values={":open": True, ":units": units},
                on_fail=_shard_short,
                remaining=-units,
            )
        self._move(
            tx,
            session_id,
            reservation.shard,
            condition="#open = :open AND #remaining >= :units",
            values={":open": True, ":units": quantity - moved_in},
            on_fail=_shard_short,
            remaining=moved_in - quantity,
            reserved=quantity,
            participants=1,
        )

    def capture(self, tx: Transaction, participation: Participation) -> None:
        """A reserved quantity is paid, on the participation's shard, while the session is open (a closed shard
        refuses: the payment is decided again, as too late)."""
        self._move(
            tx,
            participation.session_id,
            participation.shard or 0,
            condition="#open = :open AND #reserved >= :quantity",
            values={":open": True, ":quantity": participation.quantity},
            on_fail=_stale,
            reserved=-participation.quantity,
            paid=participation.quantity,
        )

    def take_paid(self, tx: Transaction, session: Session, units: int) -> None:
        """The platform's top-up (GB-12): ``units`` paid at once, taken from the shards with most left, each
        take conditional on what that shard has left and on the session being open."""
        for shard in sorted(session.shards, key=lambda s: -s.remaining):
            if units <= 0:
                return
            if (take := min(shard.remaining, units)) > 0:
                self._move(
                    tx,
                    session.id,
                    shard.index,
                    condition="#open = :open AND #remaining >= :units",
                    values={":open": True, ":units": take},
                    on_fail=_stale,
                    remaining=-take,
                    paid=take,
                )
                units -= take
        if units > 0:
            raise StaleSession("the session has less left than the top-up needs; re-read")

    def release_paid(self, tx: Transaction, session: Session, participation: Participation) -> None:
        """A paid buyer leaves an open session: their quantity goes back to their shard's remaining. Valid only
        while every shard's paid count is what ``session`` read: the caller raised META from that sum in ``tx``,
        so no tier or MOQ the paid sum reached meanwhile is lost (PAY-7, GB-6)."""
        own = participation.shard or 0
        for shard in session.shards:
            condition = "#open = :open AND #paid = :paid"
            values = {":open": True, ":paid": shard.paid}
            if shard.index == own:
                self._move(
                    tx,
                    session.id,
                    own,
                    condition=condition,
                    values=values,
                    on_fail=_shard_refused("leave"),
                    paid=-participation.quantity,
                    remaining=participation.quantity,
                    participants=-1,
                )
            else:
                tx.check(
                    self.table,
                    _shard_key(session.id, shard.index),
                    condition,
                    names={"#open": "open", "#paid": "paid"},
                    values=values,
                    on_fail=_shard_refused("leave"),
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
        return Page(self._with_counts(result.items), encode_cursor(result.last_key))

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
    def add_participation(
        self, tx: Transaction, participation: Participation, *, stalled_since: str | None, request: str | None = None
    ) -> None:
        """The buyer's lock (one active participation per session, GB-3) and the participation itself. The lock
        names the ``request`` that took it (a digest of its Idempotency-Key and body, or the call's own id), so
        that the same request retried is told the join is its own (JoinRetried), not that the buyer joined
        already."""

        def held(old: dict[str, Any] | None) -> DomainError:
            if request is not None and old is not None and old.get("request") == request:
                return JoinRetried(old["participation_id"])
            return Conflict("you have already joined this session", code="already_joined")

        tx.put(
            self.table,
            {
                **_lock_key(participation.session_id, participation.user_id),
                "participation_id": participation.id,
                "active": True,
                **({"request": request} if request is not None else {}),
            },
            condition="attribute_not_exists(pk) OR #active = :inactive",
            names={"#active": "active"},
            values={":inactive": False},
            on_fail=held,
        )
        item = {**_participation_key(participation.session_id, participation.id), **participation.model_dump()}
        if not participation.is_platform:
            # The platform's top-up is never listed as a buyer's participation (GB-12).
            item.update(gsi1pk=f"USER#{participation.user_id}", gsi1sk=f"{participation.created_at}#{participation.id}")
        if stalled_since is not None:
            item.update(gsi2pk=STALLED_INDEX_KEY, gsi2sk=stalled_since)
        if participation.shard is not None:
            item["shard"] = participation.shard
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
        self.release_reservation(tx, participation)
        return ended

    def release_reservation(self, tx: Transaction, participation: Participation) -> None:
        """An unpaid join's quantity goes back to its shard's remaining, open or closed (an expiry after the
        close still ends the join)."""
        self._move(
            tx,
            participation.session_id,
            participation.shard or 0,
            condition="#reserved >= :quantity",
            values={":quantity": participation.quantity},
            on_fail=_stale,
            reserved=-participation.quantity,
            remaining=participation.quantity,
            participants=-1,
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
