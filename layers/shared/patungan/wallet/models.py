"""Withdrawals as requested, stored and shown (API.md "Money out and reconciliation", WAL-2).

The full account number is stored, because the payout needs it, but it is never shown: responses carry
``account_number_masked`` and the stored model keeps the number out of its repr, so a log line cannot
print it by accident."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from patungan.core.inputs import Price, single_line
from patungan.core.pagination import ListOf
from patungan.payments.models import CallbackId, unnest_data
from patungan.wallet.channels import mask_account_number, payout_channel

WithdrawalStatus = Literal["requested", "approved", "processing", "completed", "failed", "reversed", "rejected"]

# Forward-only: a withdrawal may move into the key state only from these. A payout's callback may arrive
# before approval has recorded the payout (approved -> completed / failed / reversed), and a REVERSED may
# overtake its SUCCEEDED (processing -> reversed: the money comes back once, it is never also paid out).
WITHDRAWAL_TRANSITIONS: dict[str, frozenset[str]] = {
    "approved": frozenset({"requested"}),
    "rejected": frozenset({"requested"}),
    "processing": frozenset({"approved"}),
    "completed": frozenset({"approved", "processing"}),
    "failed": frozenset({"approved", "processing"}),
    "reversed": frozenset({"approved", "processing", "completed"}),
}
# The hold is still on the withdrawal's money in these states: a failure or reversal returns it.
HOLDING = frozenset({"requested", "approved", "processing"})
FINAL = frozenset({"completed", "failed", "reversed", "rejected"})

BankCode = Annotated[str, Field(min_length=2, max_length=40, description="Xendit channel code: BCA or ID_BCA")]
AccountNumber = Annotated[
    str,
    Field(
        min_length=1,
        max_length=40,
        description="a bank account's digits, or an e-wallet's mobile number; never shown back",
    ),
]


class WithdrawalInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Price = Field(description="rupiah taken out of the wallet, the fee included")
    bank_code: BankCode
    account_number: AccountNumber = Field(repr=False)
    account_name: single_line(100) = Field(description="the account holder's name as the bank knows it")

    @field_validator("bank_code")
    @classmethod
    def _known_channel(cls, value: str) -> str:
        if payout_channel(value) is None:
            raise ValueError("not a Xendit payout channel for an Indonesian bank or e-wallet (e.g. BCA, ID_BCA, OVO)")
        return value.strip().upper()

    @field_validator("account_number")
    @classmethod
    def _fits_the_channel(cls, value: str, info: ValidationInfo) -> str:
        channel = payout_channel(info.data["bank_code"]) if "bank_code" in info.data else None
        if channel is None:  # bank_code was refused: only say what is wrong with the number itself
            if not value.isdigit():
                raise ValueError("must be digits only")
            return value
        if (account_number := channel.account_number(value)) is None:
            raise ValueError(f"must be {channel.account_rule}")
        return account_number


class Withdrawal(BaseModel):
    """A withdrawal as stored (Payments table, ``WITHDRAWAL#id``)."""

    id: str
    user_id: str
    amount: int
    fee: int
    net_amount: int
    currency: str
    status: WithdrawalStatus
    bank_code: str
    channel_code: str
    account_name: str
    account_number: str = Field(repr=False)
    payout_id: str | None = None
    failure_code: str | None = None
    approved_by: str | None = None
    rejected_by: str | None = None
    reject_reason: str | None = None
    created_at: str
    updated_at: str

    def view(self) -> WithdrawalView:
        return WithdrawalView(
            **self.model_dump(include=set(WithdrawalView.model_fields) - {"account_number_masked"}),
            account_number_masked=mask_account_number(self.account_number),
        )

    def summary(self) -> dict[str, Any]:
        """What a log line or an event may say about the withdrawal (no account number)."""
        return self.view().model_dump(exclude={"account_name"}) | {"user_id": self.user_id}


class WithdrawalView(BaseModel):
    """A withdrawal as the API shows it."""

    id: str
    amount: int
    fee: int
    net_amount: int = Field(description="what the payout sends: amount - fee")
    currency: str
    status: WithdrawalStatus
    bank_code: str
    account_name: str
    account_number_masked: str = Field(description="the account number's last four digits: ******7890")
    payout_id: str | None
    failure_code: str | None
    created_at: str
    updated_at: str


class WithdrawalList(ListOf[WithdrawalView]):
    pass


class RejectionInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: single_line(500)


class PayoutCallbackData(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: CallbackId
    reference_id: CallbackId
    status: Annotated[str, Field(max_length=40)]
    amount: float | int | None = None
    currency: str | None = None
    failure_code: str | None = None


class PayoutCallback(BaseModel):
    """Xendit's payout callback; what it says is in ``data.status`` (v2's event names are not confirmed)."""

    model_config = ConfigDict(extra="allow")

    event: str | None = None
    data: PayoutCallbackData

    @model_validator(mode="before")
    @classmethod
    def _unwrap(cls, value: Any) -> Any:
        return unnest_data(value)
