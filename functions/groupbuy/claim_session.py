"""Task Claim (group_session): claim the session at its deadline and decide the outcome (GB-9)."""

from patungan.composition import settlement_service
from patungan.core.steps import step_handler

lambda_handler = step_handler(lambda event: settlement_service().claim(event["session_id"]))
