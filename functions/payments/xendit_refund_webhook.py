"""Function URL XenditRefundWebhook: Xendit's refund callbacks (PAY-2, PAY-3); a failed refund is credited
to the buyer's wallet instead, so no one is left without their money."""

from patungan.composition import payment_service, xendit_callback_token
from patungan.core.http import api_handler, create_webhook_app, json_response
from patungan.payments.models import RefundCallback
from patungan.payments.webhooks import require_xendit_token

app = create_webhook_app()


@app.post("/")
def refund_callback(body: RefundCallback):
    require_xendit_token(app, xendit_callback_token())
    return json_response(200, {"status": payment_service().handle_refund_callback(body)})


lambda_handler = api_handler(app)
