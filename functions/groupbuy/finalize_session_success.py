"""Task FinalizeSuccess (group_session): the session succeeded (GB-2)."""

from patungan.composition import settlement_service
from patungan.core.steps import step_handler

lambda_handler = step_handler(lambda event: settlement_service().finalize_success(event["session_id"]))
