"""Task RecordStuck (reconciliation): a step kept failing; the run shows it failed before the execution fails."""

from patungan.composition import reconciliation_service
from patungan.core.steps import step_handler

lambda_handler = step_handler(
    lambda event: reconciliation_service().record_failed(event["run_id"], event["step"], event["error"])
)
