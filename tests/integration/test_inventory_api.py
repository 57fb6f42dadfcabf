"""The inventory routes (API.md "Sellers, warehouses and inventory"; WH-1, WH-2, WH-3, GB-15; issue 9): every
route that changes stock writes exactly one audit record, found by item, actor, action and time; who may
do what; adjustments and cycle counts never leave less on hand than reserved; purchase-order receipts
become audited, reserved stock."""

from __future__ import annotations

from unittest import mock

import pytest
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

from patungan.adapters.dynamodb import Transaction
from patungan.composition import purchase_order_service
from tests.support.lambdas import call_api, claims
from tests.support.stock import SELLER_ID, stock_world
from tests.support.stock import WORKER as WORKER_PRINCIPAL

WORKER = claims("worker-1", "warehouse")
ADMIN = claims("admin-1", "admin")
SELLER = claims("seller-staff-1", "seller", seller_id=SELLER_ID)
OTHER_SELLER = claims("seller-staff-2", "seller", seller_id="sel_other")
BUYER = claims("buyer-1", "buyer")

ROUTES = {
    "/v1/inventory/receipts": "ReceiveStockFunction",
    "/v1/inventory/adjustments": "AdjustStockFunction",
    "/v1/inventory/cycle-counts": "RecordCycleCountFunction",
    "/v1/inventory/reservations": "CreateReservationFunction",
    "/v1/inventory": "ListInventoryFunction",
    "/v1/inventory/audit": "ListInventoryAuditFunction",
    "/v1/inventory/discrepancies": "ListDiscrepanciesFunction",
}


@pytest.fixture
def world(aws):
    return stock_world()


def post(path, body, who=WORKER, key=None):
    return call_api(
        ROUTES[path], "POST", path, body=body, claims=who, headers={"Idempotency-Key": key} if key else None
    )


def get(path, who=WORKER, **query):
    return call_api(ROUTES[path], "GET", path, claims=who, query={k: v for k, v in query.items() if v is not None})


def shirt(world, **fields):
    return {"warehouse_id": world.warehouse.id, "product_id": world.shirt.id, "variant_id": "v_s", **fields}


def audit(**query):
    response = get("/v1/inventory/audit", **query)
    assert response.status == 200, response.body
    return response.body["items"]


CHANGES = {
    "receipt": ("/v1/inventory/receipts", {"quantity": 3, "reference": "DO-1"}, 201),
    "adjustment": ("/v1/inventory/adjustments", {"delta": -1, "reason": "dropped"}, 200),
    "cycle_count": ("/v1/inventory/cycle-counts", {"counted_quantity": 9, "note": "aisle 3"}, 201),
}


@pytest.mark.parametrize("action", [*CHANGES, "reservation"])
def test_every_stock_changing_route_writes_one_audit_record_found_by_item_actor_action_and_time(world, action):
    """WH-2: one record per change, with who, before/after, reason and reference; each of the audit queries
    (item, product, warehouse, actor, action, time range) finds it, and only it among this actor's."""
    assert post("/v1/inventory/receipts", shirt(world, quantity=10), who=ADMIN).status == 201
    actor = claims(f"worker-{action}", "warehouse")
    if action == "reservation":
        path, body, status = (
            "/v1/inventory/reservations",
            {
                "warehouse_id": world.warehouse.id,
                "lines": [{"product_id": world.shirt.id, "variant_id": "v_s", "quantity": 2}],
            },
            201,
        )
    else:
        path, fields, status = CHANGES[action]
        body = shirt(world, **fields)

    response = post(path, body, who=actor)

    assert response.status == status, response.body
    [record] = audit(actor_id=actor["sub"])
    assert record["action"] == action
    assert record["before"] == {"on_hand": 10, "reserved": 0}
    assert (
        record["after"]
        == {
            "receipt": {"on_hand": 13, "reserved": 0},
            "adjustment": {"on_hand": 9, "reserved": 0},
            "cycle_count": {"on_hand": 9, "reserved": 0},
            "reservation": {"on_hand": 10, "reserved": 2},
        }[action]
    )
    at = record["at"]
    item = {"warehouse_id": world.warehouse.id, "product_id": world.shirt.id, "variant_id": "v_s"}
    for query in (
        item,
        {"product_id": world.shirt.id},
        {"warehouse_id": world.warehouse.id},
        {"action": action},
        {"from": at, "to": at},
        {**item, "action": action, "from": at, "to": at},
    ):
        found = [r for r in audit(**query) if r["actor_id"] == actor["sub"]]
        assert [r["id"] for r in found] == [record["id"]], query
    assert audit(actor_id=actor["sub"], to="2026-01-01T00:00:00Z") == []
    assert len(audit(**item)) == 2  # the admin's receipt and this change


def test_a_receipt_retried_with_its_idempotency_key_is_received_and_audited_once(world):
    first = post("/v1/inventory/receipts", shirt(world, quantity=4), key="delivery-7")
    again = post("/v1/inventory/receipts", shirt(world, quantity=4), key="delivery-7")

    assert first.status == again.status == 201
    assert first.body == again.body
    assert (first.body["on_hand"], first.body["available"]) == (4, 4)
    assert len(audit(action="receipt")) == 1


@pytest.mark.parametrize("action", [*CHANGES, "reservation"])
def test_a_change_retried_after_a_crash_is_applied_and_audited_once(aws, world, action):
    """Crash-then-retry: the first attempt was applied, then the function died before its Idempotency-Key
    record was completed; once that record expires, the retry with the same key changes nothing more."""
    post("/v1/inventory/receipts", shirt(world, quantity=10), who=ADMIN)
    if action == "reservation":
        path, body = (
            "/v1/inventory/reservations",
            {"lines": [{"product_id": world.shirt.id, "variant_id": "v_s", "quantity": 2}]},
        )
    else:
        path, fields, _ = CHANGES[action]
        body = shirt(world, **fields)

    first = post(path, body, key="crashed-once")
    aws.expire_idempotency_records()
    retried = post(path, body, key="crashed-once")
    other = post(path, body, key="another-request")

    assert first.status == retried.status, retried.body
    assert retried.body.get("id") == first.body.get("id")
    assert len(audit(action=action)) == (3 if action == "receipt" else 2)  # the first, the other (, the setup)
    [stock] = get("/v1/inventory", warehouse_id=world.warehouse.id, product_id=world.shirt.id).body["items"]
    assert (stock["on_hand"], stock["reserved"]) == {
        "receipt": (16, 0),
        "adjustment": (8, 0),
        "cycle_count": (9, 0),
        "reservation": (10, 4),
    }[action]
    assert other.status == first.status


def test_an_adjustment_never_leaves_less_on_hand_than_reserved(world):
    post("/v1/inventory/receipts", shirt(world, quantity=5))
    post(
        "/v1/inventory/reservations",
        {"lines": [{"product_id": world.shirt.id, "variant_id": "v_s", "quantity": 4}]},
    )

    refused = post("/v1/inventory/adjustments", shirt(world, delta=-2, reason="damaged"))
    allowed = post("/v1/inventory/adjustments", shirt(world, delta=-1, reason="damaged"))

    assert refused.status == 409
    assert refused.body["error"]["code"] == "insufficient_stock"
    assert allowed.status == 200
    assert {k: allowed.body[k] for k in ("on_hand", "reserved", "available")} == {
        "on_hand": 4,
        "reserved": 4,
        "available": 0,
    }
    assert len(audit(action="adjustment")) == 1


def test_a_cycle_count_applies_its_discrepancy_and_the_report_values_it(world):
    """WH-3: expected vs counted, applied as an audited change; the report nets the period's counts and values
    them at the catalog unit price (the variant's price: 55 000 for M)."""
    post("/v1/inventory/receipts", shirt(world, quantity=10))
    post("/v1/inventory/receipts", shirt(world, variant_id="v_m", quantity=5))

    counted = post("/v1/inventory/cycle-counts", shirt(world, counted_quantity=7))
    post("/v1/inventory/cycle-counts", shirt(world, variant_id="v_m", counted_quantity=6))
    post("/v1/inventory/cycle-counts", shirt(world, variant_id="v_m", counted_quantity=4))

    assert counted.status == 201
    assert {k: counted.body[k] for k in ("expected_on_hand", "counted_quantity", "discrepancy", "actor_id")} == {
        "expected_on_hand": 10,
        "counted_quantity": 7,
        "discrepancy": -3,
        "actor_id": "worker-1",
    }
    stock = get("/v1/inventory", warehouse_id=world.warehouse.id, product_id=world.shirt.id).body["items"]
    assert {i["variant_id"]: i["on_hand"] for i in stock} == {"v_s": 7, "v_m": 4}

    report = get("/v1/inventory/discrepancies", warehouse_id=world.warehouse.id)
    assert report.status == 200, report.body
    assert report.body == {
        "items": [
            {
                "warehouse_id": world.warehouse.id,
                "product_id": world.shirt.id,
                "variant_id": "v_m",
                "counts": 2,
                "net_discrepancy": -1,
                "value": -55_000,
            },
            {
                "warehouse_id": world.warehouse.id,
                "product_id": world.shirt.id,
                "variant_id": "v_s",
                "counts": 1,
                "net_discrepancy": -3,
                "value": -150_000,
            },
        ],
        "total_net_discrepancy": -4,
        "total_value": -205_000,
        "currency": "IDR",
    }
    assert get("/v1/inventory/discrepancies", to="2026-01-01T00:00:00Z").body["items"] == []


def test_a_count_below_what_is_reserved_is_refused(world):
    post("/v1/inventory/receipts", shirt(world, quantity=5))
    post("/v1/inventory/reservations", {"lines": [{"product_id": world.shirt.id, "variant_id": "v_s", "quantity": 3}]})

    response = post("/v1/inventory/cycle-counts", shirt(world, counted_quantity=2))

    assert response.status == 409
    assert response.body["error"]["code"] == "insufficient_stock"
    assert audit(action="cycle_count") == []


def test_who_may_change_and_see_stock(world):
    """Warehouse staff and admins change stock; seller staff see their own products' stock and nobody else's."""
    assert post("/v1/inventory/receipts", shirt(world, quantity=1), who=BUYER).status == 403
    assert post("/v1/inventory/receipts", shirt(world, quantity=1), who=SELLER).status == 403
    assert post("/v1/inventory/receipts", shirt(world, quantity=2)).status == 201

    own = get("/v1/inventory", who=SELLER)
    assert own.status == 200
    assert [(i["variant_id"], i["on_hand"]) for i in own.body["items"]] == [("v_s", 2)]
    assert get("/v1/inventory", who=SELLER, product_id=world.shirt.id).body["items"] == own.body["items"]
    assert get("/v1/inventory", product_id=world.shirt.id).body["items"] == own.body["items"]
    assert get("/v1/inventory", who=OTHER_SELLER).body["items"] == []
    assert get("/v1/inventory", who=OTHER_SELLER, product_id=world.shirt.id).status == 404
    assert get("/v1/inventory", who=BUYER, warehouse_id=world.warehouse.id).status == 403
    assert get("/v1/inventory/audit", who=SELLER).status == 403


def test_staff_list_all_stock_warehouse_after_warehouse_a_page_at_a_time(world):
    """API.md: GET /v1/inventory's filters are optional. Unfiltered, warehouse staff page through every
    warehouse's stock (each warehouse's own index: no scan); the pages join up with nothing twice or missed."""
    for warehouse in (world.warehouse, world.other_warehouse):
        for variant in ("v_s", "v_m"):
            body = {"warehouse_id": warehouse.id, "product_id": world.shirt.id, "variant_id": variant, "quantity": 1}
            assert post("/v1/inventory/receipts", body).status == 201

    seen, cursor, pages = [], None, 0
    while True:
        response = get("/v1/inventory", limit="3", cursor=cursor)
        assert response.status == 200, response.body
        seen += [(i["warehouse_id"], i["variant_id"]) for i in response.body["items"]]
        pages += 1
        if (cursor := response.body["next_cursor"]) is None:
            break

    assert sorted(seen) == sorted((w.id, v) for w in (world.warehouse, world.other_warehouse) for v in ("v_s", "v_m"))
    assert pages == 2
    assert get("/v1/inventory", cursor="eyJ3YXJlaG91c2VfaWQiOiJub3BlIn0").status == 400  # a warehouse never listed


def test_stock_is_received_only_for_a_warehouse_product_and_variant_that_exist(world):
    for fields, field in (
        ({"warehouse_id": "wh_nowhere"}, "warehouse_id"),
        ({"product_id": "prd_nothing"}, "product_id"),
        ({"variant_id": "v_xl"}, "variant_id"),
        ({"variant_id": None}, "variant_id"),  # the shirt has variants: one must be named
    ):
        response = post("/v1/inventory/receipts", shirt(world, quantity=1, **fields))
        assert response.status == 422, fields
        assert response.body["error"]["details"][0]["field"] == field
    assert audit() == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "0001-01-01T00:00:00+01:00"}, "from"),  # before year 1 in UTC: no datetime holds it
        ({"to": "9999-12-31T23:59:59-01:00"}, "to"),  # after year 9999 in UTC
    ],
)
@pytest.mark.parametrize("path", ["/v1/inventory/audit", "/v1/inventory/discrepancies"])
def test_a_time_outside_what_a_datetime_holds_is_422_naming_the_field_not_a_500(world, path, query, field):
    """WH-2, WH-3, review of issue 9: any ?from=/?to= a caller can type is validated, never a 500."""
    response = call_api(ROUTES[path], "GET", path, claims=WORKER, query=query)

    assert response.status == 422, response.body
    assert [d["field"] for d in response.body["error"]["details"]] == [field]


def test_the_audit_log_pages_newest_first_across_its_shards(world):
    for quantity in range(1, 8):
        post("/v1/inventory/receipts", shirt(world, quantity=quantity))

    seen, cursor = [], None
    while True:
        page = get("/v1/inventory/audit", limit="3", cursor=cursor)
        assert page.status == 200, page.body
        seen.extend(page.body["items"])
        cursor = page.body["next_cursor"]
        if cursor is None:
            break

    assert [r["after"]["on_hand"] for r in seen] == [28, 21, 15, 10, 6, 3, 1]
    assert get("/v1/inventory/audit", cursor="bm90IG91cnM").status == 400
    backwards = get("/v1/inventory/audit", **{"from": "2026-12-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"})
    assert (backwards.status, backwards.body["items"]) == (200, [])
    assert get("/v1/inventory/audit", to="yesterday").status == 422


def test_buyers_see_a_retail_products_available_units(world):
    post("/v1/inventory/receipts", shirt(world, quantity=5))
    post("/v1/inventory/receipts", shirt(world, warehouse_id=world.other_warehouse.id, variant_id="v_m", quantity=2))
    post("/v1/inventory/reservations", {"lines": [{"product_id": world.shirt.id, "variant_id": "v_s", "quantity": 1}]})

    product = call_api(
        "GetProductFunction", "GET", f"/v1/products/{world.shirt.id}", resource="/v1/products/{id}",
        path_parameters={"id": world.shirt.id},
    ).body  # fmt: skip

    assert product["available"] == 6
    assert {v["id"]: v["available"] for v in product["variants"]} == {"v_s": 4, "v_m": 2}
    listed = call_api("ListProductsFunction", "GET", "/v1/products", query={"seller_id": SELLER_ID}).body["items"]
    assert {p["id"]: p["available"] for p in listed} == {world.shirt.id: 6, world.product.id: 0}


def _purchase_order_for_three(world):
    """A session's purchase order for 3 units of the plain product, as a successful settlement raises it."""
    tx = Transaction()
    po = purchase_order_service().raise_for_session(
        tx,
        session_id="ses_kopi",
        factory_id="fac_1",
        product_id=world.product.id,
        variant_id=None,
        product_name="Kopi",
        quantity=3,
    )
    tx.commit()
    return po


def test_a_purchase_order_receipt_is_audited_stock_reserved_for_the_sessions_orders(aws, world):
    """GB-15, WH-4: received units go on hand at the named warehouse, reserved for the session (a hold owned by
    it), audited po_receipt in the receipt's transaction; the escrow release is unchanged."""
    po = _purchase_order_for_three(world)

    def receive(quantity, **extra):
        return call_api(
            "ReceivePurchaseOrderFunction",
            "POST",
            f"/v1/purchase-orders/{po.id}/receive",
            resource="/v1/purchase-orders/{id}/receive",
            path_parameters={"id": po.id},
            body={"received_quantity": quantity, **extra},
            claims=WORKER,
        )

    assert receive(1, warehouse_id="wh_nowhere").status == 422
    assert receive(2, warehouse_id=world.warehouse.id).body["status"] == "open"
    assert receive(1, warehouse_id=world.warehouse.id).body["status"] == "received"

    [stock] = get("/v1/inventory", warehouse_id=world.warehouse.id, product_id=world.product.id).body["items"]
    assert (stock["on_hand"], stock["reserved"], stock["available"]) == (3, 3, 0)
    records = audit(action="po_receipt")
    assert [(r["before"]["on_hand"], r["after"]["on_hand"], r["after"]["reserved"]) for r in records] == [
        (2, 3, 3),
        (0, 2, 2),
    ]
    assert {r["actor_id"] for r in records} == {"worker-1"}
    released = aws.dynamodb().scan(TableName=aws.tables["OutboxTable"])["Items"]
    assert [i["type"]["S"] for i in released].count("warehouse.po_received") == 1


def test_one_idempotency_key_reused_on_another_purchase_order_posts_its_stock_too(aws, world):
    """GB-15, WH-4 (review of issue 9): a receipt's id was derived from the caller, the quantity and the key but
    not the purchase order, so a key reused on another order (once the first answer's idempotency record had
    expired) named the same stock hold: the second order's receipt was refused forever as a concurrent update
    and its units never went on hand. Each order's receipt is its own."""
    orders = []
    for session in ("ses_kopi", "ses_teh"):
        tx = Transaction()
        orders.append(
            purchase_order_service().raise_for_session(
                tx,
                session_id=session,
                factory_id="fac_1",
                product_id=world.product.id,
                variant_id=None,
                product_name="Kopi",
                quantity=1,
            )
        )
        tx.commit()
    receipts = purchase_order_service()

    for po in orders:
        received = receipts.receive(WORKER_PRINCIPAL, po.id, 1, "delivery-note-7", world.warehouse.id)
        assert received.status == "received"

    [stock] = get("/v1/inventory", warehouse_id=world.warehouse.id, product_id=world.product.id).body["items"]
    assert (stock["on_hand"], stock["reserved"], stock["available"]) == (2, 2, 0)
    assert len(audit(action="po_receipt")) == 2


def test_an_adjustment_of_no_units_is_refused_and_audits_nothing(world):
    """WH-2 (review of issue 9): an adjustment of 0 units was applied as a change: an audit record whose before
    and after are equal, a change that did not happen in the trail. It is refused, naming the field."""
    post("/v1/inventory/receipts", shirt(world, quantity=5))

    refused = post("/v1/inventory/adjustments", shirt(world, delta=0, reason="nothing moved"))

    assert refused.status == 422
    assert refused.body["error"]["details"][0]["field"] == "delta"
    assert audit(action="adjustment") == []


def test_a_partial_purchase_order_receipt_retried_after_a_crash_posts_its_stock_once(aws, world):
    """GB-15, WH-2, WH-4 (review of issue 9): the receipt (and its stock) committed, then the function died before
    its answer was kept; the retry with its Idempotency-Key posts nothing more: one po_receipt record, the
    units on hand and reserved once, no escrow release for a partial receipt."""
    po = _purchase_order_for_three(world)

    def receive():
        return call_api(
            "ReceivePurchaseOrderFunction",
            "POST",
            f"/v1/purchase-orders/{po.id}/receive",
            resource="/v1/purchase-orders/{id}/receive",
            path_parameters={"id": po.id},
            body={"received_quantity": 2, "warehouse_id": world.warehouse.id},
            claims=WORKER,
            headers={"Idempotency-Key": "dn-1"},
        )

    with mock.patch.object(BasePersistenceLayer, "save_success", side_effect=RuntimeError("Lambda timed out")):
        assert receive().status >= 500
    aws.expire_idempotency_records()
    retried = receive()

    assert (retried.status, retried.body["received_quantity"]) == (200, 2)
    [stock] = get("/v1/inventory", warehouse_id=world.warehouse.id, product_id=world.product.id).body["items"]
    assert (stock["on_hand"], stock["reserved"], stock["available"]) == (2, 2, 0)
    [record] = audit(action="po_receipt")
    assert (record["before"], record["after"]) == ({"on_hand": 0, "reserved": 0}, {"on_hand": 2, "reserved": 2})
    outbox = aws.dynamodb().scan(TableName=aws.tables["OutboxTable"])["Items"]
    assert "warehouse.po_received" not in [i["type"]["S"] for i in outbox]
