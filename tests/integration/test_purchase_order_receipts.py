"""Purchase order receipts (GB-14, WH-4, SYS-4; issue 6 defect 2): a retried partial receipt is not received
twice, concurrent receipts add up, escrow is released only by the receipt that completes the order."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

from patungan.adapters.dynamodb import Transaction
from patungan.composition import purchase_order_service
from patungan.core.auth import Principal, Role
from patungan.core.observability import logger
from patungan.inventory.repository import PurchaseOrderRepository
from tests.support.lambdas import call_api, claims

WAREHOUSE = claims("warehouse-1", "warehouse")
OTHER_WAREHOUSE = claims("warehouse-2", "warehouse")


@pytest.fixture
def po(aws):
    """An open purchase order for 2 units, as settlement raises it."""
    tx = Transaction()
    raised = purchase_order_service().raise_for_session(
        tx,
        session_id="ses_receipts",
        factory_id="fac_1",
        product_id="prd_1",
        variant_id=None,
        product_name="Kopi",
        quantity=2,
    )
    tx.commit()
    return raised


def receive(po_id, quantity, *, key=None, who=WAREHOUSE):
    return call_api(
        "ReceivePurchaseOrderFunction",
        "POST",
        f"/v1/purchase-orders/{po_id}/receive",
        resource="/v1/purchase-orders/{id}/receive",
        path_parameters={"id": po_id},
        body={"received_quantity": quantity},
        claims=who,
        headers={"Idempotency-Key": key} if key else None,
    )


def stored(aws, po_id):
    """The purchase order and its receipts as the Inventory table holds them."""
    items = aws.dynamodb().query(
        TableName=aws.tables["InventoryTable"],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"PO#{po_id}"}},
        ConsistentRead=True,
    )["Items"]
    [meta] = [i for i in items if i["sk"]["S"] == "META"]
    receipts = [int(i["quantity"]["N"]) for i in items if i["sk"]["S"].startswith("RECEIPT#")]
    return meta["status"]["S"], int(meta["received_quantity"]["N"]), receipts


def released(aws):
    items = aws.dynamodb().scan(TableName=aws.tables["OutboxTable"])["Items"]
    return [json.loads(i["detail"]["S"]) for i in items if i["type"]["S"] == "warehouse.po_received"]


def test_a_partial_receipt_retried_with_the_same_key_is_received_once_and_releases_nothing(aws, po):
    first = receive(po.id, 1, key="receipt-1")
    retried = receive(po.id, 1, key="receipt-1")

    assert first.status == retried.status == 200
    assert retried.body == first.body
    assert (first.body["status"], first.body["received_quantity"]) == ("open", 1)
    assert stored(aws, po.id) == ("open", 1, [1])
    assert released(aws) == []


def test_the_same_key_with_another_quantity_or_order_is_refused(aws, po):
    receive(po.id, 1, key="receipt-1")

    other_quantity = receive(po.id, 2, key="receipt-1")
    other_order = receive("po_other", 1, key="receipt-1")

    assert other_quantity.status == other_order.status == 422
    assert other_quantity.body["error"]["code"] == "idempotency_key_reused"
    assert other_order.body["error"]["code"] == "idempotency_key_reused"
    assert stored(aws, po.id) == ("open", 1, [1])


def test_a_completing_receipt_replayed_after_the_order_moved_on_answers_the_first_response(aws, po):
    first = receive(po.id, 2, key="receipt-all")

    replay = receive(po.id, 2, key="receipt-all")
    unkeyed = receive(po.id, 2)

    assert first.body["status"] == "received"
    assert (replay.status, replay.body) == (200, first.body)
    assert unkeyed.status == 409
    assert stored(aws, po.id) == ("received", 2, [2])
    assert len(released(aws)) == 1


def test_two_receipts_racing_for_the_last_units_add_up_and_release_once(aws, po):
    """Receipt B commits exactly between receipt A's read and A's conditional write: A's write fails on the
    version, A re-reads and receives on top of B; the completing one alone publishes the release."""
    original_get, raced = PurchaseOrderRepository.get, []

    def get_then_let_b_in(repository, po_id):
        read = original_get(repository, po_id)
        if not raced:
            raced.append(True)
            assert receive(po_id, 1, who=OTHER_WAREHOUSE).status == 200
        return read

    with mock.patch.object(PurchaseOrderRepository, "get", get_then_let_b_in):
        a = receive(po.id, 1)

    assert (a.status, a.body["status"], a.body["received_quantity"]) == (200, "received", 2)
    assert stored(aws, po.id) == ("received", 2, [1, 1])
    [event] = released(aws)
    assert event["data"]["quantity"] == 2


def test_an_over_receipt_is_422_and_changes_nothing(aws, po):
    receive(po.id, 1)

    over = receive(po.id, 2)

    assert over.status == 422
    assert over.body["error"]["details"][0]["field"] == "received_quantity"
    assert stored(aws, po.id) == ("open", 1, [1])
    assert released(aws) == []


def test_escrow_is_not_released_when_the_recorded_receipts_do_not_add_up(aws, po):
    """The completing receipt checks the receipts on record before it publishes the release (GB-14): an
    order whose received_quantity was changed without a receipt is refused, loudly, and nothing moves."""
    aws.dynamodb().update_item(
        TableName=aws.tables["InventoryTable"],
        Key={"pk": {"S": f"PO#{po.id}"}, "sk": {"S": "META"}},
        UpdateExpression="SET received_quantity = :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )

    refused = receive(po.id, 1)

    assert refused.status == 409
    assert refused.body["error"]["code"] == "receipts_inconsistent"
    assert stored(aws, po.id) == ("open", 1, [])
    assert released(aws) == []


def test_a_receipt_retried_after_a_crash_that_lost_its_answer_is_received_once(aws, po):
    """The receipt committed, then the function died before the idempotency record said so; once that record
    expires the retry runs again. The key names the receipt, so the database refuses a second one."""
    with mock.patch.object(BasePersistenceLayer, "save_success", side_effect=RuntimeError("Lambda timed out")):
        crashed = receive(po.id, 1, key="receipt-1")
    assert crashed.status >= 500
    aws.expire_idempotency_records()

    retried = receive(po.id, 1, key="receipt-1")

    assert (retried.status, retried.body["status"], retried.body["received_quantity"]) == (200, "open", 1)
    assert stored(aws, po.id) == ("open", 1, [1])
    assert released(aws) == []


def test_a_receipt_completing_the_order_meanwhile_is_a_retry_not_a_false_inconsistency_alarm(aws, po):
    """Receipt B completes the order exactly between receipt A's read and A's check of the receipts on record.
    A counted B's receipt against the order it had read without it and refused the release, loudly, as if
    the receipts did not add up (a CRITICAL alarm with nothing wrong). A re-reads instead: the order is
    received, A is refused as such, and one release was published."""
    assert receive(po.id, 1).status == 200
    original_get, raced = PurchaseOrderRepository.get, []

    def get_then_let_b_complete(repository, po_id):
        read = original_get(repository, po_id)
        if not raced:
            raced.append(True)
            assert receive(po_id, 1, who=OTHER_WAREHOUSE).status == 200
        return read

    with (
        mock.patch.object(PurchaseOrderRepository, "get", get_then_let_b_complete),
        mock.patch.object(logger, "critical", wraps=logger.critical) as critical,
    ):
        a = receive(po.id, 1)

    assert (a.status, a.body["error"]["code"]) == (409, "illegal_transition")
    assert critical.call_args_list == []
    assert stored(aws, po.id) == ("received", 2, [1, 1])
    assert len(released(aws)) == 1


def test_a_duplicate_receipt_answers_the_order_its_first_attempt_left_not_what_it_read_before(aws, po):
    """WH-4, GB-14 (review of issue 9): a duplicate of a keyed receipt read the order, then its first attempt
    committed, then it found the first attempt's receipt and answered the order as read before it: nothing
    received, so the worker receives the units again under another key. It answers the order with the receipt."""
    original_get, first = PurchaseOrderRepository.get, []
    service = purchase_order_service()
    principal = Principal("warehouse-1", frozenset({Role.WAREHOUSE}))

    def read_then_the_first_attempt_commits(repository, po_id):
        read = original_get(repository, po_id)
        if not first:
            first.append("first attempt")
            first[0] = service.receive(principal, po_id, 1, "dn-1")
        return read

    with mock.patch.object(PurchaseOrderRepository, "get", read_then_the_first_attempt_commits):
        duplicate = service.receive(principal, po.id, 1, "dn-1")

    assert (duplicate.status, duplicate.received_quantity) == (first[0].status, first[0].received_quantity)
    assert duplicate.received_quantity == 1
    assert stored(aws, po.id) == ("open", 1, [1])
