"""The local stack started as ``make run`` starts it - ``python -m emulator`` in a subprocess, on a free
loopback port - once per session, and a small HTTP client for it. ``running_local_stack`` starts another
one (say, with its own time scale) for a module that needs it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
# Bounds, not expectations, so generous: a fresh clone compiles every module on a busy machine, and the stack
# runs one invocation at a time (issue 6, defect 9: a test must not depend on how fast the machine is).
START_TIMEOUT_SECONDS = 600
HEALTH_TIMEOUT_SECONDS = 30
STOP_TIMEOUT_SECONDS = 30
REQUEST_TIMEOUT_SECONDS = 120
LOG_NAME = "local-stack.log"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalStackClient:
    """requests against the running local stack; ``token`` signs in as anyone."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()

    def token(self, sub: str, groups: list[str], factory_id: str | None = None, seller_id: str | None = None) -> str:
        body: dict[str, Any] = {"sub": sub, "groups": groups}
        if factory_id:
            body["factory_id"] = factory_id
        if seller_id:
            body["seller_id"] = seller_id
        response = self.post("/_local/token", json=body)
        response.raise_for_status()
        return response.json()["token"]

    def request(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        kwargs.setdefault("timeout", REQUEST_TIMEOUT_SECONDS)
        return self.session.request(method, f"{self.base_url}{path}", headers=headers, **kwargs)

    def get(self, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, token, **kwargs)

    def post(self, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, token, **kwargs)


def _wait_until_healthy(process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the local stack exited with {process.returncode}:\n{log.read_text()[-5000:]}")
        try:
            if requests.get(f"{base_url}/_local/health", timeout=HEALTH_TIMEOUT_SECONDS).status_code == 200:
                return
        except requests.RequestException:  # not listening yet, or too busy starting to answer in time
            pass
        time.sleep(0.2)
    pytest.fail(f"the local stack was not healthy within {START_TIMEOUT_SECONDS} s:\n{log.read_text()[-5000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def running_local_stack(
    log_dir: Path, time_scale: float | None = None, settings: dict[str, str] | None = None
) -> Iterator[str]:
    """The base URL of a local stack started with ``python -m emulator`` (as ``make run`` does), with
    LOCAL_TIME_SCALE set to ``time_scale`` if given and ``settings`` in its environment (as ``NAME=value make
    run`` sets them); stopped on exit. Its output goes to ``log_dir``."""
    port = _free_port()
    log = log_dir / LOG_NAME
    environment = {**os.environ, **(settings or {}), "PORT": str(port)}
    if time_scale is not None:
        environment["LOCAL_TIME_SCALE"] = str(time_scale)
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "emulator"], cwd=ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(process, base_url, log)
        yield base_url
        _assert_no_permission_denied(base_url)
    finally:
        _stop(process)


def _assert_no_permission_denied(base_url: str) -> None:
    """Defect 8: every AWS call the stack's functions made is allowed by their template Policies; one the role
    would refuse in AWS (moto enforces no IAM) fails the run that made it."""
    response = requests.get(f"{base_url}/_local/permissions/denials", timeout=REQUEST_TIMEOUT_SECONDS)
    response.raise_for_status()
    denials = [denial["message"] for denial in response.json()["denials"]]
    if denials:
        pytest.fail("AccessDenied in AWS:\n" + "\n".join(f"  {denial}" for denial in denials), pytrace=False)


@pytest.fixture(scope="session")
def local_stack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("local-stack")


@pytest.fixture(scope="session")
def local_stack(local_stack_dir: Path) -> Iterator[str]:
    """The base URL of the local stack the e2e tests share."""
    with running_local_stack(local_stack_dir) as base_url:
        yield base_url


@pytest.fixture(scope="session")
def local_stack_log(local_stack: str, local_stack_dir: Path) -> Path:
    """What the shared local stack has printed so far (stdout and stderr, as ``make run`` shows them)."""
    return local_stack_dir / LOG_NAME


@pytest.fixture(scope="session")
def api(local_stack: str) -> LocalStackClient:
    return LocalStackClient(local_stack)
