"""Helpers for the local-stack tests: waiting for asynchronous outcomes, reading what fixture functions saw."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

import boto3

from emulator.template import REGION

T = TypeVar("T")


# Generous: a busy machine is slow, and a probe that succeeds returns at once (issue 6, defect 9).
EVENTUALLY_SECONDS = 60.0


def eventually(probe: Callable[[], T | None], timeout: float = EVENTUALLY_SECONDS) -> T:
    """The first truthy result of ``probe``, polled until ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing within {timeout} s from {probe}")
        time.sleep(0.05)


def record(key: str) -> Any:
    """What a fixture function recorded under ``key`` (tests/emulator/fixtures/layer), or None."""
    item = boto3.client("dynamodb", region_name=REGION).get_item(TableName="RecordsTable", Key={"pk": {"S": key}})
    return json.loads(item["Item"]["payload"]["S"]) if "Item" in item else None


def queue_messages(queue_name: str) -> list[dict[str, Any]]:
    """Receive (and delete) the messages on a queue, bodies parsed from JSON."""
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    for message in messages:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return [json.loads(message["Body"]) for message in messages]
