"""Sessions and joining (GB-1..GB-8, GB-16, PAY-2..PAY-4) through the handlers, on moto and the local Xendit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest

from patungan.adapters.dynamodb import MAX_READS_PER_PAGE, DynamoTable
from patungan.core.clock import parse_iso, to_iso
from tests.support.groupbuy import ADMIN, buyer
from tests.support.lambdas import call_api, claims


def test_factory_staff_open_a_session_with_live_pricing(world):
    session = world.session()

    assert session["status"] == "active"
    assert session["factory_id"] == world.factory_id
    assert session["current_unit_price"] == 100_000
    assert session["fill_percent"] == 0
    assert session["paid_quantity"] == session["reserved_quantity"] == 0
    assert session["time_left_seconds"] > 0
    [created] = world.events("groupbuy.session.created")
    assert created["aggregate_id"] == session["id"]
    assert parse_iso(created["data"]["near_expiry_at"]) < parse_iso(session["deadline"])


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"moq": 0}, "body.moq"),
        (
            {"tiers": [{"min_fill_percent": 50, "unit_price": 90_000}, {"min_fill_percent": 75, "unit_price": 95_000}]},
            "body",
        ),
        ({"tiers": [{"min_fill_percent": 50, "unit_price": 110_000}]}, "body"),
        ({"moq": 30}, "body"),
    ],
)
def test_invalid_sessions_are_422_and_nothing_is_created(world, overrides, field):
    response = world.create_session(**overrides)

    assert response.status == 422
    assert field in {d["field"] for d in response.body["error"]["details"]}
    assert world.items("GroupBuyTable", "SESSION#") == []


def test_a_deadline_in_the_past_is_refused(world):
    response = world.create_session(deadline=to_iso(datetime.now(UTC) - timedelta(minutes=1)))

    assert response.status == 422
    assert response.body["error"]["details"][0]["field"] == "deadline"


def test_only_staff_of_the_products_factory_open_sessions(world):
    other_factory = claims("staff-x", "factory", factory_id="fac_other")

    assert world.create_session(who=other_factory).status == 403
    assert world.create_session(who=buyer(1)).status == 403
    assert world.create_session(who=ADMIN).status == 201


def test_joining_creates_an_escrow_invoice_that_expires_before_the_deadline(world):
    session = world.session()

    response = world.join(buyer(1), session["id"], quantity=2, unit_price=100_000)

    assert response.status == 201
    joined = response.body
    assert joined["status"] == "pending_payment"
    assert (joined["quantity"], joined["unit_price"], joined["amount"]) == (2, 100_000, 200_000)
    assert joined["payment"]["invoice_url"].startswith(world.xendit_url)
    assert parse_iso(joined["payment"]["expires_at"]) < parse_iso(session["deadline"])
    [invoice] = world.invoices_at_xendit(session["id"])
    assert (invoice.external_id, invoice.amount) == (joined["payment"]["id"], 200_000)
    assert world.get_session(session["id"])["reserved_quantity"] == 2
    assert [p["id"] for p in world.my_participations(buyer(1))] == [joined["id"]]
    assert [e["data"]["user_id"] for e in world.events("groupbuy.participant.joined")] == ["buyer-1"]


def test_a_client_price_that_differs_from_the_servers_is_refused(world):
    session = world.session()

    response = world.join(buyer(1), session["id"], quantity=1, unit_price=90_000)

    assert response.status == 400
    assert response.body["error"]["code"] == "price_mismatch"
    assert response.body["error"]["details"][0]["current_unit_price"] == 100_000
    # Nothing written: the session item and its capacity shards only, all its target still open.
    rows = world.items("GroupBuyTable", f"SESSION#{session['id']}")
    assert {row["sk"] for row in rows} <= {"META"} | {f"CAPACITY#{n:02d}" for n in range(16)}
    assert sum(row["remaining"] for row in rows if row["sk"] != "META") == session["target_quantity"]
    assert world.invoices_at_xendit(session["id"]) == []


@pytest.mark.parametrize("quantity", [0, 6])
def test_quantity_must_be_between_one_and_the_per_buyer_maximum(world, quantity):
    session = world.session()

    response = world.join(buyer(1), session["id"], quantity=quantity)

    assert response.status == 422
    assert world.invoices_at_xendit(session["id"]) == []


def test_a_second_join_by_the_same_buyer_is_409(world):
    session = world.session()
    world.joined(buyer(1), session["id"])

    again = world.join(buyer(1), session["id"])

    assert again.status == 409
    assert again.body["error"]["code"] == "already_joined"
    assert len(world.invoices_at_xendit(session["id"])) == 1
    assert world.get_session(session["id"])["reserved_quantity"] == 1


def test_nobody_joins_past_the_target_quantity(world):
    session = world.session(
        target_quantity=6, moq=3, max_per_buyer=5, tiers=[{"min_fill_percent": 50, "unit_price": 90_000}]
    )
    world.joined(buyer(1), session["id"], quantity=5)

    response = world.join(buyer(2), session["id"], quantity=2)

    assert response.status == 409
    assert response.body["error"]["code"] == "insufficient_quantity"


def test_a_cancelled_session_is_not_open(world):
    session = world.session()
    cancelled = call_api(
        "CancelSessionFunction",
        "POST",
        f"/v1/sessions/{session['id']}/cancel",
        resource="/v1/sessions/{id}/cancel",
        path_parameters={"id": session["id"]},
        claims=ADMIN,
    )

    response = world.join(buyer(1), session["id"])

    assert cancelled.status == 200
    assert cancelled.body["status"] == "cancelled"
    assert response.status == 409
    assert response.body["error"]["code"] == "session_not_open"


def test_only_admins_cancel_and_only_before_closing(world):
    session = world.session()
    path = f"/v1/sessions/{session['id']}/cancel"
    kwargs = {"resource": "/v1/sessions/{id}/cancel", "path_parameters": {"id": session["id"]}}

    assert call_api("CancelSessionFunction", "POST", path, claims=world.staff, **kwargs).status == 403
    world.step("ClaimSessionFunction", session_id=session["id"])
    refused = call_api("CancelSessionFunction", "POST", path, claims=ADMIN, **kwargs)
    assert refused.status == 409
    assert world.get_session(session["id"])["status"] == "closing"


def test_join_is_rolled_back_when_xendit_is_down(world):
    session = world.session()
    world.xendit_down()

    response = world.join(buyer(1), session["id"])

    assert response.status == 503
    assert response.body["error"]["code"] == "service_unavailable"
    state = world.get_session(session["id"])
    assert (state["reserved_quantity"], state["participant_count"]) == (0, 0)
    # PAY-1: the payment is kept, failed, so that a charge on an invoice made after all is refunded
    assert [p["status"] for p in world.items("PaymentsTable", "PAYMENT#")] == ["failed"]
    assert world.my_participations(buyer(1)) == []
    [failed] = world.events("payment.failed")
    assert (failed["data"]["user_id"], failed["data"]["reason"]) == ("buyer-1", "invoice_not_created")
    world.xendit_up()
    assert world.join(buyer(1), session["id"]).status == 201


def test_listing_filters_by_status_and_factory_with_pages(world):
    first, second, third = (world.session() for _ in range(3))
    world.cancel(second["id"])

    def listing(**query):
        return call_api("ListSessionsFunction", "GET", "/v1/sessions", query=query).body

    page1 = listing(limit="2")
    page2 = listing(limit="2", cursor=page1["next_cursor"])
    active = listing(status="active")

    assert [s["id"] for s in page1["items"] + page2["items"]] == [third["id"], second["id"], first["id"]]
    assert [s["id"] for s in active["items"]] == [third["id"], first["id"]]
    assert listing(factory_id="fac_other")["items"] == []


def test_a_filtered_listing_reads_a_bounded_part_per_page_and_continues_by_cursor(world):
    """Issue 6 defect 9: a filter matching nothing among many sessions answered only after reading them all.
    A page now makes at most MAX_READS_PER_PAGE queries and hands back a cursor; following it finds what
    lies beyond, so nothing is skipped."""
    oldest, *_ = (world.session() for _ in range(MAX_READS_PER_PAGE + 2))
    world.cancel(oldest["id"])

    def listing(**query):
        with mock.patch.object(DynamoTable, "query", autospec=True, side_effect=DynamoTable.query) as queries:
            response = call_api("ListSessionsFunction", "GET", "/v1/sessions", query=query)
        assert response.status == 200
        return response.body, queries.call_count

    first, reads = listing(status="cancelled", limit="1")
    assert (first["items"], reads) == ([], MAX_READS_PER_PAGE)
    assert first["next_cursor"] is not None
    second, _ = listing(status="cancelled", limit="1", cursor=first["next_cursor"])
    assert [s["id"] for s in second["items"]] == [oldest["id"]]
    nothing, reads = listing(factory_id="fac_other", limit="100")
    assert (nothing["items"], nothing["next_cursor"], reads) == ([], None, 1)
