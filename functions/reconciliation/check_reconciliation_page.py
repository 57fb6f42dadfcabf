"""Task Check*Page (reconciliation): one batch of a kind's records of the run's period against Xendit (PAY-8)."""

from patungan.composition import reconciliation_service
from patungan.core.steps import step_handler
from patungan.reconciliation.index import IndexedKind

lambda_handler = step_handler(
    lambda event: reconciliation_service().check_page(
        event["run_id"], IndexedKind(event["kind"]), event.get("cursor"), int(event.get("pages") or 0)
    )
)
