"""EventBridge rule (checkout.confirmed) → the checkout's saga, named by the checkout id. Confirm starts it at once;
this start, from the event written with the checkout, covers a confirm that crashed between its commit and
StartExecution (issue 10 leftover 5): a saga started already is not started again. A failure is retried by
EventBridge and Lambda, then dead-lettered (alarmed)."""

from aws_lambda_powertools.utilities.parser import envelopes, event_parser

from patungan.composition import confirm_service
from patungan.core.events import DomainEvent
from patungan.core.observability import logger, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@event_parser(model=DomainEvent, envelope=envelopes.EventBridgeEnvelope)
def lambda_handler(event: DomainEvent, context) -> dict:
    logger.set_correlation_id(event.correlation_id)
    return confirm_service().start_saga(event.data["checkout_id"])
