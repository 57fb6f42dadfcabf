"""GET /v1/addresses: the caller's own addresses (ACC-2)."""

from patungan.accounts.models import AddressList
from patungan.composition import address_service
from patungan.core.http import api_handler, caller, create_api, documented, json_response
from patungan.core.pagination import DEFAULT_LIMIT, Cursor, Limit, page_body

app = create_api()


@app.get("/v1/addresses", summary="My addresses", responses=documented(AddressList))
def list_addresses(limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None):
    page = address_service().list(caller(app).user_id, limit=limit, cursor=cursor)
    return json_response(200, page_body(page, lambda address: address.model_dump()))


lambda_handler = api_handler(app)
