"""Schedule expressions and the scaled timer that fires them."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from emulator.schedules import ScheduleRunner, parse_schedule
from tests.emulator.support import EVENTUALLY_SECONDS

NOW = datetime(2026, 11, 21, 10, 7, 30, tzinfo=UTC)  # a Saturday


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("rate(5 minutes)", datetime(2026, 11, 21, 10, 12, 30, tzinfo=UTC)),
        ("rate(1 day)", datetime(2026, 11, 22, 10, 7, 30, tzinfo=UTC)),
        ("cron(0/15 * * * ? *)", datetime(2026, 11, 21, 10, 15, tzinfo=UTC)),
        ("cron(0 2 * * ? *)", datetime(2026, 11, 22, 2, 0, tzinfo=UTC)),
        ("cron(30 9 ? * MON-FRI *)", datetime(2026, 11, 23, 9, 30, tzinfo=UTC)),
        ("cron(0 0 1 JAN,JUL ? *)", datetime(2027, 1, 1, 0, 0, tzinfo=UTC)),
        ("cron(0 12 ? * 1 *)", datetime(2026, 11, 22, 12, 0, tzinfo=UTC)),  # 1 = Sunday
        ("at(2026-12-01T08:00:00)", datetime(2026, 12, 1, 8, 0, tzinfo=UTC)),
    ],
)
def test_the_next_time_of_a_schedule(expression, expected):
    assert parse_schedule(expression, NOW).next_after(NOW) == expected


def test_a_one_time_schedule_in_the_past_never_fires():
    assert parse_schedule("at(2026-01-01T00:00:00)", NOW).next_after(NOW) is None


@pytest.mark.parametrize("expression", ["rate(0 minutes)", "rate(5 fortnights)", "cron(0 12 L * ? *)", "every day"])
def test_an_expression_the_local_stack_cannot_run_is_refused(expression):
    with pytest.raises(ValueError):
        parse_schedule(expression, NOW)


def test_the_timer_runs_the_scaled_clock():
    fired = threading.Event()
    runner = ScheduleRunner([("Hourly", "rate(1 hour)")], lambda name: fired.set(), time_scale=36_000)

    runner.start()
    try:
        assert fired.wait(timeout=EVENTUALLY_SECONDS)  # an hour at 36 000 times real speed is 0.1 s
    finally:
        runner.stop()
