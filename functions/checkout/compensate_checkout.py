"""Task Compensate (checkout saga): a forward step failed for good: undo the steps before it, show why (CHK-5)."""

from patungan.composition import checkout_saga
from patungan.core.steps import step_handler

lambda_handler = step_handler(lambda event: checkout_saga().compensate(event["checkout_id"], event.get("error")))
