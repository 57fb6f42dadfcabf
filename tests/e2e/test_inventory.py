"""Stock over HTTP in the local stack (WH-1, WH-2, WH-3, CHK-3; issue 9): a warehouse worker receives stock, the
seller sees it, buyers' holds race for it without overselling, an expired hold is released by the scheduled
sweep, a cycle count corrects the count, and the audit log shows every step with who did it."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

pytestmark = pytest.mark.e2e

RACERS = 12
UNITS = 5
# A bound on waiting for state, not an expectation (the sweep fires on demand below).
EXPIRY_WAIT_SECONDS = 120


def _created(response, status=201):
    assert response.status_code == status, response.text
    return response.json()


def _stock(api, token, warehouse_id, product_id):
    items = _created(
        api.get("/v1/inventory", token, params={"warehouse_id": warehouse_id, "product_id": product_id}), 200
    )
    [item] = items["items"]
    return item


def test_stock_is_received_held_without_oversell_expires_on_its_own_is_counted_and_audited(api):
    suffix = uuid.uuid4().hex[:6]
    admin = api.token("admin-1", ["admin"])
    warehouse = _created(
        api.post(
            "/v1/warehouses",
            admin,
            json={
                "code": f"JKT-{suffix}",
                "name": "Gudang Cakung",
                "address": {
                    "recipient_name": "Gudang Cakung",
                    "phone": "021-4600123",
                    "line1": "Jl. Raya Cakung 5",
                    "city": "Jakarta Timur",
                    "province": "DKI Jakarta",
                    "postal_code": "13910",
                },
            },
        )
    )
    seller = _created(
        api.post(
            "/v1/sellers", admin, json={"name": "Toko Kopi", "phone": "081234567890", "owner_user_id": "owner-kopi"}
        )
    )
    seller_staff = api.token(f"seller-{suffix}", ["seller"], seller_id=seller["id"])
    product = _created(
        api.post(
            "/v1/products",
            seller_staff,
            json={"name": f"Kopi Gayo {suffix}", "category": "Kopi", "base_price": 85_000, "weight_grams": 250},
        )
    )
    worker = api.token(f"worker-{suffix}", ["warehouse"])
    item = {"warehouse_id": warehouse["id"], "product_id": product["id"]}

    received = _created(
        api.post("/v1/inventory/receipts", worker, json={**item, "quantity": UNITS, "reference": "DO-1"})
    )
    assert (received["on_hand"], received["available"]) == (UNITS, UNITS)
    seen = _created(api.get("/v1/inventory", seller_staff), 200)["items"]
    assert [(i["product_id"], i["available"]) for i in seen] == [(product["id"], UNITS)]
    assert api.get(f"/v1/products/{product['id']}").json()["available"] == UNITS

    def hold(n):
        racer = api.token(f"racer-{suffix}-{n}", ["warehouse"])
        body = {"warehouse_id": warehouse["id"], "lines": [{"product_id": product["id"], "quantity": 1}]}
        return api.post("/v1/inventory/reservations", racer, json={**body, "ttl_seconds": 1})

    with ThreadPoolExecutor(max_workers=RACERS) as pool:
        answers = list(pool.map(hold, range(RACERS)))

    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] * UNITS + [409] * (RACERS - UNITS), [a.text for a in answers]
    assert {a.json()["error"]["code"] for a in answers if a.status_code == 409} == {"insufficient_stock"}
    assert _stock(api, worker, warehouse["id"], product["id"])["available"] == 0

    held = [a.json() for a in answers if a.status_code == 201]
    expires = max(datetime.fromisoformat(h["expires_at"].replace("Z", "+00:00")) for h in held)
    deadline = time.monotonic() + EXPIRY_WAIT_SECONDS
    while _stock(api, worker, warehouse["id"], product["id"])["reserved"]:
        assert time.monotonic() < deadline, "the expired holds were never released"
        if datetime.now(UTC) > expires:
            api.post("/_local/schedules/ReleaseExpiredHolds/fire").raise_for_status()
        time.sleep(0.5)

    counted = _created(api.post("/v1/inventory/cycle-counts", worker, json={**item, "counted_quantity": UNITS - 1}))
    assert (counted["expected_on_hand"], counted["discrepancy"]) == (UNITS, -1)
    assert _stock(api, worker, warehouse["id"], product["id"])["on_hand"] == UNITS - 1

    log = _created(api.get("/v1/inventory/audit", worker, params={**item, "limit": 100}), 200)["items"]
    steps = [(r["action"], r["actor_id"]) for r in reversed(log)]
    assert steps[0] == ("receipt", f"worker-{suffix}")
    assert sorted(s for s in steps if s[0] == "reservation") == sorted(
        ("reservation", f"racer-{suffix}-{n}") for n in range(RACERS) if answers[n].status_code == 201
    )
    assert [s for s in steps if s[0] == "release"] == [("release", "system")] * UNITS
    assert steps[-1] == ("cycle_count", f"worker-{suffix}")
    assert len(steps) == 1 + UNITS + UNITS + 1
    by_actor = _created(api.get("/v1/inventory/audit", worker, params={"actor_id": f"worker-{suffix}"}), 200)
    assert [r["action"] for r in by_actor["items"]] == ["cycle_count", "receipt"]
    report = _created(api.get("/v1/inventory/discrepancies", worker, params={"warehouse_id": warehouse["id"]}), 200)
    assert (report["total_net_discrepancy"], report["total_value"]) == (-1, -85_000)
