"""Function URL CourierWebhook: the courier's status callbacks (LOG-2). Biteship cannot sign a request, so our
secret rides in the URL's ``token`` query parameter: wrong or missing is 403 before the body is read. A
duplicate, stale or backward status is 200 and changes nothing; a courier order no shipment names yet is 503
(the courier retries it: its booking has not stored the courier's answer yet)."""

from patungan.adapters.xendit import verify_callback_token
from patungan.composition import courier_webhook_token, shipment_tracking
from patungan.core.errors import Forbidden
from patungan.core.http import api_handler, create_webhook_app, json_response
from patungan.fulfilment.tracking import CourierWebhookBody
from patungan.payments.webhooks import parsed_callback

app = create_webhook_app()


@app.post("/")
def courier_callback():
    if not verify_callback_token(app.current_event.get_query_string_value("token"), courier_webhook_token()):
        raise Forbidden("the webhook token is missing or wrong", code="invalid_callback_token")
    body, _ = parsed_callback(app, CourierWebhookBody)
    return json_response(200, {"status": shipment_tracking().handle_webhook(body)})


lambda_handler = api_handler(app)
