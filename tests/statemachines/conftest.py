"""The local stack on the project's own template, in-process, so a test can reach into its AWS: the session
state machines as moto's interpreter runs them, started through the bus as in production."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from emulator.stack import LocalStack

# An hour's Wait passes in half a second; Task retries are not scaled (they model real compute time).
TIME_SCALE = 7200


@pytest.fixture(scope="package")
def stack() -> Iterator[LocalStack]:
    with LocalStack(port=0, time_scale=TIME_SCALE, seed=False) as local_stack:
        yield local_stack
