"""The local stack checks each AWS call a function makes against its template Policies, as IAM would
(issue 6, defect 8): moto allows everything, so without this a missing grant shows up first in AWS."""

from __future__ import annotations

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from emulator import permissions
from emulator.template import REGION, Template

ROLES = permissions.FunctionRoles(Template.load())
TABLE_ARN = "arn:aws:dynamodb:ap-southeast-3:123456789012:table/{}"


@pytest.fixture
def dynamodb():
    """A DynamoDB client whose calls the check sees, as any function's would; AWS answers ``{}`` to each."""
    permissions.install()
    client = boto3.client("dynamodb", region_name=REGION, aws_access_key_id="fake", aws_secret_access_key="fake")
    client.meta.events.register("before-call", lambda **_: (AWSResponse(None, 200, {}, None), {}))
    return client


def checked(function: str, call) -> list[str]:
    with permissions.acting_as(ROLES, function):
        call()
    return [str(denial) for denial in permissions.take_denials()]


def test_a_write_by_a_read_only_function_is_reported_with_function_action_and_table(dynamodb):
    item = {"pk": {"S": "S#1"}, "sk": {"S": "META"}}

    denied = checked("GetSessionFunction", lambda: dynamodb.put_item(TableName="GroupBuyTable", Item=item))

    assert denied == [
        f"GetSessionFunction called dynamodb:PutItem on {TABLE_ARN.format('GroupBuyTable')} "
        "but its policies do not allow it"
    ]


def test_what_a_role_grants_passes_and_a_call_outside_any_function_is_not_checked(dynamodb):
    key = {"pk": {"S": "S#1"}, "sk": {"S": "META"}}

    assert checked("GetSessionFunction", lambda: dynamodb.get_item(TableName="GroupBuyTable", Key=key)) == []
    dynamodb.put_item(TableName="GroupBuyTable", Item=key)  # the test's own setup: no function's role
    assert permissions.take_denials() == []


def test_each_item_of_a_transaction_needs_its_own_action_on_its_own_table(dynamodb):
    """A ConditionCheck on a table held with DynamoDBReadPolicy is refused: the read template has no
    dynamodb:ConditionCheckItem."""
    key = {"pk": {"S": "W#1"}, "sk": {"S": "BALANCE"}}
    items = [
        {"Put": {"TableName": "GroupBuyTable", "Item": {"pk": {"S": "S#1"}, "sk": {"S": "META"}}}},
        {
            "ConditionCheck": {
                "TableName": "PaymentsTable",
                "Key": key,
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        },
        {"Delete": {"TableName": "OutboxTable", "Key": {"event_id": {"S": "e1"}}}},
    ]

    denied = checked("FinalizeSessionSuccessFunction", lambda: dynamodb.transact_write_items(TransactItems=items))

    assert denied == [
        f"FinalizeSessionSuccessFunction called dynamodb:ConditionCheckItem on {TABLE_ARN.format('PaymentsTable')} "
        "but its policies do not allow it"
    ]


def test_a_query_on_an_index_is_checked_against_the_index_resource():
    needed = permissions.required_permissions(
        "dynamodb", "Query", {"TableName": "GroupBuyTable", "IndexName": "gsi1", "KeyConditionExpression": "x"}
    )

    assert needed == [("dynamodb:Query", TABLE_ARN.format("GroupBuyTable/index/gsi1"))]
    assert ROLES.allows("ListSessionsFunction", *needed[0])
    assert not ROLES.allows("GetWalletFunction", *needed[0])


def test_the_xendit_secret_is_readable_only_where_the_template_grants_it():
    [needed] = permissions.required_permissions("ssm", "GetParameter", {"Name": "/patungan/xendit/secret-key"})

    assert needed == (
        "ssm:GetParameter",
        "arn:aws:ssm:ap-southeast-3:123456789012:parameter/patungan/xendit/secret-key",
    )
    assert ROLES.allows("JoinSessionFunction", *needed)
    assert not ROLES.allows("CancelSessionFunction", *needed)
    assert not ROLES.allows("XenditRefundWebhook", *needed)


def test_queues_buses_and_state_machines_are_named_by_their_arn():
    assert permissions.required_permissions(
        "sqs", "SendMessageBatch", {"QueueUrl": "https://sqs.ap-southeast-3.amazonaws.com/123456789012/RefundQueue"}
    ) == [("sqs:SendMessage", "arn:aws:sqs:ap-southeast-3:123456789012:RefundQueue")]
    assert permissions.required_permissions(
        "events", "PutEvents", {"Entries": [{"EventBusName": "patungan-local"}, {"Detail": "{}"}]}
    ) == [
        ("events:PutEvents", "arn:aws:events:ap-southeast-3:123456789012:event-bus/default"),
        ("events:PutEvents", "arn:aws:events:ap-southeast-3:123456789012:event-bus/patungan-local"),
    ]
    machine = "arn:aws:states:ap-southeast-3:123456789012:stateMachine:EscrowReleaseStateMachine"
    [needed] = permissions.required_permissions("states", "StartExecution", {"stateMachineArn": machine})
    assert ROLES.allows("StartSessionWorkflowFunction", *needed)
    assert not ROLES.allows("ReceivePurchaseOrderFunction", *needed)


def test_an_explicit_deny_wins_over_an_allow():
    template = Template.load()
    policies = template.resources["GetSessionFunction"]["Properties"]["Policies"]
    policies.append({"Statement": [{"Effect": "Deny", "Action": "dynamodb:Get*", "Resource": "*"}]})
    table = TABLE_ARN.format("GroupBuyTable")

    assert ROLES.allows("GetSessionFunction", "dynamodb:GetItem", table)
    assert not permissions.FunctionRoles(template).allows("GetSessionFunction", "dynamodb:GetItem", table)


def test_a_policy_the_check_cannot_expand_is_refused_not_ignored():
    with pytest.raises(permissions.UnknownPolicy, match="AmazonDynamoDBFullAccess"):
        permissions.role_statements(Template.load(), ["AmazonDynamoDBFullAccess"])
    with pytest.raises(permissions.UnknownPolicy, match="S3ReadPolicy"):
        permissions.role_statements(Template.load(), [{"S3ReadPolicy": {"BucketName": "b"}}])
