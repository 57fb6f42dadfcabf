"""Function URL XenditPayoutWebhook: Xendit's payout callbacks complete, fail or reverse a withdrawal (WAL-2,
PAY-2, PAY-3). The token is checked before the body is read; a callback that does not match the withdrawal
it names is 200 "quarantined" and is never applied."""

from patungan.composition import withdrawal_service, xendit_callback_token
from patungan.core.http import api_handler, create_webhook_app, json_response
from patungan.payments.webhooks import verified_callback
from patungan.wallet.models import PayoutCallback

app = create_webhook_app()


@app.post("/")
def payout_callback():
    callback, body = verified_callback(app, xendit_callback_token(), PayoutCallback)
    return json_response(200, {"status": withdrawal_service().handle_payout_callback(callback, body)})


lambda_handler = api_handler(app)
