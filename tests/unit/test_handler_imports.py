"""Cold start (issue 8): a handler imports only what its operation uses. The Xendit SDK alone costs ~0.4 s of
import, so a handler that never calls Xendit must not import it (through the composition root or the
adapter's types)."""

from __future__ import annotations

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

_IMPORT_HANDLER = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("lambda_function", sys.argv[1])
spec.loader.exec_module(importlib.util.module_from_spec(spec))
print(sorted(module for module in sys.modules if module.split(".")[0] == "xendit")[:3])
"""


@pytest.mark.parametrize("function", NEVER_CALL_XENDIT)
def test_a_handler_that_never_calls_xendit_does_not_import_its_sdk(function):
    """Imported in a fresh interpreter, as a cold start imports it."""
    module_file = Template.load().functions()[function].module_file
    completed = subprocess.run(
        [sys.executable, "-c", _IMPORT_HANDLER, str(module_file)],
        env={"PYTHONPATH": str(ROOT / "layers" / "shared"), "AWS_DEFAULT_REGION": "ap-southeast-3"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert completed.stdout.strip() == "[]"
