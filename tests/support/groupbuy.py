"""A group-buying world for integration tests: moto built from the template, the local Xendit on a loopback
port (the real SDK talks to it), a factory with a product, and the session steps the state machines run,
called the way Step Functions calls them."""

from __future__ import annotations

import base64
import copy
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import requests

from emulator.xendit import LocalXendit
from patungan import composition
from patungan.core.clock import to_iso
from patungan.core.config import get_settings
from patungan.groupbuy.expiry import EXPIRY_REQUESTED
from tests.support.aws import LocalAws, local_aws
from tests.support.lambdas import ApiResponse, call_api, claims, invoke, load_event
from tests.support.servers import serving

CALLBACK_TOKEN = "local-callback-token"
FAKE_SECRET_KEY = "xnd_development_LOCAL_FAKE_KEY_not_a_secret"
ADMIN = claims("admin-1", "admin")
WAREHOUSE = claims("warehouse-1", "warehouse")
DEAD_URL = "http://127.0.0.1:9"  # nothing listens there


def _accept_everything(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "application/json")])
    return [b"{}"]


@contextmanager
def local_xendit_server() -> Iterator[tuple[LocalXendit, str]]:
    """The local Xendit; its own webhooks go to a sink, because the tests deliver callbacks themselves."""
    with serving(_accept_everything) as sink:
        xendit = LocalXendit(CALLBACK_TOKEN, sink, settle_delay_seconds=3600)
        try:
            with serving(xendit.wsgi_app) as url:
                yield xendit, url
        finally:
            xendit.close()


@contextmanager
def group_buy_world(environment: dict[str, str] | None = None) -> Iterator[GroupBuyWorld]:
    """Local AWS with the Xendit secrets in SSM, the local Xendit, and a factory with a product; ``environment``
    adds to the functions' settings (e.g. the local courier's URL)."""
    with local_xendit_server() as (xendit, url), local_aws({"XENDIT_API_URL": url, **(environment or {})}) as aws:
        ssm = boto3.client("ssm")
        ssm.put_parameter(
            Name=aws.environment["XENDIT_SECRET_KEY_PARAMETER"], Value=FAKE_SECRET_KEY, Type="SecureString"
        )
        ssm.put_parameter(
            Name=aws.environment["XENDIT_CALLBACK_TOKEN_PARAMETER"], Value=CALLBACK_TOKEN, Type="SecureString"
        )
        factory = call_api(
            "CreateFactoryFunction",
            "POST",
            "/v1/factories",
            claims=ADMIN,
            body=load_event("catalog/create_factory.json"),
        ).body
        staff = claims("factory-staff-1", "factory", factory_id=factory["id"])
        product = call_api(
            "CreateProductFunction",
            "POST",
            "/v1/products",
            claims=staff,
            body=load_event("catalog/create_product.json"),
        ).body
        yield GroupBuyWorld(aws, xendit, url, factory["id"], product["id"])


def buyer(n: int) -> dict[str, str]:
    return claims(f"buyer-{n}", "buyer")


@dataclass
class GroupBuyWorld:
    aws: LocalAws
    xendit: LocalXendit
    xendit_url: str
    factory_id: str
    product_id: str

    @property
    def staff(self) -> dict[str, str]:
        return claims("factory-staff-1", "factory", factory_id=self.factory_id)

    # ---- API
    def create_session(self, who: dict[str, str] | None = None, **overrides: Any) -> ApiResponse:
        body = {
            "product_id": self.product_id,
            "moq": 10,
            "target_quantity": 20,
            "base_price": 100_000,
            "tiers": [{"min_fill_percent": 50, "unit_price": 90_000}, {"min_fill_percent": 100, "unit_price": 80_000}],
            "deadline": to_iso(datetime.now(UTC) + timedelta(days=2)),
            "max_per_buyer": 5,
            **overrides,
        }
        return call_api("CreateSessionFunction", "POST", "/v1/sessions", body=body, claims=who or self.staff)

    def session(self, **overrides: Any) -> dict[str, Any]:
        response = self.create_session(**overrides)
        assert response.status == 201, response.body
        return response.body

    def get_session(self, session_id: str) -> dict[str, Any]:
        return call_api(
            "GetSessionFunction",
            "GET",
            f"/v1/sessions/{session_id}",
            resource="/v1/sessions/{id}",
            path_parameters={"id": session_id},
        ).body

    def join(
        self,
        who: dict[str, str],
        session_id: str,
        quantity: int = 1,
        idempotency_key: str | None = None,
        **body: Any,
    ) -> ApiResponse:
        return call_api(
            "JoinSessionFunction",
            "POST",
            f"/v1/sessions/{session_id}/join",
            resource="/v1/sessions/{id}/join",
            path_parameters={"id": session_id},
            body={"quantity": quantity, **body},
            claims=who,
            headers={"Idempotency-Key": idempotency_key} if idempotency_key else None,
        )

    def joined(self, who: dict[str, str], session_id: str, quantity: int = 1) -> dict[str, Any]:
        response = self.join(who, session_id, quantity)
        assert response.status == 201, response.body
        return response.body

    def leave(self, who: dict[str, str], session_id: str, idempotency_key: str | None = None) -> ApiResponse:
        return call_api(
            "LeaveSessionFunction",
            "DELETE",
            f"/v1/sessions/{session_id}/participation",
            resource="/v1/sessions/{id}/participation",
            path_parameters={"id": session_id},
            claims=who,
            headers={"Idempotency-Key": idempotency_key} if idempotency_key else None,
        )

    def cancel(self, session_id: str, who: dict[str, str] = ADMIN, idempotency_key: str | None = None) -> ApiResponse:
        return call_api(
            "CancelSessionFunction",
            "POST",
            f"/v1/sessions/{session_id}/cancel",
            resource="/v1/sessions/{id}/cancel",
            path_parameters={"id": session_id},
            claims=who,
            headers={"Idempotency-Key": idempotency_key} if idempotency_key else None,
        )

    def my_participations(self, who: dict[str, str], **query: str) -> list[dict[str, Any]]:
        return call_api(
            "ListMyParticipationsFunction", "GET", "/v1/me/participations", claims=who, query=query or None
        ).body["items"]

    def wallet(self, who: dict[str, str]) -> int:
        return call_api("GetWalletFunction", "GET", "/v1/wallet", claims=who).body["balance"]

    def trial_balance(self) -> dict[str, Any]:
        return call_api("GetTrialBalanceFunction", "GET", "/v1/admin/ledger/trial-balance", claims=ADMIN).body

    def orders(self, who: dict[str, str], **query: str) -> list[dict[str, Any]]:
        return call_api("ListOrdersFunction", "GET", "/v1/orders", claims=who, query=query or None).body["items"]

    # ---- Xendit
    def xendit_down(self) -> None:
        """Xendit unreachable: the functions' next cold start points at a closed port."""
        self._point_xendit_at(DEAD_URL)

    def xendit_up(self) -> None:
        self._point_xendit_at(self.xendit_url)

    @staticmethod
    def _point_xendit_at(url: str) -> None:
        os.environ["XENDIT_API_URL"] = url
        get_settings.cache_clear()
        composition.reset()

    def pay_at_xendit(self, participation: dict[str, Any], method: str = "BANK_TRANSFER") -> None:
        invoice_id = participation["payment"]["invoice_id"]
        response = requests.post(
            f"{self.xendit_url}/simulate/invoices/{invoice_id}/pay", json={"payment_method": method}, timeout=5
        )
        assert response.status_code == 200, response.text

    def invoice_callback(
        self,
        participation: dict[str, Any],
        status: str = "PAID",
        token: str | None = CALLBACK_TOKEN,
        method: str = "BANK_TRANSFER",
        **fields: Any,
    ) -> ApiResponse:
        """Xendit's callback for the participation's invoice; ``fields`` override what it says."""
        body = json.loads(load_event("xendit_invoice_paid.json")["body"])
        payment = participation["payment"]
        body.update(
            {
                "id": payment["invoice_id"],
                "external_id": payment["id"],
                "status": status,
                "amount": payment["amount"],
                "paid_amount": payment["amount"],
                "payment_method": method,
                **fields,
            }
        )
        return self.webhook("XenditInvoiceWebhook", json.dumps(body).encode(), token)

    def webhook(
        self, function: str, body: bytes, token: str | None = CALLBACK_TOKEN, *, base64_encoded: bool = False
    ) -> ApiResponse:
        """POST ``body`` to a webhook's Function URL as Lambda receives it (binary bodies come base64)."""
        event = copy.deepcopy(load_event("xendit_invoice_paid.json"))
        event["body"] = base64.b64encode(body).decode() if base64_encoded else body.decode()
        event["isBase64Encoded"] = base64_encoded
        if token is None:
            event["headers"].pop("x-callback-token")
        else:
            event["headers"]["x-callback-token"] = token
        return _function_url_response(invoke(function, event))

    def second_invoice_at_xendit(self, participation: dict[str, Any]) -> str:
        """Another invoice for the same payment (a duplicate Xendit holds), paid by the buyer; its id."""
        payment = participation["payment"]
        created = requests.post(
            f"{self.xendit_url}/v2/invoices/",
            json={"external_id": payment["id"], "amount": payment["amount"], "invoice_duration": 3600},
            auth=(FAKE_SECRET_KEY, ""),
            timeout=5,
        )
        assert created.status_code == 200, created.text
        invoice_id = created.json()["id"]
        self.pay_at_xendit({"payment": {**payment, "invoice_id": invoice_id}})
        return invoice_id

    def pay(self, participation: dict[str, Any], method: str = "BANK_TRANSFER") -> ApiResponse:
        """The buyer pays at Xendit and Xendit calls back."""
        self.pay_at_xendit(participation, method)
        return self.invoice_callback(participation, "PAID", method=method)

    def refund_callback(
        self, refund: dict[str, Any], event_name: str = "refund.succeeded", **fields: Any
    ) -> ApiResponse:
        """Xendit's callback for our refund; ``fields`` override what its ``data`` says."""
        body = json.loads(load_event("xendit_refund_succeeded.json")["body"])
        body["event"] = event_name
        [payment] = self.items("PaymentsTable", f"PAYMENT#{refund['payment_id']}")
        body["data"].update(
            {
                "id": refund["provider_refund_id"] or "rfd-none",
                "reference_id": refund["id"],
                "invoice_id": refund.get("invoice_id") or payment.get("invoice_id"),
                "amount": refund["amount"],
                "status": "SUCCEEDED" if event_name.endswith("succeeded") else "FAILED",
                **fields,
            }
        )
        return self.webhook("XenditRefundWebhook", json.dumps(body).encode())

    # ---- what the state machines and queues run
    def step(self, function: str, **event: Any) -> Any:
        return invoke(function, event)

    def settle(self, session_id: str) -> str:
        """The group_session machine from the deadline on (JSONPath loop over pages), then the invoice expiry
        worker on what it queued."""
        outcome = self.step("ClaimSessionFunction", session_id=session_id)["outcome"]
        if outcome == "succeed":
            self._pages("SettleSessionPageFunction", session_id)
            self.step("FinalizeSessionSuccessFunction", session_id=session_id)
            self.step("RaisePurchaseOrderFunction", session_id=session_id)
        elif outcome == "fail":
            self.step("MarkSessionFailedFunction", session_id=session_id)
        self.expire_unpaid_invoices()
        return outcome

    def refund_session(self, session_id: str) -> None:
        """The session_refund machine, then the refund and invoice expiry workers on what it queued."""
        self._pages("RefundSessionPageFunction", session_id)
        self.process_refunds()
        self.expire_unpaid_invoices()

    def release_escrow(self, session_id: str) -> None:
        self.step("MarkSessionDeliveredFunction", session_id=session_id)
        self._pages("ReleaseEscrowPageFunction", session_id)
        self.step("CompleteEscrowReleaseFunction", session_id=session_id)

    def _pages(self, function: str, session_id: str) -> None:
        page = {"cursor": None, "done": False}
        while not page["done"]:
            page = self.step(function, session_id=session_id, cursor=page["cursor"])

    def process_refunds(self) -> dict[str, Any]:
        return self.deliver_queued("payment.refund_requested", "ProcessRefundsFunction")

    def expire_unpaid_invoices(self) -> dict[str, Any]:
        return self.deliver_queued(EXPIRY_REQUESTED, "ExpireUnpaidInvoicesFunction")

    def deliver_queued(self, event_type: str, function: str, *, newest_first: bool = False) -> dict[str, Any]:
        """Deliver the outbox's events of ``event_type`` to a queue consumer as an EventBridge rule with an
        SQS target would (the message body is the EventBridge event)."""
        records = [
            {
                "messageId": f"m{i}",
                "receiptHandle": f"r{i}",
                "body": json.dumps({"detail": event}),
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:ap-southeast-3:123456789012:{function}",
                "awsRegion": "ap-southeast-3",
            }
            for i, event in enumerate(
                sorted(self.events(event_type), key=lambda e: e["event_id"], reverse=newest_first)
            )
        ]
        if not records:  # SQS invokes a consumer only with messages
            return {"batchItemFailures": []}
        return invoke(function, {"Records": records})

    # ---- looking inside
    def events(self, event_type: str) -> list[dict[str, Any]]:
        scan = self.aws.dynamodb().get_paginator("scan")
        pages = scan.paginate(  # a flash sale's outbox is many pages
            TableName=self.aws.tables["OutboxTable"],
            FilterExpression="#type = :type",
            ExpressionAttributeNames={"#type": "type"},
            ExpressionAttributeValues={":type": {"S": event_type}},
        )
        found = [json.loads(i["detail"]["S"]) for page in pages for i in page["Items"]]
        return sorted(found, key=lambda e: e["event_id"])

    def items(self, table: str, prefix: str) -> list[dict[str, Any]]:
        from patungan.adapters.dynamodb import deserialize

        paginator = boto3.client("dynamodb").get_paginator("scan")
        rows = [deserialize(i) for page in paginator.paginate(TableName=self.aws.tables[table]) for i in page["Items"]]
        return [r for r in rows if r["pk"].startswith(prefix)]

    def refund_of(self, participation: dict[str, Any]) -> dict[str, Any]:
        [refund] = [
            r for r in self.items("PaymentsTable", "REFUND#") if r["payment_id"] == participation["payment"]["id"]
        ]
        return refund

    def quarantined(self) -> list[dict[str, Any]]:
        return self.items("PaymentsTable", "QUARANTINE#")

    def payment(self, participation: dict[str, Any]) -> dict[str, Any]:
        [payment] = self.items("PaymentsTable", f"PAYMENT#{participation['payment']['id']}")
        return payment

    def session_item(self, session_id: str) -> dict[str, Any]:
        """The session item as stored (its counters live on its capacity shards)."""
        [item] = [row for row in self.items("GroupBuyTable", f"SESSION#{session_id}") if row["sk"] == "META"]
        return item

    def capacity_shards(self, session_id: str) -> list[dict[str, Any]]:
        rows = self.items("GroupBuyTable", f"SESSION#{session_id}")
        return sorted((row for row in rows if row["sk"].startswith("CAPACITY#")), key=lambda row: row["sk"])

    def participation(self, session_id: str, participation_id: str) -> dict[str, Any]:
        rows = self.items("GroupBuyTable", f"SESSION#{session_id}")
        [item] = [row for row in rows if row["sk"] == f"PART#{participation_id}"]
        return item

    def invoices_at_xendit(self, session_id: str) -> list[Any]:
        return [i for i in self.xendit._invoices.values() if session_id in i.description]


def _function_url_response(response: dict[str, Any]) -> ApiResponse:
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    return ApiResponse(response["statusCode"], headers, json.loads(response["body"]) if response.get("body") else None)
