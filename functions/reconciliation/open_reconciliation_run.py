"""Task OpenRun (reconciliation): the execution's first state creates its run, so a start that died after
starting the execution still shows its run, carried out (PAY-8)."""

from patungan.composition import reconciliation_service
from patungan.core.steps import step_handler
from patungan.reconciliation.models import RunOpening

lambda_handler = step_handler(lambda event: reconciliation_service().open_run(RunOpening.model_validate(event)))
