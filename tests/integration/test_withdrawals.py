"""Withdrawals end to end in-process (issue 7; WAL-1, WAL-2, PAY-1..PAY-5, SYS-4): the money held at the
request, paid out through the local Xendit on approval, and released, paid or reversed exactly once by the
payout webhook (forward-only, inbox, quarantine) and by reconciliation's PayoutChecker."""

from __future__ import annotations

import json
import logging
import os
import uuid
from typing import Any
from unittest import mock

import pytest
import requests

from patungan import composition
from patungan.adapters.xendit import PaymentRejected, XenditGateway
from patungan.core.auth import Principal, Role
from patungan.core.config import get_settings
from patungan.ledger import accounts
from patungan.ledger.repository import ledger
from patungan.wallet.repository import WithdrawalsRepository
from tests.support.groupbuy import ADMIN, buyer
from tests.support.lambdas import ApiResponse, call_api, claims, load_event
from tests.support.ledger import wallet_credit

BUYER, OTHER = buyer(1), buyer(2)
ACCOUNT = "1234567890"
HELD_ACCOUNT = "131313"  # the local Xendit keeps a payout to it ACCEPTED until a simulation settles it


# ---- helpers
def fund(user: dict[str, str], amount: int) -> None:
    """A tier refund paid into the user's wallet."""
    ledger().post(wallet_credit(user["sub"], amount, f"tier_refund:{uuid.uuid4().hex}"))


def request(who=BUYER, amount=60_000, headers=None, **fields: Any) -> ApiResponse:
    body = {"amount": amount, "bank_code": "BCA", "account_number": HELD_ACCOUNT, "account_name": "Budi Santoso"}
    return call_api(
        "RequestWithdrawalFunction",
        "POST",
        "/v1/wallet/withdrawals",
        body={**body, **fields},
        claims=who,
        headers=headers,
    )


def requested(who=BUYER, amount=60_000, **fields: Any) -> dict[str, Any]:
    response = request(who, amount, **fields)
    assert response.status == 201, response.body
    return response.body


def _admin_route(action: str, withdrawal_id: str, who, body=None) -> ApiResponse:
    function = "ApproveWithdrawalFunction" if action == "approve" else "RejectWithdrawalFunction"
    return call_api(
        function,
        "POST",
        f"/v1/admin/withdrawals/{withdrawal_id}/{action}",
        resource=f"/v1/admin/withdrawals/{{id}}/{action}",
        path_parameters={"id": withdrawal_id},
        claims=who,
        body=body,
    )


def approve(withdrawal_id: str, who=ADMIN) -> ApiResponse:
    return _admin_route("approve", withdrawal_id, who)


def reject(withdrawal_id: str, who=ADMIN, reason="the account name does not match") -> ApiResponse:
    return _admin_route("reject", withdrawal_id, who, {"reason": reason})


def approved(withdrawal_id: str) -> dict[str, Any]:
    response = approve(withdrawal_id)
    assert response.status == 200, response.body
    return response.body


def get(withdrawal_id: str, who=BUYER) -> ApiResponse:
    return call_api(
        "GetWithdrawalFunction",
        "GET",
        f"/v1/wallet/withdrawals/{withdrawal_id}",
        resource="/v1/wallet/withdrawals/{id}",
        path_parameters={"id": withdrawal_id},
        claims=who,
    )


def listing(who=BUYER, query=None) -> ApiResponse:
    return call_api("ListWithdrawalsFunction", "GET", "/v1/wallet/withdrawals", claims=who, query=query)


def status(withdrawal_id: str) -> str:
    return get(withdrawal_id).body["status"]


def payout_callback(world, withdrawal: dict[str, Any], xendit_status: str, token=None, **data: Any) -> ApiResponse:
    """Xendit's payout callback for the withdrawal's payout; ``data`` overrides what it says."""
    body = json.loads(load_event("xendit_payout_succeeded.json")["body"])
    body["event"] = f"payout.{xendit_status.lower()}"
    body["data"].update(
        {
            "id": withdrawal["payout_id"],
            "reference_id": withdrawal["id"],
            "amount": withdrawal["net_amount"],
            "status": xendit_status,
            **({"failure_code": "INVALID_DESTINATION"} if xendit_status == "FAILED" else {}),
            **data,
        }
    )
    kwargs = {} if token is None else {"token": token}
    return world.webhook("XenditPayoutWebhook", json.dumps(body).encode(), **kwargs)


def simulate(world, payout_id: str, outcome: str, deliver: bool = False) -> None:
    response = requests.post(
        f"{world.xendit_url}/simulate/payouts/{payout_id}/{outcome}",
        params=None if deliver else {"deliver": "false"},
        timeout=10,
    )
    assert response.status_code == 200, response.text


def payouts_at_xendit(world, withdrawal_id: str) -> list[Any]:
    return [p for p in world.xendit._payouts.values() if p.reference_id == withdrawal_id]


def balances(world) -> dict[str, int]:
    """Each account's balance, credit-normal (what it is owed), from the trial balance; it must balance."""
    trial = world.trial_balance()
    assert trial["balanced"] is True, trial
    return {a["account"]: a["credit"] - a["debit"] for a in trial["accounts"]}


def movements(world, withdrawal_id: str) -> list[str]:
    return sorted(i["id"] for i in world.items("LedgerTable", f"MOVEMENT#withdrawal:{withdrawal_id}:"))


def wallet(world, who=BUYER) -> int:
    return world.wallet(who)


def admin_principal() -> Principal:
    return Principal(user_id=ADMIN["sub"], roles=frozenset({Role.ADMIN}))


@pytest.fixture
def with_fee():
    """A withdrawal fee of Rp2.500 (WITHDRAWAL_FEE) for the functions' next cold start."""
    with mock.patch.dict(os.environ, {"WITHDRAWAL_FEE": "2500"}):
        get_settings.cache_clear()
        composition.reset()
        yield 2_500
    get_settings.cache_clear()
    composition.reset()


# ---- the happy path, to the rupiah
def test_a_withdrawal_is_held_at_once_paid_out_on_approval_and_completed_by_the_webhook(world, with_fee):
    """WAL-2, PAY-5: requested (held), approved (payout sent for amount - fee), completed by the SUCCEEDED
    callback: Xendit's clearing pays the net, the platform keeps the fee, the ledger balances at each step."""
    fund(BUYER, 100_000)

    created = request(amount=60_000, account_number=ACCOUNT, bank_code="bca")

    assert created.status == 201, created.body
    withdrawal = created.body
    assert {k: withdrawal[k] for k in ("amount", "fee", "net_amount", "currency", "status", "bank_code")} == {
        "amount": 60_000,
        "fee": 2_500,
        "net_amount": 57_500,
        "currency": "IDR",
        "status": "requested",
        "bank_code": "BCA",
    }
    assert (withdrawal["account_number_masked"], withdrawal["payout_id"]) == ("******7890", None)
    assert wallet(world) == 40_000
    assert balances(world)[accounts.WITHDRAWALS_HELD] == 60_000

    processing = approved(withdrawal["id"])

    assert processing["status"] == "processing" and processing["payout_id"]
    [payout] = payouts_at_xendit(world, withdrawal["id"])
    assert (payout.id, payout.amount, payout.channel_code) == (processing["payout_id"], 57_500, "ID_BCA")
    assert payout.channel_properties == {"account_number": ACCOUNT, "account_holder_name": "Budi Santoso"}
    assert wallet(world) == 40_000

    assert payout_callback(world, processing, "SUCCEEDED").body == {"status": "completed"}

    assert status(withdrawal["id"]) == "completed"
    after = balances(world)
    assert after[accounts.WITHDRAWALS_HELD] == 0
    assert after[accounts.PLATFORM_REVENUE] == 2_500
    assert after[accounts.GATEWAY_CLEARING] == -100_000 + 57_500  # collected 100 000, paid out 57 500
    assert wallet(world) == 40_000
    assert movements(world, withdrawal["id"]) == [
        f"withdrawal:{withdrawal['id']}:hold",
        f"withdrawal:{withdrawal['id']}:payout",
    ]
    kinds = [e["type"] for e in world.events("wallet.withdrawal.completed")]
    assert kinds == ["wallet.withdrawal.completed"]
    assert len(world.events("wallet.withdrawal.requested")) == len(world.events("wallet.withdrawal.approved")) == 1


def test_a_withdrawal_above_the_balance_is_409_and_changes_nothing(world):
    """WAL-1, WAL-2: nothing is held, no withdrawal exists, the wallet is as it was."""
    fund(BUYER, 50_000)

    response = request(amount=50_001)

    assert response.status == 409
    assert response.body["error"]["code"] == "insufficient_funds"
    assert wallet(world) == 50_000
    assert world.items("PaymentsTable", "WITHDRAWAL#") == []
    assert listing().body == {"items": [], "next_cursor": None}
    assert world.events("wallet.withdrawal.requested") == []
    assert request(claims("nobody-1", "buyer"), amount=1_000).status == 409  # an empty wallet


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"bank_code": "NOT_A_BANK"}, "bank_code"),
        ({"bank_code": "ID_"}, "bank_code"),
        ({"account_number": "12-34-5678"}, "account_number"),
        ({"account_number": "123"}, "account_number"),
        ({"bank_code": "OVO", "account_number": "1234567890"}, "account_number"),  # not a phone number
        ({"account_name": "   "}, "account_name"),
        ({"amount": 0}, "amount"),
        ({"amount": 100.0}, "amount"),
    ],
)
def test_a_withdrawal_to_an_unknown_channel_or_a_malformed_account_is_422(world, fields, field):
    fund(BUYER, 100_000)

    response = request(**fields)

    assert response.status == 422, response.body
    assert any(field in detail["field"] for detail in response.body["error"]["details"]), response.body
    assert wallet(world) == 100_000


def test_bank_codes_are_accepted_with_or_without_the_country_and_e_wallets_take_a_phone_number(world):
    fund(BUYER, 100_000)

    ewallet = requested(amount=10_000, bank_code="id_ovo", account_number="081234567890")
    bank = requested(amount=10_000, bank_code="ID_MANDIRI", account_number="1234567890123")

    assert (ewallet["bank_code"], ewallet["account_number_masked"]) == ("ID_OVO", "********7890")
    assert bank["bank_code"] == "ID_MANDIRI"
    [payout] = payouts_at_xendit(world, ewallet["id"]) if approved(ewallet["id"]) else []
    assert payout.channel_code == "ID_OVO"


@pytest.mark.parametrize("typed", ["+6281234567890", "6281234567890", "0812-3456-7890", "+62 812-3456-7890"])
def test_an_e_wallet_takes_the_mobile_number_as_a_phone_shows_it_and_pays_out_to_its_08_form(world, typed):
    """WAL-2, rhttp defect 1: the apps hold phones in E.164 (API.md addresses: +6281234567890), and Xendit's
    e-wallet payouts take the number as 0812...: any way of writing the same mobile number is that number."""
    fund(BUYER, 100_000)

    ewallet = requested(amount=10_000, bank_code="DANA", account_number=typed)

    assert ewallet["account_number_masked"] == "********7890"
    approved(ewallet["id"])
    [payout] = payouts_at_xendit(world, ewallet["id"])
    assert (payout.channel_code, payout.channel_properties["account_number"]) == ("ID_DANA", "081234567890")


def test_a_withdrawal_not_above_the_fee_is_422(world, with_fee):
    fund(BUYER, 100_000)

    response = request(amount=2_500)

    assert response.status == 422
    assert response.body["error"]["details"][0]["field"] == "amount"


def test_the_same_idempotency_key_holds_the_money_once(world):
    """SYS-4: a retried request answers the first withdrawal; the money is held once."""
    fund(BUYER, 100_000)
    key = {"Idempotency-Key": "withdraw-once"}

    first, second = request(headers=key), request(headers=key)

    assert (first.status, second.status) == (201, 201)
    assert first.body == second.body
    assert wallet(world) == 40_000
    world.aws.expire_idempotency_records()  # the record is gone (a crashed first attempt): the id still is one
    assert request(headers=key).body["id"] == first.body["id"]
    assert wallet(world) == 40_000


# ---- rejection, failure, reversal: the money back exactly once
def test_a_rejected_withdrawal_gives_the_money_back(world):
    fund(BUYER, 100_000)
    withdrawal = requested()

    response = reject(withdrawal["id"])

    assert (response.status, response.body["status"]) == (200, "rejected")
    assert wallet(world) == 100_000
    assert balances(world)[accounts.WITHDRAWALS_HELD] == 0
    assert reject(withdrawal["id"]).status == 200  # rejecting again changes nothing
    assert approve(withdrawal["id"]).status == 409
    assert wallet(world) == 100_000
    assert payouts_at_xendit(world, withdrawal["id"]) == []
    assert movements(world, withdrawal["id"]) == [
        f"withdrawal:{withdrawal['id']}:hold",
        f"withdrawal:{withdrawal['id']}:release",
    ]


def test_only_an_admin_approves_or_rejects_and_an_approved_withdrawal_cannot_be_rejected(world):
    fund(BUYER, 100_000)
    withdrawal = requested()

    assert approve(withdrawal["id"], who=BUYER).status == 403
    assert reject(withdrawal["id"], who=BUYER).status == 403
    assert approve("wdr_missing").status == 404
    approved(withdrawal["id"])
    assert reject(withdrawal["id"]).status == 409
    assert status(withdrawal["id"]) == "processing"


def test_a_failed_payout_gives_the_money_back_once_and_a_later_success_is_not_applied(world):
    """WAL-2, PAY-3: FAILED releases the hold; its redelivery is a duplicate; a SUCCEEDED after it moves
    nothing backwards and pays nothing out."""
    fund(BUYER, 100_000)
    withdrawal = approved(requested()["id"])

    assert payout_callback(world, withdrawal, "FAILED").body == {"status": "failed"}
    assert payout_callback(world, withdrawal, "FAILED").body == {"status": "duplicate"}
    assert payout_callback(world, withdrawal, "SUCCEEDED").body == {"status": "quarantined"}

    now = get(withdrawal["id"]).body
    assert (now["status"], now["failure_code"]) == ("failed", "INVALID_DESTINATION")
    assert wallet(world) == 100_000
    assert balances(world)[accounts.WITHDRAWALS_HELD] == 0
    assert movements(world, withdrawal["id"]) == [
        f"withdrawal:{withdrawal['id']}:hold",
        f"withdrawal:{withdrawal['id']}:release",
    ]


def test_a_reversed_payout_gives_the_money_back_once(world, with_fee):
    fund(BUYER, 100_000)
    withdrawal = approved(requested()["id"])
    payout_callback(world, withdrawal, "SUCCEEDED")

    assert payout_callback(world, withdrawal, "REVERSED").body == {"status": "reversed"}
    assert payout_callback(world, withdrawal, "REVERSED").body == {"status": "duplicate"}

    assert status(withdrawal["id"]) == "reversed"
    assert wallet(world) == 100_000
    after = balances(world)
    assert (after[accounts.WITHDRAWALS_HELD], after.get(accounts.PLATFORM_REVENUE, 0)) == (0, 0)
    assert after[accounts.GATEWAY_CLEARING] == -100_000


def test_succeeded_twice_then_failed_completes_once(world):
    fund(BUYER, 100_000)
    withdrawal = approved(requested()["id"])

    outcomes = [payout_callback(world, withdrawal, s).body["status"] for s in ("SUCCEEDED", "SUCCEEDED", "FAILED")]

    assert outcomes == ["completed", "duplicate", "quarantined"]
    assert status(withdrawal["id"]) == "completed"
    assert wallet(world) == 40_000
    assert len(movements(world, withdrawal["id"])) == 2


def test_reversed_before_succeeded_returns_the_money_once_and_never_also_pays_out(world):
    """Out of order (PAY-3): the REVERSED overtakes its SUCCEEDED: the hold is released, the late SUCCEEDED
    books no payout."""
    fund(BUYER, 100_000)
    withdrawal = approved(requested()["id"])

    assert payout_callback(world, withdrawal, "REVERSED").body == {"status": "reversed"}
    assert payout_callback(world, withdrawal, "SUCCEEDED").body == {"status": "ignored"}

    assert status(withdrawal["id"]) == "reversed"
    assert wallet(world) == 100_000
    assert movements(world, withdrawal["id"]) == [
        f"withdrawal:{withdrawal['id']}:hold",
        f"withdrawal:{withdrawal['id']}:release",
    ]
    assert balances(world)[accounts.WITHDRAWALS_HELD] == 0


def test_a_callback_before_approval_recorded_the_payout_completes_it(world):
    """The webhook may beat approved -> processing: approved -> completed, with the payout id it names."""
    fund(BUYER, 100_000)
    withdrawal = requested()
    real_create = XenditGateway.create_payout

    def webhook_first(self, *args, **kwargs):
        payout = real_create(self, *args, **kwargs)
        assert payout_callback(world, {**withdrawal, "payout_id": payout.id}, "SUCCEEDED").body == {
            "status": "completed"
        }
        return payout

    with mock.patch.object(XenditGateway, "create_payout", webhook_first):
        answer = approve(withdrawal["id"])

    assert (answer.status, answer.body["status"]) == (200, "completed")
    assert answer.body["payout_id"] == payouts_at_xendit(world, withdrawal["id"])[0].id
    assert wallet(world) == 40_000 and len(movements(world, withdrawal["id"])) == 2


# ---- callbacks that lie, and callbacks without the token
@pytest.mark.parametrize(
    ("lie", "reason"),
    [
        ({"amount": 1}, "amount_mismatch"),
        ({"currency": "USD"}, "currency_mismatch"),
        ({"id": "disb-someone-elses"}, "payout_id_mismatch"),
        ({"reference_id": "wdr_we_never_made"}, "unknown_withdrawal"),
    ],
)
def test_a_lying_payout_callback_is_quarantined_and_never_applied(world, caplog, lie, reason):
    """PAY-2: kept with its reason, alarmed, 200 so Xendit stops; the genuine callback still applies."""
    fund(BUYER, 100_000)
    withdrawal = approved(requested()["id"])

    with caplog.at_level(logging.CRITICAL):
        response = payout_callback(world, withdrawal, "SUCCEEDED", **lie)

    assert (response.status, response.body) == (200, {"status": "quarantined"})
    [item] = world.quarantined()
    assert (item["kind"], item["reason"]) == ("payout", reason)
    assert status(withdrawal["id"]) == "processing"
    assert wallet(world) == 40_000
    assert any("quarantined" in r.getMessage() for r in caplog.records if r.levelno == logging.CRITICAL)
    assert payout_callback(world, withdrawal, "SUCCEEDED", **lie).body == {"status": "duplicate"}
    assert payout_callback(world, withdrawal, "SUCCEEDED").body == {"status": "completed"}
    balances(world)


@pytest.mark.parametrize(
    ("first", "then", "settled", "wallet_after"),
    [
        ("FAILED", "SUCCEEDED", "failed", 100_000),  # the money is back in the wallet and at the bank
        ("SUCCEEDED", "FAILED", "completed", 40_000),  # booked as paid out, yet it never left
        ("SUCCEEDED", "CANCELLED", "completed", 40_000),
    ],
)
def test_a_payout_callback_contradicting_the_settled_outcome_is_quarantined_not_silently_ignored(
    world, caplog, first, then, settled, wallet_after
):
    """WAL-2, PAY-3 (issue 7 review defect): forward-only, so nothing moves backwards; yet if the late callback
    is true the money was paid out twice, or never, and a person must look: it is kept and alarmed (as a refund
    callback contradicting its completed refund is), not logged as a warning. Its redelivery is a duplicate."""
    fund(BUYER, 100_000)
    withdrawal = approved(requested()["id"])
    payout_callback(world, withdrawal, first)

    with caplog.at_level(logging.CRITICAL):
        assert payout_callback(world, withdrawal, then).body == {"status": "quarantined"}

    [item] = world.quarantined()
    assert (item["kind"], item["reason"], item["withdrawal_id"]) == (
        "payout",
        "contradicts_settled_payout",
        withdrawal["id"],
    )
    assert any("quarantined" in r.getMessage() for r in caplog.records if r.levelno == logging.CRITICAL)
    assert payout_callback(world, withdrawal, then).body == {"status": "duplicate"}
    assert status(withdrawal["id"]) == settled
    assert wallet(world) == wallet_after
    assert len(movements(world, withdrawal["id"])) == 2
    balances(world)


@pytest.mark.parametrize("token", ["forged", ""])
def test_a_payout_callback_without_the_right_token_is_403_and_changes_nothing(world, token):
    fund(BUYER, 100_000)
    withdrawal = approved(requested()["id"])

    response = payout_callback(world, withdrawal, "FAILED", token=token)

    assert response.status == 403
    assert status(withdrawal["id"]) == "processing"
    assert wallet(world) == 40_000
    assert world.items("PaymentsTable", "WEBHOOK#") == []


def test_a_payout_callback_nested_once_more_is_read(world):
    fund(BUYER, 100_000)
    withdrawal = approved(requested()["id"])
    body = {
        "event": "payout.succeeded",
        "data": {
            "data": {
                "id": withdrawal["payout_id"],
                "reference_id": withdrawal["id"],
                "amount": 60_000,
                "currency": "IDR",
                "status": "SUCCEEDED",
            }
        },
    }

    assert world.webhook("XenditPayoutWebhook", json.dumps(body).encode()).body == {"status": "completed"}


# ---- crashes and retries: one payout, one hold
def test_a_crash_after_approval_is_resumed_by_approving_again_with_one_payout(world):
    fund(BUYER, 100_000)
    withdrawal = requested()

    with mock.patch.object(XenditGateway, "create_payout", side_effect=RuntimeError("crash before the payout")):
        assert approve(withdrawal["id"]).status == 500
    assert status(withdrawal["id"]) == "approved"
    assert payouts_at_xendit(world, withdrawal["id"]) == []

    again = approve(withdrawal["id"])

    assert (again.status, again.body["status"]) == (200, "processing")
    [payout] = payouts_at_xendit(world, withdrawal["id"])
    assert again.body["payout_id"] == payout.id
    assert wallet(world) == 40_000
    assert movements(world, withdrawal["id"]) == [f"withdrawal:{withdrawal['id']}:hold"]


def test_a_crash_after_the_payout_was_sent_is_resumed_without_a_second_payout(world):
    fund(BUYER, 100_000)
    withdrawal = requested()
    real_create = XenditGateway.create_payout

    def sent_then_crash(self, *args, **kwargs):
        real_create(self, *args, **kwargs)
        raise RuntimeError("crash after the payout was sent")

    with mock.patch.object(XenditGateway, "create_payout", sent_then_crash):
        assert approve(withdrawal["id"]).status == 500
    assert status(withdrawal["id"]) == "approved"

    again = approved(withdrawal["id"])
    assert approve(withdrawal["id"]).body == again  # approving a processing withdrawal changes nothing

    [payout] = payouts_at_xendit(world, withdrawal["id"])
    assert (again["status"], again["payout_id"]) == ("processing", payout.id)
    assert wallet(world) == 40_000
    assert len(movements(world, withdrawal["id"])) == 1


def test_xendit_down_is_503_and_the_withdrawal_stays_approved_until_approved_again(world):
    fund(BUYER, 100_000)
    withdrawal = requested()
    world.xendit_down()

    response = approve(withdrawal["id"])

    assert response.status == 503
    assert status(withdrawal["id"]) == "approved"
    world.xendit_up()
    assert approved(withdrawal["id"])["status"] == "processing"
    assert len(payouts_at_xendit(world, withdrawal["id"])) == 1


def test_a_payout_xendit_refuses_fails_the_withdrawal_and_gives_the_money_back(world):
    fund(BUYER, 100_000)
    withdrawal = requested()
    refusal = PaymentRejected("Xendit refused create_payout", gateway_code="INVALID_DESTINATION")

    with mock.patch.object(XenditGateway, "create_payout", side_effect=refusal):
        response = approve(withdrawal["id"])

    assert (response.status, response.body["status"], response.body["failure_code"]) == (
        200,
        "failed",
        "INVALID_DESTINATION",
    )
    assert wallet(world) == 100_000
    balances(world)


def test_a_refusal_of_a_resent_payout_attaches_the_payout_xendit_already_has(world):
    """A retried approval refused by Xendit (an idempotency conflict) while an earlier attempt's payout
    exists: that payout is attached, the money is not given back while it is being paid out."""
    fund(BUYER, 100_000)
    withdrawal = requested()
    real_create = XenditGateway.create_payout
    calls = []

    def sent_then_refused(self, *args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            real_create(self, *args, **kwargs)
            raise RuntimeError("crash after the payout was sent")
        raise PaymentRejected("Xendit refused create_payout", gateway_code="IDEMPOTENCY_ERROR")

    with mock.patch.object(XenditGateway, "create_payout", sent_then_refused):
        assert approve(withdrawal["id"]).status == 500
        again = approve(withdrawal["id"])

    [payout] = payouts_at_xendit(world, withdrawal["id"])
    assert (again.status, again.body["status"], again.body["payout_id"]) == (200, "processing", payout.id)
    assert wallet(world) == 40_000


# ---- races
def test_approve_racing_reject_has_one_outcome(world):
    """Deterministic: the reject commits right before approval's conditional write; approval is 409, nothing
    is paid out, the money is back once."""
    fund(BUYER, 100_000)
    withdrawal = requested()
    real_change = WithdrawalsRepository.change
    raced = []

    def reject_first(self, tx, current, **changes):
        if changes.get("status") == "approved" and not raced:
            raced.append(composition.withdrawal_service().reject(admin_principal(), current.id, "raced"))
        return real_change(self, tx, current, **changes)

    with mock.patch.object(WithdrawalsRepository, "change", reject_first):
        response = approve(withdrawal["id"])

    assert raced and response.status == 409
    assert response.body["error"]["code"] == "withdrawal_state_conflict"
    assert status(withdrawal["id"]) == "rejected"
    assert payouts_at_xendit(world, withdrawal["id"]) == []
    assert wallet(world) == 100_000
    balances(world)


def test_reject_racing_approve_has_one_outcome(world):
    fund(BUYER, 100_000)
    withdrawal = requested()
    real_change = WithdrawalsRepository.change

    def approve_first(self, tx, current, **changes):
        if changes.get("status") == "rejected":
            with mock.patch.object(WithdrawalsRepository, "change", real_change):
                composition.withdrawal_service()._move(current, "approved", approved_by="admin-2")
        return real_change(self, tx, current, **changes)

    with mock.patch.object(WithdrawalsRepository, "change", approve_first):
        response = reject(withdrawal["id"])

    assert response.status == 409
    assert status(withdrawal["id"]) == "approved"
    assert wallet(world) == 40_000
    assert approved(withdrawal["id"])["status"] == "processing"


def test_a_reversed_racing_its_succeeded_books_the_reversal_not_a_second_release(world, with_fee):
    """Deterministic (WAL-2, PAY-3, issue 7 review defect 1): the SUCCEEDED is applied between the REVERSED's
    read of the withdrawal and its conditional write. The REVERSED must book the money coming back from the
    payout (a reversal), not release a hold the payout already took: the hold is taken once, the wallet gets
    the amount back once, and nothing is left owed in the held or clearing accounts."""
    fund(BUYER, 100_000)
    withdrawal = approved(requested()["id"])
    real_change = WithdrawalsRepository.change
    raced = []

    def succeeded_first(self, tx, current, **changes):
        if changes.get("status") == "reversed" and not raced:
            raced.append("delivering")
            raced[0] = payout_callback(world, withdrawal, "SUCCEEDED").body
        return real_change(self, tx, current, **changes)

    with mock.patch.object(WithdrawalsRepository, "change", succeeded_first):
        assert payout_callback(world, withdrawal, "REVERSED").body == {"status": "reversed"}

    assert raced == [{"status": "completed"}]
    assert status(withdrawal["id"]) == "reversed"
    assert movements(world, withdrawal["id"]) == [
        f"withdrawal:{withdrawal['id']}:{step}" for step in ("hold", "payout", "reversal")
    ]
    assert wallet(world) == 100_000
    after = balances(world)
    assert (after[accounts.WITHDRAWALS_HELD], after.get(accounts.PLATFORM_REVENUE, 0)) == (0, 0)
    assert after[accounts.GATEWAY_CLEARING] == -100_000


# ---- reconciliation's PayoutChecker
def item_of(world, withdrawal_id: str) -> dict[str, Any]:
    [item] = world.items("PaymentsTable", f"WITHDRAWAL#{withdrawal_id}")
    return item


def check(world, withdrawal_id: str):
    return composition.payout_checker().check(item_of(world, withdrawal_id), lambda found: None)


def test_the_checker_completes_a_payout_whose_callback_never_came_and_the_late_callback_changes_nothing(world):
    fund(BUYER, 100_000)
    withdrawal = approved(requested()["id"])
    simulate(world, withdrawal["payout_id"], "succeed")

    mismatch = check(world, withdrawal["id"])

    assert (mismatch.kind, mismatch.resolution) == ("payout_status_mismatch", "repaired")
    assert (mismatch.ours["status"], mismatch.theirs["status"]) == ("processing", "SUCCEEDED")
    assert status(withdrawal["id"]) == "completed"
    assert payout_callback(world, withdrawal, "SUCCEEDED").body == {"status": "ignored"}
    assert check(world, withdrawal["id"]) is None  # a second run finds nothing
    assert wallet(world) == 40_000 and len(movements(world, withdrawal["id"])) == 2
    balances(world)


def test_a_webhook_racing_the_checkers_repair_has_one_outcome(world):
    """Deterministic: the FAILED callback is applied right before the checker's conditional write; the
    checker converges on it (no report, nothing posted twice)."""
    fund(BUYER, 100_000)
    withdrawal = approved(requested()["id"])
    simulate(world, withdrawal["payout_id"], "fail")
    real_change = WithdrawalsRepository.change
    raced = []

    def webhook_first(self, tx, current, **changes):
        if not raced:
            raced.append("delivering")
            raced[0] = payout_callback(world, withdrawal, "FAILED").body
        return real_change(self, tx, current, **changes)

    with mock.patch.object(WithdrawalsRepository, "change", webhook_first):
        mismatch = check(world, withdrawal["id"])

    assert raced == [{"status": "failed"}]
    assert mismatch is None
    assert status(withdrawal["id"]) == "failed"
    assert wallet(world) == 100_000
    assert len(movements(world, withdrawal["id"])) == 2
    balances(world)


def test_the_checker_reports_what_it_cannot_repair(world):
    fund(BUYER, 100_000)
    completed = approved(requested(amount=10_000)["id"])
    payout_callback(world, completed, "SUCCEEDED")
    simulate(world, completed["payout_id"], "fail")  # Xendit says FAILED, we paid it out
    lost = approved(requested(amount=10_000)["id"])
    world.aws.dynamodb().update_item(
        TableName=world.aws.tables["PaymentsTable"],
        Key={"pk": {"S": f"WITHDRAWAL#{lost['id']}"}, "sk": {"S": "META"}},
        UpdateExpression="SET payout_id = :p",
        ExpressionAttributeValues={":p": {"S": "disb-unknown"}},
    )

    contradiction, unknown = check(world, completed["id"]), check(world, lost["id"])

    assert (contradiction.kind, contradiction.resolution) == ("payout_status_mismatch", "reported")
    assert status(completed["id"]) == "completed"
    assert (unknown.kind, unknown.resolution) == ("unknown_at_gateway", "reported")
    assert wallet(world) == 80_000


def test_the_checker_reports_a_payout_record_xendit_answers_for_another_withdrawal_and_applies_nothing(world):
    """PAY-8, issue 7 review: Xendit's record of our payout names another withdrawal (reference_id) and says it
    failed: our withdrawal is not failed on it (no money returned twice over); it is reported."""
    fund(BUYER, 100_000)
    withdrawal = approved(requested()["id"])
    simulate(world, withdrawal["payout_id"], "fail")
    world.xendit._payouts[withdrawal["payout_id"]].reference_id = "wd_someone_else"

    mismatch = check(world, withdrawal["id"])

    assert (mismatch.kind, mismatch.resolution) == ("reference_mismatch", "reported")
    assert status(withdrawal["id"]) == "processing"
    assert wallet(world) == 40_000


def test_the_checker_resumes_an_approved_withdrawal_without_a_payout_once(world):
    fund(BUYER, 100_000)
    never_sent, sent_not_recorded, untouched = (requested(amount=10_000) for _ in range(3))
    with mock.patch.object(XenditGateway, "create_payout", side_effect=RuntimeError("crash")):
        approve(never_sent["id"])
    real_create = XenditGateway.create_payout

    def sent_then_crash(self, *args, **kwargs):
        real_create(self, *args, **kwargs)
        raise RuntimeError("crash")

    with mock.patch.object(XenditGateway, "create_payout", sent_then_crash):
        approve(sent_not_recorded["id"])

    repaired = [check(world, w["id"]) for w in (never_sent, sent_not_recorded)]

    assert [(m.kind, m.resolution) for m in repaired] == [("payout_status_mismatch", "repaired")] * 2
    for w in (never_sent, sent_not_recorded):
        [payout] = payouts_at_xendit(world, w["id"])
        assert (status(w["id"]), get(w["id"]).body["payout_id"]) == ("processing", payout.id)
    assert check(world, untouched["id"]) is None
    assert check(world, never_sent["id"]) is None
    assert wallet(world) == 70_000


# ---- reads: mine only, masked
def test_owners_list_and_read_only_their_own_withdrawals_newest_first(world):
    fund(BUYER, 100_000)
    fund(OTHER, 100_000)
    mine = [requested(amount=1_000 + n) for n in range(3)]
    theirs, their_first = requested(OTHER, amount=5_000), requested(OTHER, amount=4_000)

    first = listing(query={"limit": "2"})
    second = listing(query={"limit": "2", "cursor": first.body["next_cursor"]})

    ids = [w["id"] for w in first.body["items"] + second.body["items"]]
    assert ids == [w["id"] for w in reversed(mine)]
    assert second.body["next_cursor"] is None
    assert get(theirs["id"]).status == 404
    assert get(theirs["id"], who=OTHER).body == theirs
    assert listing(OTHER).body["items"] == [their_first, theirs]
    other_cursor = listing(OTHER, {"limit": "1"}).body["next_cursor"]
    assert listing(query={"cursor": other_cursor}).status == 400  # a cursor into their list reads nothing
    assert listing(None).status == 401


def test_the_account_number_appears_in_no_response_and_no_log(world, capsys, caplog):
    fund(BUYER, 100_000)
    caplog.set_level(logging.INFO)  # POWERTOOLS_LOG_LEVEL of the functions (template Globals)
    answers = []
    withdrawal = requested(account_number=ACCOUNT)
    answers += [withdrawal, approved(withdrawal["id"]), listing().body, get(withdrawal["id"]).body]
    answers.append(payout_callback(world, approved(withdrawal["id"]), "SUCCEEDED").body)
    failing = requested(account_number=ACCOUNT, amount=1_000)
    answers.append(reject(failing["id"]).body)

    logs = capsys.readouterr().out + capsys.readouterr().err + caplog.text
    assert ACCOUNT not in json.dumps(answers)
    assert ACCOUNT not in logs
    assert "******7890" in json.dumps(answers)
    assert "withdrawal requested" in logs  # the logs were captured
    events = json.dumps([world.events(f"wallet.withdrawal.{s}") for s in ("requested", "completed", "rejected")])
    assert ACCOUNT not in events and withdrawal["id"] in events
