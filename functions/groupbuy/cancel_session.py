"""POST /v1/sessions/{id}/cancel: an admin cancels a session before closing; paid buyers are refunded."""

from patungan.composition import groupbuy_service
from patungan.core.http import api_handler, caller, create_api, documented, json_response
from patungan.groupbuy.models import SessionView

app = create_api()


@app.post("/v1/sessions/<id>/cancel", summary="Cancel a session (admin)", responses=documented(SessionView))
def cancel_session(id: str):
    service = groupbuy_service()
    return json_response(200, service.view(service.cancel(caller(app), id)))


lambda_handler = api_handler(app)
