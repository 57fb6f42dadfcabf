"""Reconciliation over HTTP in the local stack (PAY-8, issue 7): a buyer pays at Xendit, the PAID callback is
never delivered, a reconciliation run finds the payment and repairs it through the callback's own path; a
second run finds nothing about it; the ledger balances.

Needs ``POST /_xendit/simulate/invoices/{id}/pay?deliver=false`` (API.md "Local stack only"), added to the local
Xendit's invoice section by the ledgerfix branch."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.test_group_buying import Walkthrough, eventually

pytestmark = pytest.mark.e2e


def run_to_the_end(walk: Walkthrough) -> dict[str, Any]:
    started = walk.api.post("/v1/admin/reconciliation/runs", walk.admin, json={})
    assert started.status_code == 202, started.text
    assert started.json()["status"] == "running"

    def finished() -> dict[str, Any] | None:
        run = walk.api.get(f"/v1/admin/reconciliation/runs/{started.json()['id']}", walk.admin).json()
        return run if run["status"] != "running" else None

    run = eventually(finished)
    assert run, "the run did not finish"
    return run


def about(run: dict[str, Any], payment_id: str) -> list[tuple[str, str]]:
    return [(m["kind"], m["resolution"]) for m in run["mismatches"] if m["reference_id"] == payment_id]


def test_a_payment_whose_callback_was_never_delivered_is_found_and_repaired(api):
    walk = Walkthrough(api)
    session = walk.open_session(moq=6)
    token = walk.buyer(1)
    joined = walk.join(token, session["id"], 2)
    paid = api.post(f"/_xendit/simulate/invoices/{joined['payment']['invoice_id']}/pay?deliver=false", json={})
    assert paid.status_code == 200, paid.text
    assert walk.mine(token, session["id"])["status"] == "pending_payment"

    first = run_to_the_end(walk)

    assert first["status"] == "done"
    assert about(first, joined["payment"]["id"]) == [("paid_at_gateway_pending_here", "repaired")]
    assert first["checked"]["payments"] >= 1
    assert first["ledger_balanced"] is True
    assert walk.mine(token, session["id"])["status"] == "paid"
    assert walk.session(session["id"])["paid_quantity"] == 2

    second = run_to_the_end(walk)

    assert about(second, joined["payment"]["id"]) == []
    assert walk.balanced()
