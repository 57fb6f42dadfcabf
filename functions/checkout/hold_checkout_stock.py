"""Task HoldForFulfilment (checkout saga): a paid or COD checkout's reservations hold its stock until shipping."""

from patungan.composition import checkout_saga
from patungan.core.steps import step_handler

lambda_handler = step_handler(lambda event: checkout_saga().hold_for_fulfilment(event["checkout_id"]))
