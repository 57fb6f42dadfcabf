"""InvoiceExpiryQueue consumer (groupbuy.participant.invoice_expiry_requested): expires a closed session's
unpaid invoice at Xendit, then the payment here (GB-10, GB-11, defect 5). A gateway outage fails the
message, which SQS retries and finally dead-letters (alarm)."""

from patungan.composition import unpaid_invoice_expiry
from patungan.core.consumers import queued_event_handler

lambda_handler = queued_event_handler(lambda event: unpaid_invoice_expiry().expire(event.data["payment_id"]))
