"""DELETE /v1/sessions/{id}/participation: a buyer leaves; a paid join is refunded in full (GB-8)."""

from patungan.composition import groupbuy_service
from patungan.core.http import api_handler, caller, create_api, documented, json_response
from patungan.groupbuy.models import Participation

app = create_api()


@app.delete("/v1/sessions/<id>/participation", summary="Leave a session", responses=documented(Participation))
def leave_session(id: str):
    return json_response(200, groupbuy_service().leave(caller(app), id).model_dump())


lambda_handler = api_handler(app)
