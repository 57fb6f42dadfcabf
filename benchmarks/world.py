"""The group-buying world the scenarios run in, and the steps they take in it.

It is the integration tests' world (moto built from template.yaml, the local Xendit on loopback) on moto
patched as ``make run`` patches it; the handlers are invoked in-process with the events API Gateway, the
Xendit callback and Step Functions send.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from typing import Any, NoReturn

from benchmarks.progress import Progress
from emulator import moto_patches
from tests.support.groupbuy import GroupBuyWorld, buyer, group_buy_world
from tests.support.lambdas import call_api, invoke

PAGES_PROGRESS_EVERY = 10
# Every buyer joins at the base price before anyone pays, and the session fills to 100 %: it closes at the
# last tier's price, so every settled participant also gets a tier refund (a ledger movement).
BASE_PRICE = 100_000
TIERS = [{"min_fill_percent": 50, "unit_price": 90_000}, {"min_fill_percent": 100, "unit_price": 80_000}]


class ScenarioFailed(RuntimeError):
    """The product did not do what the scenario needs; a figure measured past this would mean nothing."""


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise ScenarioFailed(what)


def _not_used_here(*_: Any) -> NoReturn:
    # Handlers are invoked directly and no EventBridge rule is deployed: moto never runs a Lambda function
    # nor delivers an event in these scenarios.
    raise ScenarioFailed("moto tried to run a Lambda function or deliver an event")


@contextlib.contextmanager
def benchmark_world() -> Iterator[tuple[GroupBuyWorld, moto_patches.MotoPatches]]:
    """The world, and the local stack's moto patches (to undo for a figure on moto as released). The
    handlers' stdout (Powertools' metrics) goes nowhere, so that only the figures are printed."""
    patches = moto_patches.install(run_function=_not_used_here, deliver_event=_not_used_here, time_scale=1)
    try:
        with open(os.devnull, "w") as nowhere, contextlib.redirect_stdout(nowhere), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="No application metrics to publish")
            with group_buy_world() as world:
                yield world, patches
    finally:
        patches.undo()


def open_session(world: GroupBuyWorld, *, moq: int, target_quantity: int) -> str:
    session = world.session(
        moq=moq, target_quantity=target_quantity, max_per_buyer=1, base_price=BASE_PRICE, tiers=TIERS
    )
    return session["id"]


def step(function: str, session_id: str) -> dict[str, Any]:
    """One Task of a session state machine."""
    return invoke(function, {"session_id": session_id})


def run_pages(function: str, session_id: str, progress: Progress | None = None) -> int:
    """A state machine's page loop: the page function again with the cursor until it is done; pages run."""
    pages, cursor, done = 0, None, False
    while not done:
        page = invoke(function, {"session_id": session_id, "cursor": cursor})
        cursor, done = page["cursor"], page["done"]
        pages += 1
        if progress is not None and pages % PAGES_PROGRESS_EVERY == 0:
            progress(f"{pages} pages")
    return pages


def join(buyer_number: int, session_id: str, idempotency_key: str | None = None) -> Any:
    """POST /v1/sessions/{id}/join for one unit; the participation, with its invoice at the local Xendit."""
    response = call_api(
        "JoinSessionFunction",
        "POST",
        f"/v1/sessions/{session_id}/join",
        resource="/v1/sessions/{id}/join",
        path_parameters={"id": session_id},
        body={"quantity": 1},
        claims=buyer(buyer_number),
        headers={"Idempotency-Key": idempotency_key} if idempotency_key else None,
    )
    expect(response.status == 201, f"join answered {response.status}: {response.body}")
    return response.body


def paid_callback(world: GroupBuyWorld, participation: dict[str, Any]) -> None:
    """Xendit's PAID callback for the participation's invoice, through the webhook handler."""
    response = world.invoice_callback(participation, "PAID")
    expect(response.body == {"status": "paid"}, f"PAID webhook answered {response.status}: {response.body}")
