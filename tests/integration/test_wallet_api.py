"""Wallet and ledger routes in-process on moto (WAL-1, WAL-3, PAY-5, ACC-1, SYS-3, SYS-4)."""

from __future__ import annotations

from unittest import mock

import pytest
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

from patungan.ledger import accounts
from patungan.ledger.repository import ledger
from tests.support.lambdas import call_api, claims
from tests.support.ledger import adjust_wallet, wallet_credit, wallet_debit

ADMIN = claims("adm_1", "admin")
BUYER = claims("usr_1", "buyer")
OTHER_BUYER = claims("usr_2", "buyer")


def get_wallet(who):
    return call_api("GetWalletFunction", "GET", "/v1/wallet", claims=who)


def list_transactions(who, query=None):
    return call_api("ListWalletTransactionsFunction", "GET", "/v1/wallet/transactions", claims=who, query=query)


def trial_balance(who):
    return call_api("GetTrialBalanceFunction", "GET", "/v1/admin/ledger/trial-balance", claims=who)


def adjust(user_id, body, who=ADMIN, headers=None):
    return adjust_wallet(user_id, body, who, headers)


@pytest.fixture
def two_wallets(aws):
    ledger().post(wallet_credit("usr_1", 100_000, "refund:par_1", created_at="2026-11-21T10:00:00Z"))
    ledger().post(wallet_debit("usr_1", 40_000, "wallet_debit:ord_1", created_at="2026-11-21T11:00:00Z"))
    ledger().post(wallet_credit("usr_2", 7_000, "tier_refund:par_2", created_at="2026-11-21T12:00:00Z"))


def test_a_user_sees_their_own_wallet_balance(two_wallets):
    mine = get_wallet(BUYER)

    assert mine.status == 200
    assert mine.body == {"balance": 60_000, "currency": "IDR"}
    assert mine.headers["x-correlation-id"]
    assert get_wallet(OTHER_BUYER).body == {"balance": 7_000, "currency": "IDR"}


def test_a_new_user_has_an_empty_wallet(aws):
    assert get_wallet(claims("usr_new", "buyer")).body == {"balance": 0, "currency": "IDR"}
    assert list_transactions(claims("usr_new", "buyer")).body == {"items": [], "next_cursor": None}


def test_wallet_routes_need_a_signed_in_caller(aws):
    for response in (get_wallet(None), list_transactions(None)):
        assert response.status == 401
        assert response.body["error"]["code"] == "unauthorized"


def test_a_user_lists_only_their_own_transactions_newest_first(two_wallets):
    mine = list_transactions(BUYER)

    assert mine.status == 200
    assert mine.body == {
        "items": [
            {
                "id": "wallet_debit:ord_1",
                "type": "wallet_debit",
                "amount": -40_000,
                "reference": {},
                "created_at": "2026-11-21T11:00:00Z",
            },
            {
                "id": "refund:par_1",
                "type": "wallet_credit",
                "amount": 100_000,
                "reference": {"user_id": "usr_1"},
                "created_at": "2026-11-21T10:00:00Z",
            },
        ],
        "next_cursor": None,
    }
    assert [t["id"] for t in list_transactions(OTHER_BUYER).body["items"]] == ["tier_refund:par_2"]


def test_transactions_page_with_cursors(aws):
    for hour in range(5):
        ledger().post(wallet_credit("usr_1", 1_000, f"refund:par_{hour}", created_at=f"2026-11-21T1{hour}:00:00Z"))

    first = list_transactions(BUYER, {"limit": "2"})
    second = list_transactions(BUYER, {"limit": "2", "cursor": first.body["next_cursor"]})
    third = list_transactions(BUYER, {"limit": "2", "cursor": second.body["next_cursor"]})

    pages = [first.body["items"], second.body["items"], third.body["items"]]
    assert [[t["id"] for t in page] for page in pages] == [
        ["refund:par_4", "refund:par_3"],
        ["refund:par_2", "refund:par_1"],
        ["refund:par_0"],
    ]
    assert third.body["next_cursor"] is None


def test_a_cursor_from_another_users_listing_is_refused(aws):
    for number in range(3):
        ledger().post(wallet_credit("usr_2", 1_000, f"refund:par_{number}"))
    theirs = list_transactions(OTHER_BUYER, {"limit": "1"}).body["next_cursor"]

    response = list_transactions(BUYER, {"cursor": theirs})

    assert response.status == 400
    assert response.body["error"]["code"] == "invalid_cursor"


def test_transaction_listing_limits_are_validated(aws):
    assert list_transactions(BUYER, {"limit": "0"}).status == 422
    assert list_transactions(BUYER, {"limit": "101"}).status == 422
    assert list_transactions(BUYER, {"cursor": "not-a-cursor!"}).status == 400


def test_admins_see_a_balanced_trial_balance(two_wallets):
    response = trial_balance(ADMIN)

    assert response.status == 200
    assert response.body["balanced"] is True
    assert response.body["currencies"] == {"IDR": {"debit": 147_000, "credit": 147_000}}
    by_account = {a["account"]: a for a in response.body["accounts"]}
    assert by_account[accounts.buyer_wallet("usr_1")] == {
        "account": "buyer:usr_1:wallet",
        "currency": "IDR",
        "debit": 40_000,
        "credit": 100_000,
        "balance": -60_000,
    }
    assert by_account[accounts.GATEWAY_CLEARING]["balance"] == 107_000
    assert by_account[accounts.PLATFORM_REVENUE]["balance"] == -40_000


def test_only_admins_see_the_trial_balance(two_wallets):
    response = trial_balance(BUYER)

    assert response.status == 403
    assert response.body["error"]["code"] == "forbidden"


def test_an_admin_credits_a_wallet_with_a_reason_on_record(aws):
    response = adjust("usr_1", {"amount": 50_000, "reason": "goodwill: late delivery"})

    assert response.status == 201
    adjustment = response.body
    assert adjustment["id"].startswith("adj_")
    assert {k: adjustment[k] for k in ("user_id", "amount", "currency", "reason", "admin_id")} == {
        "user_id": "usr_1",
        "amount": 50_000,
        "currency": "IDR",
        "reason": "goodwill: late delivery",
        "admin_id": "adm_1",
    }
    assert get_wallet(BUYER).body["balance"] == 50_000
    (line,) = list_transactions(BUYER).body["items"]
    assert line["type"] == "adjustment"
    assert line["amount"] == 50_000
    assert line["reference"] == {
        "adjustment_id": adjustment["id"],
        "admin_id": "adm_1",
        "reason": "goodwill: late delivery",
    }
    assert ledger().balance(accounts.PLATFORM_ADJUSTMENTS) == 50_000
    assert trial_balance(ADMIN).body["balanced"] is True


def test_a_negative_adjustment_debits_but_never_overdraws(aws):
    adjust("usr_1", {"amount": 30_000, "reason": "refund by transfer"})

    overdraw = adjust("usr_1", {"amount": -30_001, "reason": "duplicate refund"})
    debit = adjust("usr_1", {"amount": -30_000, "reason": "duplicate refund"})

    assert overdraw.status == 409
    assert overdraw.body["error"]["code"] == "insufficient_funds"
    assert debit.status == 201
    assert get_wallet(BUYER).body["balance"] == 0
    assert [t["amount"] for t in list_transactions(BUYER).body["items"]] == [-30_000, 30_000]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"amount": 10_000}, "body.reason", id="missing reason"),
        pytest.param({"amount": 10_000, "reason": " "}, "body.reason", id="blank reason"),
        pytest.param({"amount": 0, "reason": "nothing"}, "body.amount", id="zero amount"),
        pytest.param({"amount": 99.5, "reason": "half a rupiah"}, "body.amount", id="fractional amount"),
    ],
)
def test_an_invalid_adjustment_is_422_and_changes_nothing(aws, body, field):
    response = adjust("usr_1", body)

    assert response.status == 422
    assert response.body["error"]["code"] == "validation_error"
    assert field in {d["field"] for d in response.body["error"]["details"]}
    assert ledger().trial_balance().accounts == []


def test_only_admins_adjust_wallets(aws):
    response = adjust("usr_1", {"amount": 1_000_000, "reason": "treat myself"}, who=BUYER)

    assert response.status == 403
    assert get_wallet(BUYER).body["balance"] == 0


def test_a_retried_adjustment_is_applied_once(aws):
    key = {"Idempotency-Key": "adjust-usr_1-1"}

    first = adjust("usr_1", {"amount": 20_000, "reason": "goodwill"}, headers=key)
    replay = adjust("usr_1", {"amount": 20_000, "reason": "goodwill"}, headers=key)
    other_wallet = adjust("usr_2", {"amount": 20_000, "reason": "goodwill"}, headers=key)

    assert first.status == replay.status == 201
    assert replay.body == first.body
    assert get_wallet(BUYER).body["balance"] == 20_000
    assert other_wallet.status == 422
    assert other_wallet.body["error"]["code"] == "idempotency_key_reused"
    assert get_wallet(OTHER_BUYER).body["balance"] == 0


def test_a_retried_debit_replays_the_first_answer_after_the_balance_moved_on(two_wallets):
    """SYS-4: the replay is the first response, not a second debit's refusal; WAL-3: it is audited once."""
    key = {"Idempotency-Key": "debit-usr_1-all"}
    debit = {"amount": -60_000, "reason": "chargeback of a fraudulent refund"}

    first = adjust("usr_1", debit, headers=key)
    replay = adjust("usr_1", debit, headers=key)
    unkeyed = adjust("usr_1", debit)

    assert first.status == replay.status == 201
    assert replay.body == first.body
    assert (first.body["admin_id"], first.body["reason"]) == ("adm_1", debit["reason"])
    assert unkeyed.status == 409
    assert get_wallet(BUYER).body["balance"] == 0
    adjustments = [t for t in list_transactions(BUYER).body["items"] if t["type"] == "adjustment"]
    assert [(t["amount"], t["reference"]["admin_id"]) for t in adjustments] == [(-60_000, "adm_1")]


def test_an_adjustment_retried_after_a_crash_that_lost_its_answer_is_posted_once(aws):
    """The movement was posted, then the function died before the idempotency record said so; once that record
    expires the retry runs again. The key names the adjustment, so the ledger refuses a second posting and the
    retry answers the first adjustment (SYS-4, WAL-3)."""
    key = {"Idempotency-Key": "credit-usr_1-goodwill"}
    credit = {"amount": 20_000, "reason": "goodwill"}
    with mock.patch.object(BasePersistenceLayer, "save_success", side_effect=RuntimeError("Lambda timed out")):
        assert adjust("usr_1", credit, headers=key).status >= 500
    aws.expire_idempotency_records()

    retried = adjust("usr_1", credit, headers=key)

    assert retried.status == 201
    assert (retried.body["amount"], retried.body["admin_id"]) == (20_000, "adm_1")
    assert get_wallet(BUYER).body["balance"] == 20_000
    [posted] = list_transactions(BUYER).body["items"]
    assert posted["reference"]["adjustment_id"] == retried.body["id"]
