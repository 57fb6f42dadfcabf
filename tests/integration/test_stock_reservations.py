"""Reservations (CHK-3, WH-5, CHK-10; issue 9): no oversell under concurrency, lines of one item summed, packs
hold their units, expiry decided and enforced by the server, extend all or nothing, release and commit
idempotent, one audit record per change (WH-2)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from moto.dynamodb.responses import DynamoHandler

from emulator.moto_patches import _serialised
from patungan.adapters.dynamodb import Transaction
from patungan.composition import stock_service
from patungan.core.clock import FixedClock
from patungan.core.errors import Conflict, NotFound, ValidationFailed
from patungan.core.observability import logger
from patungan.inventory.stock_models import StockKey, StockLine
from patungan.inventory.stock_repository import HELD_SHARDS, AuditQuery, StockRepository, _shard
from tests.support.lambdas import invoke
from tests.support.stock import WORKER, receive, stock_world

BUYERS = 50


@pytest.fixture
def world(aws):
    return stock_world()


@pytest.fixture
def clock(monkeypatch):
    """The stock service's clock, moved by the test (the sweep function uses the same service)."""
    fixed = FixedClock(datetime(2026, 11, 30, 8, 0, tzinfo=UTC))
    monkeypatch.setattr(stock_service(), "clock", fixed)
    return fixed


def levels(warehouse_id, product_id, variant_id=None):
    item = stock_service().stock.get(StockKey(warehouse_id, product_id, variant_id))
    return item.on_hand, item.reserved, item.available


def audit(**query):
    records, _ = stock_service().audit.page(AuditQuery(**query), limit=100, cursor=None)
    return records


def test_fifty_concurrent_reservations_of_ten_units_hold_exactly_ten(world):
    """CHK-3: 50 buyers at once for an item with 10 units: exactly 10 held, 40 refused insufficient_stock,
    available never below zero, one audit record per successful reservation."""
    receive((world.warehouse.id, world.product.id, None), 10)
    start = threading.Barrier(BUYERS)

    def buy(n: int) -> str:
        start.wait()
        try:
            stock_service().reserve(f"chk_{n}", [StockLine(world.product.id, None, 1)], warehouse_id=world.warehouse.id)
            return "held"
        except Conflict as exc:
            return exc.code

    # Each DynamoDB call atomic, as in DynamoDB (moto alone is not thread-safe); the service's calls interleave.
    with (
        mock.patch.object(DynamoHandler, "call_action", _serialised(DynamoHandler.call_action)),
        ThreadPoolExecutor(max_workers=BUYERS) as pool,
    ):
        outcomes = list(pool.map(buy, range(BUYERS)))

    assert outcomes.count("held") == 10
    assert outcomes.count("insufficient_stock") == BUYERS - 10
    assert levels(world.warehouse.id, world.product.id) == (10, 10, 0)
    reservations = audit(action="reservation")
    assert len(reservations) == 10
    assert sorted(r.after.reserved for r in reservations) == list(range(1, 11))
    assert all(r.after.on_hand - r.after.reserved >= 0 for r in reservations)
    assert {r.actor_id for r in reservations} <= {f"chk_{n}" for n in range(BUYERS)}


def test_two_lines_of_one_item_cannot_reserve_more_than_it_holds_together(world):
    receive((world.warehouse.id, world.product.id, None), 5)

    with pytest.raises(Conflict) as refused:
        stock_service().reserve(
            "chk_1",
            [StockLine(world.product.id, None, 3), StockLine(world.product.id, None, 3)],
            warehouse_id=world.warehouse.id,
        )

    assert refused.value.code == "insufficient_stock"
    assert refused.value.details[0]["requested"] == 6
    assert levels(world.warehouse.id, world.product.id) == (5, 0, 5)
    assert audit(action="reservation") == []


def test_a_pack_reserves_its_units(world):
    """WH-5: two 6-packs hold 12 units; a third does not fit in 15."""
    receive((world.warehouse.id, world.product.id, None), 15)

    stock_service().reserve("chk_1", [StockLine(world.product.id, None, 2, pack_size=6)])

    assert levels(world.warehouse.id, world.product.id) == (15, 12, 3)
    with pytest.raises(Conflict, match="not enough stock"):
        stock_service().reserve(
            "chk_2", [StockLine(world.product.id, None, 1, pack_size=6)], warehouse_id=world.warehouse.id
        )


def test_a_reservation_of_several_lines_is_all_or_nothing(world):
    receive((world.warehouse.id, world.shirt.id, "v_s"), 5)
    receive((world.warehouse.id, world.shirt.id, "v_m"), 1)

    with pytest.raises(Conflict):
        stock_service().reserve(
            "chk_1",
            [StockLine(world.shirt.id, "v_s", 2), StockLine(world.shirt.id, "v_m", 2)],
            warehouse_id=world.warehouse.id,
        )

    assert levels(world.warehouse.id, world.shirt.id, "v_s") == (5, 0, 5)
    assert levels(world.warehouse.id, world.shirt.id, "v_m") == (1, 0, 1)


def test_an_expired_reservation_is_released_by_the_system_and_can_never_be_committed(world, clock):
    receive((world.warehouse.id, world.product.id, None), 4)
    held = stock_service().reserve("chk_1", [StockLine(world.product.id, None, 3)], timedelta(minutes=10))
    assert held.expires_at == "2026-11-30T08:10:00Z"

    clock.advance(timedelta(minutes=10))
    with pytest.raises(Conflict) as refused:
        stock_service().commit(held.id)
    assert refused.value.code == "reservation_expired"
    assert levels(world.warehouse.id, world.product.id) == (4, 3, 1)  # not yet swept, and not committed

    assert invoke("ReleaseExpiredReservationsFunction", {}) == {"released": 1}

    assert levels(world.warehouse.id, world.product.id) == (4, 0, 4)
    [release] = audit(action="release")
    assert (release.actor_id, release.reference) == ("system", held.id)
    assert (release.before.reserved, release.after.reserved) == (3, 0)
    with pytest.raises(Conflict):
        stock_service().commit(held.id)
    assert invoke("ReleaseExpiredReservationsFunction", {}) == {"released": 0}
    assert len(audit(action="release")) == 1


def test_the_sweep_leaves_unexpired_and_extended_holds_alone(world, clock):
    receive((world.warehouse.id, world.product.id, None), 4)
    short = stock_service().reserve("chk_1", [StockLine(world.product.id, None, 1)], timedelta(minutes=5))
    stock_service().reserve("chk_2", [StockLine(world.product.id, None, 1)], timedelta(minutes=30))
    clock.advance(timedelta(minutes=4))
    stock_service().extend([short.id], timedelta(minutes=10))

    clock.advance(timedelta(minutes=2))
    assert invoke("ReleaseExpiredReservationsFunction", {}) == {"released": 0}
    assert levels(world.warehouse.id, world.product.id) == (4, 2, 2)


def test_the_server_caps_the_hold(world, clock):
    receive((world.warehouse.id, world.product.id, None), 1)
    held = stock_service().reserve("chk_1", [StockLine(world.product.id, None, 1)], timedelta(days=7))
    assert held.expires_at == "2026-11-30T09:00:00Z"  # RESERVATION_MAX_TTL_SECONDS


def test_extend_is_all_or_nothing(world, clock):
    receive((world.warehouse.id, world.product.id, None), 4)
    first = stock_service().reserve("chk_1", [StockLine(world.product.id, None, 1)], timedelta(minutes=10))
    second = stock_service().reserve("chk_1", [StockLine(world.product.id, None, 1)], timedelta(minutes=5))
    clock.advance(timedelta(minutes=6))  # the second has expired, the first has not

    with pytest.raises(Conflict) as refused:
        stock_service().extend([first.id, second.id], timedelta(minutes=15))

    assert refused.value.code == "reservation_expired"
    assert stock_service().stock.get_reservation(first.id).expires_at == "2026-11-30T08:10:00Z"
    with pytest.raises(NotFound):
        stock_service().extend([first.id, "rsv_unknown"], timedelta(minutes=15))
    assert stock_service().extend([first.id], timedelta(minutes=15)) == "2026-11-30T08:21:00Z"


def test_release_and_commit_are_idempotent_by_reservation_id(world):
    receive((world.warehouse.id, world.product.id, None), 10)
    released = stock_service().reserve("chk_1", [StockLine(world.product.id, None, 2)])
    committed = stock_service().reserve("chk_2", [StockLine(world.product.id, None, 3)])

    for _ in range(2):
        assert stock_service().release(released.id).status == "released"
        assert stock_service().commit(committed.id).status == "committed"

    assert levels(world.warehouse.id, world.product.id) == (7, 0, 7)
    assert len(audit(action="release")) == len(audit(action="commit")) == 1
    with pytest.raises(Conflict):
        stock_service().commit(released.id)
    with pytest.raises(Conflict):
        stock_service().release(committed.id)


def test_a_retried_reservation_with_its_id_holds_once(world):
    receive((world.warehouse.id, world.product.id, None), 10)
    line = [StockLine(world.product.id, None, 2)]

    first = stock_service().reserve("chk_1", line, reservation_id="rsv_chk_1")
    again = stock_service().reserve("chk_1", line, reservation_id="rsv_chk_1")

    assert first == again
    assert levels(world.warehouse.id, world.product.id) == (10, 2, 8)
    with pytest.raises(Conflict):
        stock_service().reserve("chk_other", line, reservation_id="rsv_chk_1")


def test_one_warehouse_holds_every_line_of_an_order(world):
    """CHK-10: the origin is the one warehouse holding all lines; none holding all → insufficient_stock."""
    receive((world.warehouse.id, world.product.id, None), 1)
    receive((world.warehouse.id, world.shirt.id, "v_s"), 5)
    receive((world.other_warehouse.id, world.product.id, None), 5)
    receive((world.other_warehouse.id, world.shirt.id, "v_s"), 1)
    receive((world.other_warehouse.id, world.shirt.id, "v_m"), 1)
    lines = [StockLine(world.product.id, None, 2), StockLine(world.shirt.id, "v_s", 1)]

    assert stock_service().origin_for(None, lines).id == world.other_warehouse.id
    assert stock_service().reserve("chk_1", lines).warehouse_id == world.other_warehouse.id
    with pytest.raises(Conflict) as refused:
        stock_service().origin_for(None, [*lines, StockLine(world.shirt.id, "v_m", 1)])
    assert refused.value.code == "insufficient_stock"
    with pytest.raises(Conflict):
        stock_service().origin_for("sel_someone_else", [StockLine(world.product.id, None, 1)])
    assert stock_service().available_by_product(world.shirt.id) == {"v_s": 6 - 1, "v_m": 1}


@pytest.mark.parametrize("line", [StockLine("prd_kopi", None, -2), StockLine("prd_kopi", None, 1, pack_size=0)])
def test_a_line_of_no_units_or_fewer_is_refused_and_gives_nothing_back(world, line):
    receive((world.warehouse.id, world.product.id, None), 4)
    stock_service().reserve("chk_1", [StockLine(world.product.id, None, 3)])

    with pytest.raises(ValidationFailed):
        stock_service().reserve("chk_2", [line], warehouse_id=world.warehouse.id)

    assert levels(world.warehouse.id, world.product.id) == (4, 3, 1)


def _id_in_shard(prefix, shard):
    return next(f"{prefix}_{n}" for n in range(1000) if _shard(f"{prefix}_{n}", HELD_SHARDS) == shard)


def test_one_hot_item_that_keeps_conflicting_does_not_stop_the_sweep_releasing_the_others(world, clock):
    """CHK-3, WH-2 (review of issue 9): an expired hold whose item keeps changing under the sweep (a flash sale's
    item) is left exactly as it was, unaudited, for the next sweep; the holds after it are still released."""
    receive((world.warehouse.id, world.product.id, None), 5)
    receive((world.warehouse.id, world.shirt.id, "v_s"), 5)
    busy = stock_service().reserve(
        "chk_1", [StockLine(world.product.id, None, 2)], timedelta(minutes=5), reservation_id=_id_in_shard("rsv_a", 0)
    )
    free = stock_service().reserve(
        "chk_2", [StockLine(world.shirt.id, "v_s", 3)], timedelta(minutes=5), reservation_id=_id_in_shard("rsv_b", 7)
    )
    clock.advance(timedelta(minutes=5))
    original_read, busy_key = StockRepository.get_with_reservation, StockKey(world.warehouse.id, world.product.id, None)

    def read_then_another_writer_changes_the_busy_item(repository, keys, reservation_id):
        keys = list(keys)
        read = original_read(repository, keys, reservation_id)
        if keys == [busy_key]:
            current = stock_service().stock.get(busy_key)
            tx = Transaction()
            stock_service().stock.write(tx, current, current.model_copy(update={"version": current.version + 1}), None)
            tx.commit()
        return read

    with (
        mock.patch.object(StockRepository, "get_with_reservation", read_then_another_writer_changes_the_busy_item),
        mock.patch("patungan.core.retry.back_off"),
    ):
        assert stock_service().release_expired() == 1

    assert stock_service().stock.get_reservation(free.id).status == "released"
    assert levels(world.warehouse.id, world.shirt.id, "v_s") == (5, 0, 5)
    assert stock_service().stock.get_reservation(busy.id).status == "held"
    assert levels(world.warehouse.id, world.product.id) == (5, 2, 3)
    assert [r.reference for r in audit(action="release")] == [free.id]


def _race_after_reading_the_hold(other_writer):
    """Patch the reservation read so ``other_writer`` runs once, right after the first read of a hold."""
    original, raced = StockRepository.get_reservation, []

    def read_then_race(repository, reservation_id):
        read = original(repository, reservation_id)
        if not raced:
            raced.append(True)
            other_writer(reservation_id)
        return read

    return mock.patch.object(StockRepository, "get_reservation", read_then_race)


def test_a_hold_extended_while_the_sweep_releases_it_ends_extended_and_untouched(world, clock):
    """CHK-3 (review of issue 9): checkout extends a hold (its clock a second behind) between the sweep's read of
    it and the sweep's write: the extension stands, the sweep releases nothing, stock and audit unchanged."""
    receive((world.warehouse.id, world.product.id, None), 4)
    held = stock_service().reserve("chk_1", [StockLine(world.product.id, None, 3)], timedelta(minutes=5))
    clock.advance(timedelta(minutes=5))

    def extend_a_second_earlier(reservation_id):
        clock.advance(timedelta(seconds=-1))
        stock_service().extend([reservation_id], timedelta(minutes=10))
        clock.advance(timedelta(seconds=1))

    with _race_after_reading_the_hold(extend_a_second_earlier):
        assert stock_service().release_expired() == 0

    assert stock_service().stock.get_reservation(held.id).status == "held"
    assert levels(world.warehouse.id, world.product.id) == (4, 3, 1)
    assert audit(action="release") == []


def test_a_hold_released_by_the_sweep_while_it_is_extended_ends_released_once(world, clock):
    """CHK-3, WH-2: the sweep releases the hold between the extension's clock reading and its write: the
    extension is refused, the hold is released once, stock exact."""
    receive((world.warehouse.id, world.product.id, None), 4)
    held = stock_service().reserve("chk_1", [StockLine(world.product.id, None, 3)], timedelta(minutes=5))
    clock.advance(timedelta(minutes=5))
    original_extend = StockRepository.extend

    def sweep_then_extend(repository, tx, reservation_id, expires_at, now):
        assert stock_service().release_expired() == 1
        original_extend(repository, tx, reservation_id, expires_at, "2026-11-30T08:04:59Z")  # read before expiry

    with mock.patch.object(StockRepository, "extend", sweep_then_extend), pytest.raises(Conflict) as refused:
        stock_service().extend([held.id], timedelta(minutes=10))

    assert refused.value.code == "reservation_expired"
    assert stock_service().stock.get_reservation(held.id).status == "released"
    assert levels(world.warehouse.id, world.product.id) == (4, 0, 4)
    assert len(audit(action="release")) == 1


def test_a_commit_racing_the_sweep_on_an_expired_hold_never_commits_it(world, clock):
    """CHK-3: checkout's commit, its clock a second behind, reads the hold as unexpired; the sweep releases it
    before the commit writes: the commit is refused and the stock is released once, never taken."""
    receive((world.warehouse.id, world.product.id, None), 4)
    held = stock_service().reserve("chk_1", [StockLine(world.product.id, None, 3)], timedelta(minutes=5))
    clock.advance(timedelta(minutes=5) - timedelta(seconds=1))

    def sweep_at_expiry(_reservation_id):
        clock.advance(timedelta(seconds=1))
        stock_service().release_expired()
        clock.advance(timedelta(seconds=-1))

    with (
        _race_after_reading_the_hold(sweep_at_expiry),
        mock.patch.object(logger, "critical", wraps=logger.critical) as critical,
        pytest.raises(Conflict) as refused,
    ):
        stock_service().commit(held.id)

    assert refused.value.code == "illegal_transition"  # it was released: not a broken stock item
    assert critical.call_args_list == []
    assert levels(world.warehouse.id, world.product.id) == (4, 0, 4)
    assert len(audit(action="release")) == 1
    assert audit(action="commit") == []


def test_two_sweeps_at_once_release_a_hold_once_and_say_so(world, clock):
    """CHK-3, WH-2: a second sweep runs between the first one's read of a hold and its write: one release, one
    audit record, stock exact, and the two sweeps together report one release."""
    receive((world.warehouse.id, world.product.id, None), 4)
    stock_service().reserve("chk_1", [StockLine(world.product.id, None, 3)], timedelta(minutes=5))
    clock.advance(timedelta(minutes=5))
    second = []

    with (
        _race_after_reading_the_hold(lambda _id: second.append(stock_service().release_expired())),
        mock.patch.object(logger, "critical", wraps=logger.critical) as critical,
    ):
        first = stock_service().release_expired()

    assert first + second[0] == 1
    assert critical.call_args_list == []  # nothing is wrong: no alarm
    assert levels(world.warehouse.id, world.product.id) == (4, 0, 4)
    assert len(audit(action="release")) == 1


@pytest.mark.parametrize("end", ["commit", "release"])
def test_a_hold_ended_twice_at_once_answers_both_calls_alike_and_changes_stock_once(world, end):
    """CHK-3, WH-2 (review of issue 9): checkout's retried commit (or release) runs while its first attempt is
    still running; the first ends the hold between the retry's read of the hold and its read of the stock. The
    retry took the stock it read for the hold's and answered 409 ``reservation_mismatch`` with a CRITICAL alarm
    about a broken stock item; it is a concurrent update: read again, it answers as the first did."""
    receive((world.warehouse.id, world.product.id, None), 4)
    held = stock_service().reserve("chk_1", [StockLine(world.product.id, None, 3)])
    first = []

    with (
        _race_after_reading_the_hold(
            lambda reservation_id: first.append(getattr(stock_service(), end)(reservation_id))
        ),
        mock.patch.object(logger, "critical", wraps=logger.critical) as critical,
    ):
        retried = getattr(stock_service(), end)(held.id)

    assert retried.status == first[0].status == {"commit": "committed", "release": "released"}[end]
    assert critical.call_args_list == []
    assert levels(world.warehouse.id, world.product.id) == ((1, 0, 1) if end == "commit" else (4, 0, 4))
    assert len(audit(action=end)) == 1


@pytest.mark.parametrize("ttl", [timedelta(0), timedelta(minutes=-30)])
def test_an_extension_of_no_time_or_less_is_refused_and_shortens_no_hold(world, clock, ttl):
    """CHK-3 (review of issue 9): checkout's extend(ids, ttl) took a negative ttl as given and moved the expiry
    into the past (the sweep then released a hold the buyer was paying for), and ``timedelta(0)`` silently
    meant the default. A hold is extended by a positive time only; nothing is changed otherwise."""
    receive((world.warehouse.id, world.product.id, None), 4)
    held = stock_service().reserve("chk_1", [StockLine(world.product.id, None, 3)], timedelta(minutes=10))

    with pytest.raises(ValidationFailed):
        stock_service().extend([held.id], ttl)
    with pytest.raises(ValidationFailed):
        stock_service().reserve("chk_2", [StockLine(world.product.id, None, 1)], ttl)

    assert stock_service().stock.get_reservation(held.id).expires_at == "2026-11-30T08:10:00Z"
    assert invoke("ReleaseExpiredReservationsFunction", {}) == {"released": 0}
    assert levels(world.warehouse.id, world.product.id) == (4, 3, 1)


def test_extending_no_reservation_is_refused(world):
    """CHK-3: extend([]) answered a new expiry for nothing extended; a caller that lost its ids must hear it."""
    with pytest.raises(ValidationFailed):
        stock_service().extend([], timedelta(minutes=5))


@pytest.mark.parametrize("variant_id", ["-", ""])
def test_a_variant_id_that_names_the_items_without_variants_is_refused_not_a_server_error(world, variant_id):
    """CHK-3, WH-1 (review of issue 9): the stock item of a product without variants is stored under the variant
    "-"; a line naming the variant "-" (or "") read that item as another one and its write failed on every
    attempt (503 after a dozen rounds; a 500 beside a line of the same product without a variant). It is no
    variant of any product: refused, nothing held."""
    receive((world.warehouse.id, world.product.id, None), 4)

    with pytest.raises(ValidationFailed):
        stock_service().reserve(
            "chk_1",
            [StockLine(world.product.id, None, 1), StockLine(world.product.id, variant_id, 3)],
            warehouse_id=world.warehouse.id,
        )

    assert levels(world.warehouse.id, world.product.id) == (4, 0, 4)


def test_extending_a_committed_hold_says_it_was_committed_not_that_it_expired(world):
    """CHK-3 (review of issue 9): a late extension (a retry after the commit) was answered 409
    ``reservation_expired``, which tells checkout its stock is gone and to hold it again: the order's units would
    be held twice. A committed hold is an illegal transition; nothing is extended either way."""
    receive((world.warehouse.id, world.product.id, None), 4)
    held = stock_service().reserve("chk_1", [StockLine(world.product.id, None, 3)])
    stock_service().commit(held.id)

    with pytest.raises(Conflict) as refused:
        stock_service().extend([held.id], timedelta(minutes=5))

    assert refused.value.code == "illegal_transition"
    assert stock_service().stock.get_reservation(held.id).expires_at == held.expires_at


def test_a_duplicate_receipt_answers_the_stock_its_first_attempt_left_not_what_it_read_before(world):
    """WH-1, WH-2 (review of issue 9): a duplicate of a keyed receipt read the stock, then its first attempt
    committed, then it found the first attempt's claim and answered the stock as read before the receipt: a 500
    for a new item (it had read none), else levels without the receipt, telling the worker nothing was received.
    The duplicate answers the stock with the receipt in it, and receives nothing more."""
    key = StockKey(world.warehouse.id, world.product.id, None)
    original_read, raced = StockRepository.get_with_reservation, []

    def read_then_the_first_attempt_commits(repository, keys, reservation_id):
        read = original_read(repository, keys, reservation_id)
        if not raced:
            raced.append("first attempt")
            raced[0] = stock_service().receive(WORKER, *vars(key).values(), 5, "DO-9", request_key="do-9")
        return read

    with mock.patch.object(StockRepository, "get_with_reservation", read_then_the_first_attempt_commits):
        duplicate = stock_service().receive(WORKER, *vars(key).values(), 5, "DO-9", request_key="do-9")

    assert (duplicate.on_hand, duplicate.available) == (raced[0].on_hand, raced[0].available) == (5, 5)
    assert levels(*vars(key).values()) == (5, 0, 5)
    assert len(audit(action="receipt")) == 1
