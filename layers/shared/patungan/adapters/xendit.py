"""The one adapter over xendit-python (PAY-1): invoices, refunds, payouts, and the webhook token check (PAY-2).

Money is an ``int`` of rupiah everywhere else; the SDK's floats exist only inside this module. Every call
has a timeout and is retried with exponential backoff and full jitter on network errors, 429 and 5xx only;
a refusal (any other 4xx) is never retried. Refunds and payouts carry our own id as their idempotency key.
Invoices take none, so before a retry the invoice is looked up by its external_id and returned if an
earlier attempt did create it.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

import urllib3

from patungan.adapters.aws import read_secret
from patungan.core.clock import to_iso
from patungan.core.config import Settings
from patungan.core.errors import DependencyUnavailable, DomainError
from patungan.core.money import DEFAULT_CURRENCY
from patungan.core.observability import logger
from patungan.core.retry import full_jitter

if TYPE_CHECKING:
    from xendit import XenditSdkException

T = TypeVar("T")

BACKOFF_BASE_SECONDS = 0.25
BACKOFF_CAP_SECONDS = 4.0
_REFUND_NOT_SUPPORTED_CODES = frozenset({"REFUND_NOT_SUPPORTED", "PARTIAL_REFUND_NOT_SUPPORTED"})


class PaymentRejected(DomainError):
    """Xendit refused the request (a 4xx): sending it again will not help. ``gateway_code`` is Xendit's
    error_code (API_VALIDATION_ERROR, INSUFFICIENT_BALANCE, ...)."""

    status, code = 422, "payment_rejected"

    def __init__(self, message: str, *, gateway_code: str) -> None:
        super().__init__(message, details=[{"gateway_code": gateway_code}])
        self.gateway_code = gateway_code


class RefundNotSupported(PaymentRejected):
    """The payment's channel cannot be refunded (in full or in part) through Xendit: credit the wallet."""

    code = "refund_not_supported"


class InvoiceStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    EXPIRED = "expired"


class RefundStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class PayoutStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REVERSED = "reversed"


class RefundReason(StrEnum):
    """The reasons Xendit accepts on a refund."""

    CANCELLATION = "CANCELLATION"
    REQUESTED_BY_CUSTOMER = "REQUESTED_BY_CUSTOMER"
    DUPLICATE = "DUPLICATE"
    FRAUDULENT = "FRAUDULENT"
    OTHERS = "OTHERS"


class ExpireOutcome(StrEnum):
    EXPIRED = "expired"
    ALREADY_EXPIRED = "already_expired"
    ALREADY_PAID = "already_paid"  # the buyer paid first: refund, do not treat it as unpaid


_INVOICE_STATUSES = {
    "PENDING": InvoiceStatus.PENDING,
    "PAID": InvoiceStatus.PAID,
    "SETTLED": InvoiceStatus.PAID,  # paid, and the money has reached our balance
    "EXPIRED": InvoiceStatus.EXPIRED,
}
_REFUND_STATUSES = {
    "PENDING": RefundStatus.PENDING,
    "SUCCEEDED": RefundStatus.SUCCEEDED,
    "FAILED": RefundStatus.FAILED,
    "CANCELLED": RefundStatus.CANCELLED,
}
_PAYOUT_STATUSES = {
    "ACCEPTED": PayoutStatus.PENDING,
    "REQUESTED": PayoutStatus.PENDING,
    "LOCKED": PayoutStatus.PENDING,
    "SUCCEEDED": PayoutStatus.SUCCEEDED,
    "FAILED": PayoutStatus.FAILED,
    "CANCELLED": PayoutStatus.CANCELLED,
    "REVERSED": PayoutStatus.REVERSED,
}
_ALREADY_FINAL = {InvoiceStatus.PAID: ExpireOutcome.ALREADY_PAID, InvoiceStatus.EXPIRED: ExpireOutcome.ALREADY_EXPIRED}


@dataclass(frozen=True)
class InvoiceFee:
    """A fee Xendit kept from a paid invoice (its admin fee, the VAT on it, ...), in rupiah."""

    type: str
    value: int


@dataclass(frozen=True)
class Invoice:
    id: str
    external_id: str
    status: InvoiceStatus
    amount: int
    currency: str | None
    invoice_url: str
    expires_at: str
    # Set once the invoice is paid: what was paid, when, how, and the fees Xendit kept from it (PAY-5).
    paid_amount: int | None = None
    paid_at: str | None = None
    payment_method: str | None = None
    fees: tuple[InvoiceFee, ...] = ()


@dataclass(frozen=True)
class InvoiceExpiry:
    outcome: ExpireOutcome
    invoice: Invoice


@dataclass(frozen=True)
class Refund:
    id: str
    status: RefundStatus
    amount: int
    reference_id: str | None = None  # our refund id
    invoice_id: str | None = None
    currency: str | None = None
    fee: Any = None  # Xendit's refund_fee_amount as sent: the ledger checks its form when it books it


@dataclass(frozen=True)
class Payout:
    id: str
    status: PayoutStatus
    amount: int
    reference_id: str | None = None
    currency: str | None = None
    failure_code: str | None = None


def to_xendit_amount(amount: int) -> float:
    """Our integer rupiah as the float the SDK insists on."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"money is an int of rupiah, not {type(amount).__name__}")
    if amount <= 0:
        raise ValueError("an amount sent to Xendit must be positive")
    return float(amount)


def amount_from_xendit(value: float | int) -> int:
    """A Xendit amount (float in the SDK, number in callbacks) as integer rupiah; IDR has no fractions."""
    if not float(value).is_integer():
        raise ValueError(f"Xendit sent a fractional IDR amount: {value!r}")
    return int(value)


def invoice_status_from_xendit(status: str) -> InvoiceStatus:
    return _known_status(_INVOICE_STATUSES, status, "invoice")


def refund_status_from_xendit(status: str) -> RefundStatus:
    return _known_status(_REFUND_STATUSES, status, "refund")


def payout_status_from_xendit(status: str) -> PayoutStatus:
    return _known_status(_PAYOUT_STATUSES, status, "payout")


def _known_status(statuses: Mapping[str, T], status: str, kind: str) -> T:
    try:
        return statuses[str(status)]
    except KeyError:
        raise ValueError(f"unknown Xendit {kind} status: {status!r}") from None


def verify_callback_token(received: str | None, expected: str) -> bool:
    """PAY-2: the webhook's ``x-callback-token`` against our secret, in constant time."""
    if not received or not expected:
        return False
    return hmac.compare_digest(received.encode(), expected.encode())


def load_secret_key(settings: Settings) -> str:
    """The Xendit secret API key from SSM (SecureString), cached per warm container."""
    return read_secret(settings.xendit_secret_key_parameter, "the Xendit API key")


def load_callback_token(settings: Settings) -> str:
    """The webhook verification token from SSM (SecureString), cached per warm container."""
    return read_secret(settings.xendit_callback_token_parameter, "the Xendit callback token")


def backoff_seconds(attempt: int) -> float:
    """Full jitter before the retry that follows attempt ``attempt`` (1-based; attempt 1 → ≤ base)."""
    return full_jitter(attempt - 1, base=BACKOFF_BASE_SECONDS, cap=BACKOFF_CAP_SECONDS)


class XenditGateway:
    def __init__(
        self,
        api_url: str,
        secret_key: str,
        *,
        timeout_seconds: float,
        max_attempts: int,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        # The SDK takes ~0.4 s to import: only a container that talks to Xendit pays for it (issue 8).
        from xendit import ApiClient, Configuration
        from xendit.apis import InvoiceApi, PayoutApi, RefundApi

        configuration = Configuration(host=api_url.rstrip("/"), api_key=secret_key)
        configuration.retries = False  # this class retries; urllib3's own retries would multiply the attempts
        client = ApiClient(configuration)
        self._invoices = InvoiceApi(client)
        self._refunds = RefundApi(client)
        self._payouts = PayoutApi(client)
        self._timeout = timeout_seconds
        self._max_attempts = max_attempts
        self._sleep = sleep

    @classmethod
    def from_settings(
        cls, settings: Settings, secret_key: str, *, sleep: Callable[[float], None] = time.sleep
    ) -> XenditGateway:
        return cls(
            settings.xendit_api_url,
            secret_key,
            timeout_seconds=settings.xendit_timeout_seconds,
            max_attempts=settings.xendit_max_attempts,
            sleep=sleep,
        )

    # --- invoices ---------------------------------------------------------------------------------------

    def create_invoice(
        self,
        external_id: str,
        amount: int,
        description: str,
        payer_email: str | None,
        duration_seconds: int,
        success_redirect_url: str | None,
        metadata: Mapping[str, Any],
    ) -> Invoice:
        from xendit.invoice.model.create_invoice_request import CreateInvoiceRequest

        optional = {"payer_email": payer_email, "success_redirect_url": success_redirect_url}
        request = CreateInvoiceRequest(
            external_id=external_id,
            amount=to_xendit_amount(amount),
            description=description,
            invoice_duration=float(duration_seconds),
            currency=DEFAULT_CURRENCY,
            metadata=dict(metadata),
            **{name: value for name, value in optional.items() if value is not None},
        )
        created = self._call(
            "create_invoice",
            lambda: self._invoices.create_invoice(create_invoice_request=request, _request_timeout=self._timeout),
            before_retry=lambda: self._find_invoice(external_id),
        )
        return _invoice(created)

    def get_invoice_by_external_id(self, external_id: str) -> Invoice | None:
        found = self._call("get_invoices", lambda: self._find_invoice(external_id))
        return _invoice(found) if found is not None else None

    def expire_invoice(self, invoice_id: str) -> InvoiceExpiry:
        """Expire a pending invoice; one already paid or expired is reported as such, not as an error."""
        try:
            expired = self._call(
                "expire_invoice",
                lambda: self._invoices.expire_invoice(invoice_id=invoice_id, _request_timeout=self._timeout),
            )
        except PaymentRejected as refusal:
            # Xendit expires PENDING invoices only and answers "not found" for the others: see which it is.
            if refusal.gateway_code != "INVOICE_NOT_FOUND_ERROR":
                raise
            current = self.get_invoice(invoice_id)
            if current.status not in _ALREADY_FINAL:
                raise
            return InvoiceExpiry(_ALREADY_FINAL[current.status], current)
        return InvoiceExpiry(ExpireOutcome.EXPIRED, _invoice(expired))

    def get_invoice(self, invoice_id: str) -> Invoice:
        found = self._call(
            "get_invoice",
            lambda: self._invoices.get_invoice_by_id(invoice_id=invoice_id, _request_timeout=self._timeout),
        )
        return _invoice(found)

    def _find_invoice(self, external_id: str) -> Any:
        invoices = self._invoices.get_invoices(external_id=external_id, _request_timeout=self._timeout)
        return max(invoices, key=lambda invoice: invoice.created) if invoices else None

    # --- refunds and payouts ----------------------------------------------------------------------------

    def create_refund(self, refund_id: str, invoice_id: str, amount: int, reason: RefundReason) -> Refund:
        """Refund (part of) a paid invoice. Raises RefundNotSupported when its channel cannot refund."""
        from xendit.refund.model.create_refund import CreateRefund

        request = CreateRefund(
            invoice_id=invoice_id,
            reference_id=refund_id,
            amount=to_xendit_amount(amount),
            currency=DEFAULT_CURRENCY,
            reason=str(reason),
        )
        refund = self._call(
            "create_refund",
            lambda: self._refunds.create_refund(
                idempotency_key=refund_id, create_refund=request, _request_timeout=self._timeout
            ),
        )
        return _refund(refund)

    def get_refund(self, refund_id: str) -> Refund:
        """Xendit's record of a refund (by Xendit's id); one Xendit does not know is a PaymentRejected."""
        found = self._call(
            "get_refund", lambda: self._refunds.get_refund(refund_id=refund_id, _request_timeout=self._timeout)
        )
        return _refund(found)

    def create_payout(
        self,
        payout_id: str,
        amount: int,
        channel_code: str,
        account_number: str,
        account_holder_name: str,
        description: str,
    ) -> Payout:
        """Send money to a bank account or e-wallet (channel_code such as ``ID_BCA``)."""
        from xendit.payout.model.create_payout_request import CreatePayoutRequest
        from xendit.payout.model.digital_payout_channel_properties import DigitalPayoutChannelProperties

        request = CreatePayoutRequest(
            reference_id=payout_id,
            channel_code=channel_code,
            channel_properties=DigitalPayoutChannelProperties(
                account_number=account_number, account_holder_name=account_holder_name
            ),
            amount=to_xendit_amount(amount),
            currency=DEFAULT_CURRENCY,
            description=description,
        )
        payout = self._call(
            "create_payout",
            lambda: self._payouts.create_payout(
                idempotency_key=payout_id, create_payout_request=request, _request_timeout=self._timeout
            ),
        )
        return _payout(payout)

    def get_payout(self, payout_id: str) -> Payout | None:
        """Xendit's payout by its id; None when Xendit has no such payout (404)."""
        found = self._call(
            "get_payout",
            lambda: _none_if_missing(
                lambda: self._payouts.get_payout_by_id(id=payout_id, _request_timeout=self._timeout)
            ),
        )
        return _payout(found) if found is not None else None

    def find_payout_by_reference(self, reference_id: str) -> Payout | None:
        """The payout sent for our ``reference_id`` (a withdrawal id), or None if none was ever sent."""
        found = self._call(
            "get_payouts",
            lambda: self._payouts.get_payouts(reference_id=reference_id, _request_timeout=self._timeout),
        )
        payouts = list(found.get("data") or [])
        return _payout(max(payouts, key=lambda payout: payout.created)) if payouts else None

    # --- retries and error translation ------------------------------------------------------------------

    def _call(
        self, operation: str, request: Callable[[], T], *, before_retry: Callable[[], T | None] | None = None
    ) -> T:
        """Run ``request``, retrying transient failures; ``before_retry`` may find what an earlier attempt
        already did (it runs inside the same retry budget)."""
        attempt = 1
        while True:
            try:
                if attempt > 1 and before_retry is not None and (earlier := before_retry()) is not None:
                    logger.info("xendit: an earlier attempt had succeeded", extra={"operation": operation})
                    return earlier
                return request()
            except (_sdk_error(), urllib3.exceptions.HTTPError) as exc:
                if not _is_transient(exc):
                    raise _refusal(operation, exc) from exc
                if attempt >= self._max_attempts:
                    logger.error(
                        "xendit unavailable",
                        extra={"operation": operation, "attempts": attempt, "reason": _reason(exc)},
                    )
                    raise DependencyUnavailable("the payment provider did not answer; retry shortly") from exc
                delay = backoff_seconds(attempt)
                logger.warning(
                    "xendit call failed; retrying",
                    extra={"operation": operation, "attempt": attempt, "delay_seconds": delay, "reason": _reason(exc)},
                )
                self._sleep(delay)
                attempt += 1


def _sdk_error() -> type[XenditSdkException]:
    """The SDK's error class, imported with the SDK, when a gateway is first built (the SDK is not imported
    at module import: handlers that never call Xendit import this module for its types)."""
    from xendit import XenditSdkException

    return XenditSdkException


def _status(exc: Exception) -> int:
    """The HTTP status of a failed call; 0 when no HTTP answer came back."""
    if isinstance(exc, _sdk_error()):
        try:
            return int(exc.status)
        except (TypeError, ValueError):
            return 0
    return 0


def _is_transient(exc: Exception) -> bool:
    status = _status(exc)
    return status in {0, 429} or status >= 500


def _reason(exc: Exception) -> str:
    if isinstance(exc, _sdk_error()):
        return f"HTTP {exc.status} {exc.errorCode}".strip()
    return type(exc).__name__


def _refusal(operation: str, exc: XenditSdkException) -> DomainError:
    status = _status(exc)
    gateway_code = str(exc.errorCode or f"HTTP_{status}")
    if status in (401, 403):
        # Our key or its permissions are wrong: an operator must act; callers see the provider as unavailable.
        logger.error("xendit refused our credentials", extra={"operation": operation, "status": status})
        return DependencyUnavailable("the payment provider refused our credentials")
    logger.warning(
        "xendit refused the request",
        extra={"operation": operation, "status": status, "gateway_code": gateway_code},
    )
    error = RefundNotSupported if gateway_code in _REFUND_NOT_SUPPORTED_CODES else PaymentRejected
    return error(f"Xendit refused {operation}: {exc.errorMessage or gateway_code}", gateway_code=gateway_code)


def _none_if_missing(request: Callable[[], T]) -> T | None:
    try:
        return request()
    except _sdk_error() as exc:
        if _status(exc) == 404:
            return None
        raise


def _payout(payout: Any) -> Payout:
    return Payout(
        id=payout.id,
        status=payout_status_from_xendit(payout.status),
        amount=amount_from_xendit(payout.amount),
        reference_id=payout.get("reference_id"),
        currency=payout.get("currency"),
        failure_code=payout.get("failure_code"),
    )


def _invoice(invoice: Any) -> Invoice:
    # paid_amount and paid_at are not in the SDK's Invoice model: Xendit sends them and the model keeps them
    # as extra fields (paid_at parsed into a datetime, or left as the text it came as).
    paid_amount, paid_at = invoice.get("paid_amount"), invoice.get("paid_at")
    return Invoice(
        id=invoice.id,
        external_id=invoice.external_id,
        status=invoice_status_from_xendit(invoice.status.value),
        amount=amount_from_xendit(invoice.amount),
        currency=currency.value if (currency := invoice.get("currency")) is not None else None,
        invoice_url=invoice.invoice_url,
        expires_at=to_iso(invoice.expiry_date),
        paid_amount=amount_from_xendit(paid_amount) if paid_amount is not None else None,
        paid_at=to_iso(paid_at) if isinstance(paid_at, datetime) else paid_at,
        payment_method=method.value if (method := invoice.get("payment_method")) is not None else None,
        fees=tuple(InvoiceFee(type=fee.type, value=amount_from_xendit(fee.value)) for fee in invoice.get("fees") or ()),
    )


def _refund(refund: Any) -> Refund:
    # The SDK's Refund model lacks ``status`` and ``invoice_id``: Xendit sends them and the model keeps them
    # as extra fields.
    return Refund(
        id=refund.id,
        status=refund_status_from_xendit(refund["status"]),
        amount=amount_from_xendit(refund.amount),
        reference_id=refund.get("reference_id"),
        invoice_id=refund.get("invoice_id"),
        currency=refund.get("currency"),
        fee=refund.get("refund_fee_amount"),
    )
