"""Local sign-in: tokens that carry the claims a Cognito ID token carries, signed with HMAC-SHA256.

A token is ``base64url(JSON claims) "." base64url(signature)``. The gateway checks the signature and the
expiry and hands the claims to the function as API Gateway's Cognito authorizer would (all strings, groups
comma-joined). Nothing here is a secret: the key only stops a typo'd token from being accepted.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from patungan.adapters.tokens import LocalTokens

DEFAULT_SECRET = "local-stack-token-key-NOT-A-SECRET"  # noqa: S105 - published on purpose, local only
TOKEN_LIFETIME_SECONDS = 30 * 24 * 3600  # long enough that the tokens printed at start-up stay usable


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
    """Issues the local stack's tokens; the gateway and the functions of public routes verify them with the
    same ``LocalTokens`` (the functions get the key as LOCAL_TOKEN_SECRET)."""

    def __init__(self, secret: str | None = None) -> None:
        self.secret = secret if secret is not None else os.environ.get("LOCAL_TOKEN_SECRET", DEFAULT_SECRET)
        self._tokens = LocalTokens(self.secret)

    def issue(self, identity: Identity) -> str:
        now = int(time.time())
        return self._tokens.sign({**identity.claims(), "iat": str(now), "exp": str(now + TOKEN_LIFETIME_SECONDS)})

    def verify(self, token: str) -> dict[str, str] | None:
        """The token's claims, or None when it is malformed, forged or expired."""
        return self._tokens.claims(token)
