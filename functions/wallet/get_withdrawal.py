"""GET /v1/wallet/withdrawals/{id}: one of the caller's withdrawals; another user's is 404 (WAL-2)."""

from patungan.composition import withdrawal_service
from patungan.core.http import api_handler, caller, create_api, documented, json_response
from patungan.wallet.models import WithdrawalView

app = create_api()


@app.get("/v1/wallet/withdrawals/<id>", summary="One of my withdrawals", responses=documented(WithdrawalView))
def get_withdrawal(id: str):
    return json_response(200, withdrawal_service().get(caller(app), id).view().model_dump())


lambda_handler = api_handler(app)
