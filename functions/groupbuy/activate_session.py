"""Task Activate (group_session): a forming session opens at its start time (GB-2)."""

from patungan.composition import settlement_service
from patungan.core.steps import step_handler

lambda_handler = step_handler(lambda event: settlement_service().activate(event["session_id"]))
