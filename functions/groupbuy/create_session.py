"""POST /v1/sessions: a factory (or admin) opens a group-buying session (GB-1)."""

from patungan.composition import groupbuy_service
from patungan.core.http import api_handler, caller, create_api, documented, idempotent
from patungan.groupbuy.models import SessionInput, SessionView

app = create_api()


@app.post("/v1/sessions", summary="Open a group-buying session", responses=documented(SessionView, 201, "Created"))
def create_session(body: SessionInput):
    principal = caller(app)
    service = groupbuy_service()
    return idempotent(
        app,
        "create_session",
        body.model_dump(mode="json"),
        lambda: (201, service.view(service.create_session(principal, body))),
    )


lambda_handler = api_handler(app)
