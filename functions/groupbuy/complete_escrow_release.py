"""Task CompleteRelease (escrow_release): all released; the session is completed (GB-14)."""

from patungan.composition import settlement_service
from patungan.core.steps import step_handler

lambda_handler = step_handler(lambda event: settlement_service().complete_release(event["session_id"]))
