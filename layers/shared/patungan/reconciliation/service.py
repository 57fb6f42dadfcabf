"""Reconciliation runs (PAY-8): a daily schedule and an admin start one for a period; the Reconciliation state
machine pages through the period's payments, refunds and payouts, compares each with Xendit's record through
the kind's ``RecordChecker``, then proves the ledger balances.

Size (Step Functions keeps at most 25 000 events per execution): one CheckPage task costs 5 history events
(TaskStateEntered, TaskScheduled, TaskStarted, TaskSucceeded, TaskStateExited) and its Choice 2 more, so a
loop iteration is 7 events. An iteration checks up to ``batch_size`` records (default 1 000, read from the
index in pages of 100, Xendit called by a pool of ``concurrency`` threads): a day of 1 000 000 payments is
1 000 iterations = 7 000 events (the daily run's 48 hours: 14 000), plus the refunds' and payouts' iterations,
inside the limit; a 31-day period of 1 000 000 a day would not be (217 000 events). So a run checks at most
MAX_PAGES pages (21 000 events, the rest left for retries and the ledger): the page past it refuses
(RunTooLarge), and the run fails visibly (status failed, its alarm) instead of its execution dying at the
history limit with the run ``running`` for ever. Such a period is checked in shorter runs, or with a larger
batch (Lambda's 15 minutes allow ~10 000 records at 4 Xendit calls in flight)."""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from patungan.core.auth import Principal, Role
from patungan.core.clock import Clock, to_iso
from patungan.core.errors import Conflict, field_error
from patungan.core.observability import logger, metrics
from patungan.ledger.models import TrialBalance
from patungan.reconciliation.index import IndexedKind
from patungan.reconciliation.models import Mismatch, RecordChecker, RunInput, RunOpening, RunView, StartedRun
from patungan.reconciliation.repository import RecordsIndex, RunsRepository

LEDGER_READINGS = 3  # of the trial balance at most, the machine's WaitBeforeRecheck apart
MAX_PAGES = 3_000  # CheckPage tasks in one execution: 7 history events each (see above)
DEFAULT_PERIOD = timedelta(hours=48)  # a daily run overlaps the day before: drift found late is still found
MAX_PERIOD = timedelta(days=31)
KINDS = (IndexedKind.PAYMENTS, IndexedKind.REFUNDS, IndexedKind.PAYOUTS)


class RunTooLarge(Conflict):
    """The run's period holds more pages than one execution's history allows: split the period."""

    code = "reconciliation_run_too_large"


class Starter(Protocol):
    def start(self, state_machine_arn: str, name: str, input_json: str) -> bool: ...


class TrialBalanceReader(Protocol):
    def trial_balance(self) -> TrialBalance: ...


@dataclass(frozen=True)
class Limits:
    batch_size: int  # records one CheckPage invocation checks
    concurrency: int  # Xendit calls in flight at once


class ReconciliationService:
    def __init__(
        self,
        runs: RunsRepository,
        records: RecordsIndex,
        checkers: Mapping[IndexedKind, RecordChecker],
        ledger: TrialBalanceReader,
        starter: Starter,
        state_machine_arn: str,
        limits: Limits,
        clock: Clock,
    ) -> None:
        self.runs = runs
        self.records = records
        self.checkers = checkers
        self.ledger = ledger
        self.starter = starter
        self.state_machine_arn = state_machine_arn
        self.limits = limits
        self.clock = clock

    # ---- starting (the admin route and the daily schedule)
    def start_run(self, principal: Principal, data: RunInput, run_id: str) -> StartedRun:
        principal.require(Role.ADMIN)
        end = data.to or self._up_to_now()
        start = data.from_ or end - DEFAULT_PERIOD
        if start >= end:
            raise field_error("from", "must be before to")
        if end - start > MAX_PERIOD:
            raise field_error("from", f"a run covers at most {MAX_PERIOD.days} days")
        return self._start(run_id, start, end, trigger=f"admin:{principal.user_id}")

    def start_scheduled_run(self, run_id: str) -> StartedRun:
        end = self._up_to_now()
        return self._start(run_id, end - DEFAULT_PERIOD, end, trigger="schedule")

    def _up_to_now(self) -> datetime:
        """The end of a period that includes this very second (periods are kept to the second, end excluded)."""
        return self.clock.now().replace(microsecond=0) + timedelta(seconds=1)

    def _start(self, run_id: str, start: datetime, end: datetime, trigger: str) -> StartedRun:
        """Start the run's execution, named by the run, then create the run so it shows at once. The execution
        opens the run as its first state too, so a start that dies in between leaves no run that no execution
        carries out (never ``running`` for ever); a retried start finds the execution and starts nothing twice."""
        if not self.state_machine_arn:
            raise RuntimeError("no reconciliation state machine is configured: see the function's environment")
        opening = RunOpening(
            run_id=run_id, from_=to_iso(start), to=to_iso(end), started_at=to_iso(self.clock.now()), trigger=trigger
        )
        started = self.starter.start(self.state_machine_arn, run_id, opening.model_dump_json(by_alias=True))
        if started:  # else the execution there opens its own run, with the period it was started for
            self.open_run(opening)
        logger.info(
            "reconciliation run started" if started else "reconciliation run already started",
            extra={"run_id": run_id, "from": opening.from_, "to": opening.to, "trigger": trigger},
        )
        return StartedRun(id=run_id, status="running")

    def open_run(self, opening: RunOpening) -> dict[str, Any]:
        """Create the run (the execution's first state, and the start): whichever comes second finds it."""
        self.runs.add_run(opening.run_id, opening.from_, opening.to, opening.started_at, opening.trigger)
        return {"run_id": opening.run_id}

    def run(self, principal: Principal, run_id: str) -> RunView:
        principal.require(Role.ADMIN)
        return self.runs.view(run_id)

    # ---- the state machine's steps
    def check_page(self, run_id: str, kind: IndexedKind, cursor: str | None, pages: int = 0) -> dict[str, Any]:
        """Check up to ``batch_size`` records of ``kind`` from ``cursor`` on; the cursor to go on from, or None
        when the kind is done, and the run's ``pages`` so far counting this one. A kind with no checker
        (payouts before the wallet context is wired) counts 0."""
        if pages >= MAX_PAGES:
            raise RunTooLarge(f"run {run_id} reached {MAX_PAGES} pages: check its period in shorter runs")
        checker = self.checkers.get(kind)
        if checker is None:
            logger.warning("no checker for this kind: counted as 0 checked", extra={"run_id": run_id, "kind": kind})
            return {"cursor": None, "done": True, "pages": pages + 1}
        period = self.runs.period(run_id)
        # Repairs an earlier attempt of this page began and never recorded (it died in between): a record that
        # agrees with Xendit now is reported repaired from what that attempt found.
        interrupted = self.runs.repairs_begun(run_id)
        checked = 0
        with ThreadPoolExecutor(self.limits.concurrency, thread_name_prefix="reconciliation") as pool:
            for batch in self.records.pages(kind, period.start, period.end, cursor):
                # Each record is checked in its own copy of this invocation's context (logging keys, the function
                # acting), copied here: a pool thread has a context of its own.
                contexts = [contextvars.copy_context() for _ in batch.items]
                outcomes = pool.map(
                    lambda context, item: context.run(self._check, run_id, checker, item), contexts, batch.items
                )
                for item, (found, began) in zip(batch.items, outcomes, strict=True):
                    mismatch = found or interrupted.pop(item["id"], None)
                    if mismatch is not None:
                        self._record(run_id, mismatch)
                    elif began:  # the webhook got there first: nothing to report
                        self.runs.end_repair(run_id, item["id"])
                self.runs.count_page(run_id, kind, batch.cursor, len(batch.items))
                checked += len(batch.items)
                cursor = batch.cursor
                if cursor is None or checked >= self.limits.batch_size:
                    break
        return {"cursor": cursor, "done": cursor is None, "pages": pages + 1}

    def _check(self, run_id: str, checker: RecordChecker, item: dict[str, Any]) -> tuple[Mismatch | None, bool]:
        """What ``checker`` found for ``item``, and whether it began a repair."""
        began: list[Mismatch] = []

        def repairing(found: Mismatch) -> None:
            self.runs.begin_repair(run_id, found)
            began.append(found)

        return checker.check(item, repairing), bool(began)

    def check_ledger(self, run_id: str, reading: int = 0, earlier: dict[str, int] | None = None) -> dict[str, Any]:
        """Whether the trial balance balances, from one reading of it (the ``reading``-th; ``earlier``: the
        imbalance the one before showed). The balance index is eventually consistent: on a busy ledger a
        reading may catch a movement half indexed, an imbalance that is gone, or another, a moment later. So
        one balanced reading decides balanced; the same imbalance on two readings in a row (a real one stays
        put), or LEDGER_READINGS readings never balanced, decide unbalanced (a mismatch); otherwise the state
        machine waits and reads again with what this reading showed."""
        balance = self.ledger.trial_balance()
        imbalance = {currency: t.debit - t.credit for currency, t in balance.currencies.items() if t.debit != t.credit}
        if not balance.balanced and imbalance != earlier and reading + 1 < LEDGER_READINGS:
            return {"decided": False, "balanced": False, "reading": reading + 1, "imbalance": imbalance}
        self.runs.set_ledger_balanced(run_id, balance.balanced)
        if not balance.balanced:
            currencies = {currency: totals.model_dump() for currency, totals in balance.currencies.items()}
            self._record(
                run_id,
                Mismatch(kind="ledger_unbalanced", reference_id="ledger", ours=currencies, resolution="reported"),
            )
        return {"decided": True, "balanced": balance.balanced}

    def finish(self, run_id: str) -> dict[str, Any]:
        self._report_interrupted_repairs(run_id)
        self.runs.finish(run_id, "done", to_iso(self.clock.now()))
        return {"run_id": run_id, "status": "done"}

    def record_failed(self, run_id: str, step: str, error: Any) -> dict[str, Any]:
        """A step kept failing: the run shows it failed, loudly, before the execution fails (alarmed)."""
        reason = f"{step}: {error.get('Error') if isinstance(error, dict) else error}"
        self._report_interrupted_repairs(run_id)
        self.runs.finish(run_id, "failed", to_iso(self.clock.now()), error=reason)
        logger.critical("reconciliation run failed", extra={"run_id": run_id, "step": step, "error": error})
        metrics.add_metric(name="ReconciliationRunsFailed", unit="Count", value=1)
        return {"run_id": run_id, "status": "failed"}

    def _report_interrupted_repairs(self, run_id: str) -> None:
        """A repair begun by a page that died, and never recorded by a retry (the machine gave up, or the page
        ends elsewhere now): whether it committed is unknown here, so it is reported for a person to look at."""
        for found in self.runs.repairs_begun(run_id).values():
            ours = {**found.ours, "repair": "interrupted"}
            self._record(run_id, found.model_copy(update={"ours": ours, "resolution": "reported"}))

    def _record(self, run_id: str, mismatch: Mismatch) -> None:
        if not self.runs.add_mismatch(run_id, mismatch):
            return  # found by an earlier attempt of this page, and counted then
        details = {"run_id": run_id, **mismatch.model_dump(mode="json")}
        if mismatch.resolution == "repaired":
            logger.warning("reconciliation repaired a mismatch", extra=details)
            metrics.add_metric(name="ReconciliationRepairs", unit="Count", value=1)
            return
        logger.critical("reconciliation found a mismatch it may not repair", extra=details)
        metrics.add_metric(name="ReconciliationMismatches", unit="Count", value=1)
