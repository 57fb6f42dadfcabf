"""Task MarkDelivered (escrow_release): the purchase order was received (GB-14)."""

from patungan.composition import settlement_service
from patungan.core.steps import step_handler

lambda_handler = step_handler(lambda event: settlement_service().mark_delivered(event["session_id"]))
