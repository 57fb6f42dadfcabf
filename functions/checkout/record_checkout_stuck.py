"""Task RecordStuck (checkout saga): a step or compensation kept failing; shown and alarmed before the execution
fails."""

from patungan.composition import checkout_saga
from patungan.core.steps import step_handler

lambda_handler = step_handler(
    lambda event: checkout_saga().record_stuck(event["checkout_id"], event["step"], event.get("error"))
)
