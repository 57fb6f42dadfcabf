"""What a hostile review of the HTTP surface from outside found (issue 6; API.md conventions, SYS-3): a public
list that took a forged token for anonymous, a wallet adjustment written for a user id nobody can have, and
list filters that answered an unknown status with an empty page instead of a 422."""

from __future__ import annotations

import time

import pytest

from patungan.adapters.tokens import LocalTokens
from patungan.ledger import accounts
from patungan.ledger.repository import ledger
from tests.support.aws import LOCAL_TOKEN_SECRET
from tests.support.groupbuy import ADMIN, WAREHOUSE, buyer
from tests.support.lambdas import call_api, claims
from tests.support.ledger import adjust_wallet


def signed(claims, secret=LOCAL_TOKEN_SECRET, lifetime=3600):
    return LocalTokens(secret).sign({**claims, "exp": str(int(time.time()) + lifetime)})


def list_sessions(bearer=None):
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else None
    return call_api("ListSessionsFunction", "GET", "/v1/sessions", headers=headers)


@pytest.mark.parametrize(
    "bearer",
    [signed(buyer(1), secret="guessed-key"), signed(buyer(1), lifetime=-60), "not-a-token"],
    ids=["forged", "expired", "garbage"],
)
def test_the_public_session_list_refuses_a_token_that_fails_verification(world, bearer):
    """GET /v1/sessions answered 200 to a forged token, where GET /v1/products and GET /v1/sessions/{id} say 401:
    a token sent to a public route is verified, never silently taken for anonymous."""
    world.session()

    response = list_sessions(bearer)

    assert response.status == 401
    assert response.body["error"]["code"] == "unauthorized"
    assert "items" not in response.body


def test_the_public_session_list_answers_anonymous_and_signed_in_callers(world):
    session = world.session()

    for response in (list_sessions(), list_sessions(signed(buyer(1)))):
        assert response.status == 200
        assert [item["id"] for item in response.body["items"]] == [session["id"]]


@pytest.mark.parametrize("user_id", [" ", "buyer 1", " buyer-1"], ids=["blank", "inner-space", "leading-space"])
def test_a_wallet_adjustment_for_a_user_id_nobody_can_have_is_422_and_posts_nothing(world, user_id):
    """POST /v1/admin/wallets/%20/adjustments was 201: it credited a wallet "buyer: :wallet" nobody owns (SYS-3)."""
    response = adjust_wallet(user_id, {"amount": 5000, "reason": "goodwill"}, ADMIN)

    assert response.status == 422, response.body
    assert response.body["error"]["code"] == "validation_error"
    assert "path.user_id" in [detail["field"] for detail in response.body["error"]["details"]]
    assert ledger().balance(accounts.buyer_wallet(user_id)) == 0


@pytest.mark.parametrize(
    ("function", "path"),
    [("ListPurchaseOrdersFunction", "/v1/purchase-orders"), ("ListOrdersFunction", "/v1/orders")],
)
def test_a_list_filtered_by_a_status_that_does_not_exist_is_422(world, function, path):
    """?status=bogus answered 200 with an empty page, where GET /v1/sessions?status=bogus is 422: a typo in a
    filter is the caller's mistake to be told about (API.md: 422, details name the field)."""
    response = call_api(function, "GET", path, query={"status": "bogus"}, claims=ADMIN)

    assert response.status == 422, response.body
    assert "query.status" in [detail["field"] for detail in response.body["error"]["details"]]


@pytest.mark.parametrize(
    ("function", "path", "status"),
    [("ListPurchaseOrdersFunction", "/v1/purchase-orders", "received"), ("ListOrdersFunction", "/v1/orders", "paid")],
)
def test_a_list_filtered_by_a_real_status_still_answers(world, function, path, status):
    response = call_api(function, "GET", path, query={"status": status}, claims=ADMIN)

    assert response.status == 200, response.body
    assert response.body["next_cursor"] is None


@pytest.mark.parametrize(
    "who", [ADMIN, WAREHOUSE, claims("staff-1", "factory", factory_id="fac_1")], ids=["admin", "warehouse", "factory"]
)
def test_only_buyers_leave_or_list_participations(world, who):
    """API.md: leaving and GET /v1/me/participations are the buyer's, as joining is. Another role got 404 ("no
    participation") and 200 [] - neither says "your role may not" (403)."""
    session = world.session()
    world.joined(buyer(1), session["id"])

    left = world.leave(who, session["id"])
    listed = call_api("ListMyParticipationsFunction", "GET", "/v1/me/participations", claims=who)

    assert (left.status, listed.status) == (403, 403)
    assert left.body["error"]["code"] == listed.body["error"]["code"] == "forbidden"
    assert world.get_session(session["id"])["reserved_quantity"] == 1
    assert len(world.my_participations(buyer(1))) == 1
