"""Recording which DynamoDB items every request writes and reads, and the capacity units DynamoDB would bill for it:
read-only instrumentation on the same hook as ``dynamodb_calls``, no product code changed.

Each item a request touches is keyed by its table and its primary key. Every operation inside a
``TransactWriteItems`` counts as a write of its item, a ``ConditionCheck`` included: DynamoDB bills it as a
transactional write, and it conflicts with every other transaction on that item as a write does. A write that
fails its condition still counts: DynamoDB bills it, and it took the item's capacity.

Units follow DynamoDB's on-demand billing: a write costs 1 WRU per started KB of the larger of the item before
and after it (2 inside a transaction), plus the same again for each global secondary index whose key the item
carries (before or after); a read costs 1 RRU per started 4 KB read strongly consistent, half that eventually
consistent, twice that inside ``TransactGetItems``. Item sizes are moto's (attribute names plus values).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler

from benchmarks.dynamodb_calls import Answer, intercepting_dynamodb_requests

WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096
TRANSACTION_FACTOR = 2
EVENTUALLY_CONSISTENT_FACTOR = 0.5
SINGLE_WRITE_ACTIONS = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem")
READ_ACTIONS = ("GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems")


@dataclass(frozen=True, order=True)
class ItemKey:
    table: str
    key: tuple[tuple[str, str], ...]  # (attribute, value) for the hash key, then the range key

    def shown(self, replacements: dict[str, str] | None = None) -> str:
        text = " ".join(f"{name}={value}" for name, value in self.key)
        for original, replacement in (replacements or {}).items():
            text = text.replace(original, replacement)
        return text


@dataclass
class DynamoDBItems:
    """What a stretch of work did to DynamoDB's items; ``+`` adds two stretches up."""

    writes: Counter[ItemKey] = field(default_factory=Counter)
    reads: Counter[ItemKey] = field(default_factory=Counter)
    transactions: int = 0  # TransactWriteItems calls
    transaction_items: int = 0
    single_writes: int = 0  # PutItem, UpdateItem, DeleteItem and BatchWriteItem calls
    read_calls: int = 0
    write_units: float = 0.0  # table WRU
    index_write_units: float = 0.0  # WRU for global secondary indexes
    read_units: float = 0.0

    def __add__(self, other: DynamoDBItems) -> DynamoDBItems:
        return DynamoDBItems(
            self.writes + other.writes,
            self.reads + other.reads,
            self.transactions + other.transactions,
            self.transaction_items + other.transaction_items,
            self.single_writes + other.single_writes,
            self.read_calls + other.read_calls,
            self.write_units + other.write_units,
            self.index_write_units + other.index_write_units,
            self.read_units + other.read_units,
        )


def _table(handler: DynamoHandler, name: str) -> Table:
    return handler.dynamodb_backend.get_table(name)


def _key_attributes(table: Table, attributes: dict[str, Any]) -> dict[str, Any]:
    names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
    return {name: attributes[name] for name in names}


def _item_key(table: Table, attributes: dict[str, Any]) -> ItemKey:
    key = _key_attributes(table, attributes)
    return ItemKey(table.name, tuple((name, str(next(iter(value.values())))) for name, value in key.items()))


def _stored(table: Table, attributes: dict[str, Any]) -> Item | None:
    key = _key_attributes(table, attributes)
    hash_key = DynamoType(key[table.hash_key_attr])
    range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
    return table.get_item(hash_key, range_key)


def _units(size: int, unit_bytes: int) -> int:
    return max(1, math.ceil(size / unit_bytes))


def _indexed_by(table: Table, items: list[Item | None]) -> int:
    """The global secondary indexes a write changes: those whose hash key the item carries before or after."""
    index_keys = [
        next(k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH") for index in table.global_indexes
    ]
    return sum(any(item is not None and key in item.attrs for item in items) for key in index_keys)


def _writes_in(action: str, params: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(table, attributes holding the item's key) for each item the request writes."""
    if action == "BatchWriteItem":
        return [
            (name, request.get("Item") or request["Key"])
            for name, requests in params.get("RequestItems", {}).items()
            for entry in requests
            for request in entry.values()
        ]
    if action in SINGLE_WRITE_ACTIONS:
        return [(params["TableName"], params.get("Item") or params["Key"])]
    if action == "TransactWriteItems":
        return [
            (operation["TableName"], operation.get("Item") or operation["Key"])
            for entry in params.get("TransactItems", [])
            for operation in entry.values()
        ]
    return []


def _items_read(action: str, params: dict[str, Any], response: Any) -> list[tuple[str, dict[str, Any]]]:
    """(table, attributes holding the key) for each item the read returned."""
    body = json.loads(response[2]) if isinstance(response, tuple) and response[2] else {}
    if action == "GetItem":
        return [(params["TableName"], body["Item"])] if "Item" in body else []
    if action in ("Query", "Scan"):
        return [(params["TableName"], item) for item in body.get("Items", [])]
    if action == "BatchGetItem":
        return [(table, item) for table, items in body.get("Responses", {}).items() for item in items]
    if action == "TransactGetItems" and "Responses" in body:
        gets = [entry["Get"] for entry in params.get("TransactItems", [])]
        return [
            (get["TableName"], answer["Item"]) for get, answer in zip(gets, body["Responses"], strict=True) if answer
        ]
    return []


def _read_units(action: str, params: dict[str, Any], sizes: list[int]) -> float:
    if action == "TransactGetItems":
        return TRANSACTION_FACTOR * sum(_units(size, READ_UNIT_BYTES) for size in sizes)
    consistency = 1.0 if params.get("ConsistentRead") else EVENTUALLY_CONSISTENT_FACTOR
    if action in ("Query", "Scan"):  # a query is billed on the sum of the items it read
        return consistency * _units(sum(sizes), READ_UNIT_BYTES)
    return consistency * sum(_units(size, READ_UNIT_BYTES) for size in sizes or [0])


@contextmanager
def recording_dynamodb_items() -> Iterator[DynamoDBItems]:
    recorded = DynamoDBItems()

    def record_then_answer(handler: DynamoHandler, action: str, answer: Answer) -> Any:
        params = handler.params
        written = [(_table(handler, name), attributes) for name, attributes in _writes_in(action, params)]
        before = [_stored(table, attributes) for table, attributes in written]
        response = answer()
        factor = TRANSACTION_FACTOR if action == "TransactWriteItems" else 1
        for (table, attributes), was in zip(written, before, strict=True):
            now = _stored(table, attributes)
            units = factor * _units(max(item.size() if item else 0 for item in (was, now)), WRITE_UNIT_BYTES)
            recorded.writes[_item_key(table, attributes)] += 1
            recorded.write_units += units
            recorded.index_write_units += units // factor * _indexed_by(table, [was, now])
        if action == "TransactWriteItems":
            recorded.transactions += 1
            recorded.transaction_items += len(written)
        elif action in SINGLE_WRITE_ACTIONS:
            recorded.single_writes += 1
        elif action in READ_ACTIONS:
            recorded.read_calls += 1
            read = [(_table(handler, name), attributes) for name, attributes in _items_read(action, params, response)]
            for table, attributes in read:
                recorded.reads[_item_key(table, attributes)] += 1
            sizes = [item.size() for item in (_stored(table, attributes) for table, attributes in read) if item]
            recorded.read_units += _read_units(action, params, sizes)
        return response

    with intercepting_dynamodb_requests(record_then_answer):
        yield recorded
