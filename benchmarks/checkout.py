"""The confirm saga (issue 10): DynamoDB calls per confirmed checkout of 1, 5 and 20 lines, by phase (confirm,
the saga's steps to awaiting_payment, the PAID webhook, the fulfilment hold), the Step Functions state
transitions each outcome costs (walked from statemachines/checkout.asl.json), confirm-to-awaiting-payment time
in-process on moto with the local Xendit, and the same time in the local stack (``python -m emulator``: HTTP,
the Lambda runtime, the state machine in moto's interpreter), the buyer's own view of it."""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.dynamodb_calls import DynamoDBCalls, counting_dynamodb_calls
from benchmarks.progress import Progress
from benchmarks.report import table
from emulator import moto_patches
from patungan import composition
from patungan.checkout.cart import CartItemInput, Shopper
from patungan.checkout.confirm import ConfirmRequest
from tests.support.checkout import CatalogPricing, Started, Tokens, confirm_service
from tests.support.groupbuy import group_buy_world
from tests.support.stock import ADDRESS, add_product, receive, stock_world

LINES = (1, 5, 20)
LOCAL_STACK_SAMPLES = 5
# Bounds on a broken run, not expectations (the local stack runs one invocation at a time on a shared machine).
AWAITING_TIMEOUT_SECONDS = 300
POLL_SECONDS = 0.05
PHASES = ("confirm", "saga to awaiting_payment", "PAID webhook", "hold for fulfilment")
MACHINE = Path(__file__).resolve().parents[1] / "statemachines" / "checkout.asl.json"
# The Choice each outcome takes: which branch out of PaymentCreated and ExpiredOrPaid.
OUTCOMES = {
    "invoice, paid": {"PaymentCreated": "WaitForPayment"},
    "wallet or COD": {"PaymentCreated": "HoldForFulfilment"},
    "invoice, expired": {"PaymentCreated": "WaitForPayment", "WaitForPayment": "Expire", "ExpiredOrPaid": "Settled"},
    "invoice, wait task failed, window ended": {
        "PaymentCreated": "WaitForPayment",
        "WaitForPayment": "WaitForPaymentWindowEnd",
        "ExpiredOrPaid": "Settled",
    },
    "failed step, compensated": {"ReserveStock": "Compensate"},
    "payment unavailable, retried, paid": {"CreatePayment": "KeepForPaymentRetry", "PaymentCreated": "WaitForPayment"},
}


@dataclass
class CheckoutRun:
    lines: int
    calls: dict[str, DynamoDBCalls] = field(default_factory=dict)
    confirm_to_awaiting_seconds: float = 0.0


def state_transitions(outcome: dict[str, str]) -> list[str]:
    """The states an execution enters for ``outcome`` (Standard workflows bill each one entered)."""
    states = json.loads(MACHINE.read_text())["States"]
    path, name = [], json.loads(MACHINE.read_text())["StartAt"]
    while True:
        path.append(name)
        state = states[name]
        if state["Type"] in ("Succeed", "Fail"):
            return path
        if name in outcome:
            name = outcome[name]
        elif state["Type"] == "Choice":
            name = state["Default"]
        else:
            name = state["Next"]


def measure_checkout(progress: Progress) -> list[CheckoutRun]:
    patches = moto_patches.install(run_function=_unused, deliver_event=_unused, time_scale=1)
    try:
        with open(os.devnull, "w") as nowhere, contextlib.redirect_stdout(nowhere), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="No application metrics to publish")
            with group_buy_world() as world:
                stock = stock_world()
                return [_measure(world, stock, lines, progress) for lines in LINES]
    finally:
        patches.undo()


def _measure(world: Any, stock: Any, lines: int, progress: Progress) -> CheckoutRun:
    progress(f"a checkout of {lines} lines: confirm, saga, payment")
    shopper = Shopper(customer_id=f"bench-buyer-{lines}")
    for n in range(lines):
        product = add_product(f"prd_bench_{lines}_{n}")
        receive((stock.warehouse.id, product.id, None), 10)
        composition.cart_service().add_item(shopper, CartItemInput(product_id=product.id, quantity=1))
    pricing = CatalogPricing(stock.warehouse.id)
    confirm = confirm_service(pricing, Started())
    saga = composition.checkout_saga()
    saga.task_tokens = Tokens()
    quote = pricing.quote(shopper, None, composition.cart_service().get_for(shopper))
    composition.checkout_repository().remember_preview(shopper.owner_key, quote)
    request = ConfirmRequest(
        address=ADDRESS,
        shipping_method_id="jne:reg",
        payment_method="invoice",
        prices_validated_at=quote.prices_validated_at,
    )
    run = CheckoutRun(lines)
    started = time.perf_counter()
    with counting_dynamodb_calls() as calls:
        checkout_id = confirm.confirm(shopper, request, "bench").checkout_id
    run.calls["confirm"] = calls
    with counting_dynamodb_calls() as calls:
        saga.reserve(checkout_id)
        saga.place_orders(checkout_id)
        saga.create_payment(checkout_id)
    run.calls["saga to awaiting_payment"] = calls
    run.confirm_to_awaiting_seconds = time.perf_counter() - started
    saga.await_payment(checkout_id, "bench-token")
    payment = composition.payment_service().repository.find_payment(
        composition.checkout_repository().get(checkout_id).retail_payment_id
    )
    with counting_dynamodb_calls() as calls:
        world.invoice_callback({"payment": payment.model_dump()})
    run.calls["PAID webhook"] = calls
    with counting_dynamodb_calls() as calls:
        saga.hold_for_fulfilment(checkout_id)
    run.calls["hold for fulfilment"] = calls
    if composition.checkout_repository().get(checkout_id).status != "paid":
        raise AssertionError(f"the benchmark's checkout of {lines} lines did not end paid")
    return run


def measure_local_stack_confirm(progress: Progress, samples: int = LOCAL_STACK_SAMPLES) -> list[float]:
    """Seconds from POST /v1/checkout/confirm until GET /v1/checkout/{id} first shows ``awaiting_payment``, for
    ``samples`` one-line invoice checkouts in a freshly started local stack (the first one also pays the cold
    starts of the functions it reaches). Figures only: nothing here asserts a time."""
    from tests.e2e.conftest import LocalStackClient, running_local_stack
    from tests.e2e.test_shipping_rates import stocked_product

    progress("starting the local stack")
    with tempfile.TemporaryDirectory() as logs, running_local_stack(Path(logs)) as base_url:
        api = LocalStackClient(base_url)
        product_id, _ = stocked_product(api)
        timings = []
        for sample in range(samples):
            progress(f"confirm to awaiting_payment over HTTP, checkout {sample + 1} of {samples}")
            timings.append(_confirm_to_awaiting_over_http(api, product_id, f"bench-http-buyer-{sample}"))
        return timings


def _confirm_to_awaiting_over_http(api: Any, product_id: str, buyer_id: str) -> float:
    from tests.e2e.test_cart_preview import ADDRESS as HTTP_ADDRESS

    buyer = api.token(buyer_id, ["buyer"])
    _ok(api.post("/v1/cart/items", buyer, json={"product_id": product_id, "quantity": 1}))
    rates = _ok(
        api.post(
            "/v1/shipping/rates",
            json={"destination": {"postal_code": "12190"}, "items": [{"product_id": product_id, "quantity": 1}]},
        )
    )
    body = {
        "address": HTTP_ADDRESS,
        "shipping_method_id": rates["rates"][0]["shipping_method_id"],
        "payment_method": "invoice",
    }
    preview = _ok(api.post("/v1/checkout/preview", buyer, json=body))
    started = time.perf_counter()
    confirmed = _ok(
        api.post(
            "/v1/checkout/confirm",
            buyer,
            json={**body, "prices_validated_at": preview["prices_validated_at"]},
            headers={"Idempotency-Key": buyer_id},
        )
    )
    deadline = started + AWAITING_TIMEOUT_SECONDS
    while time.perf_counter() < deadline:
        status = _ok(api.get(f"/v1/checkout/{confirmed['checkout_id']}", buyer))["status"]
        if status == "awaiting_payment":
            return time.perf_counter() - started
        if status not in ("pending",):
            raise AssertionError(f"the benchmark's checkout ended {status}, not awaiting_payment")
        time.sleep(POLL_SECONDS)
    raise AssertionError(f"the benchmark's checkout did not reach awaiting_payment in {AWAITING_TIMEOUT_SECONDS} s")


def _ok(response: Any) -> Any:
    if response.status_code >= 300:
        raise AssertionError(f"{response.request.method} {response.url}: {response.status_code} {response.text}")
    return response.json()


def local_stack_report(timings: list[float]) -> list[str]:
    rows = [[str(n), f"{seconds * 1000:.0f} ms"] for n, seconds in enumerate(timings, start=1)]
    rows.append(["median", f"{statistics.median(timings) * 1000:.0f} ms"])
    return [table(["checkout", "confirm to awaiting_payment"], rows)]


def _unused(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("the checkout benchmark invokes no function through moto")


def checkout_report(runs: list[CheckoutRun]) -> list[str]:
    rows = [
        [
            str(run.lines),
            *(f"{run.calls[phase].total} ({run.calls[phase].transaction_items})" for phase in PHASES),
            str(sum(run.calls[phase].total for phase in PHASES)),
            f"{run.confirm_to_awaiting_seconds * 1000:.0f} ms",
        ]
        for run in runs
    ]
    lines = [
        table(["lines", *(f"{phase}: calls (items in tx)" for phase in PHASES), "calls in all", "to awaiting"], rows),
        "",
        "State transitions per checkout (states entered, from the definition):",
    ]
    lines.append(
        table(
            ["outcome", "transitions", "states"],
            [[name, str(len(path := state_transitions(o))), " > ".join(path)] for name, o in OUTCOMES.items()],
        )
    )
    return lines
