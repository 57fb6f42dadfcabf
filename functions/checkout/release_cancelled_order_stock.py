"""EventBridge rule (order.cancelled) → the cancelled retail order's stock back on the shelf (ORD-3). The cancel
releases it at once; this release, from the event written with the cancel, covers a cancel that ended between its
commit and the release and was never retried. A failure is retried by EventBridge and Lambda, then dead-lettered
(alarmed)."""

from aws_lambda_powertools.utilities.parser import envelopes, event_parser

from patungan.composition import checkout_saga
from patungan.core.events import DomainEvent
from patungan.core.observability import logger, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@event_parser(model=DomainEvent, envelope=envelopes.EventBridgeEnvelope)
def lambda_handler(event: DomainEvent, context) -> dict:
    logger.set_correlation_id(event.correlation_id)
    return checkout_saga().release_cancelled(event.data["order_id"])
