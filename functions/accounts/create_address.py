"""POST /v1/addresses: a signed-in user saves an address (ACC-2)."""

from patungan.accounts.models import Address, AddressInput
from patungan.composition import address_service
from patungan.core.http import api_handler, caller, create_api, documented, header, idempotent

app = create_api()


@app.post("/v1/addresses", summary="Save an address", responses=documented(Address, 201, "Created"))
def create_address(body: AddressInput):
    principal = caller(app)
    return idempotent(
        app,
        "create_address",
        body.model_dump(),
        lambda: (201, address_service().add(principal.user_id, body, header(app, "Idempotency-Key")).model_dump()),
    )


lambda_handler = api_handler(app)
