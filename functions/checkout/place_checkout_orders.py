"""Task PlaceOrders (checkout saga): prices revalidated, one order per seller with the coupon usage (CHK-4,
ORD-1, PRM-2)."""

from patungan.composition import checkout_saga
from patungan.core.steps import step_handler

lambda_handler = step_handler(lambda event: checkout_saga().place_orders(event["checkout_id"]))
