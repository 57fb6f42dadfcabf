"""Event-source mappings (SAM ``DynamoDB`` and ``SQS`` events of functions), run by poller threads.

They are not registered in moto: moto would invoke the function synchronously inside the write that produced
the record. Like Lambda's pollers, these read the stream or queue, filter, batch, invoke, and handle failures:

- DynamoDB streams, in order per shard: a failed batch (or the part from the first reported item failure
  on) is retried up to ``MaximumRetryAttempts`` times, then its metadata goes to ``OnFailure`` and the
  poller moves on. An idle stream poller sleeps until ``StreamWrites`` says a stream got a record.
- SQS: successes are deleted; failures stay in flight until their visibility timeout (scaled by
  ``time_scale``) ends and come back, and moto moves them to the DLQ after ``maxReceiveCount`` receives.
"""

from __future__ import annotations

import abc
import json
import logging
import math
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
from moto.events.models import EventPattern  # EventBridge's pattern language is Lambda's filter language

from emulator.runtime import Invocation, LambdaRuntime
from emulator.template import REGION, Template

logger = logging.getLogger(__name__)

AFTER_ERROR_WAIT_SECONDS = 0.05
SQS_LONG_POLL_SECONDS = 1  # also bounds how long stop() waits
STREAM_IDLE_WAIT_SECONDS = 1  # an idle stream poller reads again at least this often; bounds stop() too
MAX_RETRY_DELAY_SECONDS = 2.0
STREAMS_ENDPOINT = f"https://streams.dynamodb.{REGION}.amazonaws.com"  # botocore's default host is not routed


@dataclass(frozen=True)
class MappingSpec:
    function: str
    source_type: str  # "DynamoDB" or "SQS"
    source_arn: str
    batch_size: int
    filters: tuple[EventPattern, ...] = ()
    report_item_failures: bool = False
    max_retry_attempts: int = -1  # streams: -1 retries until the record expires
    on_failure_arn: str | None = None
    starting_position: str = "LATEST"

    def matches(self, record: dict[str, Any]) -> bool:
        return not self.filters or any(pattern.matches_event(record) for pattern in self.filters)


def mapping_specs(template: Template) -> list[MappingSpec]:
    specs = []
    for function in template.functions().values():
        for event in function.events.values():
            source_type = event.get("Type")
            if source_type not in {"DynamoDB", "SQS"}:
                continue
            props = template.resolve(event.get("Properties", {}))
            if props.get("Enabled") is False:
                continue
            filters = tuple(
                EventPattern.load(item["Pattern"]) for item in (props.get("FilterCriteria") or {}).get("Filters", [])
            )
            specs.append(
                MappingSpec(
                    function=function.logical_id,
                    source_type=source_type,
                    source_arn=props["Stream"] if source_type == "DynamoDB" else props["Queue"],
                    batch_size=int(props.get("BatchSize", 100 if source_type == "DynamoDB" else 10)),
                    filters=filters,
                    report_item_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
                    max_retry_attempts=int(props.get("MaximumRetryAttempts", -1)),
                    on_failure_arn=((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination"),
                    starting_position=props.get("StartingPosition", "LATEST"),
                )
            )
    return specs


def _failed(invocation: Invocation, identifiers: list[str], report_item_failures: bool) -> set[str]:
    """The records of a batch to retry: all of them when the function failed; with ReportBatchItemFailures
    the ones the response names (all of them if it names one that is not in the batch, as in Lambda)."""
    if invocation.errored:
        return set(identifiers)
    if not report_item_failures or not isinstance(invocation.payload, dict):
        return set()
    reported = invocation.payload.get("batchItemFailures") or []
    failed = {item.get("itemIdentifier") if isinstance(item, dict) else None for item in reported}
    return set(identifiers) if failed - set(identifiers) else failed


class StreamWrites:
    """Counts records added to DynamoDB streams (moto_patches announces each), so that an idle stream poller
    sleeps until there is something to read instead of asking moto on a timer."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.count = 0

    def announce(self) -> None:
        with self._changed:
            self.count += 1
            self._changed.notify_all()

    def wait_beyond(self, seen: int, timeout: float) -> None:
        """Return when a record was added after ``count`` was ``seen``, or after ``timeout`` seconds."""
        with self._changed:
            self._changed.wait_for(lambda: self.count != seen, timeout)


class _Poller(abc.ABC):
    def __init__(self, spec: MappingSpec, runtime: LambdaRuntime) -> None:
        self.spec = spec
        self.runtime = runtime
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"esm-{self.spec.function}", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        self._stop.set()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception:  # keep polling: the source or the function may recover
                logger.exception("%s poller of %s failed", self.spec.source_type, self.spec.function)
                self._stop.wait(AFTER_ERROR_WAIT_SECONDS)

    @abc.abstractmethod
    def poll(self) -> None:
        """Handle one batch, or wait a while for one when there is none (a long poll)."""

    def _invoke(self, records: list[dict[str, Any]]) -> Invocation:
        return self.runtime.invoke(self.spec.function, {"Records": records})


class StreamPoller(_Poller):
    def __init__(self, spec: MappingSpec, runtime: LambdaRuntime, writes: StreamWrites) -> None:
        super().__init__(spec, runtime)
        self._writes = writes
        self._streams = boto3.client("dynamodbstreams", region_name=REGION, endpoint_url=STREAMS_ENDPOINT)
        self._sqs = boto3.client("sqs", region_name=REGION)
        table_name = spec.source_arn.split(":table/", 1)[1].split("/", 1)[0]
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        self._stream_arn = dynamodb.describe_table(TableName=table_name)["Table"]["LatestStreamArn"]
        shards = self._streams.describe_stream(StreamArn=self._stream_arn)["StreamDescription"]["Shards"]
        self._shard_id = shards[0]["ShardId"]  # moto keeps one shard per stream
        self._iterator = self._shard_iterator(spec.starting_position)
        self._failing_sequence: str | None = None
        self._attempts = 0

    def _shard_iterator(self, iterator_type: str, sequence_number: str | None = None) -> str:
        args = {"StreamArn": self._stream_arn, "ShardId": self._shard_id, "ShardIteratorType": iterator_type}
        if sequence_number is not None:
            args["SequenceNumber"] = sequence_number
        return self._streams.get_shard_iterator(**args)["ShardIterator"]

    def poll(self) -> None:
        writes_seen = self._writes.count  # counted before reading: a record written meanwhile ends the wait
        response = self._streams.get_records(ShardIterator=self._iterator, Limit=self.spec.batch_size)
        self._iterator = response["NextShardIterator"]
        if not response["Records"]:
            self._writes.wait_beyond(writes_seen, STREAM_IDLE_WAIT_SECONDS)
            return
        records = [self._lambda_record(record) for record in response["Records"]]
        batch = [record for record in records if self.spec.matches(record)]
        if not batch:
            return
        sequences = [record["dynamodb"]["SequenceNumber"] for record in batch]
        invocation = self._invoke(batch)
        failed_sequences = _failed(invocation, sequences, self.spec.report_item_failures)
        if not failed_sequences:
            self._failing_sequence, self._attempts = None, 0
            return
        # A stream is processed in order: everything from the first failed record on is retried.
        failed = batch[min(sequences.index(sequence) for sequence in failed_sequences) :]
        if failed[0]["dynamodb"]["SequenceNumber"] != self._failing_sequence:
            self._failing_sequence, self._attempts = failed[0]["dynamodb"]["SequenceNumber"], 0
        self._attempts += 1
        if 0 <= self.spec.max_retry_attempts < self._attempts:
            self._send_to_on_failure(failed, invocation)
            self._failing_sequence, self._attempts = None, 0
            return
        # Retry from the first failed record, after a short backoff so a poisoned shard does not spin.
        self._iterator = self._shard_iterator("AT_SEQUENCE_NUMBER", self._failing_sequence)
        self._stop.wait(min(0.05 * 2**self._attempts, MAX_RETRY_DELAY_SECONDS))

    def _lambda_record(self, record: dict[str, Any]) -> dict[str, Any]:
        """A stream record as Lambda delivers it (epoch seconds, event source ARN and region)."""
        dynamodb = dict(record["dynamodb"])
        created = dynamodb.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            dynamodb["ApproximateCreationDateTime"] = int(created.timestamp())
        return {**record, "dynamodb": dynamodb, "awsRegion": REGION, "eventSourceARN": self._stream_arn}

    def _send_to_on_failure(self, failed: list[dict[str, Any]], invocation: Invocation) -> None:
        first, last = failed[0]["dynamodb"], failed[-1]["dynamodb"]
        logger.error(
            "%s gave up on stream records %s..%s after %d attempts",
            self.spec.function,
            first["SequenceNumber"],
            last["SequenceNumber"],
            self._attempts,
        )
        if not self.spec.on_failure_arn:
            return
        arrival = {
            key: datetime.fromtimestamp(image["ApproximateCreationDateTime"], UTC).isoformat()
            for key, image in (("first", first), ("last", last))
        }
        message = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self.runtime.function(self.spec.function).arn,
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": self._attempts,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                **({"functionError": "Unhandled"} if invocation.errored else {}),
            },
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(),
            "DDBStreamBatchInfo": {
                "shardId": self._shard_id,
                "startSequenceNumber": first["SequenceNumber"],
                "endSequenceNumber": last["SequenceNumber"],
                "approximateArrivalOfFirstRecord": arrival["first"],
                "approximateArrivalOfLastRecord": arrival["last"],
                "batchSize": len(failed),
                "streamArn": self._stream_arn,
            },
        }
        queue_name = self.spec.on_failure_arn.rsplit(":", 1)[1]
        queue_url = self._sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
        self._sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(message))


class QueuePoller(_Poller):
    def __init__(self, spec: MappingSpec, runtime: LambdaRuntime, time_scale: float) -> None:
        super().__init__(spec, runtime)
        self._sqs = boto3.client("sqs", region_name=REGION)
        self._queue_url = self._sqs.get_queue_url(QueueName=spec.source_arn.rsplit(":", 1)[1])["QueueUrl"]
        attributes = self._sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["VisibilityTimeout"])
        self._visibility_timeout = math.ceil(int(attributes["Attributes"]["VisibilityTimeout"]) / time_scale)

    def poll(self) -> None:
        response = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=min(self.spec.batch_size, 10),
            WaitTimeSeconds=SQS_LONG_POLL_SECONDS,
            VisibilityTimeout=self._visibility_timeout,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        records = [self._lambda_record(message) for message in response.get("Messages", [])]
        if not records:
            return  # the long poll waited
        batch = [record for record in records if self.spec.matches(self._filter_view(record))]
        done = [record for record in records if record not in batch]  # Lambda deletes filtered-out messages
        if batch:
            identifiers = [record["messageId"] for record in batch]
            failed = _failed(self._invoke(batch), identifiers, self.spec.report_item_failures)
            done += [record for record in batch if record["messageId"] not in failed]
        self._delete(done)

    def _delete(self, records: list[dict[str, Any]]) -> None:
        for start in range(0, len(records), 10):
            entries = [
                {"Id": str(index), "ReceiptHandle": record["receiptHandle"]}
                for index, record in enumerate(records[start : start + 10])
            ]
            self._sqs.delete_message_batch(QueueUrl=self._queue_url, Entries=entries)

    @staticmethod
    def _filter_view(record: dict[str, Any]) -> dict[str, Any]:
        """Filters see a JSON body parsed, as Lambda's do."""
        try:
            return {**record, "body": json.loads(record["body"])}
        except ValueError:
            return record

    def _lambda_record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {
                name: {
                    "stringValue": value.get("StringValue"),
                    "binaryValue": value.get("BinaryValue"),
                    "stringListValues": value.get("StringListValues", []),
                    "binaryListValues": value.get("BinaryListValues", []),
                    "dataType": value["DataType"],
                }
                for name, value in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": self.spec.source_arn,
            "awsRegion": REGION,
        }


class EventSourceMappings:
    """One poller per mapping of the template."""

    def __init__(self, template: Template, runtime: LambdaRuntime, time_scale: float, writes: StreamWrites) -> None:
        self._pollers: list[_Poller] = [
            StreamPoller(spec, runtime, writes)
            if spec.source_type == "DynamoDB"
            else QueuePoller(spec, runtime, time_scale)
            for spec in mapping_specs(template)
        ]

    def start(self) -> None:
        for poller in self._pollers:
            poller.start()

    def stop(self) -> None:
        for poller in self._pollers:
            poller.request_stop()
        for poller in self._pollers:
            poller.join()
