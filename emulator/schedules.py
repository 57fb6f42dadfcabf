"""Schedule expressions (``rate()``, ``cron()``, ``at()``) and a timer that fires them on a scaled clock.

With ``time_scale`` 60, ``rate(1 hour)`` fires every minute: the timer runs a virtual clock that starts at the
real time and goes ``time_scale`` times faster.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

logger = logging.getLogger(__name__)


class Schedule(Protocol):
    def next_after(self, moment: datetime) -> datetime | None: ...


@dataclass(frozen=True)
class RateSchedule:
    interval: timedelta
    started: datetime

    def next_after(self, moment: datetime) -> datetime:
        periods = (moment - self.started) // self.interval + 1
        return self.started + periods * self.interval


@dataclass(frozen=True)
class OneTimeSchedule:
    at: datetime

    def next_after(self, moment: datetime) -> datetime | None:
        return self.at if self.at > moment else None


_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]  # EventBridge: 1 = SUN ... 7 = SAT
_CRON_SEARCH_DAYS = 5 * 366


def _cron_field(text: str, low: int, high: int, names: list[str] | None = None) -> frozenset[int] | None:
    """The values a cron field allows; None for ``*`` and ``?`` (any)."""
    if text in {"*", "?"}:
        return None
    for index, name in enumerate(names or []):
        text = re.sub(rf"\b{name}\b", str(low + index), text, flags=re.IGNORECASE)
    values: set[int] = set()
    for part in text.split(","):
        match = re.fullmatch(r"(\*|\d+)(?:-(\d+))?(?:/(\d+))?", part)
        if match is None:
            raise ValueError(f"unsupported cron field {text!r} (L, W and # are not emulated)")
        start = low if match.group(1) == "*" else int(match.group(1))
        end = int(match.group(2)) if match.group(2) else (high if match.group(3) or match.group(1) == "*" else start)
        values.update(range(start, end + 1, int(match.group(3) or 1)))
    if not values or min(values) < low or max(values) > high:
        raise ValueError(f"cron field {text!r} is out of range {low}-{high}")
    return frozenset(values)


@dataclass(frozen=True)
class CronSchedule:
    minutes: frozenset[int] | None
    hours: frozenset[int] | None
    days_of_month: frozenset[int] | None
    months: frozenset[int] | None
    days_of_week: frozenset[int] | None
    years: frozenset[int] | None

    @classmethod
    def parse(cls, fields: str) -> CronSchedule:
        parts = fields.split()
        if len(parts) != 6:
            raise ValueError(f"cron() needs 6 fields (minutes hours day-of-month month day-of-week year): {fields}")
        minute, hour, day, month, weekday, year = parts
        return cls(
            _cron_field(minute, 0, 59),
            _cron_field(hour, 0, 23),
            _cron_field(day, 1, 31),
            _cron_field(month, 1, 12, _MONTHS),
            _cron_field(weekday, 1, 7, _DAYS),
            _cron_field(year, 1970, 2199),
        )

    def _day_matches(self, day: date) -> bool:
        weekday = (day.weekday() + 1) % 7 + 1
        return all(
            allowed is None or value in allowed
            for allowed, value in (
                (self.years, day.year),
                (self.months, day.month),
                (self.days_of_month, day.day),
                (self.days_of_week, weekday),
            )
        )

    def next_after(self, moment: datetime) -> datetime | None:
        hours = sorted(self.hours or range(24))
        minutes = sorted(self.minutes or range(60))
        for offset in range(_CRON_SEARCH_DAYS):
            day = moment.date() + timedelta(days=offset)
            if not self._day_matches(day):
                continue
            for hour in hours:
                for minute in minutes:
                    candidate = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
                    if candidate > moment:
                        return candidate
        return None


_RATE_UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}


def parse_schedule(expression: str, now: datetime) -> Schedule:
    """A schedule for an EventBridge (``rate``, ``cron``) or EventBridge Scheduler (also ``at``) expression."""
    match = re.fullmatch(r"\s*(rate|cron|at)\((.*)\)\s*", expression)
    if match is None:
        raise ValueError(f"not a schedule expression: {expression!r}")
    kind, body = match.groups()
    if kind == "cron":
        return CronSchedule.parse(body)
    if kind == "at":
        return OneTimeSchedule(datetime.fromisoformat(body).replace(tzinfo=UTC))
    rate = re.fullmatch(r"\s*(\d+)\s+(\w+)\s*", body)
    if rate is None or rate.group(2) not in _RATE_UNITS or int(rate.group(1)) < 1:
        raise ValueError(f"not a rate expression: {expression!r}")
    return RateSchedule(timedelta(seconds=int(rate.group(1)) * _RATE_UNITS[rate.group(2)]), now)


class ScaledClock:
    """A clock that starts at the real time and runs ``scale`` times faster."""

    def __init__(self, scale: float) -> None:
        self.scale = scale
        self._started = datetime.now(UTC)
        self._started_monotonic = time.monotonic()

    def now(self) -> datetime:
        return self._started + timedelta(seconds=(time.monotonic() - self._started_monotonic) * self.scale)

    def real_seconds_until(self, moment: datetime) -> float:
        return max(0.0, (moment - self.now()).total_seconds() / self.scale)


class ScheduleRunner:
    """Fires each named schedule when its time comes on the scaled clock (one thread for all of them)."""

    MAX_SLEEP_SECONDS = 1.0  # wake regularly so stop() is prompt

    def __init__(self, expressions: Iterable[tuple[str, str]], fire: Callable[[str], None], time_scale: float) -> None:
        self._clock = ScaledClock(time_scale)
        self._fire = fire
        self._schedules: dict[str, Schedule] = {}
        for name, expression in expressions:
            try:
                self._schedules[name] = parse_schedule(expression, self._clock.now())
            except ValueError as exc:
                logger.warning("schedule %s only fires on demand (POST /_local/schedules/.../fire): %s", name, exc)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="schedules", daemon=True)

    def start(self) -> None:
        if self._schedules:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        now = self._clock.now()
        due = {name: schedule.next_after(now) for name, schedule in self._schedules.items()}
        while not self._stop.is_set():
            pending = {name: moment for name, moment in due.items() if moment is not None}
            if not pending:
                return
            earliest = min(pending.values())
            if self._stop.wait(min(self._clock.real_seconds_until(earliest), self.MAX_SLEEP_SECONDS)):
                return
            now = self._clock.now()
            for name, moment in pending.items():
                if moment <= now:
                    self._fire_safely(name)
                    due[name] = self._schedules[name].next_after(now)

    def _fire_safely(self, name: str) -> None:
        try:
            self._fire(name)
        except Exception:  # one broken target must not stop every other schedule
            logger.exception("schedule %s could not fire", name)
