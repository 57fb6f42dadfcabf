"""Open sessions keep the product's current name and category (catalog.product.updated over SQS): a repeated
or older event changes nothing, and closed sessions keep what they sold (CAT-1, GB-16, SYS-1)."""

from __future__ import annotations

from tests.support.groupbuy import ADMIN
from tests.support.lambdas import call_api


def rename(world, name: str, category: str = "footwear"):
    response = call_api(
        "UpdateProductFunction",
        "PATCH",
        f"/v1/products/{world.product_id}",
        resource="/v1/products/{id}",
        path_parameters={"id": world.product_id},
        claims=world.staff,
        body={"name": name, "category": category},
    )
    assert response.status == 200, response.body


def deliver_updates(world):
    return world.deliver_queued("catalog.product.updated", "RefreshSessionProductsFunction")


def test_an_open_session_shows_the_renamed_product_and_its_new_category(world):
    session = world.session()
    rename(world, "Sepatu Kanvas Premium", "Sneakers")

    assert deliver_updates(world) == {"batchItemFailures": []}

    shown = world.get_session(session["id"])
    assert (shown["product_name"], shown["category"]) == ("Sepatu Kanvas Premium", "sneakers")
    listed = call_api("ListSessionsFunction", "GET", "/v1/sessions", query={"category": "sneakers"}).body["items"]
    assert [s["id"] for s in listed] == [session["id"]]


def test_an_older_update_arriving_late_or_a_repeated_one_changes_nothing(world):
    session = world.session()
    rename(world, "First name")
    rename(world, "Second name")
    first, second = world.events("catalog.product.updated")

    world.deliver_queued("catalog.product.updated", "RefreshSessionProductsFunction", newest_first=True)
    version_after = world.session_item(session["id"])["version"]
    deliver_updates(world)

    assert (first["data"]["product"]["version"], second["data"]["product"]["version"]) == (2, 3)
    assert world.get_session(session["id"])["product_name"] == "Second name"
    assert world.session_item(session["id"])["version"] == version_after


def test_a_closed_session_keeps_the_name_it_sold_under(world):
    session = world.session()
    call_api(
        "CancelSessionFunction",
        "POST",
        f"/v1/sessions/{session['id']}/cancel",
        resource="/v1/sessions/{id}/cancel",
        path_parameters={"id": session["id"]},
        claims=ADMIN,
    )
    rename(world, "Renamed after closing")

    deliver_updates(world)

    assert world.get_session(session["id"])["product_name"] == "Sepatu Kanvas"
