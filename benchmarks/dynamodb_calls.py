"""Counting the DynamoDB API calls that reach moto: read-only instrumentation, no product code changed.

moto's ``DynamoHandler.call_action`` answers every DynamoDB request of every client in the process (the
shared layer's, and Powertools idempotency's own), so wrapping it counts every round trip.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from moto.dynamodb.responses import DynamoHandler

NAMED_ACTIONS = ("GetItem", "Query", "PutItem", "UpdateItem", "TransactWriteItems")


@dataclass
class DynamoDBCalls:
    """API calls by action, and the items (Put/Update/Delete/ConditionCheck) inside TransactWriteItems."""

    by_action: Counter[str] = field(default_factory=Counter)
    transaction_items: int = 0

    @property
    def total(self) -> int:
        return sum(self.by_action.values())

    @property
    def other(self) -> int:
        """Calls of any action not in ``NAMED_ACTIONS`` (none is expected: a non-zero figure is news)."""
        return self.total - sum(self.by_action[action] for action in NAMED_ACTIONS)


Answer = Callable[[], Any]


@contextmanager
def intercepting_dynamodb_requests(intercept: Callable[[DynamoHandler, str, Answer], Any]) -> Iterator[None]:
    """``intercept(handler, action, answer)`` sees every DynamoDB request that reaches moto and must return
    ``answer()``, moto's response."""
    answer = DynamoHandler.call_action  # the local stack's serialised one while its patches are installed

    def intercepted(handler: DynamoHandler) -> Any:
        return intercept(handler, handler.get_endpoint_name(handler.headers), lambda: answer(handler))

    with mock.patch.object(DynamoHandler, "call_action", intercepted):
        yield


@contextmanager
def counting_dynamodb_calls() -> Iterator[DynamoDBCalls]:
    calls = DynamoDBCalls()

    def count_then_answer(handler: DynamoHandler, action: str, answer: Answer) -> Any:
        calls.by_action[action] += 1
        if action == "TransactWriteItems":
            calls.transaction_items += len(handler.params.get("TransactItems", []))
        return answer()

    with intercepting_dynamodb_requests(count_then_answer):
        yield calls
