"""Shipping rates (LOG-1): what each courier service charges to carry a parcel from the warehouse holding the
items (CHK-10) to the buyer.

The courier aggregator prices it (``source: "courier"``). When it cannot answer (down, too slow, refusing our
request, answering nonsense) the buyer still gets prices, from the configured rate table, each flagged
``source: "fallback"``; every fallback is logged (WARNING; ERROR when the courier refused us, which is our bug
to fix) and counted (metric ShippingRateFallbacks). No table configured: 503, never an invented price.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from patungan.accounts.models import PostalAddress
from patungan.catalog.models import Product
from patungan.core.auth import Principal
from patungan.core.config import ShippingFallbackRate
from patungan.core.errors import DependencyUnavailable, NotFound, Unauthenticated, field_error
from patungan.core.money import DEFAULT_CURRENCY
from patungan.core.observability import logger, metrics
from patungan.inventory.stock_models import StockLine
from patungan.inventory.warehouses import Warehouse
from patungan.logistics.courier import CourierUnavailable
from patungan.logistics.models import (
    ParcelItem,
    Place,
    Quote,
    Rate,
    RateSource,
    RatesRequest,
    ShippingRates,
    parcel_weight_grams,
    shipping_method_id,
)

GRAMS_PER_KG = 1000


class Courier(Protocol):
    def rates(
        self, origin: Place, destination: Place, items: Sequence[ParcelItem], couriers: Sequence[str]
    ) -> list[Quote]: ...


class Origins(Protocol):
    def origin_for(self, seller_id: str | None, lines: list[StockLine]) -> Warehouse: ...


class Addresses(Protocol):
    def get(self, user_id: str, address_id: str) -> PostalAddress: ...


def fallback_quotes(table: Sequence[ShippingFallbackRate], weight_grams: int) -> list[Quote]:
    """The rate table's price for a parcel: base price plus the per-kg price for every started kilogram."""
    started_kgs = max(1, -(-weight_grams // GRAMS_PER_KG))
    return [
        Quote(line.courier, line.service, line.base_price + line.per_kg_price * started_kgs, line.etd_days)
        for line in table
    ]


class ShippingRatesService:
    def __init__(
        self,
        courier: Courier,
        couriers: Sequence[str],
        fallback_table: Sequence[ShippingFallbackRate],
        products: Callable[[str], Product],
        origins: Origins,
        addresses: Addresses,
    ) -> None:
        self.courier = courier
        self.couriers = tuple(couriers)
        self.fallback_table = tuple(fallback_table)
        self.products = products
        self.origins = origins
        self.addresses = addresses

    def rates(self, viewer: Principal | None, request: RatesRequest) -> ShippingRates:
        """The rates for ``request``'s items, from the one warehouse holding them all (CHK-10; none does: 409
        insufficient_stock) to its destination. An unknown product or variant is 422 naming the item's field;
        an address_id is the caller's own (anyone else's: 404)."""
        destination = self._destination(viewer, request)
        priced = [self._priced(index, item.product_id, item.variant_id) for index, item in enumerate(request.items)]
        sellers = {product.seller_id for product, _ in priced}
        if len(sellers) > 1:
            raise field_error("items", "every item must be sold by one seller: each seller ships its own parcel")
        lines = [StockLine(item.product_id, item.variant_id, item.quantity) for item in request.items]
        warehouse = self.origins.origin_for(sellers.pop(), lines)
        parcel = [
            ParcelItem(name=product.name, value=price, weight_grams=product.weight_grams, quantity=item.quantity)
            for (product, price), item in zip(priced, request.items, strict=True)
        ]
        return ShippingRates(
            origin_warehouse_id=warehouse.id, rates=self.quote(Place.of(warehouse.address), destination, parcel)
        )

    def _destination(self, viewer: Principal | None, request: RatesRequest) -> Place:
        if request.destination is not None:
            return Place.of(request.destination)
        if viewer is None:
            raise Unauthenticated("sign in to use a saved address (address_id), or send a destination")
        return Place.of(self.addresses.get(viewer.user_id, str(request.address_id)))

    def _priced(self, index: int, product_id: str, variant_id: str | None) -> tuple[Product, int]:
        """The product (active, as buyers see it) and the unit price of the item."""
        try:
            product = self.products(product_id)
        except NotFound:
            raise field_error(f"items.{index}.product_id", f"no product {product_id}") from None
        if variant_id is None:
            if product.variants:  # its stock is held per variant: which one decides the warehouse
                raise field_error(f"items.{index}.variant_id", f"choose one of product {product_id}'s variants")
            return product, product.base_price
        variant = product.variant(variant_id)
        if variant is None:
            raise field_error(f"items.{index}.variant_id", f"product {product_id} has no variant {variant_id}")
        return product, variant.price

    def quote(self, origin: Place, destination: Place, items: Sequence[ParcelItem]) -> list[Rate]:
        """Every service's rate for this parcel, cheapest first: the courier's, or the rate table's, flagged."""
        try:
            quotes, source = self.courier.rates(origin, destination, items, self.couriers), RateSource.COURIER
        except CourierUnavailable as exc:
            quotes, source = self._fallback(exc, parcel_weight_grams(list(items))), RateSource.FALLBACK
        rates = [
            Rate(
                shipping_method_id=shipping_method_id(quote.courier, quote.service),
                courier=quote.courier,
                service=quote.service,
                price=quote.price,
                currency=DEFAULT_CURRENCY,
                etd_days=quote.etd_days,
                source=source,
            )
            for quote in quotes
        ]
        return sorted(rates, key=lambda rate: (rate.price, rate.etd_days, rate.shipping_method_id))

    def _fallback(self, failure: CourierUnavailable, weight_grams: int) -> list[Quote]:
        details = {"reason": failure.reason, "attempts": failure.attempts, "weight_grams": weight_grams}
        if failure.refused:  # the courier said our request is wrong: retrying will not fix it, a developer must
            logger.error("courier refused the rates request; quoting the fallback rate table", extra=details)
        else:
            logger.warning("courier unavailable; quoting the fallback rate table", extra=details)
        metrics.add_metric(name="ShippingRateFallbacks", unit="Count", value=1)
        if not self.fallback_table:
            raise DependencyUnavailable("the courier did not answer and no fallback rates are configured; retry")
        return fallback_quotes(self.fallback_table, weight_grams)
