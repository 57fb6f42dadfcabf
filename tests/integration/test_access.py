"""Who may see and do what (ORD-6, CAT-3, GB-1, GB-3; issue 6 defect 7): a token without the factory or
seller it acts for is refused (403) on every route that scopes by it, never read as "no filter"; another
user's resource is 404; only buyers join."""

from __future__ import annotations

import pytest

from patungan.adapters.dynamodb import Transaction
from patungan.composition import order_service, purchase_order_service
from patungan.orders.models import Order, OrderLine
from tests.support.groupbuy import ADMIN, WAREHOUSE, buyer
from tests.support.lambdas import call_api, claims, load_event

FACTORY_WITHOUT_ID = claims("factory-staff-lost", "factory")
SELLER_WITHOUT_ID = claims("seller-staff-lost", "seller")


def raise_purchase_order(factory_id: str, session_id: str) -> str:
    tx = Transaction()
    po = purchase_order_service().raise_for_session(
        tx,
        session_id=session_id,
        factory_id=factory_id,
        product_id="prd_1",
        variant_id=None,
        product_name="Kopi",
        quantity=2,
    )
    tx.commit()
    return po.id


def add_order(order_id: str, user_id: str, factory_id: str) -> None:
    line = OrderLine(product_id="prd_1", name="Kopi", quantity=1, unit_price=10_000, amount=10_000)
    order = Order(
        id=order_id,
        user_id=user_id,
        factory_id=factory_id,
        status="paid",
        lines=[line],
        subtotal=10_000,
        total=10_000,
        currency="IDR",
        payment_id="pay_1",
        created_at="2026-11-21T10:00:00Z",
        updated_at="2026-11-21T10:00:00Z",
    )
    tx = Transaction()
    order_service().add_to(tx, order)
    tx.commit()


def list_pos(who):
    return call_api("ListPurchaseOrdersFunction", "GET", "/v1/purchase-orders", claims=who)


def get_po(who, po_id):
    return call_api(
        "GetPurchaseOrderFunction",
        "GET",
        f"/v1/purchase-orders/{po_id}",
        resource="/v1/purchase-orders/{id}",
        path_parameters={"id": po_id},
        claims=who,
    )


def list_orders(who):
    return call_api("ListOrdersFunction", "GET", "/v1/orders", claims=who)


def get_order(who, order_id):
    return call_api(
        "GetOrderFunction",
        "GET",
        f"/v1/orders/{order_id}",
        resource="/v1/orders/{id}",
        path_parameters={"id": order_id},
        claims=who,
    )


@pytest.fixture
def two_factories(aws):
    """A purchase order and a buyer's order for each of two factories."""
    pos = {factory: raise_purchase_order(factory, f"ses_{factory}") for factory in ("fac_a", "fac_b")}
    add_order("ord_a", "buyer-1", "fac_a")
    add_order("ord_b", "buyer-2", "fac_b")
    return pos


def forbidden(response) -> bool:
    return response.status == 403 and response.body["error"]["code"] == "forbidden"


def test_a_factory_token_without_its_factory_is_refused_purchase_orders(two_factories):
    """Defect 7 as reported: the missing custom:factory_id became "no filter" and listed fac_b's orders."""
    assert forbidden(list_pos(FACTORY_WITHOUT_ID))
    assert forbidden(get_po(FACTORY_WITHOUT_ID, two_factories["fac_b"]))


def test_factory_staff_see_only_their_own_factorys_purchase_orders(two_factories):
    staff_a = claims("staff-a", "factory", factory_id="fac_a")

    assert [po["id"] for po in list_pos(staff_a).body["items"]] == [two_factories["fac_a"]]
    assert get_po(staff_a, two_factories["fac_a"]).status == 200
    assert get_po(staff_a, two_factories["fac_b"]).status == 404
    assert len(list_pos(WAREHOUSE).body["items"]) == len(list_pos(ADMIN).body["items"]) == 2
    assert forbidden(list_pos(buyer(1)))


def test_a_staff_token_without_its_factory_or_seller_is_refused_on_orders(two_factories):
    for who in (FACTORY_WITHOUT_ID, SELLER_WITHOUT_ID):
        assert forbidden(list_orders(who))
        assert forbidden(get_order(who, "ord_a"))


def test_orders_are_seen_by_their_buyer_their_factory_and_admins_only(two_factories):
    """ORD-6: another buyer's or another factory's order is 404."""
    staff_a = claims("staff-a", "factory", factory_id="fac_a")

    assert [o["id"] for o in list_orders(buyer(1)).body["items"]] == ["ord_a"]
    assert [o["id"] for o in list_orders(staff_a).body["items"]] == ["ord_a"]
    assert get_order(buyer(1), "ord_a").status == get_order(staff_a, "ord_a").status == 200
    assert get_order(buyer(1), "ord_b").status == get_order(staff_a, "ord_b").status == 404
    assert get_order(ADMIN, "ord_b").status == 200


def test_a_factory_token_without_its_factory_creates_no_product(aws):
    response = call_api(
        "CreateProductFunction",
        "POST",
        "/v1/products",
        claims=FACTORY_WITHOUT_ID,
        body=load_event("catalog/create_product.json"),
    )

    assert forbidden(response)


def test_a_factory_token_without_its_factory_opens_no_session(world):
    assert forbidden(world.create_session(who=FACTORY_WITHOUT_ID))


@pytest.mark.parametrize(
    "who",
    [ADMIN, WAREHOUSE, claims("factory-staff-1", "factory", factory_id="fac_x")],
    ids=["admin", "warehouse", "factory"],
)
def test_only_buyers_join_a_session(world, who):
    """API.md: join is buyers only; an admin's role stands in for staff roles, not for a buyer's."""
    session = world.session()

    response = world.join(who, session["id"])

    assert forbidden(response)
    state = world.get_session(session["id"])
    assert (state["reserved_quantity"], state["participant_count"]) == (0, 0)
    assert world.invoices_at_xendit(session["id"]) == []
