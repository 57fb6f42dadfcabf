"""The checkout state machine as moto's interpreter runs it (CHK-5): a forward step refused for good is caught,
not retried, and compensated: the checkout shows `failed` with the step's own message and the execution ends
settled (a compensation that kept failing would fail it: the alarm)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import pytest

from emulator.template import REGION, Template
from patungan.adapters.dynamodb import deserialize, serialize
from patungan.checkout.cart import Shopper
from patungan.checkout.checkouts import Checkout
from patungan.checkout.quote import OrderQuote, Quote, QuoteLine, ShippingMethod
from tests.emulator.support import eventually

TEMPLATE = Template.load()
ADDRESS = {
    "recipient_name": "Siti",
    "phone": "+6281234567890",
    "line1": "Jl. Senopati 5",
    "city": "Jakarta",
    "province": "DKI Jakarta",
    "postal_code": "12190",
}


def put_checkout_of_stock_nobody_holds() -> str:
    line = QuoteLine(product_id="prd_nowhere", name="Kopi", quantity=1, unit_price=10_000, amount=10_000)
    order = OrderQuote(
        seller_id="sel_1", warehouse_id="wh_nowhere", lines=[line], subtotal=10_000, shipping=0, tax=0, total=10_000
    )
    quote = Quote(
        cart_version=1,
        prices_validated_at="2026-11-30T07:00:00Z",
        currency="IDR",
        orders=[order],
        subtotal=10_000,
        shipping=0,
        tax=0,
        discount=0,
        total=10_000,
        shipping_method=ShippingMethod(shipping_method_id="jne:reg", courier="jne", service="reg"),
    )
    checkout = Checkout(
        id=f"chk_{uuid.uuid4().hex[:12]}",
        buyer=Shopper(customer_id="buyer-1"),
        cart_id="cart_1",
        cart_version=1,
        status="pending",
        payment_method="invoice",
        quote=quote,
        cart_hash="hash",
        address=ADDRESS,
        created_at="2026-11-30T07:00:00Z",
        updated_at="2026-11-30T07:00:00Z",
    )
    item = {"pk": f"CHECKOUT#{checkout.id}", "sk": "META", **checkout.model_dump()}
    boto3.client("dynamodb", region_name=REGION).put_item(TableName=TEMPLATE.ref("OrdersTable"), Item=serialize(item))
    return checkout.id


def checkout_item(checkout_id: str) -> dict[str, Any]:
    key = serialize({"pk": f"CHECKOUT#{checkout_id}", "sk": "META"})
    return deserialize(
        boto3.client("dynamodb", region_name=REGION).get_item(TableName=TEMPLATE.ref("OrdersTable"), Key=key)["Item"]
    )


@pytest.mark.usefixtures("stack")
def test_a_refused_reservation_is_compensated_and_shown_on_the_checkout():
    sfn = boto3.client("stepfunctions", region_name=REGION)
    [machine] = [m for m in sfn.list_state_machines()["stateMachines"] if "Checkout" in m["name"]]
    checkout_id = put_checkout_of_stock_nobody_holds()

    started = sfn.start_execution(
        stateMachineArn=machine["stateMachineArn"],
        name=checkout_id,
        input=json.dumps({"checkout_id": checkout_id, "payment_window_seconds": 900}),
    )

    def finished():
        execution = sfn.describe_execution(executionArn=started["executionArn"])
        return execution if execution["status"] != "RUNNING" else None

    execution = eventually(finished, timeout=120)
    assert execution["status"] == "SUCCEEDED"
    history = sfn.get_execution_history(executionArn=started["executionArn"], maxResults=1000)["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("StateEntered")]
    assert entered == ["ReserveStock", "Compensate", "Settled"]  # a refusal is not retried
    checkout = checkout_item(checkout_id)
    assert checkout["status"] == "failed"
    assert checkout["error"]["code"] == "checkout_failed"
    assert checkout["error"]["message"]  # the step's own words, not a generic failure
