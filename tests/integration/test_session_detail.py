"""Session detail carries the caller's own participation (GB-16, issue 6 defect 9). The route is public (no
authorizer, so API Gateway passes no claims): the function verifies a bearer token itself, and a token that
fails verification is 401, never trusted."""

from __future__ import annotations

import time

from patungan.adapters.tokens import LocalTokens
from tests.support.aws import LOCAL_TOKEN_SECRET
from tests.support.groupbuy import buyer
from tests.support.lambdas import call_api


def token(claims, secret=LOCAL_TOKEN_SECRET, lifetime=3600):
    return LocalTokens(secret).sign({**claims, "exp": str(int(time.time()) + lifetime)})


def detail(session_id, bearer=None):
    return call_api(
        "GetSessionFunction",
        "GET",
        f"/v1/sessions/{session_id}",
        resource="/v1/sessions/{id}",
        path_parameters={"id": session_id},
        headers={"Authorization": f"Bearer {bearer}"} if bearer else None,
    )


def test_a_buyer_sees_their_own_participation_and_nobody_else_does(world):
    session = world.session()
    joined = world.joined(buyer(1), session["id"], quantity=2)

    mine = detail(session["id"], token(buyer(1)))
    theirs = detail(session["id"], token(buyer(2)))
    anonymous = detail(session["id"])

    assert mine.status == theirs.status == anonymous.status == 200
    assert mine.body["my_participation"] == joined
    assert theirs.body["my_participation"] is None
    assert anonymous.body["my_participation"] is None
    assert mine.body["reserved_quantity"] == anonymous.body["reserved_quantity"] == 2


def test_the_latest_participation_is_shown_after_leaving(world):
    session = world.session()
    world.joined(buyer(1), session["id"])
    assert world.leave(buyer(1), session["id"]).status == 200

    shown = detail(session["id"], token(buyer(1))).body["my_participation"]

    assert (shown["status"], shown["user_id"]) == ("left", "buyer-1")


def test_a_forged_or_expired_token_is_not_trusted(world):
    session = world.session()
    world.joined(buyer(1), session["id"])
    genuine_for_buyer_2 = token(buyer(2))
    buyer_1_claims_with_buyer_2_signature = (
        token(buyer(1)).partition(".")[0] + "." + genuine_for_buyer_2.partition(".")[2]
    )

    for bearer in (
        token(buyer(1), secret="guessed-key"),
        buyer_1_claims_with_buyer_2_signature,
        token(buyer(1), lifetime=-60),
        "not-a-token",
    ):
        response = detail(session["id"], bearer)
        assert response.status == 401, bearer
        assert response.body["error"]["code"] == "unauthorized"
        assert "my_participation" not in response.body
