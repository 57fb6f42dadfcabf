"""Task KeepForPaymentRetry (checkout saga): the payment could not be created; keep the reservations for a retry
and tell the buyer (CHK-7)."""

from patungan.composition import checkout_saga
from patungan.core.steps import step_handler

lambda_handler = step_handler(
    lambda event: checkout_saga().keep_for_payment_retry(event["checkout_id"], event.get("error"))
)
