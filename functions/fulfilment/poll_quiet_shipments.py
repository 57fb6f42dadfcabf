"""Scheduled (every 30 minutes): in-transit shipments whose courier webhooks went quiet have their tracking read
and applied the way a webhook is (inbox, forward only; LOG-2)."""

from patungan.composition import shipment_tracking
from patungan.core.steps import step_handler

lambda_handler = step_handler(lambda event: shipment_tracking().poll_quiet())
