"""The session state machines survive slow and crashing Lambdas and never fail silently (defect 5, GB-9..GB-14).

Every Task has a timeout, is retried on transient errors and crashes (never on a business refusal, which
a retry cannot change), and catches everything into a visible stuck state; each machine's failed
executions raise an alarm, and each is started under its session's name so a duplicate start is refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from emulator.template import Template

TEMPLATE = Template.load()
FUNCTIONS = TEMPLATE.functions()
MACHINES = TEMPLATE.of_type("AWS::Serverless::StateMachine")

CRASHES_AND_TIMEOUTS = {"States.Timeout", "Lambda.Unknown", "Sandbox.Timedout"}
LAMBDA_SERVICE_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}
# A refusal is the answer, not an accident: retrying it only delays the stuck state. States.TaskFailed
# and States.ALL would match them too.
BUSINESS_ERRORS = {
    "Conflict",
    "NotFound",
    "Forbidden",
    "BadRequest",
    "ValidationFailed",
    "Unauthenticated",
    "SettlementInvariantViolated",
    "ValueError",
    "States.TaskFailed",
    "States.ALL",
}
STEP_LAMBDA_TIMEOUT_LIMIT = 900
# Where each machine shows a step that kept failing before its execution fails.
FAILURE_RECORDERS = {
    "ReconciliationStateMachine": ("RecordReconciliationFailedFunction", "run_id"),
    "CheckoutStateMachine": ("RecordCheckoutStuckFunction", "checkout_id"),
}
# A wait for a task token (the checkout's payment) times out by design: States.Timeout is its outcome, caught,
# never retried; its timeout is the payment window, from the input.
TOKEN_WAIT = "arn:aws:states:::lambda:invoke.waitForTaskToken"
SESSION_RECORDER = ("RecordSessionStuckFunction", "session_id")


def definition(logical_id: str) -> dict[str, Any]:
    return json.loads((TEMPLATE.root / MACHINES[logical_id]["Properties"]["DefinitionUri"]).read_text())


def tasks() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for logical_id in MACHINES:
        for name, state in definition(logical_id)["States"].items():
            if state["Type"] == "Task":
                yield logical_id, name, state


TASKS = list(tasks())
TASK_IDS = [f"{machine}.{name}" for machine, name, _ in TASKS]


def function_of(machine: str, task: dict[str, Any]) -> str:
    """The template function a Task's ``${...Arn}`` resource substitutes to."""
    resource = task["Parameters"]["FunctionName"] if task["Resource"] == TOKEN_WAIT else task["Resource"]
    substitution = resource.removeprefix("${").removesuffix("}")
    get_att = MACHINES[machine]["Properties"]["DefinitionSubstitutions"][substitution]
    return get_att["Fn::GetAtt"][0] if isinstance(get_att, dict) else get_att.split(".")[0]


def test_there_are_tasks_to_check():
    assert {machine for machine, _, _ in TASKS} == set(MACHINES) != set()


@pytest.mark.parametrize(("machine", "name", "task"), TASKS, ids=TASK_IDS)
def test_every_task_times_out_after_its_lambda_would(machine, name, task):
    """A lost invocation ends in States.Timeout (retried); the function's own timeout fires first."""
    if task["Resource"] == TOKEN_WAIT:
        assert task["TimeoutSecondsPath"] == "$.payment_window_seconds"
        return
    lambda_timeout = FUNCTIONS[function_of(machine, task)].timeout

    assert lambda_timeout < task["TimeoutSeconds"] <= STEP_LAMBDA_TIMEOUT_LIMIT + 60


@pytest.mark.parametrize(("machine", "name", "task"), TASKS, ids=TASK_IDS)
def test_every_task_retries_crashes_timeouts_and_transient_errors(machine, name, task):
    retried = {error for retrier in task["Retry"] for error in retrier["ErrorEquals"]}
    expected = CRASHES_AND_TIMEOUTS | LAMBDA_SERVICE_ERRORS | {"DependencyUnavailable", "ConcurrentUpdate"}
    if task["Resource"] == TOKEN_WAIT:
        assert "States.Timeout" not in retried
        expected -= {"States.Timeout"}

    assert expected <= retried
    assert all(1 <= retrier["MaxAttempts"] <= 10 for retrier in task["Retry"]), "a retry must end"


@pytest.mark.parametrize(("machine", "name", "task"), TASKS, ids=TASK_IDS)
def test_no_task_retries_a_business_refusal(machine, name, task):
    retried = {error for retrier in task["Retry"] for error in retrier["ErrorEquals"]}

    assert retried & BUSINESS_ERRORS == set()


@pytest.mark.parametrize(("machine", "name", "task"), TASKS, ids=TASK_IDS)
def test_every_task_catches_every_error(machine, name, task):
    assert "States.ALL" in task["Catch"][-1]["ErrorEquals"]


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_every_failure_is_recorded_on_the_session_before_the_execution_fails(machine):
    """The only way into a Fail state is through RecordStuck, which shows the stuck step on the session (on
    the run, for reconciliation)."""
    states = definition(machine)["States"]
    fails = {name for name, state in states.items() if state["Type"] == "Fail"}
    leads_to_fail = {
        name
        for name, state in states.items()
        for target in [state.get("Next"), *(c["Next"] for c in state.get("Catch", []))]
        if target in fails
    }

    assert fails != set()
    assert leads_to_fail == {"RecordStuck"}
    recorder, subject = FAILURE_RECORDERS.get(machine, SESSION_RECORDER)
    assert function_of(machine, states["RecordStuck"]) == recorder
    assert states["RecordStuck"]["Parameters"]["step.$"] == "$.failed_step"
    assert states["RecordStuck"]["Parameters"][f"{subject}.$"] == f"$.{subject}"


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_every_caught_step_names_itself_as_the_stuck_step(machine):
    states = definition(machine)["States"]
    caught = {c["Next"] for state in states.values() for c in state.get("Catch", [])}
    recorders = {name for name in caught if states[name]["Type"] == "Pass"}

    for name in recorders:
        assert states[name]["ResultPath"] == "$.failed_step"
        assert states[name]["Next"] == "RecordStuck"


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_failed_executions_of_every_machine_raise_an_alarm(machine):
    alarms = [
        resource["Properties"]
        for resource in TEMPLATE.of_type("AWS::CloudWatch::Alarm").values()
        if resource["Properties"].get("Namespace") == "AWS/States"
        and resource["Properties"]["MetricName"] == "ExecutionsFailed"
    ]

    assert any({"Name": "StateMachineArn", "Value": {"Ref": machine}} in alarm["Dimensions"] for alarm in alarms)


def test_escrow_release_settlement_invariant_violations_go_straight_to_the_stuck_state():
    states = definition("EscrowReleaseStateMachine")["States"]

    for name in ("ReleasePage", "CompleteRelease"):
        [first, *_] = states[name]["Catch"]
        assert first["ErrorEquals"] == ["SettlementInvariantViolated"]
        assert states[first["Next"]]["Next"] == "RecordStuck"


def test_the_hourly_escrow_release_retry_gives_up_after_a_day():
    """Defect 9: the release loop used to retry every hour for ever."""
    states = definition("EscrowReleaseStateMachine")["States"]
    [give_up] = [choice for choice in states["GiveUp"]["Choices"] if "NumericGreaterThanEquals" in choice]

    assert states["RecordReleaseFailure"]["Next"] == "CountFailure"
    assert states["CountFailure"]["Parameters"] == {"count.$": "States.MathAdd($.failures.count, 1)"}
    assert states["ReadSession"]["Parameters"]["failures"] == {"count": 0}
    assert give_up["Variable"] == "$.failures.count"
    assert give_up["NumericGreaterThanEquals"] * states["WaitBeforeRetry"]["Seconds"] <= 86_400
    assert states[give_up["Next"]]["Next"] == "RecordStuck"


def test_executions_are_started_by_a_function_that_names_them_not_by_an_eventbridge_target():
    """EventBridge cannot name an execution; the starter names it by the session (reconciliation: by the run), so
    a duplicate is refused."""
    starter = FUNCTIONS["StartSessionWorkflowFunction"]
    run_starters = [FUNCTIONS[name] for name in ("StartReconciliationRunFunction", "StartDailyReconciliationFunction")]
    checkout_starter = FUNCTIONS["ConfirmCheckoutFunction"]  # named by the checkout id (CHK-6)

    for logical_id, machine in MACHINES.items():
        assert "Events" not in machine["Properties"], f"{logical_id} is started by an unnamed EventBridge target"
    assert {
        starter.properties["Environment"]["Variables"][name]["Ref"]
        for name in (
            "GROUP_SESSION_STATE_MACHINE_ARN",
            "SESSION_REFUND_STATE_MACHINE_ARN",
            "ESCROW_RELEASE_STATE_MACHINE_ARN",
        )
    } | {
        run_starter.properties["Environment"]["Variables"]["RECONCILIATION_STATE_MACHINE_ARN"]["Ref"]
        for run_starter in run_starters
    } | {checkout_starter.properties["Environment"]["Variables"]["CHECKOUT_STATE_MACHINE_ARN"]["Ref"]} == set(MACHINES)
