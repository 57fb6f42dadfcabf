"""A retail world for stock tests: a seller's product (with and without variants) in the catalog and two
warehouses, created through the repositories (the warehouse routes are another helper's)."""

from __future__ import annotations

from dataclasses import dataclass

from patungan.adapters.dynamodb import DynamoTable
from patungan.catalog.models import Organisation, Product, Variant
from patungan.catalog.service import catalog_service
from patungan.composition import stock_service
from patungan.core.auth import Principal, Role
from patungan.core.clock import SystemClock
from patungan.core.config import get_settings
from patungan.core.events import new_event
from patungan.inventory.warehouses import Warehouse, WarehouseRepository

WORKER = Principal("worker-1", frozenset({Role.WAREHOUSE}))
SELLER_ID = "sel_toko"
ADDRESS = {
    "recipient_name": "Gudang",
    "phone": "+6281234567890",
    "line1": "Jl. Gudang 1",
    "city": "Jakarta",
    "province": "DKI Jakarta",
    "postal_code": "12345",
}


@dataclass(frozen=True)
class StockWorld:
    product: Product  # no variants
    shirt: Product  # variants "v_s" and "v_m"
    warehouse: Warehouse
    other_warehouse: Warehouse


def add_warehouse(code: str) -> Warehouse:
    warehouse = Warehouse(
        id=f"wh_{code.lower()}", code=code, name=f"Gudang {code}", address=ADDRESS, created_at="2026-11-30T00:00:00Z"
    )
    WarehouseRepository(DynamoTable(get_settings().inventory_table)).add(warehouse)
    return warehouse


def add_product(product_id: str, *, base_price: int = 10_000, variants: list[Variant] | None = None) -> Product:
    product = Product(
        id=product_id,
        slug=product_id,
        status="active",
        seller_id=SELLER_ID,
        name=product_id,
        description="",
        category="kopi",
        base_price=base_price,
        currency="IDR",
        weight_grams=250,
        variants=variants or [],
        created_at="2026-11-30T00:00:00Z",
        updated_at="2026-11-30T00:00:00Z",
    )
    catalog_service().repository.add_product(
        product, new_event("catalog.product.created", product.id, {}, SystemClock())
    )
    return product


def add_seller(seller_id: str, name: str = "Toko") -> None:
    catalog_service().repository.add_organisation(
        "seller",
        Organisation(
            id=seller_id, name=name, phone="+6281234567890", owner_user_id="owner-1", created_at="2026-11-30T00:00:00Z"
        ),
    )


def stock_world() -> StockWorld:
    add_seller(SELLER_ID)
    shirt_variants = [
        Variant(id="v_s", name="S", sku="S", price_delta=0, price=50_000),
        Variant(id="v_m", name="M", sku="M", price_delta=5_000, price=55_000),
    ]
    return StockWorld(
        product=add_product("prd_kopi"),
        shirt=add_product("prd_kaos", base_price=50_000, variants=shirt_variants),
        warehouse=add_warehouse("JKT1"),
        other_warehouse=add_warehouse("SBY1"),
    )


def receive(world_item: tuple[str, str, str | None], quantity: int, who: Principal = WORKER):
    warehouse_id, product_id, variant_id = world_item
    return stock_service().receive(who, warehouse_id, product_id, variant_id, quantity, None)


def set_base_price(product_id: str, price: int) -> None:
    """The seller changes a product's price behind the cart's back (written straight to the catalog item)."""
    import boto3

    boto3.client("dynamodb").update_item(
        TableName=get_settings().catalog_table,
        Key={"pk": {"S": f"PRODUCT#{product_id}"}, "sk": {"S": "META"}},
        UpdateExpression="SET base_price = :p",
        ExpressionAttributeValues={":p": {"N": str(price)}},
    )


# A buyer's address in Jakarta Selatan, as the checkout tests send it.
ADDRESS = {
    "recipient_name": "Siti",
    "phone": "0812-3456-7890",
    "line1": "Jl. Senopati 5",
    "city": "Jakarta Selatan",
    "province": "DKI Jakarta",
    "postal_code": "12190",
}
