"""Which session state machine a lifecycle event starts, and under which name (defect 5).

An execution is named by its session, so a duplicate of the event (the outbox relays at least once;
EventBridge delivers at least once) is refused by Step Functions instead of running the lifecycle twice.
EventBridge's own Step Functions target cannot name an execution; this starter can."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from patungan.core.events import DomainEvent
from patungan.core.observability import logger


class Starter(Protocol):
    def start(self, state_machine_arn: str, name: str, input_json: str) -> bool: ...


@dataclass(frozen=True)
class SessionStateMachines:
    group_session: str
    session_refund: str
    escrow_release: str


class SessionWorkflows:
    def __init__(self, starter: Starter, machines: SessionStateMachines) -> None:
        self.starter = starter
        self.machines = machines

    def start_for(self, event: DomainEvent) -> dict[str, Any]:
        match event.type:
            case "groupbuy.session.created":
                machine, session_id = self.machines.group_session, event.aggregate_id
            case "groupbuy.session.failed" | "groupbuy.session.cancelled":
                machine, session_id = self.machines.session_refund, event.aggregate_id
            case "warehouse.po_received":
                # One release per session; a release left stuck is redriven (RedriveExecution), not restarted.
                machine, session_id = self.machines.escrow_release, str(event.data["session_id"])
            case _:
                raise ValueError(f"{event.type} starts no session workflow")
        if not machine:
            raise RuntimeError(f"no state machine is configured for {event.type}: see the function's environment")
        started = self.starter.start(machine, session_id, event.model_dump_json())
        outcome = "started" if started else "already_started"  # or ended: either way, nothing runs twice
        logger.info(
            "session workflow " + outcome.replace("_", " "),
            extra={"session_id": session_id, "state_machine": machine.rsplit(":", 1)[-1], "event_id": event.event_id},
        )
        return {"session_id": session_id, "outcome": outcome}
