"""POST /v1/sessions/{id}/cancel: an admin cancels a session before closing; paid buyers are refunded. A
retry with the same Idempotency-Key replays the first answer (SYS-4)."""

from patungan.composition import groupbuy_service
from patungan.core.http import api_handler, caller, create_api, documented, idempotent
from patungan.groupbuy.models import SessionView

app = create_api()


@app.post("/v1/sessions/<id>/cancel", summary="Cancel a session (admin)", responses=documented(SessionView))
def cancel_session(id: str):
    principal = caller(app)
    service = groupbuy_service()
    # The session is the whole request: one key reused for another session is refused, not replayed.
    return idempotent(
        app, "cancel_session", {"session_id": id}, lambda: (200, service.view(service.cancel(principal, id)))
    )


lambda_handler = api_handler(app)
