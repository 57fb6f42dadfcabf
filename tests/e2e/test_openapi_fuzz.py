"""The whole API under schemathesis, as the fuzzing run of issue 6 drove it (SYS-3: never a 500).

Every operation of the local stack's OpenAPI document gets generated requests - valid ones and hostile ones
(bodies that are not JSON or not UTF-8, wrong types, out-of-range numbers, odd strings) - as each role: anonymous,
buyer, factory staff of the demo factory, warehouse and admin. A response must never be a server error and
must match the schema the document gives for its status. Bounded (examples per operation) and seeded, so a
run is the same run every time; deselect it with ``-m "not fuzz"``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from patungan.core.clock import to_iso
from tests.e2e.conftest import LocalStackClient, running_local_stack

pytestmark = [pytest.mark.e2e, pytest.mark.fuzz]

SEED = 7
# Five roles at this bound, stack start included, on 2 cores: 45-50 s quiet, 112 s at load 10 (25: 139 s at load 7).
EXAMPLES_PER_OPERATION = 10
RUN_TIMEOUT_SECONDS = 300
SCHEMATHESIS = Path(sys.executable).with_name("st")
# Later roles see what earlier ones created (the admin's factories, the factory's products).
ROLES: dict[str, dict[str, Any] | None] = {
    "anonymous": None,
    "buyer": {"sub": "fuzz-buyer", "groups": ["buyer"]},
    "factory": {"sub": "fuzz-factory-staff", "groups": ["factory"]},
    "warehouse": {"sub": "fuzz-warehouse", "groups": ["warehouse"]},
    "admin": {"sub": "fuzz-admin", "groups": ["admin"]},
}


@pytest.fixture(scope="module")
def fuzzed_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackClient]:
    """A local stack of its own: what the fuzzer creates must not show up in other tests' lists."""
    with running_local_stack(tmp_path_factory.mktemp("fuzzed-stack")) as base_url:
        yield LocalStackClient(base_url)


@dataclass(frozen=True)
class FuzzWorld:
    """What the run starts from: the demo factory and, so that not every id the fuzzer tries is unknown, a
    session the fuzzing buyer has joined. Half of the ids it puts in paths and bodies are these."""

    factory_id: str
    config: Path


@pytest.fixture(scope="module")
def fuzz_world(fuzzed_stack: LocalStackClient, tmp_path_factory: pytest.TempPathFactory) -> FuzzWorld:
    [product, *_] = [p for p in fuzzed_stack.get("/v1/products").json()["items"] if p.get("factory_id")]
    staff = fuzzed_stack.token(**ROLES["factory"], factory_id=product["factory_id"])  # type: ignore[arg-type]
    session = fuzzed_stack.post(
        "/v1/sessions",
        staff,
        json={
            "product_id": product["id"],
            "moq": 2,
            "target_quantity": 100,
            "base_price": 100_000,
            "tiers": [{"min_fill_percent": 50, "unit_price": 90_000}],
            "deadline": to_iso(datetime.now(UTC) + timedelta(days=2)),
            "max_per_buyer": 5,
        },
    )
    assert session.status_code == 201, session.text
    buyer = fuzzed_stack.token(**ROLES["buyer"])  # type: ignore[arg-type]
    joined = fuzzed_stack.post(f"/v1/sessions/{session.json()['id']}/join", buyer, json={"quantity": 1})
    assert joined.status_code == 201, joined.text
    ids = [session.json()["id"], product["id"], product["factory_id"], joined.json()["payment"]["id"]]
    users = [ROLES["buyer"]["sub"]]  # type: ignore[index]
    config = tmp_path_factory.mktemp("schemathesis") / "schemathesis.toml"
    config.write_text(
        f"[dictionaries.ids]\nvalues = {json.dumps(ids)}\n\n"
        f"[dictionaries.users]\nvalues = {json.dumps(users)}\n\n"
        f"[dictionaries.products]\nvalues = {json.dumps([product['id']])}\n\n"
        f"[dictionaries.factories]\nvalues = {json.dumps([product['factory_id']])}\n\n"
        "[parameters]\n"
        '"path.id" = { dictionary = "ids", probability = 0.5 }\n'
        '"path.user_id" = { dictionary = "users", probability = 0.5 }\n'
        '"body.product_id" = { dictionary = "products", probability = 0.5 }\n'
        '"body.factory_id" = { dictionary = "factories", probability = 0.5 }\n'
    )
    return FuzzWorld(product["factory_id"], config)


def _summary(role: str, report: dict[str, Any], output: str) -> str:
    lines = [f"schemathesis found failures as {role} (seed {SEED}, {EXAMPLES_PER_OPERATION} examples/operation):"]
    for failure in report.get("failures", []):
        lines.append(
            f"  {failure['title']} ({failure['code']}) x{failure['count']}: {', '.join(failure['operations'])}"
        )
    for error in report.get("errors", []):
        lines.append(f"  error: {json.dumps(error)[:500]}")
    # The tool's own account: each failure with the response it got and a curl line to reproduce it.
    details = output.split("=== FAILURES ===", 1)[-1].split("=== WARNINGS ===", 1)[0].split("=== SUMMARY ===", 1)[0]
    lines.append(details[-12_000:])
    return "\n".join(lines)


@pytest.mark.parametrize("role", ROLES)
def test_no_request_gets_a_server_error_or_an_undocumented_body(
    fuzzed_stack: LocalStackClient, fuzz_world: FuzzWorld, role: str, tmp_path: Path
) -> None:
    """SYS-3 and issue 6 "Hostile input": checks not_a_server_error and response_schema_conformance."""
    assert SCHEMATHESIS.exists(), f"schemathesis is not installed in {sys.prefix}: run `make venv`"
    headers: list[str] = []
    identity = ROLES[role]
    if identity is not None:
        if role == "factory":
            identity = {**identity, "factory_id": fuzz_world.factory_id}
        headers = ["-H", f"Authorization: Bearer {fuzzed_stack.token(**identity)}"]
    report_path = tmp_path / "report.json"
    command = [
        str(SCHEMATHESIS),
        f"--config-file={fuzz_world.config}",
        "run",
        f"{fuzzed_stack.base_url}/openapi.json",
        f"--url={fuzzed_stack.base_url}",
        *headers,
        "--checks=not_a_server_error,response_schema_conformance",
        f"--max-examples={EXAMPLES_PER_OPERATION}",
        f"--seed={SEED}",
        "--workers=1",
        "--generation-database=none",
        "--request-timeout=30",
        "--no-color",
        "--report=json",
        f"--report-json-path={report_path}",
    ]
    run = subprocess.run(
        command, check=False, cwd=tmp_path, capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS
    )
    output = run.stdout + run.stderr
    assert report_path.exists(), f"schemathesis did not run (exit {run.returncode}):\n{output[-5000:]}"
    report = json.loads(report_path.read_text())
    assert report["operations"]["tested"] == report["operations"]["total"], output[-5000:]
    assert not report["failures"] and not report["errors"], _summary(role, report, output)
    assert run.returncode == 0, output[-5000:]
