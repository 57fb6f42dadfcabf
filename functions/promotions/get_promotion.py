"""GET /v1/admin/promotions/{code}: a promotion with how often it was used (PRM-1, PRM-2)."""

from patungan.checkout.promotions import Promotion
from patungan.composition import promotion_service
from patungan.core.auth import Role
from patungan.core.http import api_handler, caller, create_api, documented, json_response

app = create_api()


@app.get("/v1/admin/promotions/<code>", summary="Get a promotion", responses=documented(Promotion))
def get_promotion(code: str):
    caller(app).require(Role.ADMIN)
    return json_response(200, promotion_service().get(code).model_dump(mode="json"))


lambda_handler = api_handler(app)
