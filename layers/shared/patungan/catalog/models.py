"""Catalog requests and resources as the API shows them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from patungan.core.phone import normalize_indonesian_phone

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ProductStatus = Literal["active", "inactive"]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrganisationInput(_Input):
    """A factory (make-to-order producer) or a seller (stock holder)."""

    name: Name
    phone: str = Field(examples=["+6281234567890"])
    owner_user_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]

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
    sku: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    price_delta: int = Field(0, description="added to the product's base_price (minor units, may be negative)")


class Variant(BaseModel):
    id: str
    name: str
    sku: str
    price_delta: int
    price: int


class ProductInput(_Input):
    factory_id: str | None = None
    seller_id: str | None = None
    name: Name
    description: Annotated[str, StringConstraints(max_length=5000)] = ""
    category: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    base_price: int = Field(gt=0, description="minor units (IDR: rupiah)")
    weight_grams: int = Field(gt=0, le=1_000_000)
    variants: list[VariantInput] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _variants_priced_and_unique(self) -> ProductInput:
        skus = [v.sku for v in self.variants]
        if len(set(skus)) != len(skus):
            raise ValueError("variant skus must be unique within a product")
        if any(self.base_price + v.price_delta <= 0 for v in self.variants):
            raise ValueError("every variant must cost more than zero (base_price + price_delta)")
        return self


class ProductUpdate(_Input):
    name: Name | None = None
    description: Annotated[str, StringConstraints(max_length=5000)] | None = None
    category: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] | None = None
    base_price: int | None = Field(None, gt=0)
    weight_grams: int | None = Field(None, gt=0, le=1_000_000)
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
    version: int = Field(1, description="grows with every change: orders copies and concurrent edits")
    created_at: str
    updated_at: str

    def variant(self, variant_id: str) -> Variant | None:
        return next((v for v in self.variants if v.id == variant_id), None)


class ProductList(BaseModel):
    items: list[Product]
    next_cursor: str | None
