"""Reading one cell as a typed value: dates and times as Chinese sheets write them, gender, numbers."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo

from siyu.contacts.models import Gender

_DATE = re.compile(
    r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
    r"(?:[\sT]+(\d{1,2})\s*[:：时点]\s*(\d{1,2})(?:\s*[:：分]\s*(\d{1,2})(?:\.\d+)?\s*秒?)?\s*分?)?$"
)
_MONTH_DAY = re.compile(r"^(?:--)?(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
_NUMBER = re.compile(r"^[+-]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?$")

GENDERS = {
    "男": Gender.male,
    "男性": Gender.male,
    "male": Gender.male,
    "m": Gender.male,
    "先生": Gender.male,
    "女": Gender.female,
    "女性": Gender.female,
    "female": Gender.female,
    "f": Gender.female,
    "女士": Gender.female,
    "未知": Gender.unknown,
    "unknown": Gender.unknown,
    "保密": Gender.unknown,
}


def text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.isoformat(" ", "seconds")
    return str(value)


def parse_datetime(value: Any, tz: ZoneInfo) -> dt.datetime:
    """An aware UTC time. Times without an offset are the workspace's local time (as Excel shows them)."""
    if isinstance(value, dt.datetime):
        local = value
    elif isinstance(value, dt.date):
        local = dt.datetime.combine(value, dt.time())
    else:
        raw = text(value).strip()
        match = _DATE.match(raw)
        if match:
            y, mo, d, h, mi, s = (int(g) if g else 0 for g in match.groups())
            try:
                local = dt.datetime(y, mo, d, h, mi, s)  # made aware below
            except ValueError:
                raise ValueError(f"{raw!r} is not a real date and time") from None
        else:
            try:
                local = dt.datetime.fromisoformat(raw)
            except ValueError:
                raise ValueError(f"{raw!r} is not a time; write it like 2026-11-01 14:30") from None
    if local.tzinfo is None:
        local = local.replace(tzinfo=tz)
    return local.astimezone(dt.UTC)


def parse_date(value: Any) -> tuple[dt.date | None, int]:
    """(date, month*100+day). A birthday without a year ("5月1日", "05-01") gives (None, mmdd)."""
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return value, value.month * 100 + value.day
    raw = text(value).strip()
    match = _DATE.match(raw)
    if match:
        y, mo, d = (int(g) for g in match.groups()[:3])
        try:
            day = dt.date(y, mo, d)
        except ValueError:
            raise ValueError(f"{raw!r} is not a real date") from None
        return day, day.month * 100 + day.day
    match = _MONTH_DAY.match(raw)
    if match:
        mo, d = int(match.group(1)), int(match.group(2))
        try:
            dt.date(2000, mo, d)  # a leap year, so 02-29 is fine
        except ValueError:
            raise ValueError(f"{raw!r} is not a real day of the year") from None
        return None, mo * 100 + d
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{raw!r} is not a date; write it like 1990-05-01 (or 5月1日 without the year)") from None
    return day, day.month * 100 + day.day


def parse_gender(value: Any) -> Gender:
    raw = text(value).strip()
    gender = GENDERS.get(raw.lower())
    if gender is None:
        raise ValueError(f"{raw!r} is not a gender; write 男, 女 or 未知 (male, female, unknown)")
    return gender


def parse_number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    raw = text(value).strip()
    if not _NUMBER.match(raw):
        raise ValueError(f"{raw!r} is not a number")
    raw = raw.replace(",", "")
    return float(raw) if "." in raw else int(raw)
