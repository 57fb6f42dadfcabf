"""Local sign-in: tokens that carry the claims a Cognito ID token carries, signed with HMAC-SHA256.

A token is ``base64url(JSON claims) "." base64url(signature)``. The gateway checks the signature and the
expiry and hands the claims to the function as API Gateway's Cognito authorizer would (all strings, groups
comma-joined). Nothing here is a secret: the key only stops a typo'd token from being accepted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import time
from dataclasses import dataclass
from typing import Any

DEFAULT_SECRET = "local-stack-token-key-NOT-A-SECRET"  # noqa: S105 - published on purpose, local only
TOKEN_LIFETIME_SECONDS = 30 * 24 * 3600  # long enough that the tokens printed at start-up stay usable


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Identity:
    sub: str
    groups: tuple[str, ...] = ()
    factory_id: str | None = None
    seller_id: str | None = None

    def claims(self) -> dict[str, str]:
        """The claims as API Gateway's Cognito authorizer passes them to the function."""
        claims = {"sub": self.sub, "cognito:groups": ",".join(self.groups), "token_use": "id"}
        if self.factory_id:
            claims["custom:factory_id"] = self.factory_id
        if self.seller_id:
            claims["custom:seller_id"] = self.seller_id
        return claims


class TokenSigner:
    def __init__(self, secret: str | None = None) -> None:
        key = secret if secret is not None else os.environ.get("LOCAL_TOKEN_SECRET", DEFAULT_SECRET)
        self._key = key.encode()

    def issue(self, identity: Identity) -> str:
        now = int(time.time())
        claims = {**identity.claims(), "iat": str(now), "exp": str(now + TOKEN_LIFETIME_SECONDS)}
        payload = _encode(json.dumps(claims, separators=(",", ":")).encode())
        return f"{payload}.{self._sign(payload)}"

    def verify(self, token: str) -> dict[str, str] | None:
        """The token's claims, or None when it is malformed, forged or expired."""
        payload, _, signature = token.partition(".")
        if not payload or not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            claims: Any = json.loads(_decode(payload))
        except (binascii.Error, ValueError):
            return None
        if not isinstance(claims, dict) or not claims.get("sub") or int(claims.get("exp", 0)) < time.time():
            return None
        return {str(k): str(v) for k, v in claims.items()}

    def _sign(self, payload: str) -> str:
        return _encode(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())
