"""What one TransactWriteItems costs on moto as the table grows (issue 8): as released, moto deep-copies every
table a transaction touches before it runs; with the local stack's rollback (``cheaper_moto``, which the tests
take too) it saves only the items the transaction touches."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends

from benchmarks.world import expect
from emulator.moto_patches import cheaper_moto
from emulator.template import REGION

DEFAULT_TABLE_SIZES = (1_000, 10_000, 50_000)
TABLE = "Transactions"
# Enough transactions for a stable mean, few enough that moto as released ends in seconds at 50 000 items.
TRANSACTIONS = {"as released": 6, "touched items": 200}


@dataclass(frozen=True)
class TransactionCost:
    table_items: int
    ms_as_released: float
    ms_touched_items: float


def measure_transactions(table_sizes: tuple[int, ...] = DEFAULT_TABLE_SIZES) -> list[TransactionCost]:
    costs = []
    for size in table_sizes:
        with _table_of(size) as dynamodb:
            released = _ms_per_transaction(dynamodb, TRANSACTIONS["as released"])
            with cheaper_moto(speed=False):
                touched = _ms_per_transaction(dynamodb, TRANSACTIONS["touched items"])
        costs.append(TransactionCost(size, released, touched))
    return costs


def transaction_cost_table(costs: list[TransactionCost]) -> str:
    header = f"{'table items':>11}  {'ms/tx as released':>17}  {'ms/tx touched items':>19}  {'ratio':>6}"
    rows = [
        f"{c.table_items:>11,}  {c.ms_as_released:>17.1f}  {c.ms_touched_items:>19.2f}  "
        f"{c.ms_as_released / c.ms_touched_items:>5.0f}x"
        for c in costs
    ]
    return "\n".join([header, "-" * len(header), *rows])


@contextlib.contextmanager
def _table_of(size: int) -> Iterator[object]:
    """A table of ``size`` items with a GSI, like ours; filled through moto's Table (an API call per item would
    take longer than the measurement)."""
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk", "gsi1pk")],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "gsi1",
                    "KeySchema": [{"AttributeName": "gsi1pk", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        )
        table = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].get_table(TABLE)
        for n in range(size):
            table.put_item(
                {"pk": {"S": f"P#{n}"}, "sk": {"S": "META"}, "gsi1pk": {"S": f"G#{n % 100}"}, "stock": {"N": "1"}}
            )
        yield dynamodb


def _ms_per_transaction(dynamodb: object, transactions: int) -> float:
    """Alternately a committed transaction (an update and a condition check) and one its check cancels."""
    started = time.perf_counter()
    for n in range(transactions):
        check = "attribute_exists(pk)" if n % 2 == 0 else "attribute_not_exists(pk)"
        items = [
            {
                "Update": {
                    "TableName": TABLE,
                    "Key": {"pk": {"S": "P#0"}, "sk": {"S": "META"}},
                    "UpdateExpression": "ADD stock :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            },
            {
                "ConditionCheck": {
                    "TableName": TABLE,
                    "Key": {"pk": {"S": "P#1"}, "sk": {"S": "META"}},
                    "ConditionExpression": check,
                }
            },
        ]
        try:
            dynamodb.transact_write_items(TransactItems=items)
            cancelled = False
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            cancelled = True
        expect(cancelled == (n % 2 == 1), f"transaction {n} {'was' if cancelled else 'was not'} cancelled")
    return (time.perf_counter() - started) * 1000 / transactions
