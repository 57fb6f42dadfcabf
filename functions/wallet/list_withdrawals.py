"""GET /v1/wallet/withdrawals: the caller's withdrawals, newest first, paginated (WAL-2)."""

from patungan.composition import withdrawal_service
from patungan.core.http import api_handler, caller, create_api, documented, json_response
from patungan.core.pagination import DEFAULT_LIMIT, Cursor, Limit, page_body
from patungan.wallet.models import WithdrawalList

app = create_api()


@app.get("/v1/wallet/withdrawals", summary="My withdrawals", responses=documented(WithdrawalList))
def list_withdrawals(
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
):
    page = withdrawal_service().list_mine(caller(app), limit=limit, cursor=cursor)
    return json_response(200, page_body(page, lambda w: w.view().model_dump()))


lambda_handler = api_handler(app)
