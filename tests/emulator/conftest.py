"""The local stack on tests/emulator/fixtures/template.yaml, in-process, with time running 600 times faster."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.stack import LocalStack

FIXTURE_TEMPLATE = Path(__file__).parent / "fixtures" / "template.yaml"
TIME_SCALE = 600


@pytest.fixture(scope="package")
def stack() -> Iterator[LocalStack]:
    with LocalStack(FIXTURE_TEMPLATE, port=0, time_scale=TIME_SCALE, seed=False) as local_stack:
        yield local_stack
