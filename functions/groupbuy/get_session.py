"""GET /v1/sessions/{id}: a session with live fill, current tier and time left (GB-16)."""

from patungan.composition import groupbuy_service
from patungan.core.http import api_handler, create_api, documented, json_response
from patungan.groupbuy.models import SessionView

app = create_api()


@app.get("/v1/sessions/<id>", summary="A group-buying session", responses=documented(SessionView))
def get_session(id: str):
    service = groupbuy_service()
    return json_response(200, service.view(service.get_session(id)))


lambda_handler = api_handler(app)
