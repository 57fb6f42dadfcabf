"""Task WaitForPayment (checkout saga, .waitForTaskToken): keeps the token the invoice webhook answers."""

from patungan.composition import checkout_saga
from patungan.core.steps import step_handler

lambda_handler = step_handler(lambda event: checkout_saga().await_payment(event["checkout_id"], event["task_token"]))
