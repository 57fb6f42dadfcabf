"""GET /v1/me/participations: the caller's own joins, newest first; ?session_id= for one session (GB-16)."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from patungan.composition import groupbuy_service
from patungan.core.http import api_handler, caller, create_api, json_response
from patungan.core.pagination import DEFAULT_LIMIT, Cursor, Limit, page_body

app = create_api()


@app.get("/v1/me/participations", summary="My participations")
def list_my_participations(
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    session_id: Annotated[str | None, Query()] = None,
):
    page = groupbuy_service().participations_of(caller(app), limit=limit, cursor=cursor, session_id=session_id)
    return json_response(200, page_body(page, lambda p: p.model_dump()))


lambda_handler = api_handler(app)
