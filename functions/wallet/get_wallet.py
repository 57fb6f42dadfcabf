"""GET /v1/wallet: the caller's wallet balance (WAL-1)."""

from patungan.core.http import api_handler, caller, create_api, documented, json_response
from patungan.ledger.models import Wallet
from patungan.ledger.service import ledger_service

app = create_api()


@app.get("/v1/wallet", summary="My wallet", responses=documented(Wallet))
def get_wallet():
    return json_response(200, ledger_service().wallet(caller(app)).model_dump())


lambda_handler = api_handler(app)
