"""GET /v1/sessions: sessions, newest first, by status, factory or category (GB-16). The route is public: a bearer
token, when sent, is verified here (a forged one is 401, as on every public route)."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from patungan.composition import groupbuy_service
from patungan.core.http import api_handler, create_api, documented, json_response, optional_caller
from patungan.core.pagination import DEFAULT_LIMIT, Cursor, IdFilter, Limit, page_body
from patungan.groupbuy.models import SessionList, SessionStatus

app = create_api()


@app.get("/v1/sessions", summary="List group-buying sessions", responses=documented(SessionList))
def list_sessions(
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    status: Annotated[SessionStatus | None, Query()] = None,
    factory_id: IdFilter = None,
    category: IdFilter = None,
):
    optional_caller(app)
    service = groupbuy_service()
    page = service.list_sessions(limit=limit, cursor=cursor, status=status, factory_id=factory_id, category=category)
    return json_response(200, page_body(page, service.view))


lambda_handler = api_handler(app)
