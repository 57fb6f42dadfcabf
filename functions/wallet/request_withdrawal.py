"""POST /v1/wallet/withdrawals: the caller withdraws from their wallet to a bank account or e-wallet; the
amount is held out of the balance at once (WAL-2, WAL-1)."""

from patungan.composition import withdrawal_service
from patungan.core.http import api_handler, caller, create_api, documented, header, idempotent
from patungan.wallet.models import WithdrawalInput, WithdrawalView

app = create_api()


@app.post(
    "/v1/wallet/withdrawals", summary="Withdraw from my wallet", responses=documented(WithdrawalView, 201, "Created")
)
def request_withdrawal(body: WithdrawalInput):
    principal = caller(app)
    return idempotent(
        app,
        "request_withdrawal",
        body.model_dump(),
        lambda: (
            201,
            withdrawal_service().request(principal, body, header(app, "Idempotency-Key")).view().model_dump(),
        ),
    )


lambda_handler = api_handler(app)
