"""Bearer tokens a function verifies itself, on a public route: API Gateway runs no authorizer there and so
passes no claims, yet a signed-in caller's token still comes in the Authorization header (GB-16: the session
detail shows the caller's own participation). In AWS the token is a Cognito ID token, checked against the
user pool's published keys; in the local stack it is one of the stack's own HMAC-signed tokens."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
import urllib.request
from collections.abc import Callable
from functools import cache
from typing import Any, Protocol

from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from patungan.core.config import get_settings
from patungan.core.errors import DependencyUnavailable

LOCAL_STAGE = "local"
JWKS_TIMEOUT_SECONDS = 3
# A token naming a key we do not hold refetches the keys (Cognito rotated them), at most this often.
JWKS_REFRESH_INTERVAL_SECONDS = 300


class TokenVerifier(Protocol):
    def claims(self, token: str) -> dict[str, Any] | None:
        """The token's claims when it is genuine, current and meant for us; None otherwise."""


def fetch_jwks(url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url, timeout=JWKS_TIMEOUT_SECONDS) as response:  # noqa: S310 - https from config
            return json.loads(response.read())
    except (OSError, ValueError) as exc:
        raise DependencyUnavailable("the sign-in service's keys could not be fetched; retry") from exc


class CognitoIdTokens:
    """Cognito ID tokens of one user pool and app client: RS256 signature by a key of the pool's JWKS,
    ``iss`` the pool, ``aud`` the client, ``token_use`` "id", not expired."""

    def __init__(
        self,
        region: str,
        user_pool_id: str,
        client_id: str,
        fetch: Callable[[str], dict[str, Any]] = fetch_jwks,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        issuer = f"https://cognito-idp.{region}.amazonaws.com/{user_pool_id}"
        self._jwks_url = f"{issuer}/.well-known/jwks.json"
        self._fetch = fetch
        self._monotonic = monotonic
        self._keys: KeySet | None = None
        self._fetched_at = 0.0
        self._registry = jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": client_id},
            token_use={"essential": True, "value": "id"},
            sub={"essential": True},
            exp={"essential": True},
        )

    def claims(self, token: str) -> dict[str, Any] | None:
        try:
            try:
                decoded = jwt.decode(token, self._key_set(), algorithms=["RS256"])
            except InvalidKeyIdError:
                if self._monotonic() - self._fetched_at < JWKS_REFRESH_INTERVAL_SECONDS:
                    return None
                decoded = jwt.decode(token, self._key_set(refresh=True), algorithms=["RS256"])
            self._registry.validate(decoded.claims)
        except (JoseError, ValueError):
            return None
        return decoded.claims

    def _key_set(self, *, refresh: bool = False) -> KeySet:
        if self._keys is None or refresh:
            self._keys = KeySet.import_key_set(self._fetch(self._jwks_url))  # type: ignore[arg-type]
            self._fetched_at = self._monotonic()
        return self._keys


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class LocalTokens:
    """The local stack's tokens: ``base64url(JSON claims) "." base64url(HMAC-SHA256(payload))``, claims as
    API Gateway's Cognito authorizer passes them (all strings). The key is published: local use only."""

    def __init__(self, secret: str) -> None:
        self._key = secret.encode()

    def sign(self, claims: dict[str, str]) -> str:
        payload = _encode(json.dumps(claims, separators=(",", ":")).encode())
        return f"{payload}.{self._signature(payload)}"

    def claims(self, token: str) -> dict[str, str] | None:
        payload, _, signature = token.partition(".")
        if not payload or not hmac.compare_digest(signature, self._signature(payload)):
            return None
        try:
            claims: Any = json.loads(_decode(payload))
            if not isinstance(claims, dict) or not claims.get("sub") or int(claims.get("exp", 0)) < time.time():
                return None
        except (binascii.Error, ValueError):
            return None
        return {str(k): str(v) for k, v in claims.items()}

    def _signature(self, payload: str) -> str:
        return _encode(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())


@cache
def token_verifier() -> TokenVerifier | None:
    """The local stack's tokens only when the stage is local AND the stack handed its key over (the template
    never sets LOCAL_TOKEN_SECRET); the user pool's ID tokens when it is configured; else none (no token is
    trusted)."""
    settings = get_settings()
    if settings.stage == LOCAL_STAGE and settings.local_token_secret:
        return LocalTokens(settings.local_token_secret)
    if settings.user_pool_id and settings.user_pool_client_id:
        return CognitoIdTokens(settings.region, settings.user_pool_id, settings.user_pool_client_id)
    return None
