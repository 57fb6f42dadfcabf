"""The Lambda entry point of an SQS queue fed by an EventBridge rule: each message body is the EventBridge
event, whose ``detail`` is our DomainEvent. Failures are reported per message (ReportBatchItemFailures),
so SQS retries only those and dead-letters them at the end (SYS-6)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from patungan.core.events import DomainEvent
from patungan.core.observability import logger, tracer


def queued_event_handler(handle: Callable[[DomainEvent], Any]) -> Callable[[dict[str, Any], LambdaContext], Any]:
    processor = BatchProcessor(event_type=EventType.SQS)

    def handle_record(record: SQSRecord) -> None:
        event = DomainEvent.model_validate(record.json_body["detail"])
        logger.info("event handled", extra={"event_id": event.event_id, "type": event.type, "outcome": handle(event)})

    @logger.inject_lambda_context(clear_state=True)
    @tracer.capture_lambda_handler(capture_response=False)
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
        return process_partial_response(event=event, record_handler=handle_record, processor=processor, context=context)

    return lambda_handler
