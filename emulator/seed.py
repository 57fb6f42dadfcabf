"""Demo data, created at start-up through the API functions themselves (in-process, as the demo users), so it
obeys every rule a client's data obeys. To add data, add a step to ``SEED_STEPS``: a function that makes API
calls with ``Seed.call`` and records users and ids on the ``Seed``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from emulator.apigateway import RestApi
from emulator.tokens import Identity


class SeedFailed(RuntimeError):
    pass


@dataclass
class Seed:
    api: RestApi
    users: dict[str, Identity] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    # Settings the demo data fills in (a default that names a seeded resource), given to every function.
    environment: dict[str, str] = field(default_factory=dict)

    def add_user(self, identity: Identity) -> Identity:
        self.users[identity.sub] = identity
        return identity

    def call(self, user: str, method: str, path: str, body: Any = None) -> Any:
        """Call the API as the demo user ``user``; the response body, or SeedFailed unless it is a 2xx."""
        response = self.api.call(method, path, self.users[user], body)
        if not 200 <= response.status < 300:
            raise SeedFailed(f"{method} {path} as {user} answered {response.status}: {response.body.decode()}")
        return response.json()


SeedStep = Callable[[Seed], None]


def add_platform_users(seed: Seed) -> None:
    seed.add_user(Identity("admin-1", ("admin",)))
    for buyer in ("buyer-1", "buyer-2", "buyer-3"):
        seed.add_user(Identity(buyer, ("buyer",)))
    seed.add_user(Identity("warehouse-1", ("warehouse",)))


def create_demo_factory(seed: Seed) -> None:
    factory = seed.call(
        "admin-1",
        "POST",
        "/v1/factories",
        {"name": "Pabrik Sepatu Bandung", "phone": "0812-3456-7890", "owner_user_id": "factory-owner-1"},
    )
    seed.ids["factory_id"] = factory["id"]
    for sub in ("factory-owner-1", "factory-staff-1"):
        seed.add_user(Identity(sub, ("factory",), factory_id=factory["id"]))


DEMO_PRODUCTS = [
    {
        "name": "Sepatu Kanvas Classic",
        "description": "Canvas sneakers sewn in Bandung",
        "category": "Footwear",
        "base_price": 150_000,
        "weight_grams": 800,
        "variants": [
            {"name": "Size 40", "sku": "SKC-40", "price_delta": 0},
            {"name": "Size 42", "sku": "SKC-42", "price_delta": 0},
            {"name": "Size 44", "sku": "SKC-44", "price_delta": 5_000},
        ],
    },
    {
        "name": "Sepatu Kulit Pantofel",
        "description": "Leather formal shoes",
        "category": "Footwear",
        "base_price": 425_000,
        "weight_grams": 1_100,
        "variants": [
            {"name": "Black 41", "sku": "SKP-BLK-41", "price_delta": 0},
            {"name": "Brown 41", "sku": "SKP-BRN-41", "price_delta": 15_000},
        ],
    },
    {
        "name": "Sandal Jepit Karet",
        "description": "Rubber flip-flops, sold by the dozen",
        "category": "Footwear",
        "base_price": 60_000,
        "weight_grams": 1_500,
        "variants": [
            {"name": "Dozen, size 39-40", "sku": "SJK-12-39", "price_delta": 0},
            {"name": "Dozen, size 41-42", "sku": "SJK-12-41", "price_delta": 0},
        ],
    },
]


def create_demo_products(seed: Seed) -> None:
    for index, product in enumerate(DEMO_PRODUCTS, start=1):
        body = {**product, "factory_id": seed.ids["factory_id"]}
        seed.ids[f"product_{index}_id"] = seed.call("factory-staff-1", "POST", "/v1/products", body)["id"]


def create_receiving_warehouse(seed: Seed) -> None:
    """The warehouse purchase orders are received into when the receipt names none: their units go on hand
    there, reserved for the session's orders (GB-15)."""
    warehouse = seed.call(
        "admin-1",
        "POST",
        "/v1/warehouses",
        {
            "code": "BDG-RCV",
            "name": "Gudang Penerimaan Bandung",
            "address": {
                "recipient_name": "Gudang Penerimaan Bandung",
                "phone": "022-4201234",
                "line1": "Jl. Soekarno-Hatta 590",
                "city": "Bandung",
                "province": "Jawa Barat",
                "postal_code": "40286",
            },
        },
    )
    seed.ids["receiving_warehouse_id"] = warehouse["id"]
    seed.environment["DEFAULT_RECEIVING_WAREHOUSE_ID"] = warehouse["id"]


SEED_STEPS: list[SeedStep] = [
    add_platform_users,
    create_demo_factory,
    create_demo_products,
    create_receiving_warehouse,
]


def run_seed(api: RestApi, steps: list[SeedStep] = SEED_STEPS) -> Seed:
    seed = Seed(api)
    for step in steps:
        step(seed)
    return seed
