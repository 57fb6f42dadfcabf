"""GET /v1/admin/reconciliation/runs/{id}: a run's progress, what it checked and every mismatch (PAY-8)."""

from patungan.composition import reconciliation_service
from patungan.core.http import api_handler, caller, create_api, documented, json_response
from patungan.reconciliation.models import RunView

app = create_api()


@app.get("/v1/admin/reconciliation/runs/<id>", summary="A reconciliation run (admin)", responses=documented(RunView))
def get_reconciliation_run(id: str):
    run = reconciliation_service().run(caller(app), id)
    return json_response(200, run.model_dump(mode="json", by_alias=True))


lambda_handler = api_handler(app)
