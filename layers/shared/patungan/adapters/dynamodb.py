"""DynamoDB base: (de)serialisation, single conditional writes and transactions, and the translation of
AWS errors into domain errors (a failed condition → the caller's domain error; throttling or an
unreachable endpoint → 503)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel

from patungan.adapters.aws import client
from patungan.core.errors import ConcurrentUpdate, Conflict, DependencyUnavailable, DomainError
from patungan.core.pagination import invalid_cursor

FailureFactory = DomainError | Callable[[dict[str, Any] | None], DomainError]

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

MAX_TRANSACTION_ITEMS = 100
# Queries one list page may make while a filter thins the results out (each reads at most the page size).
MAX_READS_PER_PAGE = 10
MAX_KEY_LENGTH = 1024  # a sort key's limit in bytes; a partition key's is 2 048
_UNAVAILABLE_CODES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "LimitExceededException",
}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, set):
        return {_plain(v) for v in value}
    return value


def _storable(value: Any) -> Any:
    """Models become plain dicts, so a repository may write a model-typed attribute as it is; floats (an address's
    coordinates) become the Decimals DynamoDB takes, from their shortest text so 106.8 stays 106.8."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, BaseModel):
        return _storable(value.model_dump())
    if isinstance(value, list):
        return [_storable(v) for v in value]
    if isinstance(value, dict):
        return {k: _storable(v) for k, v in value.items()}
    return value


def serialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(_storable(v)) for k, v in item.items() if v is not None}


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _plain(_deserializer.deserialize(v)) for k, v in item.items()}


def _values(values: dict[str, Any] | None) -> dict[str, Any] | None:
    return {k: _serializer.serialize(_storable(v)) for k, v in values.items()} if values else None


def _failure(on_fail: FailureFactory | None, old: dict[str, Any] | None) -> DomainError:
    if on_fail is None:
        return Conflict("the resource changed while this request ran; retry", code="conflict")
    if isinstance(on_fail, DomainError):
        return on_fail
    return on_fail(old)


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn transport and capacity failures into 503 (DependencyUnavailable); nothing else is hidden."""
    try:
        yield
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _UNAVAILABLE_CODES:
            raise DependencyUnavailable("the database is busy; retry shortly") from exc
        raise
    except BotoCoreError as exc:
        raise DependencyUnavailable("the database could not be reached; retry shortly") from exc


def _expression_args(
    condition: str | None, names: dict[str, str] | None, values: dict[str, Any] | None
) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if condition:
        args["ConditionExpression"] = condition
    if names:
        args["ExpressionAttributeNames"] = names
    if values:
        args["ExpressionAttributeValues"] = _values(values)
    return args


def _is_position_in(start_key: dict[str, Any], index: str | None, values: dict[str, Any] | None) -> bool:
    names = {"pk", "sk", *((f"{index}pk", f"{index}sk") if index else ())}
    return (
        set(start_key) == names
        and all(isinstance(value, str) and 0 < len(value.encode()) <= MAX_KEY_LENGTH for value in start_key.values())
        and start_key[f"{index or ''}pk"] == (values or {}).get(":pk")
    )


@dataclass(frozen=True)
class QueryResult:
    items: list[dict[str, Any]]
    last_key: dict[str, Any] | None


# DynamoDB's limit on the keys of one BatchGetItem.
MAX_BATCH_GET_KEYS = 100


class DynamoTable:
    """One table of one context. Keys and items are plain Python dicts (ints, strs, lists, dicts)."""

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def _client(self) -> Any:
        return client("dynamodb")

    def get(self, key: dict[str, Any], *, consistent: bool = True) -> dict[str, Any] | None:
        with translate_errors():
            response = self._client.get_item(TableName=self.name, Key=serialize(key), ConsistentRead=consistent)
        item = response.get("Item")
        return deserialize(item) if item else None

    def get_many(self, keys: list[dict[str, Any]], *, consistent: bool = True) -> list[dict[str, Any]]:
        """The items of ``keys`` that exist (at most 100 keys, one BatchGetItem and its retries of what DynamoDB
        left unprocessed), in no particular order."""
        if len(keys) > MAX_BATCH_GET_KEYS:
            raise ValueError(f"at most {MAX_BATCH_GET_KEYS} keys per read, not {len(keys)}")
        request = {self.name: {"Keys": [serialize(key) for key in keys], "ConsistentRead": consistent}}
        items: list[dict[str, Any]] = []
        while request:
            with translate_errors():
                response = self._client.batch_get_item(RequestItems=request)
            items.extend(deserialize(item) for item in response.get("Responses", {}).get(self.name, []))
            request = response.get("UnprocessedKeys") or {}
        return items

    def put(
        self,
        item: dict[str, Any],
        *,
        condition: str | None = None,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
        on_fail: FailureFactory | None = None,
    ) -> None:
        self._write("put_item", on_fail, condition, names, values, Item=serialize(item))

    def update(
        self,
        key: dict[str, Any],
        expression: str,
        *,
        condition: str | None = None,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
        on_fail: FailureFactory | None = None,
    ) -> dict[str, Any]:
        response = self._write(
            "update_item",
            on_fail,
            condition,
            names,
            values,
            Key=serialize(key),
            UpdateExpression=expression,
            ReturnValues="ALL_NEW",
        )
        return deserialize(response.get("Attributes", {}))

    def delete(
        self,
        key: dict[str, Any],
        *,
        condition: str | None = None,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
        on_fail: FailureFactory | None = None,
    ) -> None:
        self._write("delete_item", on_fail, condition, names, values, Key=serialize(key))

    def _write(
        self,
        operation: str,
        on_fail: FailureFactory | None,
        condition: str | None,
        names: dict[str, str] | None,
        values: dict[str, Any] | None,
        **request: Any,
    ) -> dict[str, Any]:
        args = _expression_args(condition, names, values)
        if condition:
            args["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        try:
            with translate_errors():
                return getattr(self._client, operation)(TableName=self.name, **request, **args)
        except ClientError as exc:
            raise self._condition_error(exc, on_fail) from exc

    def query(
        self,
        key_condition: str,
        *,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
        index: str | None = None,
        limit: int | None = None,
        start_key: dict[str, Any] | None = None,
        forward: bool = True,
        filter_expression: str | None = None,
        consistent: bool = False,
    ) -> QueryResult:
        args: dict[str, Any] = {"TableName": self.name, "KeyConditionExpression": key_condition}
        args.update(_expression_args(None, names, values))
        if index:
            args["IndexName"] = index
        if limit:
            args["Limit"] = limit
        if start_key:
            args["ExclusiveStartKey"] = serialize(start_key)
        if filter_expression:
            args["FilterExpression"] = filter_expression
        if consistent and not index:
            args["ConsistentRead"] = True
        args["ScanIndexForward"] = forward
        with translate_errors():
            response = self._client.query(**args)
        last = response.get("LastEvaluatedKey")
        return QueryResult([deserialize(i) for i in response.get("Items", [])], deserialize(last) if last else None)

    def query_page(
        self,
        key_condition: str,
        *,
        limit: int,
        start_key: dict[str, Any] | None = None,
        equal_to: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> QueryResult:
        """Up to ``limit`` matching items, reading on while a filter thins the pages out, but at most
        ``MAX_READS_PER_PAGE`` queries of at most ``limit`` items each: a filter that matches little over a
        long list answers a short (even empty) page with the cursor to read on, never reads the whole list
        in one request (issue 6 defect 9). ``equal_to`` filters on attributes equal to the given values (a
        None value does not filter).

        The page an API list answers: ``start_key`` comes from a client's cursor, so it must be a key this query
        could have returned - the table's key and, reading index ``gsiN``, its ``gsiNpk``/``gsiNsk``, all strings,
        in the partition ``:pk`` read - or it is refused (400), never sent to DynamoDB to fail there."""
        if start_key is not None and not _is_position_in(start_key, kwargs.get("index"), kwargs.get("values")):
            raise invalid_cursor()
        wanted = {name: value for name, value in (equal_to or {}).items() if value is not None}
        if wanted:
            kwargs["filter_expression"] = " AND ".join(f"#f_{name} = :f_{name}" for name in wanted)
            kwargs["names"] = {**(kwargs.get("names") or {}), **{f"#f_{name}": name for name in wanted}}
            kwargs["values"] = {
                **(kwargs.get("values") or {}),
                **{f":f_{name}": value for name, value in wanted.items()},
            }
        items: list[dict[str, Any]] = []
        last_key = start_key
        for _ in range(MAX_READS_PER_PAGE):
            result = self.query(key_condition, limit=limit - len(items), start_key=last_key, **kwargs)
            items.extend(result.items)
            last_key = result.last_key
            if last_key is None or len(items) >= limit:
                break
        return QueryResult(items, last_key)

    def scan_all(self, *, filter_expression: str | None = None, **kwargs: Any) -> Iterator[dict[str, Any]]:
        args: dict[str, Any] = {"TableName": self.name}
        if filter_expression:
            args["FilterExpression"] = filter_expression
        args.update(_expression_args(None, kwargs.get("names"), kwargs.get("values")))
        while True:
            with translate_errors():
                response = self._client.scan(**args)
            yield from (deserialize(i) for i in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return
            args["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    @staticmethod
    def _condition_error(exc: ClientError, on_fail: FailureFactory | None) -> Exception:
        if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            return exc
        old = exc.response.get("Item")
        return _failure(on_fail, deserialize(old) if old else None)


@dataclass
class _TransactionItem:
    request: dict[str, Any]
    on_fail: FailureFactory | None


@dataclass
class Transaction:
    """A unit of work: items from any context's tables (and the outbox), committed all-or-nothing."""

    items: list[_TransactionItem] = field(default_factory=list)
    # Run once the transaction has committed (e.g. what depends on reading its effect back); not if it fails.
    after_commit: list[Callable[[], None]] = field(default_factory=list)

    def _add(self, op: str, body: dict[str, Any], on_fail: FailureFactory | None) -> Transaction:
        if len(self.items) >= MAX_TRANSACTION_ITEMS:
            raise ValueError("a DynamoDB transaction holds at most 100 items")
        if body.get("ConditionExpression"):
            body["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        self.items.append(_TransactionItem({op: body}, on_fail))
        return self

    def put(
        self,
        table: DynamoTable,
        item: dict[str, Any],
        *,
        condition: str | None = None,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
        on_fail: FailureFactory | None = None,
    ) -> Transaction:
        body = {
            "TableName": table.name,
            "Item": serialize(item),
            **_expression_args(condition, names, values),
        }
        return self._add("Put", body, on_fail)

    def update(
        self,
        table: DynamoTable,
        key: dict[str, Any],
        expression: str,
        *,
        condition: str | None = None,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
        on_fail: FailureFactory | None = None,
    ) -> Transaction:
        body = {
            "TableName": table.name,
            "Key": serialize(key),
            "UpdateExpression": expression,
            **_expression_args(condition, names, values),
        }
        return self._add("Update", body, on_fail)

    def delete(
        self,
        table: DynamoTable,
        key: dict[str, Any],
        *,
        condition: str | None = None,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
        on_fail: FailureFactory | None = None,
    ) -> Transaction:
        body = {"TableName": table.name, "Key": serialize(key), **_expression_args(condition, names, values)}
        return self._add("Delete", body, on_fail)

    def check(
        self,
        table: DynamoTable,
        key: dict[str, Any],
        condition: str,
        *,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
        on_fail: FailureFactory | None = None,
    ) -> Transaction:
        body = {"TableName": table.name, "Key": serialize(key), **_expression_args(condition, names, values)}
        return self._add("ConditionCheck", body, on_fail)

    def holds(self, table: DynamoTable, key: dict[str, Any]) -> bool:
        """Whether the transaction already has an operation on the item ``key`` of ``table``: DynamoDB refuses
        a transaction that names one item twice."""
        wanted = serialize(key)
        for item in self.items:
            [body] = item.request.values()
            on = body.get("Key") or body["Item"]
            if body["TableName"] == table.name and all(on.get(name) == value for name, value in wanted.items()):
                return True
        return False

    def commit(self) -> None:
        if self.items:
            try:
                with translate_errors():
                    client("dynamodb").transact_write_items(TransactItems=[i.request for i in self.items])
            except ClientError as exc:
                raise self._translate(exc) from exc
        for action in self.after_commit:
            action()

    def _translate(self, exc: ClientError) -> Exception:
        if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
            return exc
        reasons = exc.response.get("CancellationReasons") or []
        for index, reason in enumerate(reasons):
            if reason.get("Code") == "ConditionalCheckFailed":
                old = reason.get("Item")
                return _failure(self.items[index].on_fail, deserialize(old) if old else None)
        codes = {reason.get("Code") for reason in reasons}
        if codes & {"ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"}:
            return DependencyUnavailable("the database is busy; retry shortly")
        return ConcurrentUpdate("another request changed the same data at the same time; retry")
