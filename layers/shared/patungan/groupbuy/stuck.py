"""A session lifecycle step that kept failing (retries spent, or a broken invariant): the state machine's
Catch lands here before its Fail state. The session shows ``stuck_step`` and ``lifecycle_error``, the log
says CRITICAL, the ``SessionLifecycleStuck`` metric counts it, and the failed execution raises its
ExecutionsFailed alarm (defect 5)."""

from __future__ import annotations

from typing import Any

from patungan.core.clock import Clock, to_iso
from patungan.core.observability import logger, metrics
from patungan.groupbuy.repository import GroupBuyRepository

CAUSE_LIMIT = 2_000  # a Lambda error's Cause carries a stack trace; the session keeps its start


class StuckSessions:
    def __init__(self, repository: GroupBuyRepository, clock: Clock) -> None:
        self.repository = repository
        self.clock = clock

    def record(self, session_id: str, workflow: str, step: str, error: dict[str, Any]) -> dict[str, Any]:
        stuck_step = f"{workflow}.{step}"
        lifecycle_error = {
            "error": str(error.get("Error", "")),
            "cause": str(error.get("Cause", ""))[:CAUSE_LIMIT],
        }
        logger.critical(
            "session lifecycle stuck",
            extra={"session_id": session_id, "stuck_step": stuck_step, "lifecycle_error": lifecycle_error},
        )
        metrics.add_metric(name="SessionLifecycleStuck", unit="Count", value=1)
        self.repository.mark_stuck(session_id, step=stuck_step, error=lifecycle_error, at=to_iso(self.clock.now()))
        return {"session_id": session_id, "stuck_step": stuck_step}
