"""DELETE /v1/addresses/{id}: delete one of the caller's addresses; deleting the default makes the most
recently added remaining address the default (ACC-2)."""

from aws_lambda_powertools.event_handler import Response

from patungan.composition import address_service
from patungan.core.http import api_handler, caller, create_api

app = create_api()


@app.delete("/v1/addresses/<id>", summary="Delete one of my addresses", responses={204: {"description": "Deleted"}})
def delete_address(id: str):
    address_service().delete(caller(app).user_id, id)
    return Response(status_code=204)


lambda_handler = api_handler(app)
