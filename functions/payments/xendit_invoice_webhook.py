"""Function URL XenditInvoiceWebhook: Xendit's invoice callbacks (PAY-2, PAY-3). A wrong or missing
x-callback-token is 403 before the body is read; a duplicate or out-of-order callback is 200 and changes
nothing; one that does not match its payment is 200 "quarantined" and is never captured."""

from patungan.composition import payment_service, xendit_callback_token
from patungan.core.http import api_handler, create_webhook_app, json_response
from patungan.payments.models import InvoiceCallback
from patungan.payments.webhooks import verified_callback

app = create_webhook_app()


@app.post("/")
def invoice_callback():
    callback, body = verified_callback(app, xendit_callback_token(), InvoiceCallback)
    return json_response(200, {"status": payment_service().handle_invoice_callback(callback, body)})


lambda_handler = api_handler(app)
