"""What the emulator's speed patches of moto must not change: the JSON of a DynamoDB response, the order of a
table's items, an update expression's outcome. (The Step Functions clock: test_clock.py, test_step_functions.py.)"""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import pytest
from moto.core.serialize import BaseJSONSerializer, JSONSerializer, XFormedAttributePicker
from moto.core.utils import get_service_model
from moto.dynamodb.models.utilities import dynamo_to_dict

from emulator.template import REGION

EVERY_ATTRIBUTE_TYPE = {
    "id": {"S": "item-1"},
    "count": {"N": "-12.50"},
    "blob": {"B": b"\x00\xffraw"},
    "names": {"SS": ["a", "b"]},
    "numbers": {"NS": ["1", "2.5"]},
    "blobs": {"BS": [b"\x01", b"\x02"]},
    "nothing": {"NULL": True},
    "flag": {"BOOL": False},
    "nested": {"M": {"list": {"L": [{"S": "x"}, {"N": "3"}, {"M": {"deep": {"BOOL": True}}}, {"B": b"\x03"}]}}},
}


class GenericJSONSerializer(JSONSerializer):
    """moto's serializer as released: every structure member by member, AttributeValue included."""

    _serialize_type_structure = BaseJSONSerializer._serialize_type_structure


def serialized(serializer_class: type[JSONSerializer], service: str, operation: str, result: Any) -> Any:
    """The response body moto makes of ``result`` (as ActionResult.execute_result does, moto 5.2.5)."""
    operation_model = get_service_model(service).operation_model(operation)
    serializer = serializer_class(operation_model=operation_model, value_picker=XFormedAttributePicker())
    return json.loads(serializer.serialize(result)["body"])


@pytest.mark.parametrize(
    ("service", "operation", "result"),
    [
        ("dynamodb", "GetItem", {"Item": EVERY_ATTRIBUTE_TYPE}),
        ("dynamodb", "Query", {"Items": [EVERY_ATTRIBUTE_TYPE], "Count": 1, "LastEvaluatedKey": {"id": {"S": "x"}}}),
        ("dynamodbstreams", "GetRecords", {"Records": [{"dynamodb": {"NewImage": EVERY_ATTRIBUTE_TYPE}}]}),
    ],
)
def test_dynamodb_responses_are_the_json_moto_makes_of_them(stack, service, operation, result):
    # As DynamoResult hands results to the serializer (moto 5.2.5): binary values as raw bytes.
    wire = dynamo_to_dict(result)

    assert serialized(JSONSerializer, service, operation, wire) == serialized(
        GenericJSONSerializer, service, operation, wire
    )


def test_an_item_of_every_attribute_type_comes_back_as_it_was_put(stack):
    dynamodb = boto3.client("dynamodb", region_name=REGION)

    dynamodb.put_item(TableName="RecordsTable", Item={**EVERY_ATTRIBUTE_TYPE, "pk": {"S": "every-type"}})

    item = dynamodb.get_item(TableName="RecordsTable", Key={"pk": {"S": "every-type"}})["Item"]
    assert item == {**EVERY_ATTRIBUTE_TYPE, "pk": {"S": "every-type"}}


def test_a_scan_lists_items_in_key_order_numbers_by_value(stack):
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    table = f"Ordered-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "n", "KeyType": "HASH"}, {"AttributeName": "s", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "n", "AttributeType": "N"},
            {"AttributeName": "s", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    keys = [("10", "b"), ("9", "z"), ("10", "a"), ("-1.5", "m"), ("100", "a")]
    for number, text in keys:
        dynamodb.put_item(TableName=table, Item={"n": {"N": number}, "s": {"S": text}})

    items = dynamodb.scan(TableName=table)["Items"]

    assert [(item["n"]["N"], item["s"]["S"]) for item in items] == sorted(keys, key=lambda k: (float(k[0]), k[1]))


def test_an_update_expression_used_again_updates_each_item_with_its_own_values(stack):
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    first, second = (f"counter-{uuid.uuid4()}" for _ in range(2))

    for pk, label, amount in ((first, "one", "1"), (second, "two", "2"), (first, "three", "3")):
        dynamodb.update_item(
            TableName="RecordsTable",
            Key={"pk": {"S": pk}},
            UpdateExpression="SET #label = :label ADD #total :amount",
            ExpressionAttributeNames={"#label": "label", "#total": "total"},
            ExpressionAttributeValues={":label": {"S": label}, ":amount": {"N": amount}},
        )

    items = [dynamodb.get_item(TableName="RecordsTable", Key={"pk": {"S": pk}})["Item"] for pk in (first, second)]
    assert [(item["label"]["S"], item["total"]["N"]) for item in items] == [("three", "4"), ("two", "2")]
