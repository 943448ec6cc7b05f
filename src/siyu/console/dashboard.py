"""The console home: an overview of a date range (new contacts per channel and day, adds per code,
per staff member and per source, total contacts, new today)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from fastapi import Request
from fastapi.responses import Response

from siyu.analytics.overview import overview
from siyu.auth.dependencies import get_database
from siyu.auth.scopes import Scope
from siyu.channels.service import resolve_range
from siyu.console.render import ConsoleUser, render
from siyu.errors import ValidationFailed
from siyu.events import inbox
from siyu.kit.time import utcnow

DEFAULT_DAYS = 14
# The worker stores received events within seconds; a batch waiting longer than this says it is not running.
STALE_INBOX = dt.timedelta(minutes=1)


def zone(user: ConsoleUser) -> ZoneInfo:
    try:
        return ZoneInfo(user.timezone)
    except (KeyError, ValueError):
        return ZoneInfo("Asia/Shanghai")


def parse_range(request: Request, tz: ZoneInfo, default_days: int) -> tuple[dt.date, dt.date, str | None]:
    """The `from`/`to` query parameters (YYYY-MM-DD, workspace days); default: the last `default_days`
    days up to today. A bad range gives the default and the reason, shown on the page."""
    today = utcnow().astimezone(tz).date()
    default = (today - dt.timedelta(days=default_days - 1), today)
    raw_from, raw_to = request.query_params.get("from") or "", request.query_params.get("to") or ""
    try:
        date_from = dt.date.fromisoformat(raw_from) if raw_from else None
        date_to = dt.date.fromisoformat(raw_to) if raw_to else None
    except ValueError:
        return (*default, f"{raw_from or raw_to!r} is not a date written YYYY-MM-DD")
    if date_from is None and date_to is None:
        return (*default, None)
    if date_from is None and date_to is not None:
        date_from = date_to - dt.timedelta(days=default_days - 1)
    if date_to is None and date_from is not None:
        date_to = date_from + dt.timedelta(days=default_days - 1)
    try:
        date_from, date_to = resolve_range(date_from, date_to, tz)
    except ValidationFailed as exc:
        return (*default, exc.message)
    return date_from, date_to, None


def stacked_chart(days: list[dt.date], series: list[tuple[str, list[int]]], kind: str = "bar") -> str:
    """What console.js draws for `data-chart=series`: one x value per day, one series per name."""
    data: dict[str, Any] = {
        "x": [d.isoformat() for d in days],
        "series": [{"name": name, "values": values} for name, values in series],
        "type": kind,
        "stack": kind == "bar",
    }
    return orjson.dumps(data).decode()


def dashboard_page(request: Request, user: ConsoleUser) -> Response:
    principal = user.principal
    tz = zone(user)
    date_from, date_to, range_error = parse_range(request, tz, DEFAULT_DAYS)
    can_channels = Scope.channels_read in principal.scopes
    database = get_database(request)
    with database.transaction(write=False) as session:
        data = overview(session, principal.workspace_id, tz, date_from, date_to, utcnow())
    waiting = inbox.backlog(database, principal.workspace_id)
    waited = utcnow() - waiting.oldest_received_at if waiting.oldest_received_at else dt.timedelta(0)
    names = {c.id: c.name for c in data.channels}
    series = [
        (names[channel_id], [per_day.get(day, 0) for day in data.days])
        for channel_id, per_day in sorted(data.acquired.items())
        if channel_id in names
    ]
    return render(
        request,
        "dashboard/index.html",
        {
            "data": data,
            "date_from": date_from,
            "date_to": date_to,
            "range_error": range_error,
            "inbox_waiting": waiting if waited > STALE_INBOX else None,
            "inbox_minutes": int(waited.total_seconds() // 60),
            "channel_names": names,
            "can_channels": can_channels,
            "chart_json": stacked_chart(data.days, series),
        },
        user=user,
    )
