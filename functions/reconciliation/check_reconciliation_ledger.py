"""Tasks CheckLedger / RecheckLedger (reconciliation): does the trial balance balance (PAY-5, PAY-8)?"""

from patungan.composition import reconciliation_service
from patungan.core.steps import step_handler

lambda_handler = step_handler(
    lambda event: reconciliation_service().check_ledger(
        event["run_id"], int(event.get("reading") or 0), event.get("earlier")
    )
)
