"""POST /v1/inventory/reservations (an addition to API.md): warehouse staff or an admin hold stock by hand, as
checkout will (CHK-3): all lines or none, in one warehouse, until the server's expiry."""

from datetime import timedelta

from patungan.composition import stock_service
from patungan.core.auth import Role
from patungan.core.http import api_handler, caller, create_api, documented, header, idempotent
from patungan.core.ids import keyed_id
from patungan.inventory.stock_models import Reservation, ReservationBody, StockLine

app = create_api()


@app.post("/v1/inventory/reservations", summary="Hold stock", responses=documented(Reservation, 201, "Held"))
def create_reservation(body: ReservationBody):
    principal = caller(app)
    principal.require(Role.WAREHOUSE)
    lines = [StockLine(line.product_id, line.variant_id, line.quantity, line.pack_size) for line in body.lines]
    ttl = timedelta(seconds=body.ttl_seconds) if body.ttl_seconds else None
    key = header(app, "Idempotency-Key")
    # The key names the reservation: a retry whose first attempt held the stock (then crashed) holds nothing more.
    reservation_id = keyed_id("rsv", principal.user_id, key, body.model_dump_json()) if key else None
    return idempotent(
        app,
        "create_reservation",
        body.model_dump(),
        lambda: (
            201,
            stock_service()
            .reserve(
                principal.user_id,
                lines,
                ttl,
                warehouse_id=body.warehouse_id,
                reservation_id=reservation_id,
                actor_id=principal.user_id,
            )
            .model_dump(),
        ),
    )


lambda_handler = api_handler(app)
