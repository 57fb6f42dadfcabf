"""The confirm saga (issue 10): DynamoDB calls per confirmed checkout of 1, 5 and 20 lines, by phase (confirm,
the saga's steps to awaiting_payment, the PAID webhook, the fulfilment hold), the Step Functions state
transitions each outcome costs (walked from statemachines/checkout.asl.json), and confirm-to-awaiting-payment
time in-process on moto with the local Xendit."""

from __future__ import annotations

import contextlib
import json
import os
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
PHASES = ("confirm", "saga to awaiting_payment", "PAID webhook", "hold for fulfilment")
MACHINE = Path(__file__).resolve().parents[1] / "statemachines" / "checkout.asl.json"
# The Choice each outcome takes: which branch out of PaymentCreated and ExpiredOrPaid.
OUTCOMES = {
    "invoice, paid": {"PaymentCreated": "WaitForPayment"},
    "wallet or COD": {"PaymentCreated": "HoldForFulfilment"},
    "invoice, expired": {"PaymentCreated": "WaitForPayment", "WaitForPayment": "Expire", "ExpiredOrPaid": "Settled"},
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
