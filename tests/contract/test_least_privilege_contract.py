"""Each function may do what its operation does and no more (defect 8): a read-only handler cannot write,
only the functions that call Xendit can read its secret key, only the webhooks can read the callback
token, and each function's logs carry its own context as the service name (defect 9)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from emulator.template import Template

TEMPLATE = Template.load()
FUNCTIONS = TEMPLATE.functions()
MACHINES = TEMPLATE.of_type("AWS::Serverless::StateMachine")
RULES = TEMPLATE.of_type("AWS::Events::Rule")
QUEUE_POLICIES = TEMPLATE.of_type("AWS::SQS::QueuePolicy")

WRITE_POLICY_TEMPLATES = {
    "DynamoDBCrudPolicy",
    "DynamoDBWritePolicy",
    "SQSSendMessagePolicy",
    "EventBridgePutEventsPolicy",
}
WRITE_ACTION_PREFIXES = (
    "dynamodb:Put",
    "dynamodb:Update",
    "dynamodb:Delete",
    "dynamodb:BatchWrite",
    "dynamodb:TransactWrite",
    "dynamodb:*",
    "sqs:Send",
    "events:Put",
    "states:Start",
    "ssm:Put",
    "*",
)

# Who calls Xendit with the secret key, and why (the code path that does).
XENDIT_CALLERS = {
    "JoinSessionFunction": "GroupBuyService.join -> PaymentService.open_invoice, PaymentService.find_invoice "
    "(GB-3, PAY-1)",
    "LeaveSessionFunction": "GroupBuyService.leave -> PaymentService.expire_invoice (GB-8)",
    "RepairStalledJoinsFunction": "GroupBuyService.repair_stalled_joins -> PaymentService.find_invoice (GB-5)",
    "ProcessRefundsFunction": "PaymentService.process_refund -> XenditGateway.create_refund (GB-11)",
    "ExpireUnpaidInvoicesFunction": "UnpaidInvoiceExpiry.expire -> PaymentService.expire_invoice, "
    "PaymentService.apply_paid_invoice -> XenditGateway.get_invoice (GB-10, GB-11)",
    "XenditInvoiceWebhook": "PaymentService.handle_invoice_callback -> XenditGateway.get_invoice (PAY-2)",
    "ApproveWithdrawalFunction": "WithdrawalService.approve -> XenditGateway.create_payout (WAL-2)",
    "CreateCheckoutPaymentFunction": "CheckoutSaga.create_payment -> PaymentService.find_invoice, open_invoice (PAY-7)",
    "ExpireCheckoutFunction": "CheckoutSaga.expire -> PaymentService.expire_invoice (ORD-3)",
    "CompensateCheckoutFunction": "CheckoutSaga.compensate -> PaymentService.expire_invoice (CHK-5)",
    "CheckReconciliationPageFunction": "PaymentChecker / RefundChecker / PayoutChecker -> XenditGateway.get_invoice, "
    "get_refund, get_payout, find_payout_by_reference, create_payout (PAY-8, WAL-2)",
}
WEBHOOKS = {"XenditInvoiceWebhook", "XenditRefundWebhook", "XenditPayoutWebhook"}
# Idempotency-Key is honoured (SYS-4) by every handler that calls core.http.idempotent, and is being added
# to these (issue 6, defect 9): their functions hold the idempotency table already.
IDEMPOTENT_SOON = {
    "LeaveSessionFunction",
    "CancelSessionFunction",
    "ReceivePurchaseOrderFunction",
    "CreateWalletAdjustmentFunction",
}


def policies(logical_id: str) -> list[Any]:
    return FUNCTIONS[logical_id].properties.get("Policies", [])


def policy_templates(logical_id: str) -> set[str]:
    return {name for policy in policies(logical_id) if isinstance(policy, dict) for name in policy} - {"Statement"}


def statements(logical_id: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in policies(logical_id)
        if isinstance(policy, dict) and "Statement" in policy
        for statement in policy["Statement"]
    ]


def actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else action


def tables(logical_id: str, policy_template: str) -> set[str]:
    return {
        policy[policy_template]["TableName"]["Ref"]
        for policy in policies(logical_id)
        if isinstance(policy, dict) and policy_template in policy
    }


def can_read_parameter(logical_id: str, parameter: str) -> bool:
    return any(
        "ssm:GetParameter" in actions(statement) and parameter in json.dumps(statement["Resource"])
        for statement in statements(logical_id)
    ) or any("SSMParameter" in name for name in policy_templates(logical_id))


GET_HANDLERS = sorted({logical_id for method, _, logical_id, _ in TEMPLATE.api_routes() if method == "GET"})


def test_the_public_session_reads_are_among_the_get_handlers():
    assert {"GetSessionFunction", "ListSessionsFunction", "GetProductFunction"} <= set(GET_HANDLERS)


@pytest.mark.parametrize("logical_id", GET_HANDLERS)
def test_a_get_handler_holds_no_write_permission(logical_id):
    assert policy_templates(logical_id) & WRITE_POLICY_TEMPLATES == set()
    for statement in statements(logical_id):
        assert not [a for a in actions(statement) if a.startswith(WRITE_ACTION_PREFIXES)], statement
    assert not can_read_parameter(logical_id, "XenditSecretKeyParameter")
    assert not can_read_parameter(logical_id, "XenditCallbackTokenParameter")


def test_only_the_functions_that_call_xendit_can_read_its_secret_key():
    readers = {logical_id for logical_id in FUNCTIONS if can_read_parameter(logical_id, "XenditSecretKeyParameter")}

    assert readers == set(XENDIT_CALLERS)


def test_only_the_webhooks_can_read_the_callback_token():
    readers = {logical_id for logical_id in FUNCTIONS if can_read_parameter(logical_id, "XenditCallbackTokenParameter")}

    assert readers == WEBHOOKS


def test_no_function_reads_every_parameter():
    for logical_id in FUNCTIONS:
        for statement in statements(logical_id):
            if any(a.startswith("ssm:") for a in actions(statement)):
                assert "parameter/*" not in json.dumps(statement["Resource"]), logical_id


def test_the_idempotency_table_is_held_exactly_where_idempotency_keys_are_honoured():
    honouring = {
        logical_id for logical_id, spec in FUNCTIONS.items() if "idempotent(" in spec.module_file.read_text()
    } | IDEMPOTENT_SOON
    holding = {logical_id for logical_id in FUNCTIONS if "IdempotencyTable" in tables(logical_id, "DynamoDBCrudPolicy")}

    assert holding == honouring


def test_a_function_never_holds_both_read_and_write_policies_on_one_table():
    for logical_id in FUNCTIONS:
        both = tables(logical_id, "DynamoDBCrudPolicy") & tables(logical_id, "DynamoDBReadPolicy")
        assert both == set(), f"{logical_id}: {both}"


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_every_function_logs_as_the_context_its_code_belongs_to(logical_id):
    """Defect 9: join and refund logs said "catalog"; the service name is the CodeUri folder's context."""
    spec = FUNCTIONS[logical_id]

    assert spec.environment["POWERTOOLS_SERVICE_NAME"] == spec.code_uri.name


def functions_the_definition_calls(machine: str) -> set[str]:
    props = MACHINES[machine]["Properties"]
    definition = (TEMPLATE.root / props["DefinitionUri"]).read_text()
    # A Task's Resource, or the FunctionName of a lambda:invoke integration (a task-token wait).
    substitutions = set(re.findall(r'"(?:Resource|FunctionName)":\s*"\$\{(\w+)\}"', definition))
    return {props["DefinitionSubstitutions"][name]["Fn::GetAtt"][0] for name in substitutions}


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_a_state_machine_may_invoke_exactly_the_functions_its_definition_calls(machine):
    policies = MACHINES[machine]["Properties"]["Policies"]

    assert all(set(policy) == {"LambdaInvokePolicy"} for policy in policies), policies
    invokable = {policy["LambdaInvokePolicy"]["FunctionName"]["Ref"] for policy in policies}
    assert invokable == functions_the_definition_calls(machine) != set()


def eventbridge_send_conditions(queue: str) -> list[dict[str, Any]]:
    """The conditions under which the queue's policies let EventBridge send to it."""
    return [
        statement.get("Condition", {})
        for policy in QUEUE_POLICIES.values()
        if {"Ref": queue} in policy["Properties"]["Queues"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Allow"
        and statement["Principal"] == {"Service": "events.amazonaws.com"}
        and statement["Action"] == "sqs:SendMessage"
        and statement["Resource"] == {"Fn::GetAtt": [queue, "Arn"]}
    ]


RULE_QUEUE_TARGETS = [
    (rule, target["Arn"]["Fn::GetAtt"][0])
    for rule, resource in RULES.items()
    for target in resource["Properties"]["Targets"]
    if TEMPLATE.resources[target["Arn"]["Fn::GetAtt"][0]]["Type"] == "AWS::SQS::Queue"
]
SAM_RULE_DEAD_LETTER_QUEUES = [
    (logical_id, event["Properties"]["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0])
    for logical_id, spec in FUNCTIONS.items()
    for event in spec.events.values()
    if event["Type"] == "EventBridgeRule" and "DeadLetterConfig" in event["Properties"]
]


@pytest.mark.parametrize(("rule", "queue"), RULE_QUEUE_TARGETS)
def test_eventbridge_may_send_to_a_target_queue_only_for_its_own_rule(rule, queue):
    assert eventbridge_send_conditions(queue) == [{"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule, "Arn"]}}}]


@pytest.mark.parametrize(("function", "queue"), SAM_RULE_DEAD_LETTER_QUEUES)
def test_eventbridge_may_dead_letter_only_the_rules_of_our_bus(function, queue):
    """SAM names the rule of an EventBridgeRule event itself, so the condition names the rules of our bus."""
    rules_of_our_bus = {"Fn::Sub": "arn:aws:events:${AWS::Region}:${AWS::AccountId}:rule/${EventBus}/*"}

    assert eventbridge_send_conditions(queue) == [{"ArnLike": {"aws:SourceArn": rules_of_our_bus}}]


def test_eventbridge_may_send_only_to_queues_a_rule_targets_or_dead_letters_to():
    queues = {queue_ref["Ref"] for policy in QUEUE_POLICIES.values() for queue_ref in policy["Properties"]["Queues"]}

    assert queues == {queue for _, queue in RULE_QUEUE_TARGETS + SAM_RULE_DEAD_LETTER_QUEUES}


def on_failure_destinations(logical_id: str) -> list[dict[str, Any]]:
    spec = FUNCTIONS[logical_id]
    configs = [spec.properties.get("EventInvokeConfig", {})] + [
        event["Properties"] for event in spec.events.values() if event["Type"] in ("DynamoDB", "SQS", "Kinesis")
    ]
    return [config["DestinationConfig"]["OnFailure"] for config in configs if "DestinationConfig" in config]


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_sam_grants_the_on_failure_queue_and_policies_do_not_grant_it_again(logical_id):
    """Lambda sends a failed event to its OnFailure queue with the function's role: SAM adds exactly that
    sqs:SendMessage when the destination says ``Type: SQS``; a grant in Policies would be a second one."""
    granted = {
        policy["SQSSendMessagePolicy"]["QueueName"]["Fn::GetAtt"][0]
        for policy in policies(logical_id)
        if isinstance(policy, dict) and "SQSSendMessagePolicy" in policy
    }
    for destination in on_failure_destinations(logical_id):
        assert destination["Type"] == "SQS", destination
        assert destination["Destination"]["Fn::GetAtt"][0] not in granted
