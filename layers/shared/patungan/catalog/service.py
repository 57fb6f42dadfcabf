"""Catalog use cases: who may do what (CAT-3), slugs (CAT-1), soft delete, events through the outbox."""

from __future__ import annotations

from functools import cache

from patungan.adapters.dynamodb import DynamoTable
from patungan.adapters.outbox import Outbox
from patungan.catalog import events
from patungan.catalog.models import (
    Organisation,
    OrganisationInput,
    Product,
    ProductInput,
    ProductUpdate,
    Variant,
)
from patungan.catalog.repository import CatalogRepository, OrganisationKind, SlugTaken
from patungan.core.auth import Principal, Role
from patungan.core.clock import Clock, SystemClock, to_iso
from patungan.core.config import get_settings
from patungan.core.errors import Forbidden, NotFound, field_error
from patungan.core.ids import new_id
from patungan.core.money import DEFAULT_CURRENCY
from patungan.core.pagination import Page
from patungan.core.text import slugify

_ORG_ID_PREFIX = {"factory": "fac", "seller": "sel"}


class CatalogService:
    def __init__(self, repository: CatalogRepository, clock: Clock) -> None:
        self.repository = repository
        self.clock = clock

    # ---- factories and sellers (CAT-3)
    def create_organisation(
        self, principal: Principal, kind: OrganisationKind, data: OrganisationInput
    ) -> Organisation:
        principal.require(Role.ADMIN)
        org = Organisation(id=new_id(_ORG_ID_PREFIX[kind]), created_at=to_iso(self.clock.now()), **data.model_dump())
        self.repository.add_organisation(kind, org)
        return org

    def get_organisation(self, kind: OrganisationKind, org_id: str) -> Organisation:
        return self.repository.get_organisation(kind, org_id)

    # ---- products (CAT-1, CAT-3)
    def create_product(self, principal: Principal, data: ProductInput) -> Product:
        factory_id, seller_id = self._owner_for_new_product(principal, data)
        now = to_iso(self.clock.now())
        product = Product(
            id=new_id("prd"),
            slug=slugify(data.name),
            status="active",
            factory_id=factory_id,
            seller_id=seller_id,
            name=data.name,
            description=data.description,
            category=slugify(data.category),
            base_price=data.base_price,
            currency=DEFAULT_CURRENCY,
            weight_grams=data.weight_grams,
            variants=[
                Variant(
                    id=new_id("var"),
                    name=v.name,
                    sku=v.sku,
                    price_delta=v.price_delta,
                    price=data.base_price + v.price_delta,
                )
                for v in data.variants
            ],
            created_at=now,
            updated_at=now,
        )
        try:
            self.repository.add_product(product, events.product_created(product, self.clock))
        except SlugTaken:
            # Same name as an existing product: the id's tail keeps the slug unique and readable.
            product = product.model_copy(update={"slug": f"{product.slug}-{product.id[-6:]}"})
            self.repository.add_product(product, events.product_created(product, self.clock))
        return product

    def get_product(self, viewer: Principal | None, product_id: str) -> Product:
        product = self.repository.get_product(product_id)
        if product.status != "active" and not self._manages(viewer, product):
            raise NotFound(f"no product {product_id}")
        return product

    def list_products(
        self,
        viewer: Principal | None,
        *,
        limit: int,
        cursor: str | None,
        category: str | None,
        factory_id: str | None,
        seller_id: str | None,
        include_inactive: bool,
    ) -> Page[Product]:
        # Inactive (soft-deleted) products are listed only for admins and the owner's staff.
        may_see_inactive = viewer is not None and (
            viewer.is_admin or viewer.is_factory_staff_of(factory_id) or viewer.is_seller_staff_of(seller_id)
        )
        return self.repository.list_products(
            limit=limit,
            cursor=cursor,
            category=slugify(category) if category else None,
            factory_id=factory_id,
            seller_id=seller_id,
            active_only=not (include_inactive and may_see_inactive),
        )

    def update_product(self, principal: Principal, product_id: str, patch: ProductUpdate) -> Product:
        product = self.repository.get_product(product_id)
        if not self._manages(principal, product):
            if product.status != "active":
                raise NotFound(f"no product {product_id}")
            raise Forbidden("only the product's own factory or seller staff (or an admin) may change it")
        changes = patch.model_dump(exclude_unset=True, exclude_none=True)
        if "category" in changes:
            changes["category"] = slugify(changes["category"])
        if "base_price" in changes:
            if any(changes["base_price"] + v.price_delta <= 0 for v in product.variants):
                raise field_error("base_price", "a variant would cost zero or less")
            changes["variants"] = [
                v.model_copy(update={"price": changes["base_price"] + v.price_delta}) for v in product.variants
            ]
        changed = sorted(k for k, v in changes.items() if getattr(product, k) != v)
        if not changed:
            return product
        updated = product.model_copy(
            update={**changes, "version": product.version + 1, "updated_at": to_iso(self.clock.now())}
        )
        self.repository.replace_product(updated, events.product_updated(updated, changed, self.clock))
        return updated

    def deactivate_product(self, principal: Principal, product_id: str) -> Product:
        """Soft delete (CAT-1): the product stays for orders and history but leaves buyer listings."""
        return self.update_product(principal, product_id, ProductUpdate(status="inactive"))

    @staticmethod
    def _manages(viewer: Principal | None, product: Product) -> bool:
        return viewer is not None and (
            viewer.is_admin
            or viewer.is_factory_staff_of(product.factory_id)
            or viewer.is_seller_staff_of(product.seller_id)
        )

    @staticmethod
    def _owner_for_new_product(principal: Principal, data: ProductInput) -> tuple[str | None, str | None]:
        principal.require(Role.FACTORY, Role.SELLER)
        factory_id, seller_id = data.factory_id, data.seller_id
        if not principal.is_admin and factory_id is None and seller_id is None:
            # Staff create for their own organisation unless they say otherwise; a token that names none is 403.
            if principal.has(Role.FACTORY):
                factory_id = principal.factory_scope()
            else:
                seller_id = principal.seller_scope()
        if (factory_id is None) == (seller_id is None):
            raise field_error("factory_id", "give exactly one of factory_id or seller_id")
        if not principal.is_admin and not (
            principal.is_factory_staff_of(factory_id) or principal.is_seller_staff_of(seller_id)
        ):
            raise Forbidden("you may only create products for your own factory or seller")
        return factory_id, seller_id


@cache
def catalog_service() -> CatalogService:
    settings = get_settings()
    repository = CatalogRepository(
        DynamoTable(settings.catalog_table),
        Outbox(DynamoTable(settings.outbox_table), settings.outbox_ttl_days),
    )
    return CatalogService(repository, SystemClock())
