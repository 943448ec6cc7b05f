"""When and where a rule is evaluated: the workspace, its time zone, "now" (days are local days), and the
half-life of its user portraits (interest conditions compare affinities decayed to today)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from siyu.kit.time import ensure_utc


@dataclass(frozen=True)
class RuleContext:
    workspace_id: int
    tz: ZoneInfo
    now: dt.datetime
    # siyu.recommend.portrait.RecommendConfig.half_life_days of the workspace (14 days unless changed)
    half_life_days: float = 14.0

    @property
    def today(self) -> dt.date:
        return ensure_utc(self.now).astimezone(self.tz).date()

    def day_start(self, day: dt.date) -> dt.datetime:
        """The UTC moment a local day begins: "local date >= d" is "moment >= day_start(d)"."""
        return dt.datetime.combine(day, dt.time(0), tzinfo=self.tz).astimezone(dt.UTC)

    def local_date(self, moment: dt.datetime) -> dt.date:
        return ensure_utc(moment).astimezone(self.tz).date()


def relative_range(op: str, days: int, today: dt.date) -> tuple[dt.date | None, dt.date | None]:
    """The inclusive local-date range a relative operator means (None: open on that side).

    within_last_days N: the N days ending today; within_next_days N: the N days starting today;
    more_than_days_ago N: before the day N days ago.
    """
    if op == "within_last_days":
        return today - dt.timedelta(days=days - 1), today
    if op == "within_next_days":
        return today, today + dt.timedelta(days=days - 1)
    if op == "more_than_days_ago":
        return None, today - dt.timedelta(days=days + 1)
    raise ValueError(op)


def anniversary_days(today: dt.date, days: int) -> set[tuple[int, int]]:
    """(month, day) pairs whose anniversary falls within the N days starting today.

    In a year without 29 February, people born on it celebrate on 1 March.
    """
    pairs: set[tuple[int, int]] = set()
    for offset in range(min(days, 366)):
        day = today + dt.timedelta(days=offset)
        pairs.add((day.month, day.day))
        if day.month == 3 and day.day == 1 and not _leap(day.year):
            pairs.add((2, 29))
    return pairs


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
