"""GET /v1/admin/ledger/trial-balance: every account's totals and whether the ledger balances (PAY-5)."""

from patungan.core.http import api_handler, caller, create_api, documented, json_response
from patungan.ledger.models import TrialBalance
from patungan.ledger.service import ledger_service

app = create_api()


@app.get("/v1/admin/ledger/trial-balance", summary="Trial balance (admin)", responses=documented(TrialBalance))
def get_trial_balance():
    return json_response(200, ledger_service().trial_balance(caller(app)).model_dump())


lambda_handler = api_handler(app)
