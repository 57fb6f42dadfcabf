"""DELETE /v1/sessions/{id}/participation: a buyer leaves; a paid join is refunded in full (GB-8). A retry
with the same Idempotency-Key replays the first answer (SYS-4)."""

from patungan.composition import groupbuy_service
from patungan.core.http import api_handler, caller, create_api, documented, idempotent
from patungan.groupbuy.models import Participation

app = create_api()


@app.delete("/v1/sessions/<id>/participation", summary="Leave a session", responses=documented(Participation))
def leave_session(id: str):
    principal = caller(app)
    # The session is the whole request: one key reused for another session is refused, not replayed.
    return idempotent(
        app, "leave_session", {"session_id": id}, lambda: (200, groupbuy_service().leave(principal, id).model_dump())
    )


lambda_handler = api_handler(app)
