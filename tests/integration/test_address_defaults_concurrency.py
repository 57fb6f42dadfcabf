"""One default address per user under concurrency (ACC-2; issue 9): real threads on moto, each DynamoDB call
serialised (moto's transactions are not thread-safe) but everything between the calls free to interleave, so
a read-then-write switch would leave two defaults (or none)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from unittest import mock

from moto.dynamodb.responses import DynamoHandler

from emulator.moto_patches import _serialised
from patungan.accounts.models import AddressInput, AddressUpdate
from patungan.composition import address_service
from patungan.core.errors import ConcurrentUpdate, Conflict
from tests.support.lambdas import load_event

USER = "usr_siti"
THREADS = 8


@contextmanager
def threads(count: int):
    with (
        mock.patch.object(DynamoHandler, "call_action", _serialised(DynamoHandler.call_action)),
        ThreadPoolExecutor(max_workers=count) as pool,
    ):
        yield pool


def saved_addresses(aws, user_id: str = USER) -> list[dict]:
    items = aws.dynamodb().scan(TableName=aws.tables["AccountsTable"])["Items"]
    return [item for item in items if item["pk"]["S"] == f"USER#{user_id}" and item["sk"]["S"] != "ADDRESS_BOOK"]


def defaults(aws, user_id: str = USER) -> list[str]:
    return [item["id"]["S"] for item in saved_addresses(aws, user_id) if item["is_default"]["BOOL"]]


def book(user_id: str = USER):
    return address_service().repository.book(user_id)


def add_addresses(count: int) -> list[str]:
    body = load_event("accounts/create_address.json")
    return [address_service().add(USER, AddressInput(**body, is_default=False)).id for _ in range(count)]


def test_concurrent_switches_read_from_one_book_leave_exactly_one_default(aws):
    """Every thread reads the book, then all write at once: the repository lets exactly one switch commit."""
    addresses = add_addresses(THREADS + 1)
    contenders = addresses[1:]
    repository = address_service().repository
    all_read = threading.Barrier(THREADS)

    def make_default(address_id: str) -> str:
        read = repository.book(USER)
        all_read.wait()
        try:
            repository.update(read, USER, address_id, {}, "2026-11-30T07:00:00Z")
        except ConcurrentUpdate:
            return "refused"
        return address_id

    with threads(THREADS) as pool:
        outcomes = list(pool.map(make_default, contenders))

    [winner] = [outcome for outcome in outcomes if outcome != "refused"]
    assert defaults(aws) == [winner]
    assert book().default_address_id == winner
    assert book().count == THREADS + 1


def test_concurrent_make_default_requests_end_with_one_default_the_last_that_succeeded(aws):
    addresses = add_addresses(THREADS + 1)

    def make_default(address_id: str) -> str:
        try:
            return address_service().update(USER, address_id, AddressUpdate(is_default=True)).updated_at
        except ConcurrentUpdate:
            return "gave_up"

    with threads(THREADS) as pool:
        outcomes = dict(zip(addresses[1:], pool.map(make_default, addresses[1:]), strict=True))

    [default] = defaults(aws)
    assert outcomes[default] != "gave_up"
    assert book().default_address_id == default
    assert len(saved_addresses(aws)) == book().count == THREADS + 1


def test_a_new_users_concurrent_first_addresses_make_exactly_one_default(aws):
    body = load_event("accounts/create_address.json")

    def add(_):
        try:
            return address_service().add(USER, AddressInput(**body)).id
        except ConcurrentUpdate:
            return None

    with threads(THREADS) as pool:
        added = [address_id for address_id in pool.map(add, range(THREADS)) if address_id]

    assert sorted(item["id"]["S"] for item in saved_addresses(aws)) == sorted(added)
    assert len(defaults(aws)) == 1
    assert book().count == len(added)


def test_deleting_the_default_while_others_become_default_leaves_exactly_one(aws):
    addresses = add_addresses(THREADS)
    first_default = addresses[0]

    def act(address_id: str) -> None:
        try:
            if address_id == first_default:
                address_service().delete(USER, address_id)
            else:
                address_service().update(USER, address_id, AddressUpdate(is_default=True))
        except ConcurrentUpdate:
            pass

    with threads(THREADS) as pool:
        list(pool.map(act, addresses))

    remaining = saved_addresses(aws)
    assert len(defaults(aws)) == 1
    assert book().default_address_id == defaults(aws)[0]
    assert book().count == len(remaining)


def test_concurrent_additions_to_a_nearly_full_book_stop_at_the_limit(aws, monkeypatch):
    """ACC-2 (review of issue 9): the cap holds under concurrency: with room for 2 more, 8 concurrent additions
    save exactly 2, the others are refused (limit reached, or a conflict left over after the retries); the
    book's count is the number saved and exactly one is the default."""
    from patungan.accounts import service

    monkeypatch.setattr(service, "MAX_ADDRESSES_PER_USER", 3)
    add_addresses(1)
    body = load_event("accounts/create_address.json")

    def add(_):
        try:
            return address_service().add(USER, AddressInput(**body)).id
        except Conflict as refused:
            return refused.code

    with threads(THREADS) as pool:
        outcomes = list(pool.map(add, range(THREADS)))

    saved = [outcome for outcome in outcomes if outcome.startswith("adr_")]
    assert len(saved) == 2
    assert set(outcomes) - set(saved) <= {"address_limit_reached", "concurrent_update"}
    assert len(saved_addresses(aws)) == book().count == 3
    assert len(defaults(aws)) == 1
