"""/_xendit, the page the README and ``make run`` point at, lists what the local Xendit holds (issue 6, "what a
newcomer tripped over": it answered 404): invoices with links to their checkout pages, refunds and payouts,
newest first; JSON with Accept: application/json. Simulations read the JSON body curl -d sends."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.test import Client
from werkzeug.wrappers import Response

from emulator.stack import XENDIT_PATH
from emulator.xendit import LocalXendit

API_KEY = {"Authorization": "Basic " + base64.b64encode(b"xnd_development_fake:").decode()}
NOWHERE = "http://127.0.0.1:9"  # webhooks are not the subject here: nothing listens, they are dropped on close


@pytest.fixture
def xendit() -> Iterator[Client]:
    local = LocalXendit("token", NOWHERE, settle_delay_seconds=3600)  # refunds and payouts stay as created
    try:
        yield Client(DispatcherMiddleware(Response("not here", status=404), {XENDIT_PATH: local.wsgi_app}))
    finally:
        local.close()


def create_invoice(xendit: Client, external_id: str, amount: int) -> dict[str, Any]:
    response = xendit.post(
        f"{XENDIT_PATH}/v2/invoices/", json={"external_id": external_id, "amount": amount}, headers=API_KEY
    )
    assert response.status_code == 200, response.text
    return response.json


def test_the_overview_page_lists_invoices_newest_first_with_their_checkout_links(xendit):
    older = create_invoice(xendit, "pay_older", 90_000)
    newer = create_invoice(xendit, "pay_<newer>", 100_000)

    page = xendit.get(XENDIT_PATH)

    assert page.status_code == 200
    assert page.mimetype == "text/html"
    text = page.text
    links = re.findall(r'<a href="([^"]+)">([0-9a-f]{24})</a>', text)
    assert links == [(newer["invoice_url"], newer["id"]), (older["invoice_url"], older["id"])]
    assert newer["invoice_url"].startswith(f"http://localhost{XENDIT_PATH}/invoices/")
    assert "pay_&lt;newer&gt;" in text and "<newer>" not in text  # what callers sent is escaped
    assert "Rp100.000" in text and "PENDING" in text and newer["expiry_date"] in text
    assert xendit.get(newer["invoice_url"].removeprefix("http://localhost")).status_code == 200


def test_the_overview_lists_refunds_and_payouts(xendit):
    invoice = create_invoice(xendit, "pay_refunded", 100_000)
    assert xendit.post(f"{XENDIT_PATH}/simulate/invoices/{invoice['id']}/pay").status_code == 200
    refund = xendit.post(
        f"{XENDIT_PATH}/refunds", json={"invoice_id": invoice["id"], "amount": 20_000}, headers=API_KEY
    ).json
    payout = xendit.post(
        f"{XENDIT_PATH}/v2/payouts",
        json={
            "reference_id": "po_1",
            "channel_code": "ID_BCA",
            "channel_properties": {"account_number": "1234567890", "account_holder_name": "Pabrik"},
            "amount": 480_000,
            "currency": "IDR",
        },
        headers={**API_KEY, "idempotency-key": "po_1"},
    ).json

    text = xendit.get(f"{XENDIT_PATH}/").text

    assert "Refunds (1)" in text and refund["id"] in text and "Rp20.000" in text
    assert "Payouts (1)" in text and payout["id"] in text and "Rp480.000" in text and "1234567890" in text


def test_the_overview_says_when_there_is_nothing_yet(xendit):
    text = xendit.get(XENDIT_PATH).text

    assert text.count("None yet.") == 3


def test_the_overview_in_json_holds_the_api_objects(xendit):
    older = create_invoice(xendit, "pay_1", 90_000)
    newer = create_invoice(xendit, "pay_2", 100_000)

    response = xendit.get(XENDIT_PATH, headers={"Accept": "application/json"})

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.json == {"invoices": [newer, older], "refunds": [], "payouts": []}


def test_a_simulation_body_sent_as_curl_d_sends_it_is_read(xendit):
    """The README pastes ``curl -d '{"payment_method": "RETAIL_OUTLET"}'``: a JSON body with a form content type."""
    invoice = create_invoice(xendit, "pay_outlet", 100_000)

    paid = xendit.post(
        f"{XENDIT_PATH}/simulate/invoices/{invoice['id']}/pay",
        data='{"payment_method": "RETAIL_OUTLET"}',
        content_type="application/x-www-form-urlencoded",
    )

    assert paid.status_code == 200, paid.text
    assert paid.json["payment_method"] == "RETAIL_OUTLET"
