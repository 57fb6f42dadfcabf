"""Task RefundPage (session_refund): refund requests for one page of participants (GB-11)."""

from patungan.composition import settlement_service
from patungan.core.steps import step_handler

lambda_handler = step_handler(lambda event: settlement_service().refund_page(event["session_id"], event.get("cursor")))
