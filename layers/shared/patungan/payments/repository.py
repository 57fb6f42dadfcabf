"""The Payments table: payments ``PAYMENT#id``, refunds ``REFUND#id``, the webhook inbox ``WEBHOOK#key`` (a
callback is recorded once, in the transaction of the change it causes: PAY-3) and quarantined callbacks
``QUARANTINE#key`` (recorded with their inbox key, never applied: PAY-2)."""

from __future__ import annotations

from typing import Any

from patungan.adapters.dynamodb import DynamoTable, Transaction
from patungan.core.errors import Conflict, NotFound
from patungan.payments.models import PAYMENT_TRANSITIONS, Payment, QuarantinedCallback, Refund
from patungan.reconciliation.index import IndexedKind, index_keys

META = "META"


class DuplicateWebhook(Conflict):
    code = "duplicate_webhook"


class PaymentMovedOn(Conflict):
    """The payment is already past the state this change starts from (forward-only, PAY-4)."""

    code = "payment_state_conflict"


class RefundAlreadyRequested(Conflict):
    code = "refund_already_requested"


def _payment_key(payment_id: str) -> dict[str, str]:
    return {"pk": f"PAYMENT#{payment_id}", "sk": META}


def _refund_key(refund_id: str) -> dict[str, str]:
    return {"pk": f"REFUND#{refund_id}", "sk": META}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in {"pk", "sk"}}


class PaymentsRepository:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    def add_payment(self, tx: Transaction, payment: Payment) -> None:
        indexed = index_keys(IndexedKind.PAYMENTS, payment.created_at, payment.id)  # reconciliation (PAY-8)
        tx.put(
            self.table,
            {**_payment_key(payment.id), **payment.model_dump(), **indexed},
            condition="attribute_not_exists(pk)",
        )

    def get_payment(self, payment_id: str) -> Payment:
        payment = self.find_payment(payment_id)
        if payment is None:
            raise NotFound(f"no payment {payment_id}")
        return payment

    def find_payment(self, payment_id: str) -> Payment | None:
        item = self.table.get(_payment_key(payment_id))
        return None if item is None else Payment.model_validate(_plain(item))

    def change_payment(
        self, tx: Transaction, payment: Payment, *, invoice_is: str | None = None, **changes: Any
    ) -> Payment:
        """Write ``changes``; a status change is allowed only from the states PAY-4 allows. With
        ``invoice_is``, only while the payment holds that invoice or none yet (a capture names its invoice)."""
        new_status = changes.get("status", payment.status)
        allowed_from = PAYMENT_TRANSITIONS[new_status] if "status" in changes else frozenset({payment.status})
        self._change(
            tx,
            _payment_key(payment.id),
            changes,
            allowed_from,
            PaymentMovedOn(f"payment {payment.id} cannot become {new_status}"),
            holds_invoice=invoice_is,
        )
        return payment.model_copy(update=changes)

    def fail_payment(self, tx: Transaction, payment: Payment, updated_at: str) -> Payment:
        """A pending payment that holds no invoice fails (its join was rolled back). It is kept, not
        forgotten: an invoice whose creation we never heard back from may still be paid (PAY-1)."""
        changes = {"status": "failed", "updated_at": updated_at}
        self._change(
            tx,
            _payment_key(payment.id),
            changes,
            PAYMENT_TRANSITIONS["failed"],
            PaymentMovedOn(f"payment {payment.id} cannot fail: it moved on or holds an invoice"),
            without_invoice=True,
        )
        return payment.model_copy(update=changes)

    def record_webhook(self, tx: Transaction, key: str, received_at: str) -> None:
        tx.put(
            self.table,
            {"pk": f"WEBHOOK#{key}", "sk": META, "received_at": received_at},
            condition="attribute_not_exists(pk)",
            on_fail=DuplicateWebhook(f"webhook {key} was already processed"),
        )

    def webhook_seen(self, key: str) -> bool:
        return self.table.get({"pk": f"WEBHOOK#{key}", "sk": META}) is not None

    def quarantine(self, tx: Transaction, quarantined: QuarantinedCallback) -> None:
        """Keep a callback that did not match, with its inbox record: a redelivery is a duplicate."""
        self.record_webhook(tx, quarantined.inbox_key, quarantined.received_at)
        tx.put(
            self.table,
            {"pk": f"QUARANTINE#{quarantined.inbox_key}", "sk": META, **quarantined.model_dump()},
            condition="attribute_not_exists(pk)",
            on_fail=DuplicateWebhook(f"webhook {quarantined.inbox_key} was already quarantined"),
        )

    def add_refund(self, tx: Transaction, refund: Refund) -> None:
        tx.put(
            self.table,
            {
                **_refund_key(refund.id),
                **refund.model_dump(),
                **index_keys(IndexedKind.REFUNDS, refund.created_at, refund.id),
            },
            condition="attribute_not_exists(pk)",
            on_fail=RefundAlreadyRequested(f"refund {refund.id} was already requested"),
        )

    def get_refund(self, refund_id: str) -> Refund:
        refund = self.find_refund(refund_id)
        if refund is None:
            raise NotFound(f"no refund {refund_id}")
        return refund

    def find_refund(self, refund_id: str) -> Refund | None:
        item = self.table.get(_refund_key(refund_id))
        return None if item is None else Refund.model_validate(_plain(item))

    def change_refund(self, tx: Transaction, refund: Refund, allowed_from: frozenset[str], **changes: Any) -> Refund:
        self._change(
            tx,
            _refund_key(refund.id),
            changes,
            allowed_from,
            Conflict(f"refund {refund.id} already moved on", code="refund_state_conflict"),
        )
        return refund.model_copy(update=changes)

    def _change(
        self,
        tx: Transaction,
        key: dict[str, str],
        changes: dict[str, Any],
        allowed_from: frozenset[str],
        on_fail: Conflict,
        holds_invoice: str | None = None,
        without_invoice: bool = False,
    ) -> None:
        """Set ``changes`` only while the status is one of ``allowed_from`` (forward-only, PAY-4) and, with
        ``holds_invoice``, while the item's invoice_id is that one or absent; ``without_invoice``: absent."""
        names = {f"#c{i}": name for i, name in enumerate(changes)}
        values: dict[str, Any] = {f":c{i}": value for i, value in enumerate(changes.values())}
        froms = {f":from{i}": status for i, status in enumerate(sorted(allowed_from))}
        condition = f"#status IN ({', '.join(froms)})"
        if without_invoice:
            condition += " AND attribute_not_exists(invoice_id)"
        if holds_invoice is not None:
            condition += " AND (attribute_not_exists(#invoice) OR #invoice = :invoice)"
            names["#invoice"] = "invoice_id"
            values[":invoice"] = holds_invoice
        tx.update(
            self.table,
            key,
            "SET " + ", ".join(f"#c{i} = :c{i}" for i in range(len(changes))),
            condition=condition,
            names={**names, "#status": "status"},
            values={**values, **froms},
            on_fail=on_fail,
        )
