"""Scheduled: joins left without an invoice get the invoice Xendit has for them, or are rolled back (GB-5)."""

from patungan.composition import STALLED_JOIN_AGE, groupbuy_service
from patungan.core.steps import step_handler

lambda_handler = step_handler(lambda event: groupbuy_service().repair_stalled_joins(STALLED_JOIN_AGE))
