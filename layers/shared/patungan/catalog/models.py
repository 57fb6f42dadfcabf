"""Catalog requests and resources as the API shows them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from patungan.core.inputs import MAX_AMOUNT, Price, ResourceId, SignedAmount, multi_line, single_line
from patungan.core.pagination import ListOf
from patungan.core.phone import normalize_indonesian_phone

Name = single_line(200)
Category = single_line(100)
Description = multi_line(5000)
WeightGrams = Annotated[int, Field(strict=True, gt=0, le=1_000_000)]
ProductStatus = Literal["active", "inactive"]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrganisationInput(_Input):
    """A factory (make-to-order producer) or a seller (stock holder)."""

    name: Name
    phone: Annotated[str, Field(max_length=40, examples=["+6281234567890"])]
    owner_user_id: ResourceId

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        return normalize_indonesian_phone(value)


class Organisation(BaseModel):
    id: str
    name: str
    phone: str
    owner_user_id: str
    created_at: str


class VariantInput(_Input):
    name: Name
    sku: single_line(64)
    price_delta: SignedAmount = Field(0, description="added to the product's base_price (minor units, may be negative)")


class Variant(BaseModel):
    id: str
    name: str
    sku: str
    price_delta: int
    price: int
    available: int | None = Field(None, description="units in stock over all warehouses (not binding)")


class ProductInput(_Input):
    factory_id: ResourceId | None = None
    seller_id: ResourceId | None = None
    name: Name
    description: Description = ""
    category: Category
    base_price: Price
    weight_grams: WeightGrams
    variants: list[VariantInput] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _variants_priced_and_unique(self) -> ProductInput:
        skus = [v.sku for v in self.variants]
        if len(set(skus)) != len(skus):
            raise ValueError("variant skus must be unique within a product")
        if any(not 0 < self.base_price + v.price_delta <= MAX_AMOUNT for v in self.variants):
            raise ValueError(
                f"every variant must cost more than zero and at most {MAX_AMOUNT} (base_price + price_delta)"
            )
        return self


class ProductUpdate(_Input):
    name: Name | None = None
    description: Description | None = None
    category: Category | None = None
    base_price: Price | None = None
    weight_grams: WeightGrams | None = None
    status: ProductStatus | None = None


class Product(BaseModel):
    id: str
    slug: str
    status: ProductStatus
    factory_id: str | None = None
    seller_id: str | None = None
    name: str
    description: str
    category: str
    base_price: int
    currency: str
    weight_grams: int
    variants: list[Variant]
    available: int | None = Field(
        None, description="units in stock over all warehouses (retail products; not binding: checkout reserves)"
    )
    version: int = Field(1, description="grows with every change: orders copies and concurrent edits")
    created_at: str
    updated_at: str

    def variant(self, variant_id: str) -> Variant | None:
        return next((v for v in self.variants if v.id == variant_id), None)


class ProductList(ListOf[Product]):
    pass
