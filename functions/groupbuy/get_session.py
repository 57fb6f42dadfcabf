"""GET /v1/sessions/{id}: a session with live fill, current tier, time left and, for a signed-in caller, their
own participation (GB-16). The route is public: a bearer token, when sent, is verified here."""

from patungan.composition import groupbuy_service
from patungan.core.http import api_handler, create_api, documented, json_response, optional_caller
from patungan.groupbuy.models import SessionDetail

app = create_api()


@app.get("/v1/sessions/<id>", summary="A group-buying session", responses=documented(SessionDetail))
def get_session(id: str):
    service = groupbuy_service()
    return json_response(200, service.detail(service.get_session(id), optional_caller(app)))


lambda_handler = api_handler(app)
