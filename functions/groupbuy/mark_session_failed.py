"""Task MarkFailed (group_session): MOQ not reached; the failed event starts the refunds (GB-11)."""

from patungan.composition import settlement_service
from patungan.core.steps import step_handler

lambda_handler = step_handler(lambda event: settlement_service().mark_failed(event["session_id"]))
