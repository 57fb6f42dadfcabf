"""RefundQueue consumer: sends requested refunds to Xendit (GB-11). A failure is reported per message
(ReportBatchItemFailures); SQS retries it and, in the end, dead-letters it (SYS-6)."""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from patungan.composition import payment_service
from patungan.core.events import DomainEvent
from patungan.core.observability import logger, tracer

processor = BatchProcessor(event_type=EventType.SQS)


def process_refund(record: SQSRecord) -> None:
    # The queue is an EventBridge target: the message body is the EventBridge event.
    event = DomainEvent.model_validate(record.json_body["detail"])
    outcome = payment_service().process_refund(event.data["refund_id"])
    logger.info("refund processed", extra={"refund_id": event.data["refund_id"], "outcome": outcome})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event, context):
    return process_partial_response(event=event, record_handler=process_refund, processor=processor, context=context)
