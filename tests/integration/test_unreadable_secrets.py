"""A dependency that is down gets 503 and loses nothing: SSM not answering for the Xendit API key or the
callback token (deleted, denied, throttled) is a retryable 503, never a 500, and changes nothing (PAY-1, SYS-6)."""

from __future__ import annotations

import boto3
from aws_lambda_powertools.utilities.parameters.base import DEFAULT_PROVIDERS

from emulator.template import Template
from tests.support.groupbuy import buyer


def _forget(parameter: str) -> None:
    for provider in DEFAULT_PROVIDERS.values():
        provider.clear_cache()  # a warm container would still hold what an earlier call read
    boto3.client("ssm").delete_parameter(Name=Template.load().parameter(parameter))


def test_a_join_while_the_xendit_key_is_unreadable_is_503_and_holds_nothing(world):
    session = world.session(target_quantity=10, moq=2)
    _forget("XenditSecretKeyParameter")

    response = world.join(buyer(1), session["id"], 2)

    assert (response.status, response.body["error"]["code"]) == (503, "service_unavailable"), response.body
    state = world.get_session(session["id"])
    assert (state["reserved_quantity"], state["participant_count"]) == (0, 0)
    assert world.trial_balance()["balanced"] is True


def test_a_callback_while_the_token_is_unreadable_is_503_so_xendit_delivers_it_again(world):
    session = world.session(target_quantity=10, moq=2)
    joined = world.join(buyer(1), session["id"], 2)
    assert joined.status == 201, joined.body
    _forget("XenditCallbackTokenParameter")

    response = world.invoice_callback(joined.body, "PAID")

    assert response.status == 503, response.body
    assert world.get_session(session["id"])["paid_quantity"] == 0
