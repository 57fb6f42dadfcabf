"""PATCH /v1/addresses/{id}: change one of the caller's addresses, or make it the default (ACC-2)."""

from patungan.accounts.models import Address, AddressUpdate
from patungan.composition import address_service
from patungan.core.http import api_handler, caller, create_api, documented, json_response

app = create_api()


@app.patch("/v1/addresses/<id>", summary="Change one of my addresses", responses=documented(Address))
def update_address(id: str, body: AddressUpdate):
    return json_response(200, address_service().update(caller(app).user_id, id, body).model_dump())


lambda_handler = api_handler(app)
