"""EventBridge rule on the bus → one in-app notification for the user a domain event concerns (NOT-1, NOT-3).

Asynchronous by construction, so a failure here never fails the operation that published the event: the
rule retries delivery and Lambda retries failed invocations, then both dead-letter to SQS (template)."""

from aws_lambda_powertools.utilities.parser import envelopes, event_parser

from patungan.core.events import DomainEvent
from patungan.core.observability import logger, tracer
from patungan.notifications.service import notification_service


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@event_parser(model=DomainEvent, envelope=envelopes.EventBridgeEnvelope)
def lambda_handler(event: DomainEvent, context) -> None:
    logger.set_correlation_id(event.correlation_id)
    notification_service().notify(event)
