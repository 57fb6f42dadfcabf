"""Task CreatePayment (checkout saga): the payment for the total: invoice, wallet or none (COD) (PAY-7, CHK-9)."""

from patungan.composition import checkout_saga
from patungan.core.steps import step_handler

lambda_handler = step_handler(lambda event: checkout_saga().create_payment(event["checkout_id"]))
