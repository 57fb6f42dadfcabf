"""Function URL XenditRefundWebhook: Xendit's refund callbacks (PAY-2, PAY-3); a failed refund is credited
to the buyer's wallet instead, so no one is left without their money. The token is checked before the body
is read; a callback that does not match our refund is 200 "quarantined" and is never applied."""

from patungan.composition import payment_service, xendit_callback_token
from patungan.core.http import api_handler, create_webhook_app, json_response
from patungan.payments.models import RefundCallback
from patungan.payments.webhooks import verified_callback

app = create_webhook_app()


@app.post("/")
def refund_callback():
    callback, body = verified_callback(app, xendit_callback_token(), RefundCallback)
    return json_response(200, {"status": payment_service().handle_refund_callback(callback, body)})


lambda_handler = api_handler(app)
