"""POST /v1/sessions/{id}/join: a buyer joins and gets an escrow invoice to pay (GB-3, GB-4, GB-5)."""

from patungan.composition import groupbuy_service
from patungan.core.http import api_handler, caller, create_api, documented, idempotency_key, idempotent
from patungan.groupbuy.models import JoinInput, Participation

app = create_api()


@app.post("/v1/sessions/<id>/join", summary="Join a session", responses=documented(Participation, 201, "Joined"))
def join_session(id: str, body: JoinInput):
    principal = caller(app)
    return idempotent(
        app,
        f"join_session:{id}",
        body.model_dump(),
        lambda: (201, groupbuy_service().join(principal, id, body, request_key=idempotency_key(app)).model_dump()),
    )


lambda_handler = api_handler(app)
