"""POST /v1/admin/withdrawals/{id}/approve: an admin approves a withdrawal and its Xendit payout is sent
(WAL-2, PAY-1); approving again resumes an approval a crash or an outage interrupted."""

from patungan.composition import withdrawal_service
from patungan.core.http import api_handler, caller, create_api, documented, json_response
from patungan.wallet.models import WithdrawalView

app = create_api()


@app.post(
    "/v1/admin/withdrawals/<id>/approve", summary="Approve a withdrawal (admin)", responses=documented(WithdrawalView)
)
def approve_withdrawal(id: str):
    return json_response(200, withdrawal_service().approve(caller(app), id).view().model_dump())


lambda_handler = api_handler(app)
