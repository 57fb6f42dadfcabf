"""One process runs every function locally; in Lambda each has its own container, composed from its own
environment at its cold start."""

from __future__ import annotations

from emulator.stack import _adopt_function_environment
from patungan import composition

CHECKOUT_ARN = "arn:aws:states:ap-southeast-3:123456789012:stateMachine:CheckoutStateMachine"


def test_a_function_does_not_run_with_the_services_another_function_composed(monkeypatch):
    """GET /v1/checkout/{id} (no state machine ARN in its environment) answered first, then the first confirm
    started the saga with an empty ARN: AccessDenied, 503, and every confirm after it 429 (CHK-2, SYS-3)."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-southeast-3")
    for required in ("CATALOG_TABLE", "OUTBOX_TABLE", "IDEMPOTENCY_TABLE", "EVENT_BUS_NAME"):
        monkeypatch.setenv(required, required.lower())
    monkeypatch.delenv("CHECKOUT_STATE_MACHINE_ARN", raising=False)
    _adopt_function_environment()
    composition.reset()
    assert composition.confirm_service().settings.state_machine_arn == ""  # as GetCheckoutFunction composes it

    monkeypatch.setenv("CHECKOUT_STATE_MACHINE_ARN", CHECKOUT_ARN)  # ConfirmCheckoutFunction's environment
    _adopt_function_environment()

    assert composition.confirm_service().settings.state_machine_arn == CHECKOUT_ARN
    composition.reset()
