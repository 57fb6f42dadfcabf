"""Withdrawals over HTTP in the local stack (issue 7; WAL-2, PAY-2, PAY-5): requested, approved, paid out by
the local Xendit and completed by its webhook; a failed and a reversed payout give the money back; a request
above the balance is 409; the trial balance balances after each. Payouts go to account 131313, which the
local Xendit holds until a simulation settles it, so no test races the automatic settlement."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.e2e.test_group_buying import eventually

pytestmark = pytest.mark.e2e

HELD_ACCOUNT = "131313"


class Wallets:
    def __init__(self, api) -> None:
        self.api = api
        self.admin = api.token("admin-1", ["admin"])
        self.user_id = f"e2e-withdraw-{uuid.uuid4().hex[:8]}"
        self.buyer = api.token(self.user_id, ["buyer"])

    def fund(self, amount: int) -> None:
        """An admin credits the wallet (WAL-3), standing in for a tier refund."""
        response = self.api.post(
            f"/v1/admin/wallets/{self.user_id}/adjustments",
            self.admin,
            json={"amount": amount, "reason": "e2e: money to withdraw"},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        assert response.status_code == 201, response.text

    def balance(self) -> int:
        return self.api.get("/v1/wallet", self.buyer).json()["balance"]

    def balanced(self) -> bool:
        return self.api.get("/v1/admin/ledger/trial-balance", self.admin).json()["balanced"]

    def request(self, amount: int):
        return self.api.post(
            "/v1/wallet/withdrawals",
            self.buyer,
            json={"amount": amount, "bank_code": "BCA", "account_number": HELD_ACCOUNT, "account_name": "Budi Santoso"},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )

    def approved(self, amount: int) -> dict[str, Any]:
        created = self.request(amount)
        assert created.status_code == 201, created.text
        assert created.json()["status"] == "requested"
        response = self.api.post(f"/v1/admin/withdrawals/{created.json()['id']}/approve", self.admin)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "processing"
        return response.json()

    def simulate(self, withdrawal: dict[str, Any], outcome: str) -> None:
        response = self.api.post(f"/_xendit/simulate/payouts/{withdrawal['payout_id']}/{outcome}", json={})
        assert response.status_code == 200, response.text

    def notified(self, title: str) -> bool:
        """The owner's in-app notifications (the outbox relays the event to the consumer) include ``title``."""

        def arrived() -> bool:
            items = self.api.get("/v1/notifications", self.buyer).json()["items"]
            return any(n["title"] == title for n in items)

        return eventually(arrived)

    def becomes(self, withdrawal: dict[str, Any], status: str) -> bool:
        def reached() -> bool:
            return self.api.get(f"/v1/wallet/withdrawals/{withdrawal['id']}", self.buyer).json()["status"] == status

        return eventually(reached)


@pytest.fixture
def wallets(api) -> Wallets:
    return Wallets(api)


def test_a_withdrawal_is_paid_out_and_completed(wallets):
    wallets.fund(100_000)

    withdrawal = wallets.approved(60_000)
    assert wallets.balance() == 40_000
    wallets.simulate(withdrawal, "succeed")

    assert wallets.becomes(withdrawal, "completed")
    assert wallets.balance() == 40_000
    mine = wallets.api.get("/v1/wallet/withdrawals", wallets.buyer).json()["items"]
    assert [(w["id"], w["status"], w["account_number_masked"]) for w in mine] == [
        (withdrawal["id"], "completed", "**1313")
    ]
    assert wallets.balanced()
    assert wallets.notified("Withdrawal sent")


def test_a_failed_payout_gives_the_money_back(wallets):
    wallets.fund(100_000)

    withdrawal = wallets.approved(60_000)
    wallets.simulate(withdrawal, "fail")

    assert wallets.becomes(withdrawal, "failed")
    assert wallets.balance() == 100_000
    assert wallets.balanced()
    assert wallets.notified("Withdrawal failed")


def test_a_reversed_payout_gives_the_money_back(wallets):
    wallets.fund(100_000)
    withdrawal = wallets.approved(60_000)
    wallets.simulate(withdrawal, "succeed")
    assert wallets.becomes(withdrawal, "completed")

    wallets.simulate(withdrawal, "reverse")

    assert wallets.becomes(withdrawal, "reversed")
    assert wallets.balance() == 100_000
    assert wallets.balanced()


def test_a_withdrawal_above_the_balance_is_409(wallets):
    wallets.fund(10_000)

    response = wallets.request(10_001)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "insufficient_funds"
    assert wallets.balance() == 10_000
    assert wallets.balanced()


def test_a_forged_payout_callback_is_403(wallets):
    wallets.fund(100_000)
    withdrawal = wallets.approved(60_000)
    body = {"event": "payout.failed", "data": {"id": withdrawal["payout_id"], "reference_id": withdrawal["id"]}}

    response = wallets.api.post(
        "/_url/XenditPayoutWebhook/", json={**body, "status": "FAILED"}, headers={"x-callback-token": "guessed"}
    )

    assert response.status_code == 403
    assert wallets.api.get(f"/v1/wallet/withdrawals/{withdrawal['id']}", wallets.buyer).json()["status"] == "processing"
    assert wallets.balance() == 40_000
