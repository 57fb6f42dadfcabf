"""Outbox table stream → EventBridge bus (SYS-1), in PutEvents batches (issue 8). The records from the first
one not relayed on are reported (ReportBatchItemFailures): the stream delivers them again in order, and
dead-letters them to SQS at the end."""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord, DynamoDBStreamEvent

from patungan.core.observability import logger, tracer
from patungan.platform.relay import EventNotRelayed, outbox_relay

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event, context):
    records = list(DynamoDBStreamEvent(event).records)
    relayed = outbox_relay().relay([record.dynamodb.new_image for record in records])
    not_relayed = {record.dynamodb.sequence_number for record in records[relayed:]}

    def report_unless_relayed(record: DynamoDBRecord) -> None:
        # The batch is relayed above, in one go; Powertools reports the records it left behind.
        if record.dynamodb.sequence_number in not_relayed:
            raise EventNotRelayed(record.dynamodb.sequence_number)

    return process_partial_response(
        event=event, record_handler=report_unless_relayed, processor=processor, context=context
    )
