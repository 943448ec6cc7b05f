"""Cron expressions and times of day for journeys: when a schedule or date trigger fires next, and where a
"wait until HH:MM" ends, in the workspace's time zone.

Five fields, as crontab(5): minute hour day-of-month month day-of-week (0-7, 0 and 7 are Sunday). Each is
`*`, a number, a range `a-b`, a step `*/n` or `a-b/n`, or a comma list of those. When both day fields are
restricted, a day matching either fires (crontab's rule).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from siyu.kit.time import ensure_utc

HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
MAX_DAYS_AHEAD = 366 * 5  # "0 0 29 2 1" still fires within five years


class CronError(ValueError):
    pass


@dataclass(frozen=True)
class Cron:
    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 Monday ... 6 Sunday (Python's weekday())
    days_restricted: bool
    weekdays_restricted: bool

    def day_matches(self, day: dt.date) -> bool:
        if day.month not in self.months:
            return False
        in_days = day.day in self.days
        in_weekdays = day.weekday() in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return in_days or in_weekdays
        return in_days and in_weekdays

    def next_after(self, moment: dt.datetime, tz: ZoneInfo) -> dt.datetime:
        """The first firing strictly after `moment` (UTC in, UTC out)."""
        local = ensure_utc(moment).astimezone(tz)
        day = local.date()
        for _ in range(MAX_DAYS_AHEAD):
            if self.day_matches(day):
                for hour in self.hours:
                    for minute in self.minutes:
                        at = dt.datetime.combine(day, dt.time(hour, minute), tzinfo=tz).astimezone(dt.UTC)
                        if at > moment:
                            return at
            day += dt.timedelta(days=1)
        raise CronError(f"cron {self.text!r} never fires")


def _field(text: str, name: str, low: int, high: int) -> tuple[set[int], bool]:
    values: set[int] = set()
    restricted = text != "*"
    for item in text.split(","):
        step = 1
        part = item
        if "/" in item:
            part, _, raw_step = item.partition("/")
            if not raw_step.isdigit() or int(raw_step) < 1:
                raise CronError(f"{name}: step {raw_step!r} is not a positive whole number")
            step = int(raw_step)
        if part == "*":
            start, end = low, high
        elif "-" in part:
            a, _, b = part.partition("-")
            if not (a.isdigit() and b.isdigit()):
                raise CronError(f"{name}: {part!r} is not a range a-b")
            start, end = int(a), int(b)
        elif part.isdigit():
            start = end = int(part)
            if step > 1:
                end = high
        else:
            raise CronError(f"{name}: {part!r} is not a number, a range or *")
        if not (low <= start <= high and low <= end <= high) or end < start:
            raise CronError(f"{name}: {part!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return values, restricted


def parse_cron(text: str) -> Cron:
    parts = text.split()
    if len(parts) != 5:
        raise CronError("expected five fields: minute hour day-of-month month day-of-week, e.g. '0 8 * * 1-5'")
    parsed = [_field(part, name, low, high) for part, (name, low, high) in zip(parts, FIELDS, strict=True)]
    (minutes, _), (hours, _), (days, days_r), (months, _), (weekdays, weekdays_r) = parsed
    # crontab: 0 and 7 are Sunday, 1 Monday; Python: 0 Monday ... 6 Sunday
    python_weekdays = frozenset((d - 1) % 7 for d in weekdays)
    return Cron(
        text=" ".join(parts),
        minutes=tuple(sorted(minutes)),
        hours=tuple(sorted(hours)),
        days=frozenset(days),
        months=frozenset(months),
        weekdays=python_weekdays,
        days_restricted=days_r,
        weekdays_restricted=weekdays_r,
    )


def parse_hhmm(text: str) -> dt.time:
    match = HHMM.match(text)
    if match is None:
        raise ValueError(f"expected a time of day HH:MM (00:00-23:59), got {text!r}")
    return dt.time(int(match.group(1)), int(match.group(2)))


def next_time_of_day(moment: dt.datetime, at: dt.time, tz: ZoneInfo, *, strictly_after: bool = False) -> dt.datetime:
    """The next HH:MM in the zone at or after `moment` (strictly after when asked), in UTC."""
    local = ensure_utc(moment).astimezone(tz)
    candidate = dt.datetime.combine(local.date(), at, tzinfo=tz).astimezone(dt.UTC)
    if candidate < moment or (strictly_after and candidate == moment):
        candidate = dt.datetime.combine(local.date() + dt.timedelta(days=1), at, tzinfo=tz).astimezone(dt.UTC)
    return candidate


def daily_after(moment: dt.datetime, at: dt.time, tz: ZoneInfo) -> dt.datetime:
    """Date triggers look once a day at HH:MM local: the next such moment strictly after `moment`."""
    return next_time_of_day(moment, at, tz, strictly_after=True)
