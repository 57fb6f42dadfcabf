"""Reconciliation runs and the records they check, in the Payments table (PAY-8).

A run is one item ``RECONCILIATION#id``/``META`` holding its period, status and counters; each mismatch is an
item of its own (``MISMATCH#kind#reference_id``: a run may find many, an item holds 400 KB). Counters move by
atomic ADD, each in the transaction of a marker that makes it count once: a page retried after a crash
(``PAGE#kind#cursor``) or a mismatch found again is not counted twice.

The records of a period are read from index gsi1 (``reconciliation.index``), one UTC day's partition after the
other, never by scanning the table."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from patungan.adapters.dynamodb import DynamoTable, Transaction
from patungan.core.clock import parse_iso
from patungan.core.errors import Conflict, NotFound
from patungan.core.pagination import decode_cursor, encode_cursor
from patungan.reconciliation.index import IndexedKind, day_partition
from patungan.reconciliation.models import CheckedCounts, Mismatch, RunView

META = "META"
MISMATCH_PREFIX = "MISMATCH#"
REPAIRING_PREFIX = "REPAIRING#"  # a repair begun and not yet recorded: its mismatch as found
MAX_MISMATCHES_SHOWN = 500  # a run's view lists this many; its totals count them all


class RunMovedOn(Conflict):
    code = "reconciliation_run_state_conflict"


class AlreadyRecorded(Conflict):
    """A marker exists: what it counts was counted before (a retried page, a mismatch found again)."""

    code = "already_recorded"


def _run_pk(run_id: str) -> str:
    return f"RECONCILIATION#{run_id}"


def _repairing_sk(reference_id: str) -> str:
    return f"{REPAIRING_PREFIX}{reference_id}"


@dataclass(frozen=True)
class RunPeriod:
    id: str
    start: str
    end: str


@dataclass(frozen=True)
class Batch:
    items: list[dict[str, Any]]
    cursor: str | None  # None: the kind's records of the period are all read


class RunsRepository:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    def add_run(self, run_id: str, start: str, end: str, started_at: str, trigger: str) -> bool:
        """Create the run; False when a run of that id exists already (a retried start)."""
        try:
            self.table.put(
                {
                    "pk": _run_pk(run_id),
                    "sk": META,
                    "id": run_id,
                    "status": "running",
                    "from": start,
                    "to": end,
                    "started_at": started_at,
                    "trigger": trigger,
                    "checked_payments": 0,
                    "checked_refunds": 0,
                    "checked_payouts": 0,
                    "repaired": 0,
                    "reported": 0,
                },
                condition="attribute_not_exists(pk)",
                on_fail=AlreadyRecorded(f"run {run_id} exists"),
            )
        except AlreadyRecorded:
            return False
        return True

    def period(self, run_id: str) -> RunPeriod:
        item = self._run_item(run_id)
        return RunPeriod(run_id, item["from"], item["to"])

    def count_page(self, run_id: str, kind: IndexedKind, cursor: str | None, checked: int) -> None:
        """Add a page's checked records to the run, once per page (its cursor names it)."""
        tx = Transaction()
        page = hashlib.sha256((cursor or "").encode()).hexdigest()[:32]
        tx.put(
            self.table,
            {"pk": _run_pk(run_id), "sk": f"PAGE#{kind.value}#{page}"},
            condition="attribute_not_exists(pk)",
            on_fail=AlreadyRecorded(f"page {page} of {kind} was counted"),
        )
        tx.update(
            self.table,
            {"pk": _run_pk(run_id), "sk": META},
            "ADD #checked :n",
            condition="#status = :running",
            names={"#checked": f"checked_{kind.value.lower()}", "#status": "status"},
            values={":n": checked, ":running": "running"},
            on_fail=RunMovedOn(f"run {run_id} is not running"),
        )
        try:
            tx.commit()
        except AlreadyRecorded:
            return

    def begin_repair(self, run_id: str, found: Mismatch) -> None:
        """Note, before a checker repairs a record, the mismatch it found: a page that crashes after the repair
        committed and before the mismatch was recorded leaves this, and its retry reports the repair from it."""
        self.table.put(
            {"pk": _run_pk(run_id), "sk": _repairing_sk(found.reference_id), **found.model_dump(mode="json")}
        )

    def repairs_begun(self, run_id: str) -> dict[str, Mismatch]:
        """The run's repairs begun and never recorded (by an attempt that crashed), by reference id: read once
        a page, usually none."""
        begun: dict[str, Mismatch] = {}
        last_key = None
        while True:
            result = self.table.query(
                "pk = :pk AND begins_with(sk, :prefix)",
                values={":pk": _run_pk(run_id), ":prefix": REPAIRING_PREFIX},
                start_key=last_key,
                consistent=True,
            )
            for item in result.items:
                begun[item["reference_id"]] = Mismatch.model_validate(item)
            last_key = result.last_key
            if last_key is None:
                return begun

    def end_repair(self, run_id: str, reference_id: str) -> None:
        self.table.delete({"pk": _run_pk(run_id), "sk": _repairing_sk(reference_id)})

    def add_mismatch(self, run_id: str, mismatch: Mismatch) -> bool:
        """Record a mismatch once (False when it was recorded before) and count it by its resolution; the
        record's begun repair, if any, ends with it."""
        tx = Transaction()
        tx.delete(self.table, {"pk": _run_pk(run_id), "sk": _repairing_sk(mismatch.reference_id)})
        tx.put(
            self.table,
            {
                "pk": _run_pk(run_id),
                "sk": f"{MISMATCH_PREFIX}{mismatch.kind}#{mismatch.reference_id}",
                **mismatch.model_dump(mode="json"),
            },
            condition="attribute_not_exists(pk)",
            on_fail=AlreadyRecorded(f"mismatch {mismatch.kind} of {mismatch.reference_id} was recorded"),
        )
        tx.update(
            self.table,
            {"pk": _run_pk(run_id), "sk": META},
            "ADD #resolution :one",
            names={"#resolution": mismatch.resolution},
            values={":one": 1},
        )
        try:
            tx.commit()
        except AlreadyRecorded:
            self.end_repair(run_id, mismatch.reference_id)
            return False
        return True

    def set_ledger_balanced(self, run_id: str, balanced: bool) -> None:
        self.table.update(
            {"pk": _run_pk(run_id), "sk": META}, "SET ledger_balanced = :balanced", values={":balanced": balanced}
        )

    def finish(self, run_id: str, status: str, finished_at: str, error: str | None = None) -> bool:
        """Move a running run to ``status``; False when it had finished already (a retried step)."""
        try:
            self.table.update(
                {"pk": _run_pk(run_id), "sk": META},
                "SET #status = :status, finished_at = :at, #error = :error",
                condition="#status = :running",
                names={"#status": "status", "#error": "error"},
                values={":status": status, ":at": finished_at, ":error": error, ":running": "running"},
                on_fail=RunMovedOn(f"run {run_id} finished already"),
            )
        except RunMovedOn:
            return False
        return True

    def view(self, run_id: str) -> RunView:
        item = self._run_item(run_id)
        mismatches = self.table.query_page(
            "pk = :pk AND begins_with(sk, :prefix)",
            limit=MAX_MISMATCHES_SHOWN,
            values={":pk": _run_pk(run_id), ":prefix": MISMATCH_PREFIX},
        ).items
        return RunView(
            id=item["id"],
            status=item["status"],
            from_=item["from"],
            to=item["to"],
            started_at=item["started_at"],
            finished_at=item.get("finished_at"),
            checked=CheckedCounts(
                payments=item["checked_payments"], refunds=item["checked_refunds"], payouts=item["checked_payouts"]
            ),
            mismatches=[Mismatch.model_validate(m) for m in mismatches],
            mismatch_totals={"repaired": item["repaired"], "reported": item["reported"]},
            ledger_balanced=item.get("ledger_balanced"),
            error=item.get("error"),
        )

    def _run_item(self, run_id: str) -> dict[str, Any]:
        item = self.table.get({"pk": _run_pk(run_id), "sk": META})
        if item is None:
            raise NotFound(f"no reconciliation run {run_id}")
        return item


class RecordsIndex:
    """One kind's records created in ``[start, end)``, a batch at a time, read from gsi1 day by day in pages
    of ``page_size``. The cursor says which day and where in it the next batch starts."""

    def __init__(self, table: DynamoTable, page_size: int) -> None:
        self.table = table
        self.page_size = page_size

    def pages(self, kind: IndexedKind, start: str, end: str, cursor: str | None) -> Iterator[Batch]:
        """Batches of at most ``page_size`` records, each with the cursor after it, from ``cursor`` on."""
        position = decode_cursor(cursor) or {"day": parse_iso(start).strftime("%Y-%m-%d"), "key": None}
        day, last_key = position["day"], position["key"]
        final_day = (parse_iso(end) - timedelta(seconds=1)).strftime("%Y-%m-%d")
        while True:
            result = self.table.query(
                "gsi1pk = :pk AND gsi1sk BETWEEN :start AND :end",
                index="gsi1",
                values={":pk": day_partition(kind, day), ":start": start, ":end": end},
                limit=self.page_size,
                start_key=last_key,
            )
            last_key = result.last_key
            if last_key is None:
                if day >= final_day:
                    yield Batch(result.items, None)
                    return
                day = _next_day(day)
            yield Batch(result.items, encode_cursor({"day": day, "key": last_key}))


def _next_day(day: str) -> str:
    return (datetime.strptime(day, "%Y-%m-%d") + timedelta(days=1)).strftime("%Y-%m-%d")
