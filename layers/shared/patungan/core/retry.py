"""Optimistic concurrency: a use case that read, decided and wrote conditionally runs again when another
writer got there first (the conditional write failed with ConcurrentUpdate, a TransactionConflict among
them). Attempts are spread by exponential backoff with full jitter, so writers that collided on a hot item
do not collide again in lockstep; a bounded number of them, then the ConcurrentUpdate propagates (503: the
caller may retry; a state machine's Retry matches it)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from patungan.core.errors import ConcurrentUpdate

MAX_ATTEMPTS = 5
BACKOFF_BASE_SECONDS = 0.01
BACKOFF_CAP_SECONDS = 0.5
T = TypeVar("T")


def full_jitter(attempt: int, *, base: float, cap: float) -> float:
    """How long to wait before attempt ``attempt + 1`` of a call to another service (1-based ``attempt``): uniform
    in [0, min(cap, base·2^attempt)], so callers that failed together do not retry in lockstep."""
    return random.uniform(0, min(cap, base * 2**attempt))


def back_off(attempt: int) -> None:
    """Sleep before attempt ``attempt + 1`` of a conflicted write (1-based ``attempt``)."""
    time.sleep(full_jitter(attempt, base=BACKOFF_BASE_SECONDS, cap=BACKOFF_CAP_SECONDS))


def retry_stale(operation: Callable[[], T], attempts: int = MAX_ATTEMPTS) -> T:
    """Run ``operation`` again, after a backoff, when the data changed under it; the last of ``attempts``
    attempts' error propagates."""
    for attempt in range(1, attempts):
        try:
            return operation()
        except ConcurrentUpdate:
            back_off(attempt)
    return operation()
