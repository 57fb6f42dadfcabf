"""Purchase orders as the API shows them (API.md "Purchase orders")."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from patungan.core.inputs import Quantity, ResourceId
from patungan.core.pagination import ListOf

PurchaseOrderStatus = Literal["open", "received"]


def purchase_order_id_for(session_id: str) -> str:
    """One purchase order per session (GB-15), named after it."""
    return f"po_{session_id.removeprefix('ses_')}"


class PurchaseOrder(BaseModel):
    id: str
    session_id: str
    factory_id: str
    product_id: str
    variant_id: str | None = None
    product_name: str
    quantity: int
    status: PurchaseOrderStatus
    received_quantity: int = 0
    received_at: str | None = None
    received_by: str | None = None
    created_at: str
    updated_at: str
    version: int = 1


class PurchaseOrderList(ListOf[PurchaseOrder]):
    pass


class Receipt(BaseModel):
    """One delivery recorded against a purchase order; their quantities add up to its received_quantity."""

    id: str
    purchase_order_id: str
    quantity: int
    received_by: str
    received_at: str


class ReceiptInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    received_quantity: Quantity = Field(description="units received now; receipts add up to the ordered quantity")
    warehouse_id: ResourceId | None = Field(
        None, description="where the units go on hand, reserved for the session's orders (default: configured)"
    )
