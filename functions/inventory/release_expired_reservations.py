"""Scheduled: release the holds whose expiry has passed (CHK-3), each audited ``release`` by ``system``."""

from patungan.composition import stock_service
from patungan.core.steps import step_handler

lambda_handler = step_handler(lambda event: {"released": stock_service().release_expired()})
