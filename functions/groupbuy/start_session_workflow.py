"""EventBridge rule → the session state machine the event starts, named by the session id, so a duplicate
event starts nothing (defect 5). A failure is retried by EventBridge and Lambda, then dead-lettered."""

from aws_lambda_powertools.utilities.parser import envelopes, event_parser

from patungan.composition import session_workflows
from patungan.core.events import DomainEvent
from patungan.core.observability import logger, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@event_parser(model=DomainEvent, envelope=envelopes.EventBridgeEnvelope)
def lambda_handler(event: DomainEvent, context) -> dict:
    logger.set_correlation_id(event.correlation_id)
    return session_workflows().start_for(event)
