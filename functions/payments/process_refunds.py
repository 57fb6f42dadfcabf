"""RefundQueue consumer (payment.refund_requested): sends requested refunds to Xendit (GB-11); a gateway
outage fails the message, which SQS retries and finally dead-letters."""

from patungan.composition import payment_service
from patungan.core.consumers import queued_event_handler

lambda_handler = queued_event_handler(lambda event: payment_service().process_refund(event.data["refund_id"]))
