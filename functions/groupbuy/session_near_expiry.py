"""Task NearExpiry (group_session): reminders and the platform top-up decision (GB-12, GB-13)."""

from patungan.composition import settlement_service
from patungan.core.steps import step_handler

lambda_handler = step_handler(lambda event: settlement_service().near_expiry(event["session_id"]))
