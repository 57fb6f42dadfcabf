"""GET /v1/me/participations: the caller's own joins, newest first; ?session_id= for one session (GB-16)."""

from patungan.composition import groupbuy_service
from patungan.core.http import api_handler, caller, create_api, documented, json_response
from patungan.core.pagination import DEFAULT_LIMIT, Cursor, IdFilter, Limit, page_body
from patungan.groupbuy.models import ParticipationList

app = create_api()


@app.get("/v1/me/participations", summary="My participations", responses=documented(ParticipationList))
def list_my_participations(
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    session_id: IdFilter = None,
):
    page = groupbuy_service().participations_of(caller(app), limit=limit, cursor=cursor, session_id=session_id)
    return json_response(200, page_body(page, lambda p: p.model_dump()))


lambda_handler = api_handler(app)
