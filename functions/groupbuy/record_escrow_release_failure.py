"""Task RecordReleaseFailure (escrow_release): show the failure on the session; retried later (GB-14)."""

from patungan.composition import settlement_service
from patungan.core.steps import step_handler

lambda_handler = step_handler(
    lambda event: settlement_service().record_release_failure(event["session_id"], event.get("error") or {})
)
