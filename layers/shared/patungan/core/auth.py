"""The caller, from the authorizer claims (Cognito in AWS, local tokens in the local stack), and role checks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from patungan.core.errors import Forbidden, Unauthenticated


class Role(StrEnum):
    BUYER = "buyer"
    FACTORY = "factory"
    WAREHOUSE = "warehouse"
    SELLER = "seller"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    user_id: str
    roles: frozenset[Role] = field(default_factory=frozenset)
    factory_id: str | None = None
    seller_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return Role.ADMIN in self.roles

    def has(self, *roles: Role) -> bool:
        return bool(self.roles.intersection(roles))

    def require(self, *roles: Role) -> None:
        """Refuse (403) unless the caller has one of ``roles``; admin may do anything a role may."""
        if not self.is_admin and not self.has(*roles):
            allowed = ", ".join(sorted(role.value for role in roles))
            raise Forbidden(f"this operation needs one of the roles: {allowed}")

    def require_buyer(self) -> None:
        """Refuse (403) unless the caller is a buyer: taking a buyer's money is the one thing an admin's or
        staff's role does not stand in for."""
        if not self.has(Role.BUYER):
            raise Forbidden("only buyers may do this: your account is not in the buyer group")

    def factory_scope(self) -> str:
        """The factory a factory-staff caller acts for. A token without ``custom:factory_id`` is refused
        (403), never read as "every factory"."""
        if not self.has(Role.FACTORY) or not self.factory_id:
            raise Forbidden("your token names no factory (custom:factory_id): ask an admin to link your account")
        return self.factory_id

    def seller_scope(self) -> str:
        """The seller a seller-staff caller acts for; refused (403) without ``custom:seller_id``."""
        if not self.has(Role.SELLER) or not self.seller_id:
            raise Forbidden("your token names no seller (custom:seller_id): ask an admin to link your account")
        return self.seller_id

    def is_factory_staff_of(self, factory_id: str | None) -> bool:
        return factory_id is not None and Role.FACTORY in self.roles and self.factory_id == factory_id

    def is_seller_staff_of(self, seller_id: str | None) -> bool:
        return seller_id is not None and Role.SELLER in self.roles and self.seller_id == seller_id


def _parse_groups(raw: Any) -> list[str]:
    # API Gateway hands Cognito groups over as a string ("admin", "admin,buyer" or "[admin buyer]").
    if isinstance(raw, list):
        return [str(g) for g in raw]
    if not raw:
        return []
    text = str(raw).strip().strip("[]")
    return [part for part in text.replace(",", " ").split() if part]


def principal_from_claims(claims: Mapping[str, Any] | None) -> Principal | None:
    if not claims or not claims.get("sub"):
        return None
    roles = frozenset(Role(g) for g in _parse_groups(claims.get("cognito:groups")) if g in Role.__members__.values())
    return Principal(
        user_id=str(claims["sub"]),
        roles=roles,
        factory_id=claims.get("custom:factory_id") or None,
        seller_id=claims.get("custom:seller_id") or None,
    )


def principal_from_event(event: Mapping[str, Any]) -> Principal | None:
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    return principal_from_claims(authorizer.get("claims"))


def require_principal(principal: Principal | None) -> Principal:
    if principal is None:
        raise Unauthenticated("sign in first: send Authorization: Bearer <token>")
    return principal
