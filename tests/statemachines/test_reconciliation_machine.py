"""The reconciliation state machine as moto's interpreter runs it (PAY-8): started over HTTP by an admin, it pages
through the period, reports what it may not repair, proves the ledger and finishes the run; a step that keeps
failing leaves the run visibly failed and the execution FAILED (its alarm), never a run "running" for ever."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
import requests

from emulator.stack import LOCAL_XENDIT_SECRET_KEY
from emulator.template import REGION, Template
from patungan.adapters.dynamodb import serialize
from patungan.core.clock import to_iso
from patungan.core.ids import new_id
from patungan.reconciliation.index import IndexedKind, index_keys
from patungan.reconciliation.service import LEDGER_READINGS, MAX_PAGES
from tests.emulator.support import eventually

TEMPLATE = Template.load()
# Per CheckPage loop iteration: TaskStateEntered, TaskScheduled, TaskStarted, TaskSucceeded, TaskStateExited,
# ChoiceStateEntered, ChoiceStateExited (the arithmetic in reconciliation/service.py rests on it).
EVENTS_PER_PAGE = 7
# Execution start and end, OpenRun, the Pass states before each kind, CheckLedger and its Choice, FinishRun, Done.
EVENTS_OUTSIDE_PAGES = 29
# The Wait, RecheckLedger and its Choice per reading after an unbalanced first one.
RECHECK_EVENTS = 9 * (LEDGER_READINGS - 1)
HISTORY_LIMIT = 25_000


def put(item: dict[str, Any]) -> None:
    boto3.client("dynamodb", region_name=REGION).put_item(TableName=TEMPLATE.ref("PaymentsTable"), Item=serialize(item))


def admin_token(stack) -> str:
    response = requests.post(f"{stack.url}/_local/token", json={"sub": "admin-1", "groups": ["admin"]}, timeout=30)
    return response.json()["token"]


def start_run(stack, **period: str) -> str:
    response = requests.post(
        f"{stack.url}/v1/admin/reconciliation/runs",
        json=period,
        headers={"Authorization": f"Bearer {admin_token(stack)}"},
        timeout=120,
    )
    assert response.status_code == 202, response.text
    return response.json()["id"]


def finished_run(stack, run_id: str) -> dict[str, Any]:
    def read():
        response = requests.get(
            f"{stack.url}/v1/admin/reconciliation/runs/{run_id}",
            headers={"Authorization": f"Bearer {admin_token(stack)}"},
            timeout=120,
        )
        body = response.json()
        return body if body["status"] != "running" else None

    return eventually(read, timeout=120)


def execution(run_id: str) -> dict[str, Any]:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    arn = TEMPLATE.ref("ReconciliationStateMachine").replace(":stateMachine:", ":execution:") + f":{run_id}"

    def finished():
        described = sfn.describe_execution(executionArn=arn)
        return described if described["status"] != "RUNNING" else None

    return eventually(finished, timeout=120)


def history(execution_arn: str) -> list[dict[str, Any]]:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    return sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]


@pytest.mark.usefixtures("stack")
def test_a_run_checks_the_period_reports_what_it_may_not_repair_and_finishes(stack):
    """One payment whose invoice Xendit does not know, one whose amount Xendit disagrees with."""
    now = to_iso(datetime.now(UTC))
    invoice = requests.post(
        f"{stack.xendit_url}/v2/invoices/",
        json={"external_id": "pay_recon_machine_amount", "amount": 150_000},
        auth=(LOCAL_XENDIT_SECRET_KEY, ""),
        timeout=30,
    ).json()
    payments = {"pay_recon_machine_unknown": "inv_nowhere", "pay_recon_machine_amount": invoice["id"]}
    for payment_id, invoice_id in payments.items():
        put(
            {
                "pk": f"PAYMENT#{payment_id}",
                "sk": "META",
                "id": payment_id,
                "user_id": "buyer-1",
                "purpose": "groupbuy_escrow",
                "status": "pending",
                "amount": 200_000,
                "currency": "IDR",
                "escrow": True,
                "description": "reconciliation machine",
                "invoice_id": invoice_id,
                "created_at": now,
                "updated_at": now,
                **index_keys(IndexedKind.PAYMENTS, now, payment_id),
            }
        )

    run_id = start_run(stack)

    run = finished_run(stack, run_id)
    assert run["status"] == "done"
    assert sorted((m["kind"], m["reference_id"], m["resolution"]) for m in run["mismatches"]) == [
        ("amount_mismatch", "pay_recon_machine_amount", "reported"),
        ("unknown_at_gateway", "pay_recon_machine_unknown", "reported"),
    ]
    assert run["checked"]["payments"] >= 2
    assert run["ledger_balanced"] is True
    done = execution(run_id)
    assert done["status"] == "SUCCEEDED"
    events = history(done["executionArn"])
    pages = sum(1 for event in events if event.get("stateEnteredEventDetails", {}).get("name", "").endswith("Page"))
    assert len(events) == EVENTS_OUTSIDE_PAGES + pages * EVENTS_PER_PAGE
    # So the daily run's 48 hours of 1 000 000 payments a day (2 000 pages of RECONCILIATION_BATCH_SIZE 1 000),
    # with its refunds' and payouts' pages, stays inside Step Functions' 25 000 events; and a run stops at
    # MAX_PAGES with room left for the failure path and retried attempts (3 events each).
    assert EVENTS_OUTSIDE_PAGES + (2_000 + 2) * EVENTS_PER_PAGE + RECHECK_EVENTS < HISTORY_LIMIT
    assert EVENTS_OUTSIDE_PAGES + MAX_PAGES * EVENTS_PER_PAGE + RECHECK_EVENTS + 1_000 * 3 < HISTORY_LIMIT


@pytest.mark.usefixtures("stack")
def test_a_step_that_keeps_failing_leaves_the_run_failed_and_the_execution_failed(stack):
    """A run whose period cannot be read (a ValueError: a refusal, not retried) is caught, recorded on the run
    and fails the execution (ReconciliationStateMachineFailedAlarm)."""
    run_id = new_id("rec")
    put(
        {
            "pk": f"RECONCILIATION#{run_id}",
            "sk": "META",
            "id": run_id,
            "status": "running",
            "from": "not a time",
            "to": to_iso(datetime.now(UTC) + timedelta(hours=1)),
            "started_at": to_iso(datetime.now(UTC)),
            "trigger": "test",
            "checked_payments": 0,
            "checked_refunds": 0,
            "checked_payouts": 0,
            "repaired": 0,
            "reported": 0,
        }
    )
    opening = {
        "run_id": run_id,
        "from": "not a time",
        "to": "2999-01-01T00:00:00Z",
        "started_at": "",
        "trigger": "test",
    }
    boto3.client("stepfunctions", region_name=REGION).start_execution(
        stateMachineArn=TEMPLATE.ref("ReconciliationStateMachine"), name=run_id, input=json.dumps(opening)
    )

    failed = execution(run_id)

    assert (failed["status"], failed["error"]) == ("FAILED", "ReconciliationFailed")
    run = finished_run(stack, run_id)
    assert run["status"] == "failed"
    assert run["error"].startswith("CheckPaymentsPage: ValueError")
    assert run["finished_at"] is not None
