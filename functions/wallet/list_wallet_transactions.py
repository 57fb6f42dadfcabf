"""GET /v1/wallet/transactions: the caller's wallet movements, newest first, paginated (WAL-1)."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from patungan.core.http import api_handler, caller, create_api, documented, json_response
from patungan.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from patungan.ledger.models import WalletTransactionList
from patungan.ledger.service import ledger_service

app = create_api()


@app.get("/v1/wallet/transactions", summary="My wallet's transactions", responses=documented(WalletTransactionList))
def list_wallet_transactions(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query()] = None,
):
    page = ledger_service().wallet_transactions(caller(app), limit=limit, cursor=cursor)
    return json_response(200, {"items": [t.model_dump() for t in page.items], "next_cursor": page.next_cursor})


lambda_handler = api_handler(app)
