"""POST /v1/admin/reconciliation/runs: an admin checks a period's payments, refunds and payouts against Xendit
and the ledger (PAY-8); 202 with the run, which the Reconciliation state machine carries out."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body

from patungan.composition import reconciliation_service
from patungan.core.http import api_handler, caller, create_api, documented, header, idempotent
from patungan.core.ids import keyed_id, new_id
from patungan.reconciliation.models import RunInput, StartedRun

app = create_api()


@app.post(
    "/v1/admin/reconciliation/runs",
    summary="Start a reconciliation run (admin)",
    responses=documented(StartedRun, 202, "Accepted: the run is under way"),
)
def start_reconciliation_run(body: Annotated[RunInput | None, Body()] = None):
    principal = caller(app)
    data = body or RunInput()
    key = header(app, "Idempotency-Key")
    # An Idempotency-Key names the run: a retry whose first attempt crashed after creating it starts that one.
    run_id = keyed_id("rec", principal.user_id, key) if key else new_id("rec")
    return idempotent(
        app,
        "start_reconciliation_run",
        data.model_dump(mode="json", by_alias=True),
        lambda: (202, reconciliation_service().start_run(principal, data, run_id).model_dump()),
    )


lambda_handler = api_handler(app)
