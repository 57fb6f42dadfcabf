"""Outbox table stream → EventBridge bus (SYS-1). Failed records are reported individually
(ReportBatchItemFailures), retried by the stream, and dead-lettered to SQS at the end."""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from patungan.core.observability import logger, tracer
from patungan.platform.relay import outbox_relay

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def relay_record(record: DynamoDBRecord) -> None:
    outbox_relay().relay(record.dynamodb.new_image)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event, context):
    return process_partial_response(event=event, record_handler=relay_record, processor=processor, context=context)
