"""Task SettlePage (group_session): orders and tier refunds for one page of participants (GB-10)."""

from patungan.composition import settlement_service
from patungan.core.steps import step_handler

lambda_handler = step_handler(lambda event: settlement_service().settle_page(event["session_id"], event.get("cursor")))
