"""GET /v1/notifications: the caller's in-app notifications, newest first; ?unread=true for unread only (NOT-1)."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from patungan.core.http import api_handler, caller, create_api, documented, json_response
from patungan.core.pagination import DEFAULT_LIMIT, Cursor, Limit, page_body
from patungan.notifications.models import NotificationList
from patungan.notifications.service import notification_service

app = create_api()


@app.get("/v1/notifications", summary="My notifications", responses=documented(NotificationList))
def list_notifications(
    unread: Annotated[bool, Query(description="only those not yet read")] = False,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
):
    page = notification_service().list_notifications(caller(app), unread_only=unread, limit=limit, cursor=cursor)
    return json_response(200, page_body(page, lambda n: n.model_dump()))


lambda_handler = api_handler(app)
