"""POST /v1/notifications/{id}/read: the owner marks a notification read; reading twice is fine (NOT-1)."""

from patungan.core.http import api_handler, caller, create_api, documented, json_response
from patungan.notifications.models import Notification
from patungan.notifications.service import notification_service

app = create_api()


@app.post("/v1/notifications/<id>/read", summary="Mark a notification read", responses=documented(Notification))
def mark_notification_read(id: str):
    return json_response(200, notification_service().mark_read(caller(app), id).model_dump())


lambda_handler = api_handler(app)
