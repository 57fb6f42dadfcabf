"""Optimistic concurrency: a use case that read, decided and wrote conditionally runs again when another
writer got there first (the conditional write failed with ConcurrentUpdate)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from patungan.core.errors import ConcurrentUpdate

MAX_ATTEMPTS = 5
T = TypeVar("T")


def retry_stale(operation: Callable[[], T]) -> T:
    """Run ``operation`` again when the data changed under it; the last attempt's error propagates."""
    for _ in range(MAX_ATTEMPTS - 1):
        try:
            return operation()
        except ConcurrentUpdate:
            continue
    return operation()
