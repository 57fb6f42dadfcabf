"""Withdrawal use cases (WAL-2): request, admin approval (which sends the Xendit payout) or rejection, the
payout's outcome from its webhook or from reconciliation, and the owner's reads.

Money is held two-phase. The request holds the amount out of the wallet (``withdrawal:{id}:hold``, wallet ->
``platform:withdrawals:held``; WAL-1's condition refuses more than the balance). Then exactly one of: the
hold is released back to the wallet (``withdrawal:{id}:release``: rejected, failed, or reversed before it
completed) or paid out (``withdrawal:{id}:payout``: held -> Xendit clearing, the fee -> platform revenue),
and a payout reversed after it completed comes back (``withdrawal:{id}:reversal``). Each is ONE transaction
with the withdrawal's conditional, forward-only status change and its outbox event (and a callback's inbox
record), and movement ids derive from the withdrawal, so nothing is posted twice."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from patungan.adapters.dynamodb import Transaction
from patungan.adapters.outbox import Outbox
from patungan.adapters.xendit import PaymentRejected, Payout, PayoutStatus, XenditGateway, payout_status_from_xendit
from patungan.core.auth import Principal, Role
from patungan.core.clock import Clock, to_iso
from patungan.core.errors import ConcurrentUpdate, NotFound, field_error
from patungan.core.events import DomainEvent, new_event
from patungan.core.ids import keyed_id, new_id
from patungan.core.money import DEFAULT_CURRENCY
from patungan.core.observability import logger, metrics
from patungan.core.pagination import Page, decode_cursor
from patungan.ledger import accounts
from patungan.ledger.models import Entry, Movement, MovementType
from patungan.ledger.repository import Ledger
from patungan.payments.models import QuarantineReason
from patungan.payments.repository import DuplicateWebhook, PaymentsRepository
from patungan.payments.webhooks import quarantine_callback
from patungan.wallet.channels import payout_channel
from patungan.wallet.models import (
    WITHDRAWAL_TRANSITIONS,
    PayoutCallback,
    PayoutCallbackData,
    Withdrawal,
    WithdrawalInput,
)
from patungan.wallet.repository import WithdrawalAlreadyRequested, WithdrawalMovedOn, WithdrawalsRepository

# A concurrent change to the same withdrawal makes a transaction stale: read again and retry.
MAX_ATTEMPTS = 5
# What a payout's status at Xendit makes of the withdrawal.
PAYOUT_OUTCOMES = {
    PayoutStatus.PENDING: "processing",
    PayoutStatus.SUCCEEDED: "completed",
    PayoutStatus.FAILED: "failed",
    PayoutStatus.CANCELLED: "failed",
    PayoutStatus.REVERSED: "reversed",
}
# A payout status that, if true, says the withdrawal's money went the other way than it settled: paid out
# although it was given back (or never approved), or never sent although booked as paid out.
CONTRADICTED_BY = {
    PayoutStatus.SUCCEEDED: frozenset({"requested", "rejected", "failed"}),
    PayoutStatus.FAILED: frozenset({"completed"}),
    PayoutStatus.CANCELLED: frozenset({"completed"}),
}


def applied(outcome: str) -> bool:
    """Whether an outcome of ``apply_payout`` changed the withdrawal (it names the state it moved to)."""
    return outcome in WITHDRAWAL_TRANSITIONS


class WithdrawalService:
    def __init__(
        self,
        repository: WithdrawalsRepository,
        inbox: PaymentsRepository,
        ledger: Ledger,
        outbox: Outbox,
        gateway: Callable[[], XenditGateway],
        clock: Clock,
        *,
        fee: int,
    ) -> None:
        self.repository = repository
        self.inbox = inbox  # the Payments table's webhook inbox and quarantine, shared with payments
        self.ledger = ledger
        self.outbox = outbox
        self._gateway = gateway
        self.clock = clock
        self.fee = fee

    @property
    def gateway(self) -> XenditGateway:
        return self._gateway()

    def _now(self) -> str:
        return to_iso(self.clock.now())

    # ---- the owner
    def request(self, principal: Principal, data: WithdrawalInput, request_key: str | None = None) -> Withdrawal:
        """Hold ``amount`` out of the caller's wallet for a payout of ``amount - fee`` (409 insufficient_funds
        above the balance). An Idempotency-Key names the withdrawal: a retry whose first attempt committed
        answers that withdrawal instead of holding the money twice (SYS-4)."""
        if data.amount <= self.fee:
            raise field_error("amount", f"must be more than the withdrawal fee of {self.fee}")
        channel = payout_channel(data.bank_code)
        if channel is None:  # WithdrawalInput validated it: a programming error
            raise ValueError(f"unknown bank code {data.bank_code}")
        withdrawal_id = (
            keyed_id(
                "wdr",
                principal.user_id,
                request_key,
                str(data.amount),
                data.bank_code,
                data.account_number,
                data.account_name,
            )
            if request_key
            else new_id("wdr")
        )
        now = self._now()
        withdrawal = Withdrawal(
            id=withdrawal_id,
            user_id=principal.user_id,
            amount=data.amount,
            fee=self.fee,
            net_amount=data.amount - self.fee,
            currency=DEFAULT_CURRENCY,
            status="requested",
            bank_code=data.bank_code,
            channel_code=channel.code,
            account_name=data.account_name,
            account_number=data.account_number,
            created_at=now,
            updated_at=now,
        )
        tx = Transaction()
        self.repository.add(tx, withdrawal)
        self.ledger.add_to(
            tx,
            self._movement(
                withdrawal,
                "hold",
                "wallet_debit",
                [
                    Entry(account=accounts.buyer_wallet(withdrawal.user_id), debit=withdrawal.amount),
                    Entry(account=accounts.WITHDRAWALS_HELD, credit=withdrawal.amount),
                ],
            ),
        )
        self.outbox.add(tx, self._event(withdrawal))
        try:
            tx.commit()
        except WithdrawalAlreadyRequested:
            return self.repository.get(withdrawal_id)
        logger.info("withdrawal requested", extra=withdrawal.summary())
        metrics.add_metric(name="WithdrawalsRequested", unit="Count", value=1)
        return withdrawal

    def get(self, principal: Principal, withdrawal_id: str) -> Withdrawal:
        withdrawal = self.repository.find(withdrawal_id)
        if withdrawal is None or (withdrawal.user_id != principal.user_id and not principal.is_admin):
            raise NotFound(f"no withdrawal {withdrawal_id}")
        return withdrawal

    def list_mine(self, principal: Principal, *, limit: int, cursor: str | None) -> Page[Withdrawal]:
        return self.repository.list_for_user(principal.user_id, limit, decode_cursor(cursor))

    # ---- admin
    def approve(self, principal: Principal, withdrawal_id: str) -> Withdrawal:
        """requested -> approved (recording the admin), then the payout is sent (idempotency key: the
        withdrawal id) and the withdrawal is processing. Approving an approved withdrawal (a crash or a 503
        after approval) sends the same payout again, which Xendit answers with the first one; Xendit down
        -> 503 and the withdrawal stays approved; Xendit refusing the payout -> failed, the money back."""
        principal.require(Role.ADMIN)
        withdrawal = self.repository.get(withdrawal_id)
        if withdrawal.status == "requested":
            try:
                withdrawal = self._move(withdrawal, "approved", approved_by=principal.user_id)
            except WithdrawalMovedOn:
                withdrawal = self.repository.get(withdrawal_id)  # rejected or approved meanwhile
        if withdrawal.status in ("requested", "rejected"):
            raise WithdrawalMovedOn(f"withdrawal {withdrawal_id} is {withdrawal.status}: it cannot be approved")
        if withdrawal.status == "approved" and withdrawal.payout_id is None:
            self._send_payout(withdrawal)
            return self.repository.get(withdrawal_id)
        return withdrawal

    def reject(self, principal: Principal, withdrawal_id: str, reason: str) -> Withdrawal:
        """requested -> rejected, the held money back in the wallet; anything past requested is 409."""
        principal.require(Role.ADMIN)
        withdrawal = self.repository.get(withdrawal_id)
        if withdrawal.status != "rejected":
            try:
                return self._move(withdrawal, "rejected", rejected_by=principal.user_id, reject_reason=reason)
            except WithdrawalMovedOn:
                withdrawal = self.repository.get(withdrawal_id)
        if withdrawal.status != "rejected":
            raise WithdrawalMovedOn(f"withdrawal {withdrawal_id} is {withdrawal.status}: it cannot be rejected")
        return withdrawal

    # ---- the payout
    def _send_payout(self, withdrawal: Withdrawal) -> str:
        try:
            payout = self.gateway.create_payout(
                withdrawal.id,
                withdrawal.net_amount,
                withdrawal.channel_code,
                withdrawal.account_number,
                withdrawal.account_name,
                f"Patungan withdrawal {withdrawal.id}",
            )
        except PaymentRejected as refusal:
            # A refusal of a resent payout (an idempotency conflict, say) must not hide the payout an earlier
            # attempt did send: the money goes back only if Xendit holds no payout for this withdrawal.
            if (earlier := self.gateway.find_payout_by_reference(withdrawal.id)) is not None:
                return self.apply_payout(withdrawal.id, earlier)
            logger.warning("xendit refused a payout", extra={**withdrawal.summary(), "code": refusal.gateway_code})
            return self._settle(withdrawal.id, "failed", failure_code=refusal.gateway_code)
        return self.apply_payout(withdrawal.id, payout)

    def resume_payout(self, withdrawal_id: str, found: Payout | None) -> str:
        """An approved withdrawal that never recorded its payout (reconciliation's repair): attach the payout
        Xendit has for it (``found`` by reference), or send it."""
        if found is not None:
            return self.apply_payout(withdrawal_id, found)
        withdrawal = self.repository.get(withdrawal_id)
        if withdrawal.status != "approved" or withdrawal.payout_id is not None:
            return "ignored"
        return self._send_payout(withdrawal)

    def apply_payout(self, withdrawal_id: str, payout: Payout, inbox_key: str | None = None) -> str:
        """THE way a payout's status at Xendit reaches a withdrawal: from its webhook, from approval and from
        reconciliation's repair, so any two racing converge on one outcome. Forward-only; returns the state
        the withdrawal moved to, or "ignored" (it is already there or beyond), or "duplicate" (``inbox_key``,
        a callback's, was already processed)."""
        changes: dict[str, Any] = {"payout_id": payout.id}
        target = PAYOUT_OUTCOMES[payout.status]
        if target == "failed":
            changes["failure_code"] = payout.failure_code or payout.status.value.upper()
        return self._settle(withdrawal_id, target, inbox_key=inbox_key, **changes)

    def handle_payout_callback(self, callback: PayoutCallback, body: bytes) -> str:
        """Apply a verified payout callback once (inbox key: payout id and status); one that does not match
        the withdrawal it names (payout id, amount, currency) or names none is quarantined, never applied, and
        so is one contradicting how the withdrawal settled (CONTRADICTED_BY)."""
        data = callback.data
        key = f"payout:{data.id}:{data.status}"
        try:
            status = payout_status_from_xendit(data.status)
        except ValueError:
            logger.warning("a payout callback with a status we do not know", extra={"status": data.status})
            return "ignored" if self._record(key) else "duplicate"
        withdrawal = self.repository.find(data.reference_id)
        if withdrawal is None:
            return self._quarantine(key, "unknown_withdrawal", data, body)
        if (mismatch := _payout_mismatch(withdrawal, data, status)) is not None:
            return self._quarantine(key, mismatch, data, body, withdrawal_id=withdrawal.id)
        payout = Payout(
            id=data.id,
            status=status,
            amount=withdrawal.net_amount,
            reference_id=data.reference_id,
            currency=data.currency,
            failure_code=data.failure_code,
        )
        try:
            return self.apply_payout(withdrawal.id, payout, inbox_key=key)
        except DuplicateWebhook:
            return "duplicate"

    # ---- transitions
    def _settle(self, withdrawal_id: str, target: str, *, inbox_key: str | None = None, **changes: Any) -> str:
        for _ in range(MAX_ATTEMPTS):
            withdrawal = self.repository.get(withdrawal_id)
            if withdrawal.status not in WITHDRAWAL_TRANSITIONS[target]:
                if inbox_key and not self._record(inbox_key):
                    return "duplicate"
                if withdrawal.status != target:
                    logger.warning(
                        "a payout outcome the withdrawal is past: not applied (forward-only)",
                        extra={**withdrawal.summary(), "payout_outcome": target},
                    )
                return "ignored"
            try:
                self._move(withdrawal, target, inbox_key=inbox_key, **changes)
            except (WithdrawalMovedOn, ConcurrentUpdate):
                continue
            return target
        raise ConcurrentUpdate(f"withdrawal {withdrawal_id} kept changing; retry")

    def _move(self, withdrawal: Withdrawal, status: str, *, inbox_key: str | None = None, **changes: Any) -> Withdrawal:
        """One transaction: the callback's inbox record, the conditional status change, its money, its event."""
        tx = Transaction()
        if inbox_key:
            self.inbox.record_webhook(tx, inbox_key, self._now())
        moved = self.repository.change(tx, withdrawal, status=status, updated_at=self._now(), **changes)
        if (movement := self._money(withdrawal, moved)) is not None:
            self.ledger.add_to(tx, movement)
        self.outbox.add(tx, self._event(moved))
        tx.commit()
        logger.info(f"withdrawal {status}", extra=moved.summary())
        metrics.add_metric(name=f"Withdrawals{status.title()}", unit="Count", value=1)
        return moved

    def _money(self, before: Withdrawal, after: Withdrawal) -> Movement | None:
        """The ledger movement of ``before`` -> ``after``: the hold released, paid out, or reversed."""
        wallet = accounts.buyer_wallet(after.user_id)
        if after.status in ("rejected", "failed") or (after.status == "reversed" and before.status != "completed"):
            entries = [
                Entry(account=accounts.WITHDRAWALS_HELD, debit=after.amount),
                Entry(account=wallet, credit=after.amount),
            ]
            return self._movement(after, "release", "wallet_credit", entries)
        if after.status == "completed":
            entries = [
                Entry(account=accounts.WITHDRAWALS_HELD, debit=after.amount),
                Entry(account=accounts.GATEWAY_CLEARING, credit=after.net_amount),
            ]
            if after.fee:
                entries.append(Entry(account=accounts.PLATFORM_REVENUE, credit=after.fee))
            return self._movement(after, "payout", "payout", entries)
        if after.status == "reversed":  # the payout came back: the fee is not kept either
            entries = [Entry(account=accounts.GATEWAY_CLEARING, debit=after.net_amount)]
            if after.fee:
                entries.append(Entry(account=accounts.PLATFORM_REVENUE, debit=after.fee))
            entries.append(Entry(account=wallet, credit=after.amount))
            return self._movement(after, "reversal", "wallet_credit", entries)
        return None

    def _movement(
        self, withdrawal: Withdrawal, step: str, movement_type: MovementType, entries: list[Entry]
    ) -> Movement:
        return Movement(
            id=f"withdrawal:{withdrawal.id}:{step}",
            type=movement_type,
            entries=entries,
            currency=withdrawal.currency,
            reference={"withdrawal_id": withdrawal.id, "user_id": withdrawal.user_id},
            created_at=self._now(),
        )

    def _event(self, withdrawal: Withdrawal) -> DomainEvent:
        return new_event(f"wallet.withdrawal.{withdrawal.status}", withdrawal.id, withdrawal.summary(), self.clock)

    # ---- the inbox
    def _record(self, key: str) -> bool:
        """Record a callback that changes nothing; False if it was already recorded (a duplicate)."""
        tx = Transaction()
        self.inbox.record_webhook(tx, key, self._now())
        try:
            tx.commit()
        except DuplicateWebhook:
            return False
        return True

    def _quarantine(
        self,
        key: str,
        reason: QuarantineReason,
        data: PayoutCallbackData,
        body: bytes,
        withdrawal_id: str | None = None,
    ) -> str:
        return quarantine_callback(
            self.inbox,
            key,
            body,
            self._now(),
            kind="payout",
            reason=reason,
            callback_id=data.id,
            withdrawal_id=withdrawal_id,
        )


def _payout_mismatch(withdrawal: Withdrawal, data: PayoutCallbackData, status: PayoutStatus) -> QuarantineReason | None:
    """Why a payout callback is not about this withdrawal's payout, or cannot be true of it, or None."""
    if data.currency != withdrawal.currency:
        return "currency_mismatch"
    if isinstance(data.amount, bool) or data.amount != withdrawal.net_amount:
        return "amount_mismatch"
    if withdrawal.payout_id is not None and data.id != withdrawal.payout_id:
        return "payout_id_mismatch"
    if withdrawal.status in CONTRADICTED_BY.get(status, ()):
        # Forward-only, so nothing moves back; but if this is true, money was paid out twice or never.
        return "contradicts_settled_payout"
    return None
