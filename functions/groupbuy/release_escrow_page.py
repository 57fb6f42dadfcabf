"""Task ReleasePage (escrow_release): release one page of payments to the factory (GB-14, PAY-6)."""

from patungan.composition import settlement_service
from patungan.core.steps import step_handler

lambda_handler = step_handler(lambda event: settlement_service().release_page(event["session_id"], event.get("cursor")))
