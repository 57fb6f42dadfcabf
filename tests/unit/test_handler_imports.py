"""Cold start (issue 8): a handler imports only what its operation uses. The Xendit SDK alone costs ~0.4 s of
import, so a handler that never calls Xendit must not import it (through the composition root or the
adapter's types); no request needs Powertools' OpenAPI models (only the OpenAPI document does, ~50 ms), and
only a bearer token sent to a public route needs joserfc (~30 ms): a webhook never verifies one."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from emulator.template import ROOT, Template

NEVER_CALL_XENDIT = (
    "GetProductFunction",
    "ListProductsFunction",
    "GetSessionFunction",
    "ListSessionsFunction",
    "ListMyParticipationsFunction",
    "GetOrderFunction",
    "GetPaymentFunction",
    "GetTrialBalanceFunction",
    "GetWalletFunction",
    "OutboxRelayFunction",
    "NotifyOnDomainEventFunction",
)
WEBHOOKS = ("XenditInvoiceWebhook", "XenditRefundWebhook", "XenditPayoutWebhook")
# Public routes (a bearer token is optional), signed-in routes and the webhooks.
HTTP_HANDLERS = ("GetSessionFunction", "ListProductsFunction", "JoinSessionFunction", "LeaveSessionFunction", *WEBHOOKS)
OPENAPI_MODELS = "aws_lambda_powertools.event_handler.openapi.models"

_IMPORT_HANDLER = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("lambda_function", sys.argv[1])
spec.loader.exec_module(importlib.util.module_from_spec(spec))
print(json.dumps(sorted(sys.modules)))
"""


def modules_imported_by(function: str) -> set[str]:
    """Every module the handler of ``function`` imports in a fresh interpreter, as a cold start imports it."""
    module_file = Template.load().functions()[function].module_file
    completed = subprocess.run(
        [sys.executable, "-c", _IMPORT_HANDLER, str(module_file)],
        env={"PYTHONPATH": str(ROOT / "layers" / "shared"), "AWS_DEFAULT_REGION": "ap-southeast-3"},
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(completed.stdout))


def packages(modules: set[str]) -> set[str]:
    return {module.split(".")[0] for module in modules}


@pytest.mark.parametrize("function", NEVER_CALL_XENDIT)
def test_a_handler_that_never_calls_xendit_does_not_import_its_sdk(function):
    assert "xendit" not in packages(modules_imported_by(function))


@pytest.mark.parametrize("function", HTTP_HANDLERS)
def test_an_http_handler_imports_no_openapi_model_and_a_webhook_no_token_verification(function):
    imported = modules_imported_by(function)
    assert OPENAPI_MODELS not in imported
    if function in WEBHOOKS:
        assert "joserfc" not in packages(imported)
