"""DynamoDB's answer to contention, which moto never gives (LOCAL_STACK_NOTES): a transaction touching a hot
item is cancelled with ``TransactionConflict`` now and then. Installed around the one DynamoDB client the
code uses; everything else goes to moto unchanged."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from botocore.exceptions import ClientError

from patungan.adapters import dynamodb

HotItem = Callable[[str, str], bool]
"""(pk, sk) -> whether writes to that item are contended."""


class ConflictingDynamoDB:
    """The real client, except ``transact_write_items``: one touching a hot item is cancelled at ``rate``."""

    def __init__(self, real: Any, hot: HotItem, rate: float, rng: random.Random) -> None:
        self._real = real
        self._hot = hot
        self._rate = rate
        self._rng = rng
        self.injected = 0
        self.hot_keys_hit: Counter[tuple[str, str]] = Counter()
        """(pk, sk) of each hot item a cancelled transaction touched, how many times."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def transact_write_items(self, **kwargs: Any) -> Any:
        keys = [_key_of(item) for item in kwargs["TransactItems"]]
        touched = [self._hot(*key) for key in keys]
        if any(touched) and self._rng.random() < self._rate:
            self.injected += 1
            self.hot_keys_hit.update(key for key, hot in zip(keys, touched, strict=True) if hot)
            reasons = [{"Code": "TransactionConflict" if hot else "None"} for hot in touched]
            raise ClientError(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"},
                    "CancellationReasons": reasons,
                },
                "TransactWriteItems",
            )
        return self._real.transact_write_items(**kwargs)


def _key_of(item: dict[str, Any]) -> tuple[str, str]:
    [body] = item.values()
    key = body.get("Key") or body.get("Item") or {}
    return key.get("pk", {}).get("S", ""), key.get("sk", {}).get("S", "")


@contextmanager
def transaction_conflicts(hot: HotItem, rate: float, seed: int = 8) -> Iterator[ConflictingDynamoDB]:
    """While open, the code's transactions on hot items fail with TransactionConflict at ``rate``."""
    injector = ConflictingDynamoDB(dynamodb.client("dynamodb"), hot, rate, random.Random(seed))
    real_client = dynamodb.client

    def client(service: str) -> Any:
        return injector if service == "dynamodb" else real_client(service)

    with mock.patch.object(dynamodb, "client", client):
        yield injector
