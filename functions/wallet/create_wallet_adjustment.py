"""POST /v1/admin/wallets/{user_id}/adjustments: an admin credits or debits a wallet, with a reason (WAL-3)."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path

from patungan.core.http import api_handler, caller, create_api, documented, header, idempotent
from patungan.core.inputs import USER_ID_PATTERN
from patungan.ledger.models import Adjustment, AdjustmentInput
from patungan.ledger.service import ledger_service

app = create_api()


@app.post(
    "/v1/admin/wallets/<user_id>/adjustments",
    summary="Adjust a wallet (admin)",
    responses=documented(Adjustment, 201, "Created"),
)
def create_wallet_adjustment(
    user_id: Annotated[str, Path(pattern=USER_ID_PATTERN, description="the wallet owner's user id (sub)")],
    body: AdjustmentInput,
):
    principal = caller(app)
    return idempotent(
        app,
        "create_wallet_adjustment",
        # The wallet is part of the request: one key reused for another user's wallet is refused, not replayed.
        {"user_id": user_id, **body.model_dump()},
        lambda: (
            201,
            ledger_service().adjust_wallet(principal, user_id, body, header(app, "Idempotency-Key")).model_dump(),
        ),
    )


lambda_handler = api_handler(app)
