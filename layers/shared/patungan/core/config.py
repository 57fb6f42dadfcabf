"""One validated settings model, read from the environment once per cold start.

Every function gets the same variables (template Globals), so one model serves all; a missing or
malformed variable fails the cold start with a message naming it, not a KeyError deep in a request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache

from pydantic import BaseModel, ConfigDict, Field, Json, ValidationError

from patungan.inventory.stock_models import MAX_RESERVATION_ITEMS


class ShippingFallbackRate(BaseModel):
    """One line of the rate table quoted when the courier cannot answer (LOG-1): ``base_price`` plus
    ``per_kg_price`` for every started kilogram, in rupiah."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    courier: str = Field(pattern=r"^[a-z0-9_]+$")
    service: str = Field(pattern=r"^[a-z0-9_]+$")
    base_price: int = Field(ge=0)
    per_kg_price: int = Field(ge=0)
    etd_days: int = Field(ge=0)


# What the courier's regular services cost about Jakarta-Bandung (2026 list prices, rounded up); operators
# override it with SHIPPING_FALLBACK_RATES (a JSON list of these objects; [] quotes nothing: 503).
DEFAULT_SHIPPING_FALLBACK_RATES = (
    '[{"courier": "jne", "service": "reg", "base_price": 12000, "per_kg_price": 9000, "etd_days": 3},'
    ' {"courier": "sicepat", "service": "reg", "base_price": 11000, "per_kg_price": 9000, "etd_days": 3},'
    ' {"courier": "anteraja", "service": "reg", "base_price": 11000, "per_kg_price": 8500, "etd_days": 4}]'
)


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    stage: str = Field("local", alias="STAGE")
    region: str = Field("ap-southeast-3", alias="AWS_REGION")
    catalog_table: str = Field(alias="CATALOG_TABLE")
    groupbuy_table: str = Field("", alias="GROUPBUY_TABLE")
    payments_table: str = Field("", alias="PAYMENTS_TABLE")
    ledger_table: str = Field("", alias="LEDGER_TABLE")
    orders_table: str = Field("", alias="ORDERS_TABLE")
    inventory_table: str = Field("", alias="INVENTORY_TABLE")
    notifications_table: str = Field("", alias="NOTIFICATIONS_TABLE")
    outbox_table: str = Field(alias="OUTBOX_TABLE")
    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE")
    event_bus_name: str = Field(alias="EVENT_BUS_NAME")
    event_source: str = Field("patungan", alias="EVENT_SOURCE")
    outbox_ttl_days: int = Field(7, alias="OUTBOX_TTL_DAYS", ge=1)
    idempotency_ttl_seconds: int = Field(86_400, alias="IDEMPOTENCY_TTL_SECONDS", ge=60)
    xendit_api_url: str = Field("https://api.xendit.co", alias="XENDIT_API_URL")
    xendit_secret_key_parameter: str = Field("/patungan/xendit/secret-key", alias="XENDIT_SECRET_KEY_PARAMETER")
    xendit_callback_token_parameter: str = Field(
        "/patungan/xendit/callback-token", alias="XENDIT_CALLBACK_TOKEN_PARAMETER"
    )
    xendit_timeout_seconds: float = Field(10.0, alias="XENDIT_TIMEOUT_SECONDS", gt=0)
    xendit_max_attempts: int = Field(4, alias="XENDIT_MAX_ATTEMPTS", ge=1)
    settlement_page_size: int = Field(100, alias="SETTLEMENT_PAGE_SIZE", ge=1, le=500)
    topup_enabled: bool = Field(True, alias="TOPUP_ENABLED")
    topup_floor_percent: int = Field(80, alias="TOPUP_FLOOR_PERCENT", ge=1, le=100)
    # What the platform charges per withdrawal (WAL-2), rupiah: the payout sends amount - fee.
    withdrawal_fee: int = Field(0, alias="WITHDRAWAL_FEE", ge=0)
    # Tokens on public routes, which run no authorizer (adapters/tokens.py): the user pool in AWS; the
    # local stack's own key, honoured only on the local stage.
    user_pool_id: str = Field("", alias="USER_POOL_ID")
    user_pool_client_id: str = Field("", alias="USER_POOL_CLIENT_ID")
    local_token_secret: str = Field("", alias="LOCAL_TOKEN_SECRET")
    # Only StartSessionWorkflowFunction has these: the state machines invoke the other functions.
    group_session_state_machine_arn: str = Field("", alias="GROUP_SESSION_STATE_MACHINE_ARN")
    session_refund_state_machine_arn: str = Field("", alias="SESSION_REFUND_STATE_MACHINE_ARN")
    escrow_release_state_machine_arn: str = Field("", alias="ESCROW_RELEASE_STATE_MACHINE_ARN")
    # Reconciliation (PAY-8): only its starters have the ARN; a page checks up to batch_size records with at most
    # concurrency Xendit calls in flight (reconciliation/service.py explains the sizes).
    reconciliation_state_machine_arn: str = Field("", alias="RECONCILIATION_STATE_MACHINE_ARN")
    reconciliation_batch_size: int = Field(1000, alias="RECONCILIATION_BATCH_SIZE", ge=1, le=10_000)
    reconciliation_concurrency: int = Field(4, alias="RECONCILIATION_CONCURRENCY", ge=1, le=16)
    # Stock (issue 9, i9stock): the append-only audit log (WH-2); how long a reservation holds stock unless the
    # caller asks for less, and at most (CHK-3: the server decides); the warehouse a purchase-order receipt
    # puts its units in when the request names none (GB-15, WH-4; empty: the receipt posts no stock).
    inventory_audit_table: str = Field("", alias="INVENTORY_AUDIT_TABLE")
    reservation_ttl_seconds: int = Field(900, alias="RESERVATION_TTL_SECONDS", ge=1)
    reservation_max_ttl_seconds: int = Field(3600, alias="RESERVATION_MAX_TTL_SECONDS", ge=1)
    default_receiving_warehouse_id: str = Field("", alias="DEFAULT_RECEIVING_WAREHOUSE_ID")
    # Accounts (ACC-2): users' addresses.
    accounts_table: str = Field("", alias="ACCOUNTS_TABLE")
    # Shipping rates (LOG-1): the courier aggregator (Biteship's API; the local courier in the local stack), its
    # API key in SSM, a buyer-facing budget (timeout x attempts stays well inside the function's 15 s), the
    # couriers asked for, and the rate table quoted, flagged "fallback", when the courier cannot answer.
    courier_api_url: str = Field("https://api.biteship.com", alias="COURIER_API_URL")
    courier_api_key_parameter: str = Field("/patungan/courier/api-key", alias="COURIER_API_KEY_PARAMETER")
    courier_timeout_seconds: float = Field(3.0, alias="COURIER_TIMEOUT_SECONDS", gt=0)
    courier_max_attempts: int = Field(3, alias="COURIER_MAX_ATTEMPTS", ge=1, le=5)
    courier_codes: str = Field(
        "jne,sicepat,anteraja,gojek", alias="COURIER_CODES", pattern=r"^[a-z0-9_]+(,[a-z0-9_]+)*$"
    )
    shipping_fallback_rates: Json[tuple[ShippingFallbackRate, ...]] = Field(
        DEFAULT_SHIPPING_FALLBACK_RATES, alias="SHIPPING_FALLBACK_RATES", validate_default=True
    )
    # Confirm saga (CHK-5, CHK-6; issue 10): the checkout state machine, how long a buyer has to pay an invoice
    # (its reservations hold twice that, capped by RESERVATION_MAX_TTL_SECONDS, until paid), and how long a
    # confirm holds the buyer's confirm lock (it lapses if the confirm crashed).
    checkout_state_machine_arn: str = Field("", alias="CHECKOUT_STATE_MACHINE_ARN")
    checkout_payment_window_seconds: int = Field(900, alias="CHECKOUT_PAYMENT_WINDOW_SECONDS", ge=60)
    checkout_lock_seconds: int = Field(120, alias="CHECKOUT_LOCK_SECONDS", ge=10)
    # Cart, pricing and promotions (issue 10, CHK-1, CHK-8, CHK-11, PRM-1): the carts and promotions tables; a
    # cart's bounds; the tax on goods and on shipping after its discount (basis points: 1100 = PPN 11 %); the
    # checkout total's bounds (CHK-8; IDR).
    cart_table: str = Field("", alias="CART_TABLE")
    promotions_table: str = Field("", alias="PROMOTIONS_TABLE")
    # At most what one confirm reserves (a bigger cart previews and can never be bought; CHK-8).
    cart_max_lines: int = Field(MAX_RESERVATION_ITEMS, alias="CART_MAX_LINES", ge=1, le=MAX_RESERVATION_ITEMS)
    cart_max_quantity: int = Field(1000, alias="CART_MAX_QUANTITY", ge=1, le=1_000_000)
    tax_basis_points: int = Field(1100, alias="TAX_BASIS_POINTS", ge=0, le=10_000)
    checkout_min_order_amount: int = Field(1000, alias="CHECKOUT_MIN_ORDER_AMOUNT", ge=0)
    checkout_max_order_amount: int = Field(100_000_000, alias="CHECKOUT_MAX_ORDER_AMOUNT", ge=1)
    # Tracking (issue 11, H4; ORD-3, LOG-2): how long a delivered order may still come back before it completes
    # (its money then goes to the seller), and how long an in-transit shipment may go without a courier webhook
    # before the scheduled poll reads its tracking instead.
    order_return_window_seconds: int = Field(172_800, alias="ORDER_RETURN_WINDOW_SECONDS", ge=0)
    courier_quiet_seconds: int = Field(21_600, alias="COURIER_QUIET_SECONDS", ge=60)
    # Shipments (issue 11, LOG-2, GB-15): the shipments table; how a group-buying order ships when the booking
    # names no method (courier:service; its buyer chose none, the warehouse ships the session's parcels).
    shipments_table: str = Field("", alias="SHIPMENTS_TABLE")
    groupbuy_shipping_method_id: str = Field(
        "jne:reg", alias="GROUPBUY_SHIPPING_METHOD_ID", pattern=r"^[a-z0-9_]+:[a-z0-9_]+$"
    )
    # Courier webhooks (issue 11, LOG-2): the SSM parameter holding the secret the courier's webhook URL carries
    # as ``?token=`` (Biteship can only be given a URL, no signing secret); CourierWebhook compares it in
    # constant time and never logs it.
    courier_webhook_token_parameter: str = Field(
        "/patungan/courier/webhook-token", alias="COURIER_WEBHOOK_TOKEN_PARAMETER"
    )


def settings_from(environ: Mapping[str, str]) -> Settings:
    fields = {field.alias for field in Settings.model_fields.values() if field.alias}
    try:
        return Settings.model_validate({k: v for k, v in environ.items() if k in fields})
    except ValidationError as exc:
        names = ", ".join(str(err["loc"][0]) for err in exc.errors())
        raise RuntimeError(f"invalid or missing configuration: {names}") from exc


@cache
def get_settings() -> Settings:
    return settings_from(os.environ)
