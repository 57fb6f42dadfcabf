"""Step Functions time in the local stack.

An execution's clock runs ``time_scale`` times faster than the real one from the execution's start, plus
whatever ``advance`` added while the execution was running. A Wait state (some seconds, or until a timestamp)
ends when that clock reaches its end, so a deadline an hour after the start passes 3 600 / time_scale real
seconds after it, however many Waits lead up to it, or at once when the clock is advanced past it.

``advance`` is how a person or a test fires a deadline without waiting for it (``POST /_local/clock/advance``):
the executions running at that moment see the time jump; the functions, the local Xendit and executions
started later keep the real clock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta


def _real_now() -> datetime:
    return datetime.now(UTC)


class ExecutionClock:
    def __init__(self, time_scale: float, real_now: Callable[[], datetime] = _real_now) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.time_scale = time_scale
        self._real_now = real_now
        self._lock = threading.Lock()
        self._advanced: dict[str, timedelta] = {}  # execution id -> time added by advance

    def now(self, execution_id: str, started: datetime) -> datetime:
        """The time the execution ``execution_id`` (started at ``started``, UTC) sees now."""
        with self._lock:
            advanced = self._advanced.get(execution_id, timedelta(0))
        return started + (self._real_now() - started) * self.time_scale + advanced

    def real_seconds_until(self, execution_id: str, started: datetime, moment: datetime) -> float:
        """Real seconds until the execution's clock reaches ``moment`` (0 or less: it has)."""
        return (moment - self.now(execution_id, started)).total_seconds() / self.time_scale

    def advance(self, execution_ids: Iterable[str], seconds: float) -> None:
        """Move the clocks of these executions ``seconds`` ahead (Wait states notice within a second)."""
        if seconds <= 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            for execution_id in execution_ids:
                self._advanced[execution_id] = self._advanced.get(execution_id, timedelta(0)) + timedelta(
                    seconds=seconds
                )
