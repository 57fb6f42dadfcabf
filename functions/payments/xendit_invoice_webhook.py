"""Function URL XenditInvoiceWebhook: Xendit's invoice callbacks (PAY-2, PAY-3). A wrong or missing
x-callback-token is 403 and changes nothing; a duplicate or out-of-order callback is 200 and changes nothing."""

from patungan.composition import payment_service, xendit_callback_token
from patungan.core.http import api_handler, create_webhook_app, json_response
from patungan.payments.models import InvoiceCallback
from patungan.payments.webhooks import require_xendit_token

app = create_webhook_app()


@app.post("/")
def invoice_callback(body: InvoiceCallback):
    require_xendit_token(app, xendit_callback_token())
    return json_response(200, {"status": payment_service().handle_invoice_callback(body)})


lambda_handler = api_handler(app)
