"""Stock that cannot oversell, with its audit trail (WH-1, WH-2, WH-3, WH-5, CHK-3, CHK-10).

Every change reads the stock items it touches (one consistent BatchGetItem), computes their next levels and
writes them in ONE transaction with exactly one audit record per item (before and after exact, WH-2) and,
for a reservation, the reservation item. Each stock item is written only if its ``version`` is still the one
read, so ``available = on_hand - reserved`` is checked against the levels the write replaces: it can never
go negative, whatever runs concurrently; a writer that lost the race reads again (with backoff) and then
either fits or is refused ``insufficient_stock``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from patungan.adapters.dynamodb import Transaction
from patungan.catalog.models import Product
from patungan.core.auth import Principal, Role
from patungan.core.clock import Clock, parse_iso, to_iso
from patungan.core.errors import ConcurrentUpdate, Conflict, DomainError, NotFound, field_error
from patungan.core.ids import keyed_id, new_id
from patungan.core.money import DEFAULT_CURRENCY
from patungan.core.observability import logger
from patungan.core.pagination import decode_cursor, encode_cursor, invalid_cursor
from patungan.core.retry import retry_stale
from patungan.inventory.stock_models import (
    MAX_EXTENDED,
    MAX_RESERVATION_ITEMS,
    AuditAction,
    AuditRecord,
    CycleCount,
    DiscrepancyLine,
    DiscrepancyReport,
    Reservation,
    ReservedLine,
    StockItem,
    StockKey,
    StockLine,
)
from patungan.inventory.stock_repository import NO_VARIANT, AuditLog, AuditQuery, StockRepository
from patungan.inventory.warehouses import Warehouse, WarehouseRepository

SYSTEM_ACTOR = "system"
# Writers on one hot item collide; each attempt re-reads, so more attempts than a rare conflict needs.
STOCK_WRITE_ATTEMPTS = 12
# Audit pages a discrepancy report reads at most (100 records each); a longer period is refused, not truncated.
MAX_REPORT_PAGES = 100
EXPIRED_PER_SWEEP = 100
RETURNED_PARCEL = "returned parcel"
# A returned item writes its stock item, its audit record and its claim: 3 of a transaction's 100 items.
RETURN_ITEMS_PER_TRANSACTION = 30


def insufficient(shortfalls: list[dict]) -> Conflict:
    return Conflict(
        "not enough stock for every line: nothing was changed", code="insufficient_stock", details=shortfalls
    )


def _stale(_old: object) -> DomainError:
    return ConcurrentUpdate("the stock changed while this request ran; retry")


@dataclass(frozen=True)
class Holds:
    """How long a reservation holds stock: the server decides (CHK-3); a caller may ask for less."""

    default: timedelta
    maximum: timedelta

    def expiry(self, now: datetime, ttl: timedelta | None) -> datetime:
        if ttl is not None and ttl <= timedelta(0):  # would shorten the hold into the past: the sweep takes it
            raise field_error("ttl_seconds", "a hold lasts a positive time")
        return now + min(ttl or self.default, self.maximum)


@dataclass(frozen=True)
class _Change:
    key: StockKey
    on_hand: int = 0
    reserved: int = 0


class StockService:
    def __init__(
        self,
        stock: StockRepository,
        audit: AuditLog,
        warehouses: WarehouseRepository,
        product_of: Callable[[str], Product],
        clock: Clock,
        holds: Holds,
    ) -> None:
        self.stock = stock
        self.audit = audit
        self.warehouses = warehouses
        self.product_of = product_of
        self.clock = clock
        self.holds = holds

    # ------------------------------------------------------------------ the one way stock changes
    def _apply(
        self,
        tx: Transaction,
        changes: Iterable[_Change],
        items: dict[StockKey, StockItem],
        *,
        action: AuditAction,
        actor_id: str,
        reason: str | None = None,
        reference: str | None = None,
        seller_id: str | None = None,
        audit_id: str | None = None,
        request_id: str | None = None,
    ) -> list[tuple[StockItem, StockItem]]:
        """Add to ``tx`` each item's next levels, written only over the version read, and its audit record.
        Refuses (409 ``insufficient_stock``, nothing written) when any item would hold more reserved than on
        hand, or less than nothing."""
        now = to_iso(self.clock.now())
        afters, shortfalls = [], []
        for change in changes:
            before = items.get(change.key)
            base = before or StockItem(**vars(change.key), seller_id=seller_id)
            on_hand, reserved = base.on_hand + change.on_hand, base.reserved + change.reserved
            if reserved < 0:
                logger.critical("releasing more than is reserved", extra={"item": vars(change.key), "action": action})
                raise Conflict(f"{change.key} holds only {base.reserved} reserved units", code="reservation_mismatch")
            if on_hand - reserved < 0 or on_hand < 0:
                shortfalls.append(
                    {
                        "warehouse_id": change.key.warehouse_id,
                        "product_id": change.key.product_id,
                        "variant_id": change.key.variant_id,
                        "requested": max(change.reserved, -change.on_hand),
                        "available": base.available,
                    }
                )
                continue
            after = base.model_copy(
                update={
                    "on_hand": on_hand,
                    "reserved": reserved,
                    "available": on_hand - reserved,
                    "updated_at": now,
                    "version": base.version + 1,
                }
            )
            self.stock.write(tx, before, after, _stale)
            record = AuditRecord(
                id=audit_id or new_id("aud"),
                at=now,
                actor_id=actor_id,
                action=action,
                warehouse_id=after.warehouse_id,
                product_id=after.product_id,
                variant_id=after.variant_id,
                before=base.levels,
                after=after.levels,
                reason=reason,
                reference=reference,
            )
            self.audit.add(tx, record)
            if request_id is not None:
                self.audit.claim(tx, request_id, record)
            afters.append((base, after))
        if shortfalls:
            raise insufficient(shortfalls)
        return afters

    def _change_one(
        self,
        key: StockKey,
        change: Callable[[StockItem | None], _Change],
        request_id: str | None = None,
        **audit,
    ) -> tuple[StockItem, StockItem]:
        """One item's change (re-read and retried when a concurrent writer got there first): (before, after).
        With ``request_id`` (from the request's Idempotency-Key) the change is made once: a retry whose first
        attempt was applied (and crashed before answering) gets that change's before and the item as it is."""

        def once() -> tuple[StockItem, StockItem]:
            # The claim before the stock: stock read first could predate the claimed change (or its item).
            applied = self.audit.claimed(request_id) if request_id else None
            items, _ = self.stock.get_with_reservation([key], None)
            if applied is not None:
                current = items[key]
                return current.model_copy(update=applied.before.model_dump()), current
            tx = Transaction()
            [changed] = self._apply(tx, [change(items.get(key))], items, request_id=request_id, **audit)
            tx.commit()
            return changed

        return retry_stale(once, STOCK_WRITE_ATTEMPTS)

    # ------------------------------------------------------------------ warehouse staff routes (WH-1, WH-3)
    def receive(
        self, principal: Principal, warehouse_id: str, product_id: str, variant_id: str | None, quantity: int,
        reference: str | None, request_key: str | None = None,
    ) -> StockItem:  # fmt: skip
        return self._move_on_hand(
            principal, (warehouse_id, product_id, variant_id), quantity, "receipt", request_key, reference=reference
        )

    def adjust(
        self,
        principal: Principal,
        warehouse_id: str,
        product_id: str,
        variant_id: str | None,
        delta: int,
        reason: str,
        request_key: str | None = None,
    ) -> StockItem:
        """``on_hand`` moves by ``delta``; never below what is reserved (409 ``insufficient_stock``). An adjustment
        of no units is refused: the audit trail records changes, not changes that did not happen (WH-2)."""
        if delta == 0:
            raise field_error("delta", "an adjustment adds or removes at least one unit")
        return self._move_on_hand(
            principal, (warehouse_id, product_id, variant_id), delta, "adjustment", request_key, reason=reason
        )

    def _move_on_hand(
        self,
        principal: Principal,
        item: tuple[str, str, str | None],
        units: int,
        action: AuditAction,
        request_key: str | None,
        *,
        reason: str | None = None,
        reference: str | None = None,
    ) -> StockItem:
        """A receipt or an adjustment: ``on_hand`` moves by ``units``, audited, applied once per request key."""
        principal.require(Role.WAREHOUSE)
        key, product = self._known_item(*item)
        return self._change_one(
            key,
            lambda _: _Change(key, on_hand=units),
            _request_id(principal, action, request_key, key, units, reason if reason is not None else reference),
            action=action,
            actor_id=principal.user_id,
            reason=reason,
            reference=reference,
            seller_id=product.seller_id,
        )[1]

    def count(
        self,
        principal: Principal,
        warehouse_id: str,
        product_id: str,
        variant_id: str | None,
        counted: int,
        note: str | None,
        request_key: str | None = None,
    ) -> CycleCount:
        """A cycle count (WH-3): ``on_hand`` becomes what was counted, the difference applied as an audited
        ``cycle_count`` change (one record even when nothing differs: the count happened). Counting fewer than
        are reserved is refused (409): those holds must be released first."""
        principal.require(Role.WAREHOUSE)
        key, product = self._known_item(warehouse_id, product_id, variant_id)
        request_id = _request_id(principal, "cycle_count", request_key, key, counted, note)
        count_id = f"cnt_{request_id.removeprefix('req_')}" if request_id else new_id("cnt")
        before, after = self._change_one(
            key,
            lambda before: _Change(key, on_hand=counted - (before.on_hand if before else 0)),
            request_id,
            action="cycle_count",
            actor_id=principal.user_id,
            reason=note,
            seller_id=product.seller_id,
            audit_id=count_id,
        )
        return CycleCount(
            id=count_id,
            warehouse_id=warehouse_id,
            product_id=product_id,
            variant_id=variant_id,
            expected_on_hand=before.on_hand,
            counted_quantity=counted,
            discrepancy=counted - before.on_hand,
            at=after.updated_at,
            actor_id=principal.user_id,
        )

    def _known_item(self, warehouse_id: str, product_id: str, variant_id: str | None) -> tuple[StockKey, Product]:
        try:
            self.warehouses.get(warehouse_id)
        except NotFound as exc:
            raise field_error("warehouse_id", f"no warehouse {warehouse_id}") from exc
        try:
            product = self.product_of(product_id)
        except NotFound as exc:
            raise field_error("product_id", f"no product {product_id}") from exc
        if variant_id is not None and product.variant(variant_id) is None:
            raise field_error("variant_id", f"product {product_id} has no variant {variant_id}")
        if variant_id is None and product.variants:
            raise field_error("variant_id", f"product {product_id} has variants: name one")
        return StockKey(warehouse_id, product_id, variant_id), product

    def list(
        self,
        principal: Principal,
        *,
        warehouse_id: str | None,
        product_id: str | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[StockItem], str | None]:
        """Warehouse staff and admins: a warehouse's or a product's stock. Seller staff: their own products'
        stock only (another seller's product is 404)."""
        seller_id = None
        if not (principal.is_admin or principal.has(Role.WAREHOUSE)):
            principal.require(Role.SELLER)
            seller_id = principal.seller_scope()
            if product_id and self._seller_of(product_id) != seller_id:
                raise NotFound(f"no product {product_id}")
        elif not (warehouse_id or product_id):
            return self._every_warehouse_page(limit, cursor)
        return self.stock.page(
            warehouse_id=warehouse_id, product_id=product_id, seller_id=seller_id, limit=limit, cursor=cursor
        )

    def _every_warehouse_page(self, limit: int, cursor: str | None) -> tuple[list[StockItem], str | None]:
        """All stock, warehouse after warehouse in code order, through each warehouse's own index (no scan, no
        index partition that every stock change writes). The cursor names the warehouse and the position in it."""
        position = decode_cursor(cursor) or {}
        warehouse_id, inner = position.get("warehouse_id"), position.get("after")
        if cursor and not (isinstance(warehouse_id, str) and (inner is None or isinstance(inner, str))):
            raise invalid_cursor()
        warehouses = [w.id for w in self.warehouses.every()]
        if warehouse_id is not None and warehouse_id not in warehouses:
            raise invalid_cursor()
        start = warehouses.index(warehouse_id) if warehouse_id else 0
        items: list[StockItem] = []
        for index in range(start, len(warehouses)):
            page, inner = self.stock.page(
                warehouse_id=warehouses[index], product_id=None, seller_id=None, limit=limit - len(items), cursor=inner
            )
            items.extend(page)
            if inner is not None:
                return items, encode_cursor({"warehouse_id": warehouses[index], "after": inner})
            if len(items) == limit:
                following = warehouses[index + 1 : index + 2]
                return items, encode_cursor({"warehouse_id": following[0], "after": None}) if following else None
        return items, None

    def _seller_of(self, product_id: str) -> str | None:
        try:
            return self.product_of(product_id).seller_id
        except NotFound:
            return None

    # ------------------------------------------------------------------ the audit log (WH-2, WH-3)
    def audit_log(
        self, principal: Principal, query: AuditQuery, *, limit: int, cursor: str | None
    ) -> tuple[list[AuditRecord], str | None]:
        principal.require(Role.WAREHOUSE)
        return self.audit.page(_normalised(query), limit=limit, cursor=cursor)

    def discrepancies(
        self, principal: Principal, *, warehouse_id: str | None, from_: str | None, to: str | None
    ) -> DiscrepancyReport:
        """Every cycle count of the period, per item: how many, their net discrepancy and its value. The value
        is at the catalog's unit price of the item (the variant's price, else the product's base_price): the
        catalog holds no purchase cost, so that price is the "cost" the report uses."""
        principal.require(Role.WAREHOUSE)
        query = _normalised(AuditQuery(warehouse_id=warehouse_id, action="cycle_count", from_=from_, to=to))
        per_item: dict[StockKey, list[int]] = defaultdict(list)
        cursor = None
        for _ in range(MAX_REPORT_PAGES):
            records, cursor = self.audit.page(query, limit=100, cursor=cursor)
            for record in records:
                key = StockKey(record.warehouse_id, record.product_id, record.variant_id)
                per_item[key].append(record.after.on_hand - record.before.on_hand)
            if cursor is None:
                break
        else:
            raise field_error("from", "the period holds too many cycle counts for one report: narrow it")
        lines = [
            DiscrepancyLine(
                warehouse_id=key.warehouse_id,
                product_id=key.product_id,
                variant_id=key.variant_id,
                counts=len(diffs),
                net_discrepancy=sum(diffs),
                value=sum(diffs) * self._unit_cost(key),
            )
            for key, diffs in sorted(
                per_item.items(), key=lambda kv: (kv[0].warehouse_id, kv[0].product_id, kv[0].variant_id or "")
            )
        ]
        return DiscrepancyReport(
            items=lines,
            total_net_discrepancy=sum(line.net_discrepancy for line in lines),
            total_value=sum(line.value for line in lines),
            currency=DEFAULT_CURRENCY,
        )

    def _unit_cost(self, key: StockKey) -> int:
        product = self.product_of(key.product_id)
        variant = product.variant(key.variant_id) if key.variant_id else None
        return variant.price if variant else product.base_price

    # ------------------------------------------------------------------ checkout's interface (CHK-3, CHK-10)
    def origin_for(self, seller_id: str | None, lines: list[StockLine]) -> Warehouse:
        """The one warehouse holding every line (units after packs, lines of one item summed), CHK-10: the same
        answer for rates and confirm while stock stands still. Several: the one with the lowest id."""
        wanted = _units(None, lines)
        candidates: set[str] | None = None
        for (product_id, variant_id), units in wanted.items():
            holding = {
                item.warehouse_id
                for item in self.stock.of_product(product_id)
                if item.variant_id == variant_id
                and item.available >= units
                and (seller_id is None or item.seller_id == seller_id)
            }
            candidates = holding if candidates is None else candidates & holding
        if not candidates:
            raise insufficient(
                [{"product_id": p, "variant_id": v, "requested": units} for (p, v), units in wanted.items()]
            )
        return self.warehouses.get(min(candidates))

    def available_by_product(self, product_id: str) -> dict[str | None, int]:
        """variant id (None: the product without variants) → units available, summed over warehouses. Not
        binding: a reservation decides."""
        totals: dict[str | None, int] = defaultdict(int)
        for item in self.stock.of_product(product_id):
            totals[item.variant_id] += item.available
        return dict(totals)

    def with_available(self, product: Product) -> Product:
        """A retail product as buyers see it: with its available units, summed over warehouses and per variant
        (one index query; not binding). A factory's products hold no warehouse stock and carry none."""
        if product.seller_id is None:
            return product
        by_variant = self.available_by_product(product.id)
        return product.model_copy(
            update={
                "available": sum(by_variant.values()),
                "variants": [v.model_copy(update={"available": by_variant.get(v.id, 0)}) for v in product.variants],
            }
        )

    def reserve(
        self,
        owner_id: str,
        lines: list[StockLine],
        ttl: timedelta | None = None,
        *,
        warehouse_id: str | None = None,
        reservation_id: str | None = None,
        actor_id: str | None = None,
    ) -> Reservation:
        """Hold every line in one warehouse (default: ``origin_for``), all or nothing, in ONE transaction. Lines
        of one stock item are summed first, so together they cannot over-reserve; a pack line holds
        ``quantity x pack_size`` units (WH-5). The server sets ``expires_at`` (``ttl`` may only shorten the
        hold). ``reservation_id`` makes a retry return the reservation the first attempt made."""
        warehouse_id = warehouse_id or self.origin_for(None, lines).id
        wanted = _units(warehouse_id, lines)
        if len(wanted) > MAX_RESERVATION_ITEMS:
            raise field_error("lines", f"at most {MAX_RESERVATION_ITEMS} distinct items per reservation")
        reservation_id = reservation_id or new_id("rsv")

        def once() -> Reservation:
            items, existing = self.stock.get_with_reservation(wanted, reservation_id)
            if existing is not None:
                if existing.owner_id != owner_id:
                    raise Conflict(f"reservation {reservation_id} belongs to another owner", code="conflict")
                return existing
            now = self.clock.now()
            reservation = Reservation(
                id=reservation_id,
                owner_id=owner_id,
                warehouse_id=warehouse_id,
                lines=[
                    ReservedLine(product_id=k.product_id, variant_id=k.variant_id, units=u) for k, u in wanted.items()
                ],
                status="held",
                expires_at=to_iso(self.holds.expiry(now, ttl)),
                created_at=to_iso(now),
                updated_at=to_iso(now),
            )
            tx = Transaction()
            self._apply(
                tx,
                [_Change(key, reserved=units) for key, units in wanted.items()],
                items,
                action="reservation",
                actor_id=actor_id or owner_id,
                reference=reservation_id,
            )
            self.stock.add_reservation(tx, reservation, _stale)
            tx.commit()
            return reservation

        return retry_stale(once, STOCK_WRITE_ATTEMPTS)

    def extend(self, reservation_ids: list[str], ttl: timedelta | None = None) -> str:
        """Move the expiry of every reservation to now + ttl (capped by the server), all or nothing in one
        transaction: one expired or released → 409 ``reservation_expired`` (a committed one: 409
        ``illegal_transition``; an unknown id: 404) and none is extended. Returns the new ``expires_at``."""
        unique = list(dict.fromkeys(reservation_ids))
        if not unique:
            raise field_error("reservation_ids", "name at least one reservation")
        if len(unique) > MAX_EXTENDED:
            raise field_error("reservation_ids", f"at most {MAX_EXTENDED} reservations at once")
        now = self.clock.now()
        expires_at = to_iso(self.holds.expiry(now, ttl))
        tx = Transaction()
        for reservation_id in unique:
            self.stock.extend(tx, reservation_id, expires_at, to_iso(now))
        tx.commit()
        return expires_at

    def hold_until_ended(self, reservation_ids: list[str]) -> None:
        """Paid orders' stock (checkout, issue 10): every reservation held without expiry until it is committed
        (the order ships) or released (cancelled), all or nothing; one expired, released, committed or unknown →
        409 ``reservation_expired`` (404 unknown) and none changes. The expiry sweep never sees them again."""
        unique = list(dict.fromkeys(reservation_ids))
        if len(unique) > MAX_EXTENDED:
            raise field_error("reservation_ids", f"at most {MAX_EXTENDED} reservations at once")
        now = to_iso(self.clock.now())
        tx = Transaction()
        for reservation_id in unique:
            self.stock.hold_until_ended(tx, reservation_id, now)
        tx.commit()

    def release(self, reservation_id: str, *, actor_id: str | None = None) -> Reservation:
        """Give the held units back (audited ``release``). Idempotent: a released reservation is answered as
        it is; a committed one cannot be released (409)."""
        return self._end(reservation_id, "released", actor_id=actor_id or SYSTEM_ACTOR, only_if="any")[0]

    def commit(self, reservation_id: str, *, actor_id: str | None = None) -> Reservation:
        """The stock leaves with the order: ``on_hand`` and ``reserved`` both drop (audited ``commit``).
        Idempotent; only while held and unexpired: an expired hold is never committed (409
        ``reservation_expired``), even before the sweep has released it."""
        return self._end(reservation_id, "committed", actor_id=actor_id or SYSTEM_ACTOR, only_if="unexpired")[0]

    def release_expired(self) -> int:
        """The expiry sweep (a schedule): release every held reservation whose expiry has passed, each only if
        it is still held and expired when its release is written (audited ``release`` by ``system``)."""
        released = 0
        for reservation_id in self.stock.expired(to_iso(self.clock.now()), EXPIRED_PER_SWEEP):
            try:
                # A hold another sweep released meanwhile is that sweep's release, not this one's.
                released += self._end(reservation_id, "released", actor_id=SYSTEM_ACTOR, only_if="expired")[1]
            except Conflict as exc:  # extended or committed meanwhile: it is no longer this sweep's to release
                logger.info("expired hold not released", extra={"reservation_id": reservation_id, "why": exc.code})
        return released

    def _end(self, reservation_id: str, status: str, *, actor_id: str, only_if: str) -> tuple[Reservation, bool]:
        """The reservation ended as ``status`` and whether this call ended it (False: it already was)."""

        def once() -> tuple[Reservation, bool]:
            reservation = self.stock.get_reservation(reservation_id)
            if reservation.status == status:
                return reservation, False
            if reservation.status != "held":
                raise Conflict(f"reservation {reservation_id} is {reservation.status}", code="illegal_transition")
            now = self.clock.now()
            expired = reservation.expires_at is not None and parse_iso(reservation.expires_at) <= now
            if only_if == "unexpired" and expired:
                raise Conflict(
                    f"reservation {reservation_id} expired at {reservation.expires_at}", code="reservation_expired"
                )
            if only_if == "expired" and not expired:
                raise Conflict(f"reservation {reservation_id} has not expired", code="reservation_not_expired")
            keys = [StockKey(reservation.warehouse_id, line.product_id, line.variant_id) for line in reservation.lines]
            items, _ = self.stock.get_with_reservation(keys, None)
            self._check_held_in(items, reservation, keys)
            leaving = status == "committed"
            tx = Transaction()
            self.stock.end_reservation(tx, reservation, status, to_iso(now), only_if=only_if, on_fail=_stale)
            self._apply(
                tx,
                [
                    _Change(key, reserved=-line.units, on_hand=-line.units if leaving else 0)
                    for key, line in zip(keys, reservation.lines, strict=True)
                ],
                items,
                action="commit" if leaving else "release",
                actor_id=actor_id,
                reference=reservation_id,
            )
            tx.commit()
            return reservation.model_copy(update={"status": status, "updated_at": to_iso(now)}), True

        return retry_stale(once, STOCK_WRITE_ATTEMPTS)

    def _check_held_in(self, items: dict[StockKey, StockItem], reservation: Reservation, keys: list[StockKey]) -> None:
        """The stock read after the hold must still hold its units. When it does not, the hold was ended between
        the two reads (a duplicate commit or release, the sweep): a concurrent update, read again. Only a hold
        that is still held while its stock lacks the units is a broken item: refused, loudly."""
        if all(
            key in items and items[key].reserved >= line.units
            for key, line in zip(keys, reservation.lines, strict=True)
        ):
            return
        if self.stock.get_reservation(reservation.id) != reservation:
            raise ConcurrentUpdate(f"reservation {reservation.id} changed while this request ran; retry")
        logger.critical(
            "a held reservation's units are not reserved on its stock", extra={"reservation": reservation.id}
        )
        raise Conflict(f"the stock of {reservation.id} holds fewer reserved units than it", code="reservation_mismatch")

    # ------------------------------------------------------------------ purchase orders (GB-15, WH-4)
    def add_po_receipt(
        self,
        tx: Transaction,
        *,
        warehouse_id: str,
        product_id: str,
        variant_id: str | None,
        quantity: int,
        session_id: str,
        receipt_id: str,
        actor_id: str,
    ) -> None:
        """Into ``tx``: the received units on hand at the warehouse and reserved for the session's orders (a
        hold without expiry, owned by the session, committed when they ship), audited ``po_receipt``."""
        try:
            self.warehouses.get(warehouse_id)
        except NotFound as exc:
            raise field_error("warehouse_id", f"no warehouse {warehouse_id}") from exc
        key = StockKey(warehouse_id, product_id, variant_id)
        items, _ = self.stock.get_with_reservation([key], None)
        self._apply(
            tx,
            [_Change(key, on_hand=quantity, reserved=quantity)],
            items,
            action="po_receipt",
            actor_id=actor_id,
            reference=receipt_id,
        )
        now = to_iso(self.clock.now())
        self.stock.add_reservation(
            tx,
            Reservation(
                id=po_receipt_hold_id(receipt_id),
                owner_id=session_id,
                warehouse_id=warehouse_id,
                lines=[ReservedLine(product_id=product_id, variant_id=variant_id, units=quantity)],
                status="held",
                created_at=now,
                updated_at=now,
            ),
            _stale,
        )

    # ------------------------------------------------------------------ group-buying shipments (GB-15)
    def warehouse_holding(self, hold_ids: list[str], product_id: str, variant_id: str | None, units: int) -> str | None:
        """The warehouse (the lowest id of several) whose held ``hold_ids`` hold ``units`` of the item between
        them; None when none does. Not binding: ``draw_held`` decides."""
        held: dict[str, int] = defaultdict(int)
        for hold, line in self._held_lines(hold_ids, None, product_id, variant_id):
            held[hold.warehouse_id] += hold.lines[line].units
        return min((w for w, total in held.items() if total >= units), default=None)

    def draw_held(
        self,
        hold_ids: list[str],
        key: StockKey,
        units: int,
        *,
        reference: str,
        actor_id: str,
    ) -> bool:
        """``units`` of ``key`` leave its warehouse out of the holds ``hold_ids`` (a session's purchase-order
        receipts, which its orders share), audited ``commit`` under ``reference`` (a shipment), ONCE per
        reference: a retry finds the draw made and draws nothing (returns False). Each hold is written only over
        the units read, with the stock item, so concurrent draws never take more than a hold holds; when the holds
        lack the units, 409 ``insufficient_stock`` and nothing is drawn."""
        request_id = keyed_id("req", "draw_held", reference)

        def once() -> bool:
            # The claim before the stock, the stock before the holds: each read earlier could predate a draw the
            # next one sees (stock read after the holds could lack units those holds still show).
            if self.audit.claimed(request_id) is not None:
                return False
            items, _ = self.stock.get_with_reservation([key], None)
            takes, wanted = [], units
            held = self._held_lines(hold_ids, key.warehouse_id, key.product_id, key.variant_id)
            for hold, line in sorted(held, key=lambda held_line: (held_line[0].id, held_line[1])):
                take = min(wanted, hold.lines[line].units)
                takes.append((hold, line, take))
                wanted -= take
                if wanted == 0:
                    break
            if wanted:
                raise insufficient(
                    [{**vars(key), "requested": units, "available": units - wanted, "holds": sorted(hold_ids)}]
                )
            now = to_iso(self.clock.now())
            tx = Transaction()
            for hold, line, take in takes:
                self.stock.draw(tx, hold, line, take, now, _stale)
            self._apply(
                tx,
                [_Change(key, on_hand=-units, reserved=-units)],
                items,
                action="commit",
                actor_id=actor_id,
                reference=reference,
                request_id=request_id,
            )
            tx.commit()
            return True

        return retry_stale(once, STOCK_WRITE_ATTEMPTS)

    def _held_lines(
        self, hold_ids: list[str], warehouse_id: str | None, product_id: str, variant_id: str | None
    ) -> list[tuple[Reservation, int]]:
        """(hold, index of its line of the item) for every held hold of ``hold_ids`` with units of the item left."""
        found = []
        for hold in self.stock.reservations(list(dict.fromkeys(hold_ids))):
            if hold.status != "held" or warehouse_id not in (None, hold.warehouse_id):
                continue
            found.extend(
                (hold, index)
                for index, line in enumerate(hold.lines)
                if (line.product_id, line.variant_id) == (product_id, variant_id) and line.units > 0
            )
        return found

    # ------------------------------------------------------------------ returned parcels (LOG-2, issue 11)
    def receive_returned(self, warehouse_id: str, lines: list[StockLine], reference: str) -> None:
        """A parcel the courier brought back: its units on hand again at ``warehouse_id``, each item an audited
        ``receipt`` by ``system`` (reason "returned parcel", ``reference`` the shipment), once per item and
        reference however often it is called: each item's change claims an id derived from both."""
        wanted = list(_units(warehouse_id, lines).items())
        for start in range(0, len(wanted), RETURN_ITEMS_PER_TRANSACTION):
            chunk = wanted[start : start + RETURN_ITEMS_PER_TRANSACTION]

            def once(chunk: list[tuple[StockKey, int]] = chunk) -> None:
                pending = [
                    (key, units) for key, units in chunk if self.audit.claimed(_return_id(reference, key)) is None
                ]
                if not pending:
                    return
                items, _ = self.stock.get_with_reservation([key for key, _ in pending], None)
                tx = Transaction()
                for key, units in pending:
                    self._apply(
                        tx,
                        [_Change(key, on_hand=units)],
                        items,
                        action="receipt",
                        actor_id=SYSTEM_ACTOR,
                        reason=RETURNED_PARCEL,
                        reference=reference,
                        request_id=_return_id(reference, key),
                    )
                tx.commit()

            retry_stale(once, STOCK_WRITE_ATTEMPTS)


def po_receipt_hold_id(receipt_id: str) -> str:
    """The hold a purchase-order receipt puts its units in (for the session's orders, GB-15)."""
    return f"rsv_{receipt_id}"


def _return_id(reference: str, key: StockKey) -> str:
    return keyed_id("req", "returned_parcel", reference, key.warehouse_id, key.product_id, key.variant_id or "")


def _units(warehouse_id: str | None, lines: list[StockLine]) -> dict:
    """Units per stock item, lines of one item summed (keyed by StockKey, or (product, variant) when no
    warehouse is chosen yet)."""
    if not lines:
        raise field_error("lines", "reserve at least one line")
    wanted: dict = defaultdict(int)
    for line in lines:
        if line.quantity < 1 or line.pack_size < 1:  # a negative line would give back what others hold
            raise field_error("lines", f"quantity and pack_size must be at least 1: {line}")
        if line.variant_id in ("", NO_VARIANT):  # how the items without variants are stored: no variant's id
            raise field_error("lines", f"no product has the variant {line.variant_id!r}: {line}")
        key = (
            StockKey(warehouse_id, line.product_id, line.variant_id)
            if warehouse_id
            else (line.product_id, line.variant_id)
        )
        wanted[key] += line.units
    return dict(wanted)


def _request_id(principal: Principal, operation: str, request_key: str | None, *request: object) -> str | None:
    """The id of one request's change: the caller, the operation, its Idempotency-Key and what it asks (the same
    key with another body is another request)."""
    if request_key is None:
        return None
    return keyed_id("req", principal.user_id, operation, request_key, repr(request))


def _normalised(query: AuditQuery) -> AuditQuery:
    """Times as the records store them (second precision, ``Z``), so the key condition compares like with like."""

    def moment(field: str, text: str | None) -> str | None:
        if text is None:
            return None
        try:
            return to_iso(parse_iso(text))
        except (ValueError, OverflowError) as exc:  # overflow: an offset moves it outside years 1 to 9999 in UTC
            raise field_error(field, "not an ISO 8601 time") from exc

    return AuditQuery(
        warehouse_id=query.warehouse_id,
        product_id=query.product_id,
        variant_id=query.variant_id,
        actor_id=query.actor_id,
        action=query.action,
        from_=moment("from", query.from_),
        to=moment("to", query.to),
    )
