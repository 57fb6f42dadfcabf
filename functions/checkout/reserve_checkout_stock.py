"""Task ReserveStock (checkout saga): every order's lines held in its warehouse, fail closed (CHK-2, CHK-3)."""

from patungan.composition import checkout_saga
from patungan.core.steps import step_handler

lambda_handler = step_handler(lambda event: checkout_saga().reserve(event["checkout_id"]))
