"""Task Expire (checkout saga): the payment window passed: orders expired, stock released, invoice expired,
coupon usage given back, unless the payment won the race (ORD-3)."""

from patungan.composition import checkout_saga
from patungan.core.steps import step_handler

lambda_handler = step_handler(lambda event: checkout_saga().expire(event["checkout_id"]))
