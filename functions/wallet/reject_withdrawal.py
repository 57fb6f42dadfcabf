"""POST /v1/admin/withdrawals/{id}/reject: an admin rejects a requested withdrawal, with a reason; the held
money goes back to the wallet (WAL-2)."""

from patungan.composition import withdrawal_service
from patungan.core.http import api_handler, caller, create_api, documented, json_response
from patungan.wallet.models import RejectionInput, WithdrawalView

app = create_api()


@app.post(
    "/v1/admin/withdrawals/<id>/reject", summary="Reject a withdrawal (admin)", responses=documented(WithdrawalView)
)
def reject_withdrawal(id: str, body: RejectionInput):
    return json_response(200, withdrawal_service().reject(caller(app), id, body.reason).view().model_dump())


lambda_handler = api_handler(app)
