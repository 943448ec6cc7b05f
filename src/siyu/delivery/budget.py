"""Local calendars and limits: a contact's day / week / month and quiet hours in their zone, and a staff
account's daily limits with its warm-up ramp."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from siyu.delivery.policy import StaffLimits

# Counter rows older than this are pruned: the longest window (a month, or a week reaching into the
# previous month) never looks further back.
COUNTER_RETENTION_DAYS = 70


@lru_cache(maxsize=512)
def zone(name: str | None, fallback: str) -> ZoneInfo:
    """The contact's zone, or the workspace's when they have none (or an unknown name)."""
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo(fallback)


def valid_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class LocalWindow:
    """What `now` is for someone in `tz`: their day, the Monday of their week, the first of their month,
    and whether it is quiet there (and until when, in UTC)."""

    today: dt.date
    week_start: dt.date
    month_start: dt.date
    quiet: bool
    quiet_until: dt.datetime | None
    next_day_at: dt.datetime  # their next local midnight, in UTC

    @property
    def earliest(self) -> dt.date:
        return min(self.week_start, self.month_start)


def _at(day: dt.date, time: dt.time, tz: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, time, tzinfo=tz).astimezone(dt.UTC)


@lru_cache(maxsize=4096)
def window(tz: ZoneInfo, now: dt.datetime, quiet: tuple[dt.time, dt.time] | None) -> LocalWindow:
    """`quiet`: (start, end) local times, from QuietHours.times(); None: no quiet hours."""
    local = now.astimezone(tz)
    today = local.date()
    quiet_now = False
    quiet_until: dt.datetime | None = None
    if quiet is not None:
        start, end = quiet
        t = local.time().replace(tzinfo=None)
        if start > end:  # spans midnight
            if t >= start:
                quiet_now, quiet_until = True, _at(today + dt.timedelta(days=1), end, tz)
            elif t < end:
                quiet_now, quiet_until = True, _at(today, end, tz)
        elif start <= t < end:
            quiet_now, quiet_until = True, _at(today, end, tz)
    return LocalWindow(
        today=today,
        week_start=today - dt.timedelta(days=today.weekday()),
        month_start=today.replace(day=1),
        quiet=quiet_now,
        quiet_until=quiet_until,
        next_day_at=_at(today + dt.timedelta(days=1), dt.time(0, 0), tz),
    )


def ramped(
    limit: int | None, started_on: dt.date | None, day: dt.date, limits: StaffLimits, warmup_days: int
) -> int | None:
    """A daily limit on `day` for an account that started on `started_on`: start_ratio of it on the first
    day, rising linearly to the whole of it after `warmup_days` days. None: no limit."""
    if limit is None:
        return None
    if warmup_days <= 0 or started_on is None:
        return limit
    age = (day - started_on).days
    if age >= warmup_days:
        return limit
    age = max(age, 0)
    share = limits.start_ratio + (1 - limits.start_ratio) * age / warmup_days
    return max(1, math.floor(limit * share)) if limit > 0 else 0
