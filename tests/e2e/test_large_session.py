"""A session of 1 000 buyers settles in the local stack in pages (GB-9, GB-10, GB-15).

This module starts a stack of its own. The session's deadline is days ahead, so joining stays open however
slow the machine is (issue 6, defect 9: a test must not depend on it); once every payment is processed the
test fires the deadline with POST /_local/clock/advance, which also passes near-expiry first.

Every buyer joins first, then every buyer pays. With MOQ = target = 1 000 the platform top-up (GB-12) cannot
happen: no unit is left to top up once all have paid. Near-expiry comes after every payment, so no buyer is
reminded either: the outcome does not depend on timing. Phase timings are printed (``pytest -s``).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from tests.e2e.conftest import LocalStackClient, running_local_stack

pytestmark = pytest.mark.e2e

BUYERS = 1_000
UNIT_PRICE = 100_000
DEADLINE_AHEAD = timedelta(days=8)  # after the longest payment window (7 days), so invoices last until paid
# Generous bounds, not expectations: joining and paying take 130-140 s on two quiet cores, settling ~60 s.
PAYMENTS_TIMEOUT_SECONDS = 1200
SETTLE_TIMEOUT_SECONDS = 900  # after the deadline: ten settlement pages, then the purchase order
# SettleSessionPage takes 100 participants a page (SETTLEMENT_PAGE_SIZE's default: the template leaves it
# unset), so 1 000 buyers take ten turns of the state machine's page loop.
SETTLEMENT_PAGE_SIZE = 100
CLIENT_THREADS = 8  # the stack runs one invocation at a time: more threads only overlap HTTP round trips
LIST_LIMIT = 100  # the API's largest page
Job = TypeVar("Job")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackClient]:
    with running_local_stack(tmp_path_factory.mktemp("large-session")) as base_url:
        yield LocalStackClient(base_url)


class Stopwatch:
    def __init__(self) -> None:
        self.started = self._lap_started = time.monotonic()

    def lap(self, phase: str) -> None:
        now = time.monotonic()
        print(f"{phase}: {now - self._lap_started:.1f} s (total {now - self.started:.1f} s)")  # noqa: T201
        self._lap_started = now


def in_parallel(base_url: str, work: Callable[[LocalStackClient, Job], Any], jobs: Iterable[Job]) -> list[Any]:
    """``work(client, job)`` for every job, on a few threads with a client each (a requests.Session is not
    thread-safe)."""
    clients = threading.local()

    def run(job: Job) -> Any:
        if not hasattr(clients, "client"):
            clients.client = LocalStackClient(base_url)
        return work(clients.client, job)

    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        return list(pool.map(run, jobs))


def wait_for(read: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool], timeout: float) -> dict:
    """What ``read`` returns once ``done`` with it, or when ``timeout`` seconds have passed."""
    give_up = time.monotonic() + timeout
    current = read()
    while not done(current) and time.monotonic() < give_up:
        time.sleep(1)
        current = read()
    return current


def every_page(api: LocalStackClient, path: str, token: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = api.get(path, token, params={**params, "limit": LIST_LIMIT, "cursor": cursor})
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items


# Minutes of real work (1 000 joins over HTTP): the 300 s default would end it early on a busy machine, where the
# other test process shares its two cores.
@pytest.mark.timeout(900)
def test_a_session_of_a_thousand_buyers_settles_in_pages(api):
    run = uuid.uuid4().hex[:8]
    admin = api.token("admin-1", ["admin"])
    warehouse = api.token("warehouse-1", ["warehouse"])
    product = api.get("/v1/products").json()["items"][0]
    staff = api.token("factory-staff-1", ["factory"], factory_id=product["factory_id"])
    stopwatch = Stopwatch()
    deadline = datetime.now(UTC) + DEADLINE_AHEAD
    created = api.post(
        "/v1/sessions",
        staff,
        json={
            "product_id": product["id"],
            "moq": BUYERS,
            "target_quantity": BUYERS,
            "base_price": UNIT_PRICE,
            "tiers": [],
            "deadline": deadline.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "max_per_buyer": 1,
            "payment_window_seconds": 7 * 86_400,  # the longest: each invoice lasts until the deadline
        },
    )
    assert created.status_code == 201, created.text
    session_id = created.json()["id"]

    def session() -> dict[str, Any]:
        return api.get(f"/v1/sessions/{session_id}").json()

    def join(client: LocalStackClient, n: int) -> str:
        buyer = client.token(f"e2e-{run}-buyer-{n}", ["buyer"])
        joined = client.post(
            f"/v1/sessions/{session_id}/join",
            buyer,
            json={"quantity": 1},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        assert joined.status_code == 201, joined.text
        return joined.json()["payment"]["invoice_id"]

    def pay(client: LocalStackClient, invoice_id: str) -> None:
        paid = client.post(f"/_xendit/simulate/invoices/{invoice_id}/pay", json={})
        assert paid.status_code == 200, paid.text

    invoices = in_parallel(api.base_url, join, range(BUYERS))
    stopwatch.lap(f"{BUYERS} joins")
    in_parallel(api.base_url, pay, invoices)
    stopwatch.lap(f"{BUYERS} payments simulated")
    paid = wait_for(session, lambda current: current["paid_quantity"] == BUYERS, PAYMENTS_TIMEOUT_SECONDS)
    stopwatch.lap("every PAID webhook processed")
    assert paid["paid_quantity"] == BUYERS, f"{paid['paid_quantity']} of {BUYERS} payments processed"

    def fire_the_deadline() -> dict[str, Any]:  # again until claimed: harmless, and sure to reach the execution
        advanced = api.post("/_local/clock/advance", json={"seconds": int(2 * DEADLINE_AHEAD.total_seconds())})
        assert advanced.status_code == 200, advanced.text
        return session()

    settled = wait_for(fire_the_deadline, lambda current: current["status"] == "in_production", SETTLE_TIMEOUT_SECONDS)
    stopwatch.lap("deadline, settlement in pages, purchase order")

    assert settled["status"] == "in_production", settled
    assert (settled["paid_quantity"], settled["final_unit_price"]) == (BUYERS, UNIT_PRICE)
    orders = every_page(api, "/v1/orders", admin, session_id=session_id)
    assert len(orders) == BUYERS > SETTLEMENT_PAGE_SIZE  # an order for each buyer, settled over ten pages
    assert len({order["user_id"] for order in orders}) == BUYERS
    assert {(order["status"], order["total"]) for order in orders} == {("paid", UNIT_PRICE)}
    [purchase_order] = api.get("/v1/purchase-orders", warehouse, params={"session_id": session_id}).json()["items"]
    assert purchase_order["quantity"] == BUYERS
    assert api.get("/v1/admin/ledger/trial-balance", admin).json()["balanced"]
    stopwatch.lap("orders, purchase order and trial balance checked")
