"""Task FinishRun (reconciliation): the run is done (PAY-8)."""

from patungan.composition import reconciliation_service
from patungan.core.steps import step_handler

lambda_handler = step_handler(lambda event: reconciliation_service().finish(event["run_id"]))
