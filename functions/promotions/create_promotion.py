"""POST /v1/admin/promotions: an admin creates a coupon (PRM-1): percent (basis points) or fixed, on the items or
the shipping, with a minimum spend, a validity window, total and per-customer limits, optionally one seller's."""

from patungan.checkout.promotions import Promotion, PromotionInput
from patungan.composition import promotion_service
from patungan.core.auth import Role
from patungan.core.http import api_handler, caller, create_api, documented, idempotent

app = create_api()


@app.post("/v1/admin/promotions", summary="Create a promotion", responses=documented(Promotion, 201, "Created"))
def create_promotion(body: PromotionInput):
    caller(app).require(Role.ADMIN)
    return idempotent(
        app,
        "create_promotion",
        body.model_dump(mode="json"),
        lambda: (201, promotion_service().create(body).model_dump(mode="json")),
    )


lambda_handler = api_handler(app)
