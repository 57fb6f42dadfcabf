"""GET /v1/addresses/{id}: one of the caller's addresses; another user's is 404 (ACC-2)."""

from patungan.accounts.models import Address
from patungan.composition import address_service
from patungan.core.http import api_handler, caller, create_api, documented, json_response

app = create_api()


@app.get("/v1/addresses/<id>", summary="One of my addresses", responses=documented(Address))
def get_address(id: str):
    return json_response(200, address_service().get(caller(app).user_id, id).model_dump())


lambda_handler = api_handler(app)
