"""GET /v1/wallet/transactions: the caller's wallet movements, newest first, paginated (WAL-1)."""

from patungan.core.http import api_handler, caller, create_api, documented, json_response
from patungan.core.pagination import DEFAULT_LIMIT, Cursor, Limit, page_body
from patungan.ledger.models import WalletTransactionList
from patungan.ledger.service import ledger_service

app = create_api()


@app.get("/v1/wallet/transactions", summary="My wallet's transactions", responses=documented(WalletTransactionList))
def list_wallet_transactions(
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
):
    page = ledger_service().wallet_transactions(caller(app), limit=limit, cursor=cursor)
    return json_response(200, page_body(page, lambda t: t.model_dump()))


lambda_handler = api_handler(app)
