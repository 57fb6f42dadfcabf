"""Reconciliation (PAY-8, issue 7): a run pages through the period's payments and refunds, compares each with
the local Xendit's record (through the real SDK), repairs the safe differences through the webhook's own code
path and reports the rest; then proves the ledger balances (PAY-5).

The state machine's steps are invoked here as Step Functions invokes them (tests/statemachines runs the machine
itself). The local Xendit's webhooks go to a sink in this world: paying at Xendit is a PAID never delivered."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import boto3
import pytest
import requests
from moto.dynamodb.responses import DynamoHandler

from emulator.moto_patches import _serialised
from patungan import composition
from patungan.adapters.stepfunctions import ExecutionStarter
from patungan.adapters.xendit import XenditGateway
from patungan.core.clock import to_iso
from patungan.core.config import get_settings
from patungan.core.errors import DependencyUnavailable
from patungan.ledger import accounts
from patungan.ledger.models import CurrencyTotals
from patungan.ledger.repository import Ledger
from patungan.reconciliation.repository import RunsRepository
from patungan.reconciliation.service import MAX_PAGES, RunTooLarge
from tests.support.groupbuy import ADMIN, buyer
from tests.support.lambdas import call_api

MACHINE = "ReconciliationStateMachine"
KINDS = ("PAYMENTS", "REFUNDS", "PAYOUTS")


@pytest.fixture
def recon(world, monkeypatch):
    """The world with the reconciliation state machine registered (not executed: the steps run below), its ARN
    in the starters' environment, and moto's DynamoDB serialised (the page checks records on a thread pool;
    moto's transactions are not thread-safe, DynamoDB's are)."""
    machine = world.aws.template.state_machines()[MACHINE]
    boto3.client("stepfunctions").create_state_machine(
        name=machine.name,
        definition=machine.definition,
        roleArn="arn:aws:iam::123456789012:role/reconciliation",
    )
    monkeypatch.setitem(os.environ, "RECONCILIATION_STATE_MACHINE_ARN", machine.arn)
    monkeypatch.setitem(os.environ, "RECONCILIATION_BATCH_SIZE", "3")  # several pages from a handful of records
    get_settings.cache_clear()
    composition.reset()
    with mock.patch.object(DynamoHandler, "call_action", _serialised(DynamoHandler.call_action)):
        yield Reconciliation(world)
    get_settings.cache_clear()
    composition.reset()


class Reconciliation:
    def __init__(self, world) -> None:
        self.world = world

    def start(self, who: dict[str, str] = ADMIN, key: str | None = None, **body: Any):
        return call_api(
            "StartReconciliationRunFunction",
            "POST",
            "/v1/admin/reconciliation/runs",
            body=body,
            claims=who,
            headers={"Idempotency-Key": key} if key else None,
        )

    def get(self, run_id: str, who: dict[str, str] = ADMIN):
        return call_api(
            "GetReconciliationRunFunction",
            "GET",
            f"/v1/admin/reconciliation/runs/{run_id}",
            resource="/v1/admin/reconciliation/runs/{id}",
            path_parameters={"id": run_id},
            claims=who,
        )

    def check_pages(self, run_id: str, kind: str) -> int:
        """One kind's CheckPage loop; how many pages it took."""
        page, pages = {"cursor": None, "done": False}, 0
        while not page["done"]:
            page = self.world.step("CheckReconciliationPageFunction", run_id=run_id, kind=kind, cursor=page["cursor"])
            pages += 1
        return pages

    def carry_out(self, run_id: str) -> dict[str, Any]:
        """What the state machine does for the run: the pages of every kind, the ledger, finish."""
        for kind in KINDS:
            self.check_pages(run_id, kind)
        self.check_ledger(run_id)
        self.world.step("FinishReconciliationRunFunction", run_id=run_id)
        return self.get(run_id).body

    def check_ledger(self, run_id: str) -> None:
        """CheckLedger, then RecheckLedger (the machine waits between them) until the ledger is decided."""
        ledger = self.world.step("CheckReconciliationLedgerFunction", run_id=run_id, reading=0)
        while not ledger["decided"]:
            ledger = self.world.step(
                "CheckReconciliationLedgerFunction",
                run_id=run_id,
                reading=ledger["reading"],
                earlier=ledger["imbalance"],
            )

    def run(self, **body: Any) -> dict[str, Any]:
        started = self.start(**body)
        assert started.status == 202, started.body
        return self.carry_out(started.body["id"])


def kinds_of(run: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["kind"], m["resolution"]) for m in run["mismatches"]]


def escrow(world, session_id: str) -> int:
    """What the session's escrow account holds (credit-normal; 0 when nothing was ever posted to it)."""
    account = accounts.session_escrow(session_id)
    return sum(a["credit"] - a["debit"] for a in world.trial_balance()["accounts"] if a["account"] == account)


def captures(world, payment_id: str) -> int:
    return len(world.items("LedgerTable", f"MOVEMENT#capture:{payment_id}"))


def drifted_payment(world) -> tuple[dict[str, Any], dict[str, Any]]:
    """A buyer paid at Xendit; the PAID callback never reached us."""
    session = world.session()
    joined = world.joined(buyer(1), session["id"], quantity=2)
    world.pay_at_xendit(joined)
    assert world.payment(joined)["status"] == "pending"
    return session, joined


def drifted_payment_expired(world) -> dict[str, Any]:
    """A buyer's invoice ran out at Xendit; the EXPIRED callback never reached us."""
    session = world.session()
    joined = world.joined(buyer(1), session["id"], quantity=2)
    expired = requests.post(
        f"{world.xendit_url}/simulate/invoices/{joined['payment']['invoice_id']}/expire?deliver=false", timeout=5
    )
    assert expired.status_code == 200, expired.text
    assert world.payment(joined)["status"] == "pending"
    return joined


def refund_settled_at_xendit_without_callback(world, outcome: str = "succeed") -> dict[str, Any]:
    """A paid buyer left; the refund went to Xendit (PENDING), which settled it and never called back."""
    session = world.session()
    joined = world.joined(buyer(1), session["id"], quantity=2)
    world.pay(joined)
    world.leave(buyer(1), session["id"])
    world.process_refunds()
    sent = world.refund_of(joined)
    assert sent["status"] == "pending"
    settled = requests.post(
        f"{world.xendit_url}/simulate/refunds/{sent['provider_refund_id']}/{outcome}?deliver=false", timeout=5
    )
    assert settled.status_code == 200, settled.text
    return joined


# ---- payments
def test_a_payment_paid_at_xendit_whose_callback_was_lost_is_repaired_and_a_second_run_finds_nothing(recon, world):
    """PAY-8: the buyer's money sat at Xendit while we showed pending_payment. The run applies Xendit's record
    as the PAID callback would have (escrow, ledger), once; the next run agrees with Xendit."""
    session, joined = drifted_payment(world)

    first = recon.run()

    assert first["status"] == "done"
    assert kinds_of(first) == [("paid_at_gateway_pending_here", "repaired")]
    assert first["mismatches"][0]["reference_id"] == joined["payment"]["id"]
    assert first["checked"] == {"payments": 1, "refunds": 0, "payouts": 0}
    assert first["ledger_balanced"] is True
    assert first["finished_at"] is not None
    assert world.payment(joined)["status"] == "paid"
    assert [p["status"] for p in world.my_participations(buyer(1))] == ["paid"]
    assert escrow(world, session["id"]) == 200_000
    assert world.invoice_callback(joined, "PAID").body == {"status": "duplicate"}  # the late callback: nothing

    second = recon.run()

    assert second["mismatches"] == []
    assert second["mismatch_totals"] == {"repaired": 0, "reported": 0}
    assert second["checked"]["payments"] == 1
    assert escrow(world, session["id"]) == 200_000


@pytest.mark.parametrize(("field", "theirs"), [("amount", 150_000), ("currency", "USD")])
def test_an_amount_xendit_disagrees_with_is_reported_never_repaired(recon, world, field, theirs):
    """PAY-8: Xendit's paid invoice says another amount, or another currency: reported, nothing captured."""
    session, joined = drifted_payment(world)
    setattr(world.xendit._invoices[joined["payment"]["invoice_id"]], field, theirs)  # Xendit's record differs

    run = recon.run()

    assert kinds_of(run) == [("amount_mismatch", "reported")]
    [mismatch] = run["mismatches"]
    assert (mismatch["ours"][field], mismatch["theirs"][field]) == (
        {"amount": 200_000, "currency": "IDR"}[field],
        theirs,
    )
    assert world.payment(joined)["status"] == "pending"
    assert escrow(world, session["id"]) == 0


def test_a_pending_payment_whose_invoice_expired_at_xendit_without_callback_is_expired_and_reported(recon, world):
    """PAY-8, issue 7 review gap 3: the invoice ran out at Xendit and its EXPIRED callback never came. The run
    applies Xendit's record as the callback would have (the payment expires, the participation with it), so
    a pending payment never stays pending for ever; the late callback is a duplicate, a second run agrees."""
    joined = drifted_payment_expired(world)

    first = recon.run()

    assert kinds_of(first) == [("expired_at_gateway_pending_here", "repaired")]
    assert first["mismatches"][0]["theirs"]["status"] == "expired"
    assert world.payment(joined)["status"] == "expired"
    assert [p["status"] for p in world.my_participations(buyer(1))] == ["expired"]
    assert world.invoice_callback(joined, "EXPIRED").body == {"status": "duplicate"}
    assert first["ledger_balanced"] is True
    assert recon.run()["mismatches"] == []


def test_an_invoice_xendit_answers_for_another_payment_is_reported_and_applied_to_neither(recon, world):
    """PAY-8, issue 7 review: Xendit's record of our payment's invoice names another payment (external_id) and
    is paid: nothing is captured, for ours or for the one it names; it is reported."""
    session = world.session()
    ours = world.joined(buyer(1), session["id"])
    other = world.joined(buyer(2), session["id"])
    world.pay_at_xendit(other)
    world.xendit._invoices[ours["payment"]["invoice_id"]] = world.xendit._invoices[other["payment"]["invoice_id"]]

    run = recon.run()

    assert ("reference_mismatch", "reported") in kinds_of(run)
    [lie] = [m for m in run["mismatches"] if m["kind"] == "reference_mismatch"]
    assert (lie["reference_id"], lie["theirs"]["external_id"]) == (ours["payment"]["id"], other["payment"]["id"])
    assert world.payment(ours)["status"] == "pending"
    assert captures(world, ours["payment"]["id"]) == 0
    assert captures(world, other["payment"]["id"]) <= 1


def test_a_payment_xendit_does_not_know_is_reported(recon, world):
    session = world.session()
    joined = world.joined(buyer(1), session["id"])
    del world.xendit._invoices[joined["payment"]["invoice_id"]]

    run = recon.run()

    assert kinds_of(run) == [("unknown_at_gateway", "reported")]
    assert run["mismatches"][0]["theirs"] == {"error": "INVOICE_NOT_FOUND_ERROR"}


def test_a_payment_we_hold_as_paid_that_xendit_was_not_paid_is_reported(recon, world):
    session = world.session()
    joined = world.joined(buyer(1), session["id"])
    world.invoice_callback(joined, "PAID")  # a callback we applied; Xendit's invoice is still pending

    run = recon.run()

    assert kinds_of(run) == [("not_paid_at_gateway", "reported")]
    assert world.payment(joined)["status"] == "paid"


def test_a_repair_whose_page_crashed_before_recording_it_is_still_reported_repaired(recon, world):
    """PAY-8, issue 7 review gap 1: the page dies after the repair committed and before the mismatch was
    recorded; the retried page finds the payment in agreement with Xendit, yet the run still reports what it
    repaired (from what the first attempt noted before repairing), once, and finishes with nothing left over."""
    session, joined = drifted_payment(world)
    run_id = recon.start().body["id"]
    with (
        mock.patch.object(RunsRepository, "add_mismatch", side_effect=RuntimeError("crash")),
        pytest.raises(RuntimeError),
    ):
        world.step("CheckReconciliationPageFunction", run_id=run_id, kind="PAYMENTS", cursor=None)
    assert world.payment(joined)["status"] == "paid"

    run = recon.carry_out(run_id)

    assert kinds_of(run) == [("paid_at_gateway_pending_here", "repaired")]
    [repaired] = run["mismatches"]
    assert repaired["reference_id"] == joined["payment"]["id"]
    assert repaired["ours"]["status"] == "pending"
    assert repaired["theirs"]["status"] == "paid"
    assert run["mismatch_totals"] == {"repaired": 1, "reported": 0}
    assert captures(world, joined["payment"]["id"]) == 1
    assert escrow(world, session["id"]) == 200_000
    assert run["checked"]["payments"] == 1
    assert [
        i for i in world.items("PaymentsTable", f"RECONCILIATION#{run_id}") if i["sk"].startswith("REPAIRING#")
    ] == []


def test_xendit_down_mid_page_fails_the_page_and_its_retry_counts_and_repairs_each_record_once(recon, world):
    """PAY-8, SYS-6, issue 7 review: Xendit stops answering for one record of a page whose other record is
    repaired meanwhile; the page fails (DependencyUnavailable: the state machine retries it with backoff, then
    fails the run visibly), counting nothing. Its retry, Xendit back, counts both records once, reports both
    repairs once, and captures each payment once."""
    session = world.session()
    first, second = (world.joined(buyer(n), session["id"]) for n in (1, 2))
    for joined in (first, second):
        world.pay_at_xendit(joined)
    # Down for the record the page reads first: the other one is repaired on the pool meanwhile, and its
    # mismatch is not recorded when the page fails.
    down, _ = sorted((first, second), key=lambda j: (world.payment(j)["created_at"], j["payment"]["id"]))
    run_id = recon.start().body["id"]
    real_get_invoice = XenditGateway.get_invoice

    def down_for_one(gateway, invoice_id):
        if invoice_id == down["payment"]["invoice_id"]:
            raise DependencyUnavailable("the payment provider did not answer; retry shortly")
        return real_get_invoice(gateway, invoice_id)

    with (
        mock.patch.object(XenditGateway, "get_invoice", down_for_one),
        pytest.raises(DependencyUnavailable),
    ):
        world.step("CheckReconciliationPageFunction", run_id=run_id, kind="PAYMENTS", cursor=None)
    assert recon.get(run_id).body["checked"]["payments"] == 0

    run = recon.carry_out(run_id)

    assert run["checked"]["payments"] == 2
    assert sorted(m["reference_id"] for m in run["mismatches"]) == sorted(j["payment"]["id"] for j in (first, second))
    assert run["mismatch_totals"] == {"repaired": 2, "reported": 0}
    assert [captures(world, j["payment"]["id"]) for j in (first, second)] == [1, 1]
    assert escrow(world, session["id"]) == 200_000


def test_a_run_past_its_page_budget_refuses_the_next_page_and_shows_failed(recon, world):
    """PAY-8, SYS-6, issue 7 review: a period with more pages than one execution's 25 000 history events
    allow would kill the execution at the history limit, leaving the run `running` for ever. The page past
    MAX_PAGES refuses instead (a refusal: not retried), and the machine's RecordStuck shows the run failed."""
    drifted_payment(world)
    run_id = recon.start().body["id"]
    page = world.step("CheckReconciliationPageFunction", run_id=run_id, kind="PAYMENTS", cursor=None, pages=0)
    assert page["pages"] == 1

    with pytest.raises(RunTooLarge):
        world.step("CheckReconciliationPageFunction", run_id=run_id, kind="REFUNDS", cursor=None, pages=MAX_PAGES)
    world.step(
        "RecordReconciliationFailedFunction",
        run_id=run_id,
        step="CheckRefundsPage",
        error={"Error": "RunTooLarge", "Cause": "..."},
    )

    run = recon.get(run_id).body
    assert (run["status"], run["error"]) == ("failed", "CheckRefundsPage: RunTooLarge")
    assert run["finished_at"] is not None


def test_a_run_that_fails_after_a_page_died_mid_repair_still_reports_the_repair(recon, world):
    """PAY-8, issue 7 review gap 1: the page dies after the repair and before recording it, and keeps failing
    until the machine gives up: the failed run still lists the repair it began (reported, for a person to
    look at: whether it committed is not known there), never a repair that vanished."""
    _, joined = drifted_payment(world)
    run_id = recon.start().body["id"]
    with (
        mock.patch.object(RunsRepository, "add_mismatch", side_effect=RuntimeError("crash")),
        pytest.raises(RuntimeError),
    ):
        world.step("CheckReconciliationPageFunction", run_id=run_id, kind="PAYMENTS", cursor=None)

    world.step("RecordReconciliationFailedFunction", run_id=run_id, step="CheckPaymentsPage", error={"Error": "X"})

    run = recon.get(run_id).body
    assert run["status"] == "failed"
    assert kinds_of(run) == [("paid_at_gateway_pending_here", "reported")]
    assert run["mismatches"][0]["reference_id"] == joined["payment"]["id"]
    assert run["mismatches"][0]["ours"]["repair"] == "interrupted"


def test_a_page_retried_after_it_was_counted_counts_its_records_once(recon, world):
    """Step Functions retries a page whose answer was lost (States.Timeout): its records are checked again,
    but counted, and their mismatches recorded, once."""
    session = world.session()
    for n in (1, 2):
        del world.xendit._invoices[world.joined(buyer(n), session["id"])["payment"]["invoice_id"]]
    run_id = recon.start().body["id"]

    for _ in range(2):
        world.step("CheckReconciliationPageFunction", run_id=run_id, kind="PAYMENTS", cursor=None)

    run = recon.get(run_id).body
    assert run["checked"]["payments"] == 2
    assert run["mismatch_totals"] == {"repaired": 0, "reported": 2}
    assert len(run["mismatches"]) == 2


@pytest.mark.parametrize("first", ["webhook", "repair"])
def test_a_repair_racing_the_late_webhook_has_one_outcome(recon, world, first):
    """The PAID callback arrives while the run repairs the same payment (just before the repair applies
    Xendit's record, or just after): one capture, one escrow credit, the other is a duplicate."""
    session, joined = drifted_payment(world)
    read_invoice = XenditGateway.get_invoice
    callbacks = []

    def racing(gateway, invoice_id):
        found = read_invoice(gateway, invoice_id)
        if first == "webhook" and len(callbacks) == 0 and reads.call_count == 2:  # apply_paid_invoice's read
            callbacks.append(world.invoice_callback(joined, "PAID").body)
        return found

    with mock.patch.object(XenditGateway, "get_invoice", autospec=True, side_effect=racing) as reads:
        run = recon.run()
    if first == "repair":
        callbacks.append(world.invoice_callback(joined, "PAID").body)

    if first == "webhook":
        assert callbacks == [{"status": "paid"}]
        assert run["mismatches"] == []  # the callback got there first: nothing left to repair
    else:
        assert callbacks == [{"status": "duplicate"}]
        assert kinds_of(run) == [("paid_at_gateway_pending_here", "repaired")]
    assert captures(world, joined["payment"]["id"]) == 1
    assert escrow(world, session["id"]) == 200_000


def backdate(world, participation: dict[str, Any], created: str) -> None:
    """The payment as if created at ``created`` (its item and its reconciliation index keys)."""
    payment_id = participation["payment"]["id"]
    boto3.client("dynamodb").update_item(
        TableName=world.aws.tables["PaymentsTable"],
        Key={"pk": {"S": f"PAYMENT#{payment_id}"}, "sk": {"S": "META"}},
        UpdateExpression="SET created_at = :c, gsi1pk = :pk, gsi1sk = :sk",
        ExpressionAttributeValues={
            ":c": {"S": created},
            ":pk": {"S": f"PAYMENTS#{created[:10]}"},
            ":sk": {"S": f"{created}#{payment_id}"},
        },
    )


def test_two_runs_over_the_same_period_repair_a_payment_once_and_report_it_once(recon, world):
    """PAY-8, issue 7 review: the daily run and an admin's run check the same drifted payment at once. The
    admin's run has compared it and is about to repair it when the daily run repairs it first: one capture,
    one escrow credit; the daily run reports the repair, the admin's run finds nothing left to report."""
    session, joined = drifted_payment(world)
    daily = world.step("StartDailyReconciliationFunction", id="evt-concurrent", source="aws.events", detail={})["id"]
    admin = recon.start().body["id"]
    begin_repair = RunsRepository.begin_repair

    def daily_run_first(self, run_id, found):
        begin_repair(self, run_id, found)
        if run_id == admin:
            world.step("CheckReconciliationPageFunction", run_id=daily, kind="PAYMENTS", cursor=None)

    with mock.patch.object(RunsRepository, "begin_repair", daily_run_first):
        admins = recon.carry_out(admin)
    dailys = recon.carry_out(daily)

    assert kinds_of(dailys) == [("paid_at_gateway_pending_here", "repaired")]
    assert admins["mismatches"] == [] and admins["checked"]["payments"] == 1
    assert captures(world, joined["payment"]["id"]) == 1
    assert escrow(world, session["id"]) == 200_000
    assert admins["ledger_balanced"] is dailys["ledger_balanced"] is True


def test_only_the_records_of_the_period_are_checked(recon, world):
    _, joined = drifted_payment(world)
    now = datetime.now(UTC)

    earlier = recon.run(**{"from": to_iso(now - timedelta(days=10)), "to": to_iso(now - timedelta(days=9))})

    assert earlier["checked"] == {"payments": 0, "refunds": 0, "payouts": 0}
    assert earlier["mismatches"] == []
    assert (earlier["from"], earlier["to"]) == (to_iso(now - timedelta(days=10)), to_iso(now - timedelta(days=9)))
    assert world.payment(joined)["status"] == "pending"


def test_a_period_of_several_days_is_read_day_by_day_in_batches(recon, world):
    """Five payments over three UTC days (created_at moved back in the item and its index keys), batch 3."""
    session = world.session()
    joined = [world.joined(buyer(n), session["id"]) for n in range(1, 6)]
    now = datetime.now(UTC)
    for n, participation in enumerate(joined):
        backdate(world, participation, to_iso(now - timedelta(days=n % 3, minutes=n)))
        world.pay_at_xendit(participation)
    run_id = recon.start(**{"from": to_iso(now - timedelta(days=3)), "to": to_iso(now + timedelta(minutes=1))}).body[
        "id"
    ]

    pages = recon.check_pages(run_id, "PAYMENTS")
    run = recon.carry_out(run_id)

    assert pages == 2  # 3 + 2 records
    assert run["checked"]["payments"] == 5
    assert sorted(m["reference_id"] for m in run["mismatches"]) == sorted(p["payment"]["id"] for p in joined)
    assert {p["status"] for p in world.my_participations(buyer(3))} == {"paid"}


def test_a_period_includes_a_record_created_at_its_from_and_excludes_one_created_at_its_to(recon, world):
    """PAY-8, issue 7 review: a period [from, to) from mid-day to mid-day two UTC days later. Records created at
    `from` and one second before `to` are checked; one second before `from` and exactly at `to` are not; the
    day in the middle holds exactly a batch (3) of records."""
    session = world.session()
    start, end = datetime(2026, 11, 1, 13, 30, tzinfo=UTC), datetime(2026, 11, 3, 7, 15, tzinfo=UTC)
    created = {
        "before from": start - timedelta(seconds=1),
        "at from": start,
        "middle 1": datetime(2026, 11, 2, 0, 0, tzinfo=UTC),
        "middle 2": datetime(2026, 11, 2, 12, 0, tzinfo=UTC),
        "middle 3": datetime(2026, 11, 2, 23, 59, 59, tzinfo=UTC),
        "before to": end - timedelta(seconds=1),
        "at to": end,
    }
    joined = {}
    for n, (name, moment) in enumerate(created.items(), start=1):
        joined[name] = world.joined(buyer(n), session["id"])
        backdate(world, joined[name], to_iso(moment))
        world.pay_at_xendit(joined[name])

    run = recon.run(**{"from": to_iso(start), "to": to_iso(end)})

    inside = {"at from", "middle 1", "middle 2", "middle 3", "before to"}
    assert run["checked"]["payments"] == len(inside)
    assert {m["reference_id"] for m in run["mismatches"]} == {joined[name]["payment"]["id"] for name in inside}
    assert {name for name in created if world.payment(joined[name])["status"] == "paid"} == inside


# ---- refunds
@pytest.mark.parametrize(("outcome", "destination"), [("succeed", "xendit"), ("fail", "wallet")])
def test_a_refund_settled_at_xendit_whose_callback_was_lost_is_completed(recon, world, outcome, destination):
    """The refund stayed pending here for ever. The run applies Xendit's record through the refund callback's
    path: succeeded at Xendit, or failed there and credited to the buyer's wallet."""
    joined = refund_settled_at_xendit_without_callback(world, outcome)

    run = recon.run()

    assert kinds_of(run) == [("refunded_at_gateway_not_here", "repaired")]
    refund = world.refund_of(joined)
    assert (refund["status"], refund["destination"]) == ("succeeded", destination)
    assert world.payment(joined)["status"] == "refunded"
    assert world.wallet(buyer(1)) == (200_000 if destination == "wallet" else 0)
    assert run["checked"] == {"payments": 1, "refunds": 1, "payouts": 0}
    late = world.refund_callback(refund, f"refund.{outcome}ed")  # the callback, delivered at last: no effect
    assert late.body == {"status": "already_refunded"}
    assert len([m for m in world.items("LedgerTable", "MOVEMENT#") if m["type"] == "refund"]) == 1
    assert world.quarantined() == []
    assert recon.run()["mismatches"] == []


def test_a_crash_after_the_refund_repair_then_the_page_retried_refunds_once(recon, world):
    joined = refund_settled_at_xendit_without_callback(world)
    run_id = recon.start().body["id"]
    with (
        mock.patch.object(RunsRepository, "add_mismatch", side_effect=RuntimeError("crash")),
        pytest.raises(RuntimeError),
    ):
        recon.world.step("CheckReconciliationPageFunction", run_id=run_id, kind="REFUNDS", cursor=None)

    recon.carry_out(run_id)

    assert world.refund_of(joined)["status"] == "succeeded"
    assert len([m for m in world.items("LedgerTable", "MOVEMENT#") if m["type"] == "refund"]) == 1


def test_a_refund_repair_racing_the_late_refund_callback_has_one_outcome(recon, world):
    """The refund callback arrives while the run repairs the same refund, just before the repair applies
    Xendit's record: the refund completes once, with one ledger movement; the repair finds nothing to do."""
    joined = refund_settled_at_xendit_without_callback(world)
    read_refund = XenditGateway.get_refund
    callbacks = []

    def racing(gateway, refund_id):
        found = read_refund(gateway, refund_id)
        if reads.call_count == 2:  # apply_refund_record's read
            callbacks.append(world.refund_callback(world.refund_of(joined), "refund.succeeded").body)
        return found

    with mock.patch.object(XenditGateway, "get_refund", autospec=True, side_effect=racing) as reads:
        run = recon.run()

    assert callbacks == [{"status": "refunded_to_xendit"}]
    assert run["mismatches"] == []
    assert world.refund_of(joined)["status"] == "succeeded"
    assert len([m for m in world.items("LedgerTable", "MOVEMENT#") if m["type"] == "refund"]) == 1
    assert world.quarantined() == []


def test_a_refund_amount_xendit_disagrees_with_is_reported(recon, world):
    joined = refund_settled_at_xendit_without_callback(world)
    sent = world.refund_of(joined)
    world.xendit._refunds[sent["provider_refund_id"]].amount = 1_000

    run = recon.run()

    assert kinds_of(run) == [("amount_mismatch", "reported")]
    assert world.refund_of(joined)["status"] == "pending"


def test_a_refund_record_xendit_answers_for_another_of_our_refunds_is_reported_and_applied_to_neither(recon, world):
    """PAY-8, issue 7 review: Xendit's record of our refund names another of our refunds (reference_id), settled:
    neither refund is completed from it (the other's buyer is not refunded on this record); it is reported."""
    joined = refund_settled_at_xendit_without_callback(world)
    session = world.session()
    other = world.joined(buyer(2), session["id"], quantity=2)
    world.pay(other)
    world.leave(buyer(2), session["id"])
    world.process_refunds()
    sent, others = world.refund_of(joined), world.refund_of(other)
    assert others["status"] == "pending"
    world.xendit._refunds[sent["provider_refund_id"]].reference_id = others["id"]

    run = recon.run()

    assert ("reference_mismatch", "reported") in kinds_of(run)
    [lie] = [m for m in run["mismatches"] if m["kind"] == "reference_mismatch"]
    assert (lie["reference_id"], lie["theirs"]["reference_id"]) == (sent["id"], others["id"])
    assert world.refund_of(joined)["status"] == world.refund_of(other)["status"] == "pending"


def test_a_refund_xendit_does_not_know_is_reported(recon, world):
    joined = refund_settled_at_xendit_without_callback(world)
    del world.xendit._refunds[world.refund_of(joined)["provider_refund_id"]]

    run = recon.run()

    assert kinds_of(run) == [("unknown_at_gateway", "reported")]


# ---- the ledger
def one_sided_balance(world, debit: int | None) -> None:
    """A balance item with no other side (as a movement caught half indexed shows), or none (``debit`` None)."""
    dynamodb, table = boto3.client("dynamodb"), world.aws.tables["LedgerTable"]
    key = {"pk": {"S": "ACCOUNT#test:one-sided"}, "sk": {"S": "BALANCE"}}
    if debit is None:
        dynamodb.delete_item(TableName=table, Key=key)
        return
    dynamodb.put_item(
        TableName=table,
        Item={
            **key,
            "account": {"S": "test:one-sided"},
            "currency": {"S": "IDR"},
            "debit": {"N": str(debit)},
            "credit": {"N": "0"},
            "balance": {"N": str(debit)},
            "gsi1pk": {"S": "BALANCES#0"},
            "gsi1sk": {"S": "test:one-sided"},
        },
    )


def test_an_unbalanced_ledger_is_read_twice_then_reported(recon, world):
    """A one-sided balance item that stays put makes the trial balance unbalanced by the same amount on two
    readings in a row: ledger_unbalanced, reported; ledger_balanced false."""
    one_sided_balance(world, 500)
    try:
        run = recon.run()
    finally:
        one_sided_balance(world, None)

    assert run["ledger_balanced"] is False
    assert kinds_of(run) == [("ledger_unbalanced", "reported")]
    assert run["mismatches"][0]["ours"]["IDR"]["debit"] - run["mismatches"][0]["ours"]["IDR"]["credit"] == 500


def test_a_ledger_caught_half_indexed_on_two_readings_by_different_movements_is_not_called_unbalanced(recon, world):
    """PAY-5, PAY-8, issue 7 review: on a busy ledger each reading of the eventually consistent balance index may
    catch another movement half indexed: +500 on the first reading, +300 on the second, balanced on the
    third. An imbalance that changes is movements in flight, not a broken ledger: balanced, nothing reported."""
    run_id = recon.start().body["id"]
    for kind in KINDS:
        recon.check_pages(run_id, kind)
    readings = iter([500, 300, None])
    real_trial_balance = Ledger.trial_balance

    def busy_ledger(self):
        reading, in_flight = real_trial_balance(self), next(readings)
        if in_flight is None:
            return reading
        idr = reading.currencies.get("IDR", CurrencyTotals())
        half_indexed = idr.model_copy(update={"debit": idr.debit + in_flight})
        return reading.model_copy(update={"balanced": False, "currencies": {**reading.currencies, "IDR": half_indexed}})

    with mock.patch.object(Ledger, "trial_balance", busy_ledger):
        recon.check_ledger(run_id)
    world.step("FinishReconciliationRunFunction", run_id=run_id)

    run = recon.get(run_id).body
    assert run["ledger_balanced"] is True
    assert run["mismatches"] == []


# ---- the route
def test_only_an_admin_starts_or_reads_a_run(recon, world):
    run_id = recon.start().body["id"]

    assert recon.start(who=buyer(1)).status == 403
    assert recon.get(run_id, who=buyer(1)).status == 403
    assert recon.get("rec_unknown").status == 404


def test_a_run_is_started_running_with_the_default_period_of_48_hours(recon, world):
    started = recon.start()

    assert started.status == 202
    assert started.body == {"id": started.body["id"], "status": "running"}
    run = recon.get(started.body["id"]).body
    period = datetime.fromisoformat(run["to"]) - datetime.fromisoformat(run["from"])
    assert (run["status"], period) == ("running", timedelta(hours=48))
    executions = boto3.client("stepfunctions").list_executions(
        stateMachineArn=os.environ["RECONCILIATION_STATE_MACHINE_ARN"]
    )["executions"]
    assert [e["name"] for e in executions] == [started.body["id"]]


@pytest.mark.parametrize(
    "period",
    [
        {"from": "2026-11-02T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
        {"from": "2026-11-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
        {"from": "2026-10-01T00:00:00Z", "to": "2026-11-02T00:00:00Z"},
        {"from": "0001-01-01T00:00:00Z"},
        {"to": "not a time"},
    ],
)
def test_a_period_that_is_empty_reversed_or_too_long_is_422(recon, world, period):
    response = recon.start(**period)

    assert response.status == 422, response.body
    assert response.body["error"]["code"] == "validation_error"


def test_an_idempotency_key_starts_one_run(recon, world):
    first = recon.start(key="daily-check-1")
    again = recon.start(key="daily-check-1")

    assert first.status == again.status == 202
    assert first.body["id"] == again.body["id"]


def test_the_daily_schedule_starts_one_run_per_scheduled_event(recon, world):
    event = {"id": "evt-1", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}

    first = world.step("StartDailyReconciliationFunction", **event)
    again = world.step("StartDailyReconciliationFunction", **event)  # EventBridge delivered it twice

    assert first == again
    executions = boto3.client("stepfunctions").list_executions(
        stateMachineArn=os.environ["RECONCILIATION_STATE_MACHINE_ARN"]
    )["executions"]
    assert [e["name"] for e in executions] == [first["id"]]


def executions_started() -> list[dict[str, Any]]:
    sfn = boto3.client("stepfunctions")
    return [
        {"name": e["name"], **json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"])}
        for e in sfn.list_executions(stateMachineArn=os.environ["RECONCILIATION_STATE_MACHINE_ARN"])["executions"]
    ]


def test_a_start_that_dies_after_starting_the_execution_leaves_a_run_its_execution_opens_and_finishes(recon, world):
    """PAY-8, SYS-6, issue 7 review gap 2: a POST without Idempotency-Key dies between starting the run's
    execution and creating the run item. The execution's first state creates it from its input and the run
    is carried out: never a run `running` with no execution behind it, never an execution with no run."""
    _, joined = drifted_payment(world)
    with mock.patch.object(RunsRepository, "add_run", side_effect=RuntimeError("crash")):
        crashed = recon.start()
    assert crashed.status == 500
    [opening] = executions_started()

    world.step("OpenReconciliationRunFunction", **{k: v for k, v in opening.items() if k != "name"})
    run = recon.carry_out(opening["run_id"])

    assert opening["name"] == opening["run_id"] == run["id"]
    assert run["status"] == "done"
    assert kinds_of(run) == [("paid_at_gateway_pending_here", "repaired")]
    assert datetime.fromisoformat(run["to"]) - datetime.fromisoformat(run["from"]) == timedelta(hours=48)
    assert world.payment(joined)["status"] == "paid"


def test_a_start_that_dies_before_its_execution_started_leaves_no_run_running(recon, world):
    """PAY-8, SYS-6, issue 7 review gap 2: Step Functions refuses the start; the admin gets an error and no run
    shows `running` that no execution will ever finish."""
    with mock.patch.object(ExecutionStarter, "start", side_effect=DependencyUnavailable("Step Functions is down")):
        refused = recon.start()

    assert refused.status == 503, refused.body
    assert world.items("PaymentsTable", "RECONCILIATION#") == []
    assert executions_started() == []
