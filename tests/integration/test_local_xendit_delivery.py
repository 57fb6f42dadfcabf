"""The local Xendit delivers the callbacks of different invoices in parallel: the local stack behind the
webhooks runs one invocation at a time, and one callback at a time left it idle during each round trip."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable
from typing import Any

import requests

from emulator.xendit import LocalXendit
from tests.support.servers import serving

TOKEN = "local-callback-token"
API_KEY = ("xnd_development_LOCAL_FAKE_KEY_not_a_secret", "")


def test_callbacks_of_two_invoices_are_in_flight_together():
    both_in_flight = threading.Barrier(2, timeout=60)  # generous: only a serial delivery never gets there
    delivered: queue.Queue[str] = queue.Queue()

    def webhooks(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        body = json.loads(environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"])))
        both_in_flight.wait()  # one delivery at a time would never get the second here: the barrier breaks
        delivered.put(body["id"])
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"{}"]

    with serving(webhooks) as webhook_url:
        xendit = LocalXendit(TOKEN, webhook_url)
        try:
            with serving(xendit.wsgi_app) as url:
                invoices = [
                    requests.post(
                        f"{url}/v2/invoices/", json={"external_id": f"pay_{n}", "amount": 1000.0}, auth=API_KEY
                    ).json()["id"]
                    for n in (1, 2)
                ]
                for invoice_id in invoices:
                    assert requests.post(f"{url}/simulate/invoices/{invoice_id}/pay", json={}).status_code == 200

                received = [delivered.get(timeout=60) for _ in invoices]
        finally:
            xendit.close()

    assert not both_in_flight.broken
    assert sorted(received) == sorted(invoices)
