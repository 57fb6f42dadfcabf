"""DynamoDB round trips per group-buying operation, each on its real path: the join API (with a real invoice
at the local Xendit), the PAID webhook handler, and the session state machines' Task handlers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.dynamodb_calls import DynamoDBCalls, counting_dynamodb_calls
from benchmarks.progress import Progress
from benchmarks.world import benchmark_world, expect, join, open_session, paid_callback, run_pages, step

# Participants per session: enough to spread a page's own reads thinly over them.
PARTICIPANTS = 20


@dataclass(frozen=True)
class RoundTrips:
    operation: str
    calls: DynamoDBCalls
    operations: int  # how many operations made ``calls``: the table shows calls per operation


def measure_round_trips(progress: Progress) -> list[RoundTrips]:
    half = PARTICIPANTS // 2
    rows: list[RoundTrips] = []

    def measured(operation: str, operations: int, action: Callable[[], Any]) -> Any:
        with counting_dynamodb_calls() as calls:
            result = action()
        rows.append(RoundTrips(operation, calls, operations))
        return result

    with benchmark_world() as (world, _):
        progress(f"a session of {PARTICIPANTS} buyers who join, pay, are settled and paid out")
        succeeding = open_session(world, moq=half, target_quantity=PARTICIPANTS)
        joined = measured("join", half, lambda: [join(n, succeeding) for n in range(half)])
        joined += measured(
            "join with an Idempotency-Key header",
            half,
            lambda: [join(n, succeeding, f"join-{n}") for n in range(half, PARTICIPANTS)],
        )
        for participation in joined:
            world.pay_at_xendit(participation)  # the buyer pays at Xendit: no DynamoDB call
        measured("PAID invoice webhook", PARTICIPANTS, lambda: [paid_callback(world, p) for p in joined])
        outcome = measured("claim (per session)", 1, lambda: step("ClaimSessionFunction", succeeding)["outcome"])
        expect(outcome == "succeed", f"the full session was claimed as {outcome}")
        measured(
            "settled participant (settle pages / participants)",
            PARTICIPANTS,
            lambda: run_pages("SettleSessionPageFunction", succeeding),
        )
        measured(
            "finalize + purchase order (per session)",
            1,
            lambda: [step(f, succeeding) for f in ("FinalizeSessionSuccessFunction", "RaisePurchaseOrderFunction")],
        )
        measured("mark delivered (per session)", 1, lambda: step("MarkSessionDeliveredFunction", succeeding))
        measured(
            "released payment (release pages / participants)",
            PARTICIPANTS,
            lambda: run_pages("ReleaseEscrowPageFunction", succeeding),
        )
        measured("complete escrow release (per session)", 1, lambda: step("CompleteEscrowReleaseFunction", succeeding))

        progress(f"a session of {PARTICIPANTS} paid buyers that misses its MOQ and refunds them")
        failing = open_session(world, moq=PARTICIPANTS + 1, target_quantity=2 * PARTICIPANTS)
        for n in range(PARTICIPANTS, 2 * PARTICIPANTS):
            participation = join(n, failing)
            world.pay_at_xendit(participation)
            paid_callback(world, participation)
        outcome = step("ClaimSessionFunction", failing)["outcome"]
        expect(outcome == "fail", f"the session below its MOQ was claimed as {outcome}")
        step("MarkSessionFailedFunction", failing)
        measured(
            "refund-requested participant (refund pages / participants)",
            PARTICIPANTS,
            lambda: run_pages("RefundSessionPageFunction", failing),
        )
    return rows
