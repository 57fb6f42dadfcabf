"""Cognito ID tokens verified by a function on a public route (GB-16): only a token signed by the user pool's
key, issued by the pool for our app client as an ID token and not expired is trusted."""

from __future__ import annotations

import time

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from emulator.template import Template
from patungan.adapters.tokens import JWKS_REFRESH_INTERVAL_SECONDS, CognitoIdTokens, LocalTokens, token_verifier
from patungan.core.auth import Role, principal_from_claims
from patungan.core.config import get_settings
from patungan.core.errors import DependencyUnavailable

REGION, POOL, CLIENT = "ap-southeast-3", "ap-southeast-3_Pool", "client-1"
ISSUER = f"https://cognito-idp.{REGION}.amazonaws.com/{POOL}"


def rsa_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "alg": "RS256", "use": "sig"})


POOL_KEY = rsa_key("pool-key-1")


class Jwks:
    """The pool's published keys, as the JWKS endpoint serves them; counts fetches."""

    def __init__(self, *keys: RSAKey) -> None:
        self.keys = list(keys)
        self.fetched: list[str] = []

    def __call__(self, url: str) -> dict:
        self.fetched.append(url)
        return KeySet(self.keys).as_dict(private=False)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def id_token(key: RSAKey = POOL_KEY, alg: str = "RS256", **overrides) -> str:
    claims = {
        "sub": "buyer-1",
        "iss": ISSUER,
        "aud": CLIENT,
        "token_use": "id",
        "cognito:groups": ["buyer"],
        "exp": int(time.time()) + 3600,
        **overrides,
    }
    return jwt.encode({"alg": alg, "kid": key.kid}, claims, KeySet([key]))


@pytest.fixture
def jwks():
    return Jwks(POOL_KEY)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def verifier(jwks, clock):
    return CognitoIdTokens(REGION, POOL, CLIENT, fetch=jwks, monotonic=clock)


def test_a_genuine_id_token_gives_the_caller(verifier, jwks):
    principal = principal_from_claims(verifier.claims(id_token()))

    assert (principal.user_id, principal.roles) == ("buyer-1", frozenset({Role.BUYER}))
    assert jwks.fetched == [f"{ISSUER}/.well-known/jwks.json"]


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(lambda: id_token(key=rsa_key(POOL_KEY.kid)), id="signed-by-another-key-under-the-pools-kid"),
        pytest.param(lambda: id_token(aud="another-client"), id="another-app-client"),
        pytest.param(lambda: id_token(iss="https://cognito-idp.ap-southeast-3.amazonaws.com/other"), id="other-pool"),
        pytest.param(lambda: id_token(token_use="access"), id="access-token"),
        pytest.param(lambda: id_token(exp=int(time.time()) - 60), id="expired"),
        pytest.param(lambda: id_token(sub=None), id="no-subject"),
        pytest.param(lambda: "e30.e30.", id="unsigned"),
        pytest.param(lambda: "garbage", id="garbage"),
    ],
)
def test_anything_else_is_not_trusted(verifier, token):
    assert verifier.claims(token()) is None


def test_rotated_keys_are_fetched_again_but_not_for_every_unknown_key(verifier, jwks, clock):
    verifier.claims(id_token())
    rotated = rsa_key("pool-key-2")
    jwks.keys.append(rotated)
    clock.now += JWKS_REFRESH_INTERVAL_SECONDS

    assert verifier.claims(id_token(key=rotated))["sub"] == "buyer-1"
    assert verifier.claims(id_token(key=rsa_key("made-up"))) is None
    assert len(jwks.fetched) == 2


def test_keys_that_cannot_be_fetched_are_a_503_not_an_anonymous_caller(clock):
    def unreachable(url: str) -> dict:
        raise DependencyUnavailable("the sign-in service's keys could not be fetched; retry")

    with pytest.raises(DependencyUnavailable):
        CognitoIdTokens(REGION, POOL, CLIENT, fetch=unreachable, monotonic=clock).claims(id_token())


@pytest.mark.parametrize(
    ("stage", "local_secret", "expected"),
    [
        ("local", "the-local-stacks-key", LocalTokens),
        ("prod", "the-local-stacks-key", CognitoIdTokens),
        ("dev", "", CognitoIdTokens),
    ],
)
def test_the_local_stacks_published_key_is_honoured_on_the_local_stage_only(monkeypatch, stage, local_secret, expected):
    for name, value in {
        "STAGE": stage,
        "LOCAL_TOKEN_SECRET": local_secret,
        "USER_POOL_ID": POOL,
        "USER_POOL_CLIENT_ID": CLIENT,
        "CATALOG_TABLE": "catalog",
        "OUTBOX_TABLE": "outbox",
        "IDEMPOTENCY_TABLE": "idempotency",
        "EVENT_BUS_NAME": "bus",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    token_verifier.cache_clear()
    try:
        assert type(token_verifier()) is expected
    finally:
        get_settings.cache_clear()
        token_verifier.cache_clear()


def test_the_template_never_hands_a_function_the_local_token_key():
    template = Template.load()
    assert all("LOCAL_TOKEN_SECRET" not in spec.environment for spec in template.functions().values())
    assert {"USER_POOL_ID", "USER_POOL_CLIENT_ID"} <= set(template.functions()["GetSessionFunction"].environment)
