"""Scheduled daily (EventBridge rule): a reconciliation run over the last 48 hours (PAY-8). The run is named by
the scheduled event, so a redelivered event starts nothing twice."""

from patungan.composition import reconciliation_service
from patungan.core.ids import keyed_id
from patungan.core.steps import step_handler

lambda_handler = step_handler(
    lambda event: reconciliation_service().start_scheduled_run(keyed_id("rec", "schedule", event["id"])).model_dump()
)
