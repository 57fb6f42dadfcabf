"""The composition root: builds the services of the intertwined contexts (group buying, payments,
orders, purchase orders) once per warm container, from the one settings model.

Each factory imports what it builds: a handler imports only the contexts its operation uses (a fresh container
of a flash sale pays for its imports, issue 8)."""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING

from patungan.adapters.dynamodb import DynamoTable
from patungan.core.clock import SystemClock
from patungan.core.config import get_settings

if TYPE_CHECKING:
    from patungan.accounts.service import AddressService
    from patungan.adapters.outbox import Outbox
    from patungan.adapters.xendit import XenditGateway
    from patungan.catalog.models import Product
    from patungan.checkout.cart import CartService
    from patungan.checkout.checkouts import CheckoutRepository
    from patungan.checkout.confirm import ConfirmService
    from patungan.checkout.pricing import CheckoutPricing
    from patungan.checkout.promotions import PromotionService
    from patungan.checkout.refunds import OrderRefunds
    from patungan.checkout.saga import CheckoutSaga
    from patungan.fulfilment.repository import ShipmentsRepository
    from patungan.fulfilment.service import ShipmentService
    from patungan.fulfilment.tracking import ShipmentTracking
    from patungan.groupbuy.expiry import UnpaidInvoiceExpiry
    from patungan.groupbuy.repository import GroupBuyRepository
    from patungan.groupbuy.service import GroupBuyService
    from patungan.groupbuy.settlement import SettlementService
    from patungan.groupbuy.stuck import StuckSessions
    from patungan.groupbuy.workflows import SessionWorkflows
    from patungan.inventory.service import PurchaseOrderService
    from patungan.inventory.stock import StockService
    from patungan.inventory.warehouses import WarehouseRepository, WarehouseService
    from patungan.logistics.service import ShippingRatesService
    from patungan.orders.service import OrderService
    from patungan.payments.service import PaymentService
    from patungan.reconciliation.index import IndexedKind
    from patungan.reconciliation.models import RecordChecker
    from patungan.reconciliation.service import ReconciliationService
    from patungan.wallet.reconciliation import PayoutChecker
    from patungan.wallet.service import WithdrawalService

CLOCK = SystemClock()
STALLED_JOIN_AGE = timedelta(minutes=2)


@cache
def outbox() -> Outbox:
    from patungan.adapters.outbox import Outbox

    settings = get_settings()
    return Outbox(DynamoTable(settings.outbox_table), settings.outbox_ttl_days)


@cache
def groupbuy_repository() -> GroupBuyRepository:
    from patungan.groupbuy.repository import GroupBuyRepository

    return GroupBuyRepository(DynamoTable(get_settings().groupbuy_table), outbox())


@cache
def xendit() -> XenditGateway:
    from patungan.adapters.xendit import XenditGateway, load_secret_key

    settings = get_settings()
    return XenditGateway.from_settings(settings, load_secret_key(settings))


def xendit_callback_token() -> str:
    from patungan.adapters.xendit import load_callback_token

    return load_callback_token(get_settings())


@cache
def payment_service() -> PaymentService:
    from patungan.checkout.purpose import RetailPaymentPurpose
    from patungan.groupbuy.purpose import GroupBuyPaymentPurpose
    from patungan.ledger.repository import ledger
    from patungan.payments.repository import PaymentsRepository
    from patungan.payments.service import PaymentService

    purpose = GroupBuyPaymentPurpose(groupbuy_repository(), outbox(), CLOCK)
    service = PaymentService(
        PaymentsRepository(DynamoTable(get_settings().payments_table)),
        ledger(),
        outbox(),
        xendit,
        {"groupbuy_escrow": purpose, "groupbuy_topup": purpose},
        CLOCK,
    )
    # The retail purpose drives the checkout saga, which creates its payments through this service.
    service.purposes["retail_checkout"] = RetailPaymentPurpose(checkout_saga(service))
    return service


@cache
def groupbuy_service() -> GroupBuyService:
    from patungan.catalog.service import catalog_service
    from patungan.groupbuy.service import GroupBuyService

    return GroupBuyService(
        groupbuy_repository(),
        payment_service(),
        outbox(),
        lambda product_id: catalog_service().get_product(None, product_id),
        CLOCK,
    )


@cache
def order_service() -> OrderService:
    from patungan.orders.repository import OrdersRepository
    from patungan.orders.service import OrderService

    return OrderService(OrdersRepository(DynamoTable(get_settings().orders_table)), outbox(), CLOCK)


@cache
def purchase_order_service() -> PurchaseOrderService:
    from patungan.inventory.repository import PurchaseOrderRepository
    from patungan.inventory.service import PurchaseOrderService

    settings = get_settings()
    return PurchaseOrderService(
        PurchaseOrderRepository(DynamoTable(settings.inventory_table)),
        outbox(),
        CLOCK,
        stock_service,
        default_warehouse_id=settings.default_receiving_warehouse_id or None,
    )


@cache
def settlement_service() -> SettlementService:
    from patungan.groupbuy.settlement import SettlementService, TopUpPolicy
    from patungan.ledger.repository import ledger

    settings = get_settings()
    return SettlementService(
        groupbuy_repository(),
        payment_service(),
        order_service(),
        purchase_order_service(),
        ledger(),
        outbox(),
        CLOCK,
        page_size=settings.settlement_page_size,
        topup=TopUpPolicy(enabled=settings.topup_enabled, floor_percent=settings.topup_floor_percent),
    )


@cache
def unpaid_invoice_expiry() -> UnpaidInvoiceExpiry:
    from patungan.groupbuy.expiry import UnpaidInvoiceExpiry

    return UnpaidInvoiceExpiry(payment_service())


@cache
def stuck_sessions() -> StuckSessions:
    from patungan.groupbuy.stuck import StuckSessions

    return StuckSessions(groupbuy_repository(), CLOCK)


@cache
def session_workflows() -> SessionWorkflows:
    from patungan.adapters.stepfunctions import ExecutionStarter
    from patungan.groupbuy.workflows import SessionStateMachines, SessionWorkflows

    settings = get_settings()
    return SessionWorkflows(
        ExecutionStarter(),
        SessionStateMachines(
            group_session=settings.group_session_state_machine_arn,
            session_refund=settings.session_refund_state_machine_arn,
            escrow_release=settings.escrow_release_state_machine_arn,
        ),
    )


def reset() -> None:
    """Forget every built service (a new warm container; a fresh local AWS in tests)."""
    for factory in (
        outbox,
        groupbuy_repository,
        xendit,
        payment_service,
        groupbuy_service,
        order_service,
        purchase_order_service,
        settlement_service,
        unpaid_invoice_expiry,
        stuck_sessions,
        session_workflows,
        withdrawal_service,
        payout_checker,
        reconciliation_service,
        address_service,
        warehouse_repository,
        warehouse_service,
        shipping_rates_service,
        stock_service,
        cart_service,
        promotion_service,
        checkout_pricing,
        _checkout_saga,
        confirm_service,
        shipments_repository,
        shipment_tracking,
        shipment_service,
    ):
        factory.cache_clear()


@cache
def withdrawal_service() -> WithdrawalService:
    from patungan.ledger.repository import ledger
    from patungan.payments.repository import PaymentsRepository
    from patungan.wallet.repository import WithdrawalsRepository
    from patungan.wallet.service import WithdrawalService

    settings = get_settings()
    payments_table = DynamoTable(settings.payments_table)
    return WithdrawalService(
        WithdrawalsRepository(payments_table),
        PaymentsRepository(payments_table),
        ledger(),
        outbox(),
        xendit,
        CLOCK,
        fee=settings.withdrawal_fee,
    )


@cache
def payout_checker() -> PayoutChecker:
    """Reconciliation's RecordChecker for IndexedKind.PAYOUTS (PAY-8)."""
    from patungan.wallet.reconciliation import PayoutChecker

    return PayoutChecker(withdrawal_service())


# ---------------------------------------------------------------- reconciliation (PAY-8)
RECONCILIATION_READ_PAGE = 100  # records per index query


def reconciliation_checkers() -> dict[IndexedKind, RecordChecker]:
    from patungan.reconciliation.checkers import PaymentChecker, RefundChecker
    from patungan.reconciliation.index import IndexedKind

    return {
        IndexedKind.PAYMENTS: PaymentChecker(payment_service()),
        IndexedKind.REFUNDS: RefundChecker(payment_service()),
        IndexedKind.PAYOUTS: payout_checker(),
    }


@cache
def reconciliation_service() -> ReconciliationService:
    from patungan.adapters.stepfunctions import ExecutionStarter
    from patungan.ledger.repository import ledger
    from patungan.reconciliation.repository import RecordsIndex, RunsRepository
    from patungan.reconciliation.service import Limits, ReconciliationService

    settings = get_settings()
    payments_table = DynamoTable(settings.payments_table)
    return ReconciliationService(
        RunsRepository(payments_table),
        RecordsIndex(payments_table, RECONCILIATION_READ_PAGE),
        reconciliation_checkers(),
        ledger(),
        ExecutionStarter(),
        settings.reconciliation_state_machine_arn,
        Limits(batch_size=settings.reconciliation_batch_size, concurrency=settings.reconciliation_concurrency),
        CLOCK,
    )


# ---------------------------------------------------------------- stock (WH-1..5, CHK-3, CHK-10; issue 9)
def catalog_product(product_id: str) -> Product:
    """A product, whatever its status (stock of a deactivated product is still stock)."""
    from patungan.catalog.service import catalog_service

    return catalog_service().repository.get_product(product_id)


@cache
def stock_service() -> StockService:
    from patungan.inventory.stock import Holds, StockService
    from patungan.inventory.stock_repository import AuditLog, StockRepository

    settings = get_settings()
    return StockService(
        StockRepository(DynamoTable(settings.inventory_table)),
        AuditLog(DynamoTable(settings.inventory_audit_table)),
        warehouse_repository(),
        catalog_product,
        CLOCK,
        Holds(
            default=timedelta(seconds=settings.reservation_ttl_seconds),
            maximum=timedelta(seconds=settings.reservation_max_ttl_seconds),
        ),
    )


# ---------------------------------------------------------------- addresses and warehouses (ACC-2, WH-1)
@cache
def address_service() -> AddressService:
    from patungan.accounts.repository import AddressRepository
    from patungan.accounts.service import AddressService

    settings = get_settings()
    return AddressService(
        AddressRepository(DynamoTable(settings.accounts_table)),
        CLOCK,
        request_keys_kept=timedelta(seconds=settings.idempotency_ttl_seconds),
    )


@cache
def warehouse_repository() -> WarehouseRepository:
    from patungan.inventory.warehouses import WarehouseRepository

    return WarehouseRepository(DynamoTable(get_settings().inventory_table))


@cache
def warehouse_service() -> WarehouseService:
    from patungan.inventory.warehouses import WarehouseService

    return WarehouseService(warehouse_repository(), CLOCK)


# ---------------------------------------------------------------- shipping rates (LOG-1)
@cache
def shipping_rates_service() -> ShippingRatesService:
    from patungan.catalog.service import catalog_service
    from patungan.logistics.courier import BiteshipCourier
    from patungan.logistics.service import ShippingRatesService

    settings = get_settings()
    return ShippingRatesService(
        BiteshipCourier.from_settings(settings),
        settings.courier_codes.split(","),
        settings.shipping_fallback_rates,
        lambda product_id: catalog_service().get_product(None, product_id),
        stock_service(),
        address_service(),
    )


# ---------------------------------------------------------------- cart, pricing, promotions (CHK-1, CHK-11, PRM-1; issue 10)
def retail_product(product_id: str) -> Product:
    """A product as buyers see it: active only (anything else is NotFound)."""
    from patungan.catalog.service import catalog_service

    return catalog_service().get_product(None, product_id)


@cache
def cart_service() -> CartService:
    from patungan.checkout.cart import CartRepository, CartService
    from patungan.core.money import DEFAULT_CURRENCY

    settings = get_settings()
    return CartService(
        CartRepository(DynamoTable(settings.cart_table)),
        catalog_product,
        stock_service(),
        CLOCK,
        max_lines=settings.cart_max_lines,
        max_quantity=settings.cart_max_quantity,
        currency=DEFAULT_CURRENCY,
    )


@cache
def promotion_service() -> PromotionService:
    from patungan.checkout.promotions import PromotionRepository, PromotionService

    return PromotionService(
        PromotionRepository(DynamoTable(get_settings().promotions_table)), catalog_product, seller_exists, CLOCK
    )


def seller_exists(seller_id: str) -> bool:
    from patungan.catalog.service import catalog_service
    from patungan.core.errors import NotFound

    try:
        catalog_service().repository.get_organisation("seller", seller_id)
    except NotFound:
        return False
    return True


@cache
def checkout_pricing() -> CheckoutPricing:
    from patungan.checkout.pricing import CheckoutPricing, OrderLimits
    from patungan.core.money import DEFAULT_CURRENCY

    settings = get_settings()
    return CheckoutPricing(
        retail_product,
        stock_service(),
        shipping_rates_service(),
        address_service(),
        promotion_service(),
        CLOCK,
        tax_basis_points=settings.tax_basis_points,
        limits=OrderLimits(settings.checkout_min_order_amount, settings.checkout_max_order_amount),
        currency=DEFAULT_CURRENCY,
    )


# ---------------------------------------------------------------- confirm saga (CHK-2..10, ORD-1, PAY-7; issue 10)
def checkout_repository() -> CheckoutRepository:
    from patungan.checkout.checkouts import CheckoutRepository

    return CheckoutRepository(DynamoTable(get_settings().orders_table))


def checkout_saga(payments: PaymentService | None = None) -> CheckoutSaga:
    """The saga's steps; ``payments`` breaks the cycle with the payment service, whose retail purpose is the saga."""
    return _checkout_saga(payments or payment_service())


@cache
def _checkout_saga(payments: PaymentService) -> CheckoutSaga:
    from patungan.adapters.stepfunctions import TaskTokens
    from patungan.checkout.saga import CheckoutSaga, SagaTimes

    settings = get_settings()
    return CheckoutSaga(
        checkout_repository(),
        order_service(),
        stock_service(),
        payments,
        promotion_service(),
        cart_service(),
        TaskTokens(),
        order_refunds(payments),
        unit_price,
        outbox(),
        CLOCK,
        SagaTimes(payment_window=timedelta(seconds=settings.checkout_payment_window_seconds)),
    )


def order_refunds(payments: PaymentService | None = None) -> OrderRefunds:
    """A paid retail order cancelled with its money going back (ORD-3): by its buyer, or as a returned parcel."""
    return _order_refunds(payments or payment_service())


@cache
def _order_refunds(payments: PaymentService) -> OrderRefunds:
    from patungan.checkout.refunds import OrderRefunds

    return OrderRefunds(checkout_repository(), order_service(), payments, CLOCK)


def unit_price(product_id: str, variant_id: str | None) -> int:
    """What one item costs now (the saga's revalidation, CHK-4)."""
    product = catalog_product(product_id)
    variant = product.variant(variant_id) if variant_id else None
    return variant.price if variant else product.base_price


@cache
def confirm_service() -> ConfirmService:
    from patungan.adapters.stepfunctions import ExecutionStarter
    from patungan.checkout.confirm import ConfirmService, ConfirmSettings
    from patungan.ledger.repository import ledger
    from patungan.orders.repository import OrdersRepository

    settings = get_settings()
    return ConfirmService(
        checkout_repository(),
        OrdersRepository(DynamoTable(settings.orders_table)),
        cart_service(),
        checkout_pricing(),
        ledger(),
        stock_service(),
        ExecutionStarter(),
        outbox(),
        CLOCK,
        ConfirmSettings(
            state_machine_arn=settings.checkout_state_machine_arn,
            payment_window=timedelta(seconds=settings.checkout_payment_window_seconds),
            lock_for=timedelta(seconds=settings.checkout_lock_seconds),
        ),
    )


# ---------------------------------------------------------------- fulfilment (LOG-2, LOG-3, GB-15; issue 11)
@cache
def shipments_repository() -> ShipmentsRepository:
    from patungan.fulfilment.repository import ShipmentsRepository

    return ShipmentsRepository(DynamoTable(get_settings().shipments_table))


@cache
def shipment_tracking() -> ShipmentTracking:
    from patungan.fulfilment.tracking import ShipmentTracking, TrackingRecords, TrackingTimes
    from patungan.ledger.repository import ledger
    from patungan.logistics.courier import BiteshipCourier

    settings = get_settings()
    return ShipmentTracking(
        shipments_repository(),
        TrackingRecords(DynamoTable(settings.shipments_table), CLOCK),
        order_service(),
        order_refunds(),
        ledger(),
        stock_service(),
        BiteshipCourier.from_settings(settings),
        CLOCK,
        TrackingTimes(
            return_window=timedelta(seconds=settings.order_return_window_seconds),
            quiet_after=timedelta(seconds=settings.courier_quiet_seconds),
        ),
    )


def courier_webhook_token() -> str:
    from patungan.adapters.aws import read_secret

    return read_secret(get_settings().courier_webhook_token_parameter, "the courier webhook token")


@cache
def shipment_service() -> ShipmentService:
    from patungan.accounts.repository import AddressRepository
    from patungan.fulfilment.service import ShipmentService
    from patungan.inventory.repository import PurchaseOrderRepository
    from patungan.logistics.courier import BiteshipCourier

    settings = get_settings()
    return ShipmentService(
        shipments_repository(),
        order_service(),
        checkout_repository(),
        stock_service(),
        PurchaseOrderRepository(DynamoTable(settings.inventory_table)),
        AddressRepository(DynamoTable(settings.accounts_table)),
        warehouse_repository(),
        catalog_product,
        BiteshipCourier.from_settings(settings),
        CLOCK,
        groupbuy_shipping_method_id=settings.groupbuy_shipping_method_id,
    )
