"""Ledger movements as callers post them, and the ledger and wallets as the API shows them.

An invalid movement (unbalanced, a negative or fractional amount, no entries) cannot be constructed: it
raises ValueError (pydantic's ValidationError is one), because it is a programming error, never user input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from patungan.core.clock import parse_iso, to_iso
from patungan.core.inputs import SignedAmount, single_line
from patungan.core.money import DEFAULT_CURRENCY
from patungan.core.pagination import ListOf

MovementType = Literal[
    "capture",
    "tier_refund",
    "escrow_release",
    "refund",
    "wallet_credit",
    "wallet_debit",
    "payout",
    "topup",
    "adjustment",
    # Fulfilment (CHK-9, ORD-3): cash a courier collected on delivery; a completed order's money to its seller.
    "cod_collection",
    "order_settlement",
]
# Strict: money is an int, so 100.0 or "100" is a bug to surface, not a value to coerce.
Amount = Annotated[int, Field(ge=0, strict=True, description="minor units (IDR: rupiah)")]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


class Entry(BaseModel):
    """One side of a movement on one account: exactly one of ``debit`` and ``credit`` is above zero."""

    model_config = ConfigDict(frozen=True)

    account: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    debit: Amount = 0
    credit: Amount = 0

    @model_validator(mode="after")
    def _one_side(self) -> Entry:
        if (self.debit > 0) == (self.credit > 0):
            raise ValueError(f"entry on {self.account}: exactly one of debit and credit must be above zero")
        return self


@dataclass(frozen=True)
class AccountChange:
    """What one movement does to one account: its entries there, summed."""

    debit: int
    credit: int


class Movement(BaseModel):
    """One money movement: balanced entries posted all-or-nothing, at most once per ``id``."""

    model_config = ConfigDict(frozen=True)

    id: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(
        description="chosen by the caller from what causes the movement (capture:pay_123): the idempotency key"
    )
    type: MovementType
    entries: list[Entry] = Field(min_length=1)
    currency: Currency = DEFAULT_CURRENCY
    reference: dict[str, str] = Field(default_factory=dict)
    created_at: str

    @field_validator("created_at")
    @classmethod
    def _iso_utc(cls, value: str) -> str:
        # One format for every movement, so entry lines sort by time.
        return to_iso(parse_iso(value))

    @model_validator(mode="after")
    def _balanced(self) -> Movement:
        debit = sum(e.debit for e in self.entries)
        credit = sum(e.credit for e in self.entries)
        if debit != credit:
            raise ValueError(f"movement {self.id} is unbalanced: debit {debit} != credit {credit}")
        if len(self.changes()) < 2:
            raise ValueError(f"movement {self.id} moves nothing: its entries are all on one account")
        return self

    def changes(self) -> dict[str, AccountChange]:
        """The entries merged per account, in order of first appearance (a transaction writes an item once)."""
        sums: dict[str, tuple[int, int]] = {}
        for entry in self.entries:
            debit, credit = sums.get(entry.account, (0, 0))
            sums[entry.account] = (debit + entry.debit, credit + entry.credit)
        return {account: AccountChange(debit, credit) for account, (debit, credit) in sums.items()}


def transfer(*, debit: str, credit: str, amount: int) -> list[Entry]:
    """The two entries moving ``amount`` between two accounts: ``debit`` one, ``credit`` the other."""
    return [Entry(account=debit, debit=amount), Entry(account=credit, credit=amount)]


class AccountBalance(BaseModel):
    account: str
    currency: str = DEFAULT_CURRENCY
    debit: int = 0
    credit: int = 0
    balance: int = Field(0, description="debit - credit")


class CurrencyTotals(BaseModel):
    debit: int = 0
    credit: int = 0


class TrialBalance(BaseModel):
    balanced: bool = Field(description="in every currency the debits equal the credits")
    currencies: dict[str, CurrencyTotals]
    accounts: list[AccountBalance]


class Wallet(BaseModel):
    balance: int = Field(description="what the owner may spend, minor units; never below zero")
    currency: str


class WalletTransaction(BaseModel):
    id: str = Field(description="the movement's id")
    type: MovementType
    amount: int = Field(description="positive: credited to the owner; negative: debited")
    reference: dict[str, str]
    created_at: str


class WalletTransactionList(ListOf[WalletTransaction]):
    pass


class AdjustmentInput(BaseModel):
    """An admin's correction of a wallet (WAL-3)."""

    model_config = ConfigDict(extra="forbid")

    amount: SignedAmount = Field(description="signed minor units: positive credits the wallet, negative debits")
    reason: single_line(500)

    @field_validator("amount")
    @classmethod
    def _not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("an adjustment must change the balance: give a non-zero amount")
        return value


class Adjustment(BaseModel):
    id: str
    user_id: str
    amount: int
    currency: str
    reason: str
    admin_id: str
    created_at: str
