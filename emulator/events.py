"""EventBridge in the local stack: the template's rules (``AWS::Events::Rule`` and the SAM ``EventBridgeRule``,
``Schedule`` and ``ScheduleV2`` events of functions and state machines), their delivery to Lambda, Step
Functions, SQS and other buses, and their schedules.

moto matches events against rule patterns; ``moto_patches`` hands every match to ``TargetDelivery.deliver``.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
from jsonpath_ng.ext import parse as parse_json_path
from moto.events.utils import EventTemplateParser

from emulator.runtime import AsyncInvoker
from emulator.schedules import ScheduleRunner
from emulator.template import ACCOUNT_ID, REGION, Template

logger = logging.getLogger(__name__)

_SAM_RULE_EVENTS = {"EventBridgeRule", "CloudWatchEvent"}
_SAM_SCHEDULE_EVENTS = {"Schedule", "ScheduleV2"}


@dataclass(frozen=True)
class RuleSpec:
    """One rule of the template, as deployed: a pattern on a bus and/or a schedule, and its targets."""

    logical_id: str
    targets: list[dict[str, Any]]
    bus_name: str = "default"
    pattern: dict[str, Any] | None = None
    schedule: str | None = None
    enabled: bool = True
    event_name: str | None = None  # the SAM event it came from: /_local/schedules/{it}/fire works too
    scheduler: bool = False  # EventBridge Scheduler (ScheduleV2): targets get the Input, not an event

    @property
    def arn(self) -> str:
        path = self.logical_id if self.bus_name == "default" else f"{self.bus_name}/{self.logical_id}"
        return f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{path}"


def _bus_name(value: Any) -> str:
    return str(value or "default").rsplit("/", 1)[-1]


def _pattern(value: Any) -> dict[str, Any] | None:
    return json.loads(value) if isinstance(value, str) else value


def _enabled(props: dict[str, Any]) -> bool:
    return props.get("State", "ENABLED") == "ENABLED" and props.get("Enabled", True) is not False


def rule_specs(template: Template) -> list[RuleSpec]:
    specs = []
    for logical_id, resource in template.of_type("AWS::Events::Rule").items():
        props = template.resolve(resource.get("Properties", {}))
        specs.append(
            RuleSpec(
                logical_id=logical_id,
                targets=props.get("Targets", []),
                bus_name=_bus_name(props.get("EventBusName")),
                pattern=_pattern(props.get("EventPattern")),
                schedule=props.get("ScheduleExpression"),
                enabled=_enabled(props),
            )
        )
    sources = [(f.logical_id, f.arn, f.events) for f in template.functions().values()]
    sources += [(m.logical_id, m.arn, m.events) for m in template.state_machines().values()]
    for source_id, target_arn, events in sources:
        for event_name, event in events.items():
            if event.get("Type") in _SAM_RULE_EVENTS | _SAM_SCHEDULE_EVENTS:
                specs.append(_sam_event_rule(template, source_id, target_arn, event_name, event))
    return specs


def _sam_event_rule(
    template: Template, source_id: str, target_arn: str, event_name: str, event: dict[str, Any]
) -> RuleSpec:
    """The rule SAM generates for an event of a function or state machine (logical id: source + event)."""
    props = template.resolve(event.get("Properties", {}))
    target = {"Id": (props.get("Target") or {}).get("Id", f"{source_id}{event_name}Target"), "Arn": target_arn}
    target.update({key: props[key] for key in ("Input", "InputPath", "InputTransformer") if key in props})
    common = {"logical_id": f"{source_id}{event_name}", "targets": [target], "event_name": event_name}
    if event["Type"] in _SAM_RULE_EVENTS:
        return RuleSpec(
            bus_name=_bus_name(props.get("EventBusName")),
            pattern=_pattern(props.get("Pattern")),
            enabled=_enabled(props),
            **common,
        )
    return RuleSpec(
        schedule=props.get("Schedule") or props.get("ScheduleExpression"),
        enabled=_enabled(props),
        scheduler=event["Type"] == "ScheduleV2",
        **common,
    )


def deploy_rules(events_client: Any, rules: list[RuleSpec]) -> None:
    """Put the EventBridge rules into moto (Scheduler schedules are not EventBridge rules)."""
    for rule in rules:
        if rule.scheduler:
            continue
        args: dict[str, Any] = {
            "Name": rule.logical_id,
            "EventBusName": rule.bus_name,
            "State": "ENABLED" if rule.enabled else "DISABLED",
        }
        if rule.pattern:
            args["EventPattern"] = json.dumps(rule.pattern)
        if rule.schedule:
            args["ScheduleExpression"] = rule.schedule
        events_client.put_rule(**args)
        targets = [{k: v for k, v in t.items() if k not in {"RetryPolicy", "DeadLetterConfig"}} for t in rule.targets]
        events_client.put_targets(Rule=rule.logical_id, EventBusName=rule.bus_name, Targets=targets)


def _iso_time(value: Any) -> str:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def target_input(target: dict[str, Any], event: dict[str, Any]) -> Any:
    """What a target receives: its Input, InputPath or InputTransformer applied, or the whole event."""
    if "Input" in target:
        return json.loads(target["Input"])
    if "InputPath" in target:
        matches = parse_json_path(target["InputPath"]).find(event)
        return matches[0].value if matches else None
    if "InputTransformer" in target:
        transformer = target["InputTransformer"]
        return EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event={**event, "ingestion-time": event["time"]},
        )
    return event


class TargetDelivery:
    """Delivers an event to a rule's targets: Lambda asynchronously (as EventBridge does), Step Functions by
    starting an execution named after the event, SQS queues and other buses directly."""

    def __init__(self, async_invoker: AsyncInvoker) -> None:
        self._async_invoker = async_invoker

    def deliver(self, targets: list[dict[str, Any]], event: dict[str, Any]) -> None:
        delivered = {k: v for k, v in event.items() if k != "ingestion-time"} | {"time": _iso_time(event["time"])}
        for target in targets:
            try:
                self._deliver_to(target, target_input(target, delivered), delivered)
            except Exception:  # EventBridge keeps delivering to the other targets
                logger.exception("event %s could not be delivered to %s", delivered.get("id"), target.get("Arn"))

    def _deliver_to(self, target: dict[str, Any], payload: Any, event: dict[str, Any]) -> None:
        arn = target["Arn"]
        service, resource = arn.split(":")[2], arn.split(":", 5)[5]
        if service == "lambda":
            self._async_invoker.submit(arn, payload)
        elif service == "states":
            self._start_execution(arn, payload, event["id"])
        elif service == "sqs":
            sqs = boto3.client("sqs", region_name=REGION)
            args: dict[str, Any] = {
                "QueueUrl": sqs.get_queue_url(QueueName=resource)["QueueUrl"],
                "MessageBody": json.dumps(payload),
            }
            if group_id := target.get("SqsParameters", {}).get("MessageGroupId"):
                args["MessageGroupId"] = group_id
            sqs.send_message(**args)
        elif service == "events" and resource.startswith("event-bus/"):
            boto3.client("events", region_name=REGION).put_events(
                Entries=[
                    {
                        "EventBusName": resource.split("/", 1)[1],
                        "Source": event["source"],
                        "DetailType": event["detail-type"],
                        "Detail": json.dumps(event["detail"]),
                        "Resources": event.get("resources", []),
                    }
                ]
            )
        else:
            logger.warning("the local stack does not deliver to %s targets (%s)", service, arn)

    @staticmethod
    def _start_execution(state_machine_arn: str, payload: Any, event_id: str) -> None:
        sfn = boto3.client("stepfunctions", region_name=REGION)
        try:
            sfn.start_execution(stateMachineArn=state_machine_arn, name=event_id, input=json.dumps(payload))
        except sfn.exceptions.ExecutionAlreadyExists:
            logger.info("event %s already started an execution of %s", event_id, state_machine_arn)


class RuleScheduler:
    """Runs the scheduled rules: on their timer (scaled) and on demand."""

    def __init__(self, rules: list[RuleSpec], delivery: TargetDelivery, time_scale: float) -> None:
        self._rules = {rule.logical_id: rule for rule in rules if rule.schedule}
        event_names = Counter(rule.event_name for rule in self._rules.values())
        self._aliases = {  # a SAM event name stands for its rule where no other scheduled event has that name
            rule.event_name: rule.logical_id for rule in self._rules.values() if event_names[rule.event_name] == 1
        }
        self._delivery = delivery
        enabled = [(rule.logical_id, rule.schedule or "") for rule in self._rules.values() if rule.enabled]
        self._runner = ScheduleRunner(enabled, self.fire, time_scale)

    def start(self) -> None:
        self._runner.start()

    def stop(self) -> None:
        self._runner.stop()

    @property
    def rule_ids(self) -> list[str]:
        return sorted(self._rules)

    def resolve(self, rule_or_event_name: str) -> str | None:
        """The scheduled rule a name refers to: its logical id, or the name of the SAM event it came from."""
        if rule_or_event_name in self._rules:
            return rule_or_event_name
        return self._aliases.get(rule_or_event_name)

    def fire(self, rule_id: str) -> None:
        rule = self._rules[rule_id]
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": ACCOUNT_ID,
            "time": datetime.now(UTC).timestamp(),
            "region": REGION,
            "resources": [rule.arn],
            "detail": {},
        }
        if rule.scheduler:  # EventBridge Scheduler sends a target its Input only
            targets = [{**target, "Input": target.get("Input", "{}")} for target in rule.targets]
            self._delivery.deliver(targets, event)
        else:
            self._delivery.deliver(rule.targets, event)
