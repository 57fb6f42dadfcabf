"""Task RaisePurchaseOrder (group_session): the factory's purchase order; production starts (GB-15)."""

from patungan.composition import settlement_service
from patungan.core.steps import step_handler

lambda_handler = step_handler(lambda event: settlement_service().raise_purchase_order(event["session_id"]))
