"""The Step Functions clock of the local stack: scaled from each execution's start, advanced on demand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from emulator.clock import ExecutionClock

STARTED = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)


class FakeRealClock:
    def __init__(self) -> None:
        self.now = STARTED

    def __call__(self) -> datetime:
        return self.now


def test_an_executions_clock_runs_time_scale_times_faster_from_its_start():
    real = FakeRealClock()
    clock = ExecutionClock(600, real)
    real.now = STARTED + timedelta(seconds=1.8)

    assert clock.now("x", STARTED) == STARTED + timedelta(minutes=18)


def test_a_second_wait_until_a_timestamp_counts_on_the_execution_clock_not_from_the_real_one():
    """A deadline 20 execution-minutes after the start ends 2 real seconds after it, even when a Wait for a
    reminder at 18 minutes came first (counting from the real clock at each Wait took most of it again)."""
    real = FakeRealClock()
    clock = ExecutionClock(600, real)
    deadline = STARTED + timedelta(minutes=20)
    real.now = STARTED + timedelta(seconds=1.8)  # the reminder's Wait has just ended

    assert clock.real_seconds_until("x", STARTED, deadline) == pytest.approx(0.2)


def test_advancing_moves_only_the_executions_named_and_only_forward():
    real = FakeRealClock()
    clock = ExecutionClock(1, real)
    deadline = STARTED + timedelta(hours=1)

    clock.advance(["running"], 3600)

    assert clock.real_seconds_until("running", STARTED, deadline) <= 0
    assert clock.real_seconds_until("started-later", STARTED, deadline) == 3600
    with pytest.raises(ValueError):
        clock.advance(["running"], -60)


def test_advances_add_up():
    clock = ExecutionClock(1, FakeRealClock())

    clock.advance(["x"], 60)
    clock.advance(["x"], 30)

    assert clock.now("x", STARTED) == STARTED + timedelta(seconds=90)
