"""Scheduled (hourly): orders delivered longer than the return window ago become completed, a paid retail
order's money moving from its checkout escrow to the seller's payable (ORD-3)."""

from patungan.composition import shipment_tracking
from patungan.core.steps import step_handler

lambda_handler = step_handler(lambda event: shipment_tracking().complete_delivered())
