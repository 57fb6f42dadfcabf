"""The Catalog table: factories and sellers (``FACTORY#id`` / ``SELLER#id``), products (``PRODUCT#id``),
slug reservations (``SLUG#slug``); index gsi1 lists products newest first."""

from __future__ import annotations

from typing import Any, Literal

from patungan.adapters.dynamodb import DynamoTable, Transaction
from patungan.adapters.outbox import Outbox
from patungan.catalog.models import Organisation, Product
from patungan.core.errors import Conflict, NotFound, field_error
from patungan.core.events import DomainEvent
from patungan.core.pagination import Page, decode_cursor, encode_cursor

OrganisationKind = Literal["factory", "seller"]
META = "META"
PRODUCTS_INDEX_KEY = "PRODUCTS"


class SlugTaken(Conflict):
    code = "slug_taken"


def _org_key(kind: OrganisationKind, org_id: str) -> dict[str, str]:
    return {"pk": f"{kind.upper()}#{org_id}", "sk": META}


def _product_key(product_id: str) -> dict[str, str]:
    return {"pk": f"PRODUCT#{product_id}", "sk": META}


def _strip_keys(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in {"pk", "sk", "gsi1pk", "gsi1sk"}}


class CatalogRepository:
    def __init__(self, table: DynamoTable, outbox: Outbox) -> None:
        self.table = table
        self.outbox = outbox

    # ---- factories and sellers
    def add_organisation(self, kind: OrganisationKind, org: Organisation) -> None:
        self.table.put(
            {**_org_key(kind, org.id), **org.model_dump()},
            condition="attribute_not_exists(pk)",
            on_fail=Conflict(f"{kind} {org.id} already exists"),
        )

    def get_organisation(self, kind: OrganisationKind, org_id: str) -> Organisation:
        item = self.table.get(_org_key(kind, org_id))
        if item is None:
            raise NotFound(f"no {kind} {org_id}")
        return Organisation.model_validate(_strip_keys(item))

    # ---- products
    def add_product(self, product: Product, event: DomainEvent) -> None:
        """Product, its slug reservation and its event in one transaction; the owner must exist."""
        tx = Transaction()
        if product.factory_id:
            tx.check(
                self.table,
                _org_key("factory", product.factory_id),
                "attribute_exists(pk)",
                on_fail=field_error("factory_id", f"no factory {product.factory_id}"),
            )
        if product.seller_id:
            tx.check(
                self.table,
                _org_key("seller", product.seller_id),
                "attribute_exists(pk)",
                on_fail=field_error("seller_id", f"no seller {product.seller_id}"),
            )
        tx.put(
            self.table,
            {"pk": f"SLUG#{product.slug}", "sk": META, "product_id": product.id},
            condition="attribute_not_exists(pk)",
            on_fail=SlugTaken(f"slug {product.slug} is taken"),
        )
        tx.put(self.table, self._product_item(product), condition="attribute_not_exists(pk)")
        self.outbox.add(tx, event)
        tx.commit()

    def get_product(self, product_id: str) -> Product:
        item = self.table.get(_product_key(product_id))
        if item is None:
            raise NotFound(f"no product {product_id}")
        return Product.model_validate(_strip_keys(item))

    def replace_product(self, product: Product, event: DomainEvent) -> None:
        """Write the next version of a product, only if no one else wrote it since it was read."""
        tx = Transaction()
        tx.put(
            self.table,
            self._product_item(product),
            condition="#version = :expected",
            names={"#version": "version"},
            values={":expected": product.version - 1},
            on_fail=Conflict("the product was changed by someone else; reload and retry", code="stale_product"),
        )
        self.outbox.add(tx, event)
        tx.commit()

    def list_products(
        self,
        *,
        limit: int,
        cursor: str | None,
        category: str | None = None,
        factory_id: str | None = None,
        seller_id: str | None = None,
        active_only: bool = True,
    ) -> Page[Product]:
        result = self.table.query_page(
            "gsi1pk = :pk",
            index="gsi1",
            limit=limit,
            start_key=decode_cursor(cursor),
            values={":pk": PRODUCTS_INDEX_KEY},
            equal_to={
                "category": category,
                "factory_id": factory_id,
                "seller_id": seller_id,
                "status": "active" if active_only else None,
            },
            forward=False,
        )
        products = [Product.model_validate(_strip_keys(i)) for i in result.items]
        return Page(products, encode_cursor(result.last_key))

    @staticmethod
    def _product_item(product: Product) -> dict[str, Any]:
        return {
            **_product_key(product.id),
            "gsi1pk": PRODUCTS_INDEX_KEY,
            "gsi1sk": f"{product.created_at}#{product.id}",
            **product.model_dump(),
        }
