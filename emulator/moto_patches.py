"""Every change the local stack makes to moto's internals, in one place.

The patches target moto 5.2.5 (pinned in requirements-dev.txt) and each names the moto code it replaces;
``install`` refuses any other moto version, so an upgrade means re-reading these against the new sources.

- Lambda: invokes run our handlers in-process (moto would start Docker, or only echo the payload).
- DynamoDB: API calls are serialised (moto's transactions are not thread-safe) and a cancelled
  transaction rolls back the items it touched instead of a deep copy of every table it touched.
- DynamoDB streams: a shard iterator is forgotten once read (moto keeps every one forever), and a new
  record is announced (to ``stream_written``), so stream pollers need not poll on a timer.
- EventBridge: rule targets are delivered by the emulator (moto cannot deliver to Lambda or Step
  Functions) and schedule-only rules no longer match every event.
- Step Functions: Wait states and task-token timeouts pass ``time_scale`` times faster; a Wait ends when the
  execution's clock (emulator/clock.py: ``time_scale`` times faster from its start, and advanced on demand)
  reaches its end.
- Speed: DynamoDB items are written into responses directly, not member by member through moto's generic
  serializer; update expressions are parsed once per distinct expression; a handler's action names are
  listed once per class; a table's items are put in key order comparing plain values. Each invocation
  makes several DynamoDB calls, all under one lock, so this is most of what a request costs here.

The tests run moto without the emulator; they take the serialised DynamoDB calls, the rollback and the speed
patches (``cheaper_moto``): what moto costs changes, and a threaded test sees DynamoDB's atomic conditions.
"""

from __future__ import annotations

import copy
import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import ModuleType
from typing import Any

import moto
import moto.core.responses
from botocore.model import Shape
from moto.awslambda.models import LambdaBackend, LambdaFunction
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core.responses import BaseResponse
from moto.core.serialize import BaseJSONSerializer, JSONSerializer
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import StreamShard, Table
from moto.dynamodb.parsing.expressions import UpdateExpressionParser
from moto.dynamodb.responses import DynamoHandler
from moto.dynamodbstreams.models import ShardIterator
from moto.dynamodbstreams.responses import DynamoDBStreamsHandler
from moto.events.models import Rule
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEventException
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    StateTaskServiceCallback,
)
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.timestamp import Timestamp
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackOutcomeTimedOut

from emulator.clock import ExecutionClock

MOTO_VERSION = "5.2.5"
# How soon a Wait state notices that the clock was advanced (POST /_local/clock/advance).
CLOCK_CHECK_SECONDS = 1.0

# One lock for every DynamoDB and DynamoDB Streams API call: moto's transact_write_items is not thread-safe
# (lost updates, "dictionary changed size during iteration"), and a stream reader must not see the records
# of a transaction that is about to be rolled back.
DYNAMODB_LOCK = threading.RLock()

RunFunction = Callable[[str, Any], tuple[str, bool]]
"""(function name, event) -> (JSON payload, errored)."""

DeliverEvent = Callable[[list[dict[str, Any]], dict[str, Any]], None]
"""(rule targets, event as moto builds it) -> None."""

StreamWritten = Callable[[], None]
"""Called after a record is added to any DynamoDB stream (under DYNAMODB_LOCK: readers see it once it is free)."""


@dataclass
class Patches:
    """The patches in force; ``undo`` puts moto back as it was."""

    _undo: list[Callable[[], None]] = field(default_factory=list)

    def replace(self, owner: type | ModuleType, name: str, value: Any) -> None:
        if name in owner.__dict__:
            original = owner.__dict__[name]
            self._undo.append(lambda: setattr(owner, name, original))
        else:  # inherited: removing ours uncovers the base class's again
            self._undo.append(lambda: delattr(owner, name))
        setattr(owner, name, value)

    def undo(self) -> None:
        while self._undo:
            self._undo.pop()()


@dataclass
class MotoPatches(Patches):
    """The emulator's patches, and the clock its Step Functions Waits and task-token timeouts run on."""

    clock: ExecutionClock = field(kw_only=True)


def _require_pinned_moto() -> None:
    if moto.__version__ != MOTO_VERSION:
        raise RuntimeError(
            f"emulator/moto_patches.py targets moto {MOTO_VERSION} but moto {moto.__version__} is installed: "
            "re-check every patch against the new moto sources, then update MOTO_VERSION"
        )


def install(
    *,
    run_function: RunFunction,
    deliver_event: DeliverEvent,
    time_scale: float,
    stream_written: StreamWritten | None = None,
) -> MotoPatches:
    _require_pinned_moto()
    patches = MotoPatches(clock=ExecutionClock(time_scale))
    _patch_lambda(patches, run_function)
    _patch_dynamodb(patches, stream_written)
    _patch_event_rules(patches, deliver_event)
    _patch_step_functions_time(patches, patches.clock)
    _patch_speed(patches)
    return patches


# ---------------------------------------------------------------- Lambda


def _patch_lambda(patches: MotoPatches, run_function: RunFunction) -> None:
    # With {"lambda": {"use_docker": False}} moto 5.2.5 serves Lambda from LambdaSimpleBackend, whose invoke
    # only echoes the payload; the regular LambdaBackend.invoke reaches LambdaFunction._invoke_lambda.
    patches.replace(LambdaSimpleBackend, "invoke", LambdaBackend.invoke)

    def invoke_in_process(function: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
        # Replaces LambdaFunction._invoke_lambda (moto 5.2.5: runs a Docker container), which returns
        # (payload, errored, logs) to every caller: Invoke, Step Functions tasks, moto's own targets.
        payload, errored = run_function(function.function_name, event)
        return payload, errored, ""

    patches.replace(LambdaFunction, "_invoke_lambda", invoke_in_process)


# ---------------------------------------------------------------- DynamoDB


def _patch_dynamodb(patches: MotoPatches, stream_written: StreamWritten | None) -> None:
    for handler in (DynamoHandler, DynamoDBStreamsHandler):
        patches.replace(handler, "call_action", _serialised(handler.call_action))
    _patch_transaction_rollback(patches)
    patches.replace(ShardIterator, "get", _read_shard_iterator_once)
    if stream_written is not None:
        original_add = StreamShard.add

        def add_and_announce(shard: StreamShard, old: Item | None, new: Item | None) -> None:
            # Wraps StreamShard.add (moto 5.2.5), through which every write reaches a table's stream.
            original_add(shard, old, new)
            stream_written()

        patches.replace(StreamShard, "add", add_and_announce)


@contextmanager
def cheaper_moto(*, speed: bool = True) -> Iterator[None]:
    """While open, DynamoDB calls are serialised as in the local stack (moto's conditional writes are not atomic
    across threads: two threads could both pass one condition, which DynamoDB never allows), and a cancelled
    transaction puts back only the items it touched (``_transact_write_items``), so a transaction costs the same
    on an empty or a full table; with ``speed``, the speed patches too."""
    _require_pinned_moto()
    patches = Patches()
    for handler in (DynamoHandler, DynamoDBStreamsHandler):
        patches.replace(handler, "call_action", _serialised(handler.call_action))
    _patch_transaction_rollback(patches)
    if speed:
        _patch_speed(patches)
    try:
        yield
    finally:
        patches.undo()


def _patch_transaction_rollback(patches: Patches) -> None:
    patches.replace(DynamoDBBackend, "transact_write_items", _transact_write_items)


def _serialised(call_action: Callable[[BaseResponse], Any]) -> Callable[[BaseResponse], Any]:
    def locked_call_action(handler: BaseResponse) -> Any:
        with DYNAMODB_LOCK:
            return call_action(handler)

    return locked_call_action


_ORIGINAL_SHARD_ITERATOR_GET = ShardIterator.get


def _read_shard_iterator_once(iterator: ShardIterator, limit: int = 1000) -> dict[str, Any]:
    # moto 5.2.5 registers every iterator in DynamoDBStreamsBackend.shard_iterators and never drops one;
    # the pollers read several times a second, so forget each iterator once it has been read.
    result = _ORIGINAL_SHARD_ITERATOR_GET(iterator, limit)
    iterator.streams_backend.shard_iterators.pop(iterator.arn, None)
    return result


@dataclass
class _ItemBeforeTransaction:
    """One item a transaction touches, as it was before (``None``: absent). moto 5.2.5 stores no index: a
    Query or Scan on a GSI or LSI reads ``Table.items`` (``has_idx_items``, ``all_items``), so putting the item
    back puts back its index entries. Restored into ``Table.items`` directly, because ``Table.put_item`` and
    ``delete_item`` would also add stream records of writes DynamoDB never made."""

    table: Table
    hash_key: DynamoType
    range_key: DynamoType | None
    item: Item | None

    def restore(self) -> None:
        items = self.table.items
        if self.range_key is None:
            if self.item is None:
                items.pop(self.hash_key, None)
            else:
                items[self.hash_key] = self.item
            return
        ranges = items.setdefault(self.hash_key, {})
        if self.item is None:
            ranges.pop(self.range_key, None)
            if not ranges:
                del items[self.hash_key]
        else:
            ranges[self.range_key] = self.item


def _items_before(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> list[_ItemBeforeTransaction]:
    snapshots = []
    for entry in transact_items:
        op_type, op = next(iter(entry.items()))
        table = backend.tables.get(op.get("TableName", ""))
        key = op.get("Item") if op_type == "Put" else op.get("Key")
        if table is None or not key or table.hash_key_attr not in key:
            continue  # this operation fails validation below and writes nothing
        range_key = None
        if table.range_key_attr is not None:
            if table.range_key_attr not in key:
                continue
            range_key = DynamoType(key[table.range_key_attr])
        hash_key = DynamoType(key[table.hash_key_attr])
        current = table.get_item(hash_key, range_key)
        snapshots.append(_ItemBeforeTransaction(table, hash_key, range_key, copy.deepcopy(current)))
    return snapshots


def _transact_write_items(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    """moto 5.2.5's DynamoDBBackend.transact_write_items, except for what it saves to roll back.

    moto deep-copies every table a transaction touches (10 transactions/s at 10 000 items); this saves the
    touched items and the stream length instead, and puts them back when the transaction is cancelled.
    Checks, error codes and CancellationReasons are moto's.
    """
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    items_before = _items_before(backend, transact_items)
    stream_lengths = {
        snapshot.table.name: (snapshot.table, len(snapshot.table.stream_shard.items))
        for snapshot in items_before
        if snapshot.table.stream_shard is not None
    }

    def roll_back() -> None:
        for snapshot in reversed(items_before):
            snapshot.restore()
        for table, length in stream_lengths.values():
            del table.stream_shard.items[length:]

    try:
        errors = _apply_transaction(backend, transact_items)
    except Exception:  # a malformed transaction: nothing of it may stay
        roll_back()
        raise
    if any(code is not None for code, _, _ in errors):
        roll_back()
        raise TransactionCanceledException(errors)


CancellationReason = tuple[str | None, str | None, dict[str, Any] | None]
_NO_REASON: CancellationReason = (None, None, None)


def _apply_transaction(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> list[CancellationReason]:
    """The loop of moto 5.2.5's transact_write_items: one (code, message, item) per operation."""
    targets: set[tuple[str, str]] = set()
    reasons: list[CancellationReason] = []
    for entry in transact_items:
        if len(entry) > 1:
            raise TransactWriteSingleOpException
        op_type, op = next(iter(entry.items()))
        try:
            reasons.append(_apply_operation(backend, op_type, op, targets))
        except (MultipleTransactionsException, MockValidationException):
            raise
        except ConditionalCheckFailed as exc:
            reasons.append(("ConditionalCheckFailed", str(exc.message), None))
        except Exception as exc:  # moto reports any other failure as that operation's reason
            reasons.append((type(exc).__name__, str(exc), None))
    return reasons


def _apply_operation(
    backend: DynamoDBBackend, op_type: str, op: dict[str, Any], targets: set[tuple[str, str]]
) -> CancellationReason:
    if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
        raise ValueError("Unsupported transaction operation")
    table_name = op["TableName"]
    if op_type == "Put":
        table = backend.get_table(table_name)
        key_attributes = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
        key = {name: op["Item"][name] for name in key_attributes}
    else:
        key = op["Key"]
    target = (str(table_name), str(dict(sorted(key.items()))))
    if target in targets:
        raise MultipleTransactionsException()
    targets.add(target)

    condition = op.get("ConditionExpression")
    names = op.get("ExpressionAttributeNames")
    values = op.get("ExpressionAttributeValues")
    current = backend.get_item(table_name, key)
    if condition is not None and not get_filter_expression(condition, names, values).expr(current):
        wants_old = op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
        old = current.to_json()["Attributes"] if wants_old and current else None
        return "ConditionalCheckFailed", ConditionalCheckFailed().message, old

    expressions = {
        "condition_expression": condition,
        "expression_attribute_names": names,
        "expression_attribute_values": values,
    }
    if op_type == "Put":
        backend.put_item(table_name, op["Item"], **expressions)
    elif op_type == "Delete":
        backend.delete_item(table_name, key, **expressions)
    elif op_type == "Update":
        backend.update_item(table_name, key, update_expression=op["UpdateExpression"], **expressions)
    return _NO_REASON


# ---------------------------------------------------------------- EventBridge


def _patch_event_rules(patches: MotoPatches, deliver_event: DeliverEvent) -> None:
    def send_to_targets(rule: Rule, event: dict[str, Any], transform_input: bool = True) -> None:
        # Replaces Rule.send_to_targets (moto 5.2.5), which raises NotImplementedError for Lambda and Step
        # Functions targets, and matches every event when the rule has only a ScheduleExpression.
        del transform_input  # only moto's archive replay passes it
        if rule.state != "ENABLED" or not rule.event_pattern.get_pattern():
            return
        if rule.event_pattern.matches_event(event):
            deliver_event(rule.targets, event)

    patches.replace(Rule, "send_to_targets", send_to_targets)


# ---------------------------------------------------------------- Step Functions


def _patch_step_functions_time(patches: MotoPatches, clock: ExecutionClock) -> None:
    def wait_interval(wait: WaitFunction, env: Any, wait_seconds: float) -> None:
        # Replaces WaitFunction._wait_interval (moto 5.2.5), which sleeps in whole real seconds. The Wait ends
        # when the execution's clock reaches its end: at the time scale, or at once after an advance.
        execution_id, started = _execution_of(env)
        until = clock.now(execution_id, started) + timedelta(seconds=max(wait_seconds, 0))
        while env.is_running():
            remaining = clock.real_seconds_until(execution_id, started, until)
            if remaining <= 0:
                return
            # set when the execution stops; the bounded wait notices an advance of the clock
            env.program_state_event.wait(min(remaining, CLOCK_CHECK_SECONDS))

    def seconds_until_timestamp(wait: Timestamp, env: Any) -> float:
        # Replaces Timestamp._get_wait_seconds (moto 5.2.5), which compares the UTC timestamp with the
        # machine's local time: off by the UTC offset anywhere but UTC (seven hours in Jakarta).
        # The seconds are counted on the execution's clock: a deadline an hour after the start is reached
        # 3600 / time_scale real seconds after it, even after a Wait until a reminder half-way. (Counting
        # from the real clock at each Wait made the second Wait take nearly the whole hour again.)
        wait.string.eval(env=env)
        text = env.stack.pop()
        moment = Timestamp._from_timestamp_string(timestamp=text)
        if moment is None:
            raise FailureEventException(wait._create_failure_event(env, text))
        execution_id, started = _execution_of(env)
        return (moment.replace(tzinfo=UTC) - clock.now(execution_id, started)).total_seconds()

    original_wait_for_task_token = StateTaskServiceCallback._eval_wait_for_task_token

    def wait_for_task_token(
        task: StateTaskServiceCallback, env: Any, timeout_seconds: int, callback_endpoint: Any, heartbeat_endpoint: Any
    ) -> Any:
        # A task token's TimeoutSeconds models durable time (a payment window), like a Wait state: it ends when
        # the execution's clock reaches it (at the time scale, or at once after an advance of the clock).
        if heartbeat_endpoint is not None:
            return original_wait_for_task_token(
                task, env, timeout_seconds / clock.time_scale, callback_endpoint, heartbeat_endpoint
            )
        execution_id, started = _execution_of(env)
        until = clock.now(execution_id, started) + timedelta(seconds=timeout_seconds)
        while (remaining := clock.real_seconds_until(execution_id, started, until)) > 0:
            outcome = callback_endpoint.wait(timeout=min(remaining, CLOCK_CHECK_SECONDS))
            if outcome is not None:
                return outcome
        return CallbackOutcomeTimedOut(callback_id=callback_endpoint.callback_id)

    patches.replace(WaitFunction, "_wait_interval", wait_interval)
    patches.replace(Timestamp, "_get_wait_seconds", seconds_until_timestamp)
    patches.replace(StateTaskServiceCallback, "_eval_wait_for_task_token", wait_for_task_token)


def _execution_of(env: Any) -> tuple[str, datetime]:
    """The execution's id (ARN) and start time (aware, UTC)."""
    execution = env.states.context_object.context_object_data["Execution"]
    return execution["Id"], execution["StartTime"]


# ---------------------------------------------------------------- speed


def _patch_speed(patches: Patches) -> None:
    patches.replace(JSONSerializer, "_serialize_type_structure", _serialize_structure)
    patches.replace(Table, "all_items", _all_items_in_key_order)
    # Parsed expressions are shared: moto 5.2.5 only reads the parsed tree (find_clauses) or deep-copies it
    # before validating (UpdateExpressionValidator), never changes it. Invalid expressions are not cached.
    patches.replace(
        UpdateExpressionParser, "make", staticmethod(functools.lru_cache(maxsize=1024)(UpdateExpressionParser.make))
    )
    # BaseResponse.call_action (moto 5.2.5) lists the handler class's methods with inspect.getmembers on every
    # call, to check that the action exists.
    patches.replace(
        moto.core.responses, "method_names_from_class", functools.cache(moto.core.responses.method_names_from_class)
    )


_ATTRIBUTE_VALUE_SERVICES = frozenset({"dynamodb", "dynamodbstreams"})


def _serialize_structure(serializer: JSONSerializer, serialized: Any, value: Any, shape: Shape, key: str) -> None:
    """Replaces JSONSerializer._serialize_type_structure (moto 5.2.5, inherited from BaseJSONSerializer) for
    DynamoDB's AttributeValue. The generic path looks each of its ten members up through several alias
    providers, for every attribute of every item: most of the time of a GetItem, Query or GetRecords."""
    if (
        key
        and shape.name == "AttributeValue"
        and isinstance(value, dict)
        and serializer.service_model.service_name in _ATTRIBUTE_VALUE_SERVICES
    ):
        serializer._default_serialize(serialized, _attribute_value(value, serializer._base64), shape, key)
    else:
        BaseJSONSerializer._serialize_type_structure(serializer, serialized, value, shape, key)


def _attribute_value(value: dict[str, Any], base64: Callable[[str | bytes], str]) -> dict[str, Any]:
    """What the generic serializer makes of an AttributeValue, member by member: strings as strings, blobs
    base64-encoded, maps and lists recursively, booleans as they are; members it does not know are left out."""
    wire: dict[str, Any] = {}
    for name, member in value.items():
        if member is None:
            continue
        if name in {"S", "N"}:
            wire[name] = str(member)
        elif name in {"SS", "NS"}:
            wire[name] = [str(element) for element in member]
        elif name == "B":
            wire[name] = base64(member)
        elif name == "BS":
            wire[name] = [base64(element) for element in member]
        elif name == "M":
            wire[name] = {attribute: _attribute_value(element, base64) for attribute, element in member.items()}
        elif name == "L":
            wire[name] = [_attribute_value(element, base64) for element in member]
        elif name in {"NULL", "BOOL"}:
            wire[name] = member
    return wire


def _all_items_in_key_order(table: Table) -> list[Item]:
    """Replaces Table.all_items (moto 5.2.5), which every Query and Scan goes through - a Query on a global
    secondary index looks at every item of the table. moto sorts the items by their DynamoType keys, whose
    comparisons recompute the keys' Python values each time. Key attributes are S, N or B, so sorting on the
    number (N) or the text or bytes (S, B) gives the same order, several times faster."""
    if table.range_key_attr:
        items = [item for items_of_hash_key in table.items.values() for item in items_of_hash_key.values()]
        return sorted(items, key=lambda item: (_key_value(item.hash_key), _key_value(item.range_key)))
    return sorted(table.items.values(), key=lambda item: _key_value(item.hash_key))


def _key_value(key: DynamoType) -> Any:
    """What DynamoType.cast_value (moto 5.2.5) gives for a key attribute's value."""
    return Decimal(key.value) if key.type == "N" else key.value
