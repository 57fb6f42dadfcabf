"""Warehouses (WH-1): where sellers' stock is held and parcels leave from (CHK-10). Inventory table:
``WAREHOUSE#id / META``, listed through gsi1 ``WAREHOUSES`` by code."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from patungan.accounts.models import PostalAddress
from patungan.adapters.dynamodb import DynamoTable, Transaction
from patungan.core.auth import Principal, Role
from patungan.core.clock import Clock, to_iso
from patungan.core.errors import Conflict, NotFound
from patungan.core.ids import new_id
from patungan.core.inputs import single_line
from patungan.core.pagination import ListOf, Page, decode_cursor, encode_cursor

WAREHOUSES_INDEX_KEY = "WAREHOUSES"
_KEYS = {"pk", "sk", "gsi1pk", "gsi1sk"}


class WarehouseInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: single_line(32)
    name: single_line(200)
    address: PostalAddress


class Warehouse(BaseModel):
    id: str
    code: str
    name: str
    address: PostalAddress
    created_at: str


class WarehouseList(ListOf[Warehouse]):
    pass


def _key(warehouse_id: str) -> dict[str, str]:
    return {"pk": f"WAREHOUSE#{warehouse_id}", "sk": "META"}


def _code_key(code: str) -> dict[str, str]:
    return {"pk": f"WAREHOUSE_CODE#{code.upper()}", "sk": "META"}


def _warehouse(item: dict[str, Any]) -> Warehouse:
    return Warehouse.model_validate({k: v for k, v in item.items() if k not in _KEYS})


class WarehouseRepository:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    def add(self, warehouse: Warehouse) -> None:
        """The warehouse and the claim on its code (codes are unique, case-insensitive) in one transaction."""
        tx = Transaction()
        tx.put(
            self.table,
            {**_code_key(warehouse.code), "warehouse_id": warehouse.id},
            condition="attribute_not_exists(pk)",
            on_fail=Conflict(f"a warehouse with code {warehouse.code} exists", code="warehouse_code_taken"),
        )
        tx.put(
            self.table,
            {
                **_key(warehouse.id),
                "gsi1pk": WAREHOUSES_INDEX_KEY,
                "gsi1sk": f"{warehouse.code.upper()}#{warehouse.id}",
                **warehouse.model_dump(),
            },
            condition="attribute_not_exists(pk)",
        )
        tx.commit()

    def get(self, warehouse_id: str) -> Warehouse:
        item = self.table.get(_key(warehouse_id))
        if item is None:
            raise NotFound(f"no warehouse {warehouse_id}")
        return _warehouse(item)

    def every(self) -> list[Warehouse]:
        """Every warehouse, by code: a platform has tens of them, not thousands."""
        warehouses, cursor = [], None
        while True:
            page = self.page(limit=100, cursor=cursor)
            warehouses.extend(page.items)
            if (cursor := page.next_cursor) is None:
                return warehouses

    def page(self, *, limit: int, cursor: str | None) -> Page[Warehouse]:
        result = self.table.query_page(
            "gsi1pk = :pk",
            index="gsi1",
            values={":pk": WAREHOUSES_INDEX_KEY},
            limit=limit,
            start_key=decode_cursor(cursor),
        )
        return Page([_warehouse(item) for item in result.items], encode_cursor(result.last_key))


class WarehouseService:
    """Admins register warehouses; admins, warehouse staff and seller staff (who choose where their stock
    goes) list them."""

    def __init__(self, repository: WarehouseRepository, clock: Clock) -> None:
        self.repository = repository
        self.clock = clock

    def create(self, principal: Principal, data: WarehouseInput) -> Warehouse:
        principal.require(Role.ADMIN)
        warehouse = Warehouse(id=new_id("wh"), created_at=to_iso(self.clock.now()), **data.model_dump())
        self.repository.add(warehouse)
        return warehouse

    def list(self, principal: Principal, *, limit: int, cursor: str | None) -> Page[Warehouse]:
        principal.require(Role.WAREHOUSE, Role.SELLER)
        return self.repository.page(limit=limit, cursor=cursor)
