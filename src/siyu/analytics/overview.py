"""The numbers of the overview page and the channel list, as GROUP BY queries over indexed ranges.

Every query is bounded by the workspace and a date range and reads an index made for it, so its cost
grows with the touches (adds) *in the range*, or with the number of codes × days, never with the
number of contacts. The one exception is the total of contacts, noted below.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import Date, cast, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from siyu.channels.models import (
    Channel,
    ChannelCode,
    ChannelCodeDay,
    ChannelCodeStaffDay,
    ChannelCost,
    ChannelTouch,
)
from siyu.channels.service import local_day_bounds, prorated_cost
from siyu.contacts.models import Contact
from siyu.staff.models import Staff
from siyu.wecom.models import WeComCallbackLog


@dataclass(frozen=True)
class ChannelRow:
    channel: Channel
    contacts_acquired: int
    touches: int
    cost: Decimal
    cost_per_contact: Decimal | None


@dataclass(frozen=True)
class CodeRow:
    code_id: int
    name: str
    channel_id: int
    scans: int
    adds: int


@dataclass(frozen=True)
class StaffRow:
    staff_id: int
    name: str
    adds: int


@dataclass
class Overview:
    date_from: dt.date
    date_to: dt.date
    days: list[dt.date]
    total_contacts: int
    new_today: int
    # first touches (contacts acquired) per channel id and local day
    acquired: dict[int, dict[dt.date, int]] = field(default_factory=dict)
    channels: list[Channel] = field(default_factory=list)
    per_code: list[CodeRow] = field(default_factory=list)
    per_staff: list[StaffRow] = field(default_factory=list)
    per_source: dict[str, int] = field(default_factory=dict)
    # WeCom welcome messages by outcome (sent, already_sent, expired, failed, skipped)
    welcomes: dict[str, int] = field(default_factory=dict)

    @property
    def acquired_total(self) -> int:
        return sum(sum(days.values()) for days in self.acquired.values())

    @property
    def adds_total(self) -> int:
        return sum(row.adds for row in self.per_code)


def _workspace_channel_ids(session: Session, workspace_id: int) -> list[int]:
    # channel is small (tens of rows per workspace); the ids let the touch queries use the
    # (workspace_id, channel_id, at) index as one range per channel.
    return list(session.scalars(select(Channel.id).where(Channel.workspace_id == workspace_id)))


def acquired_per_channel(
    session: Session, workspace_id: int, start: dt.datetime, end: dt.datetime
) -> dict[int, tuple[int, int]]:
    """channel id -> (first touches, all touches) with `start <= at < end`.

    Cost: one range scan of ix_channel_touch_workspace_id_channel_id_at per channel, reading the touches
    in the range (plus their heap rows for `first`); a hash aggregate of a few rows."""
    ids = _workspace_channel_ids(session, workspace_id)
    if not ids:
        return {}
    rows = session.execute(
        select(
            ChannelTouch.channel_id,
            func.count(),
            func.count().filter(ChannelTouch.first.is_(True)),
        )
        .where(
            ChannelTouch.workspace_id == workspace_id,
            ChannelTouch.channel_id.in_(ids),
            ChannelTouch.at >= start,
            ChannelTouch.at < end,
        )
        .group_by(ChannelTouch.channel_id)
    )
    return {channel_id: (int(first or 0), int(total or 0)) for channel_id, total, first in rows}


def channel_rows(
    session: Session, workspace_id: int, tz: ZoneInfo, date_from: dt.date, date_to: dt.date
) -> list[ChannelRow]:
    """Every channel with its acquisitions, prorated cost and cost per contact over the range; the same
    figures as `channels.service.channel_stats`, for all channels in three queries."""
    channels = list(session.scalars(select(Channel).where(Channel.workspace_id == workspace_id).order_by(Channel.id)))
    start, end = local_day_bounds(date_from, date_to, tz)
    counts = acquired_per_channel(session, workspace_id, start, end)
    costs: dict[int, list[ChannelCost]] = defaultdict(list)
    # channel_cost: a handful of rows per channel (one per budget period), read whole.
    for row in session.scalars(select(ChannelCost).where(ChannelCost.workspace_id == workspace_id)):
        costs[row.channel_id].append(row)
    rows = []
    for channel in channels:
        acquired, touches = counts.get(channel.id, (0, 0))
        cost = prorated_cost(costs[channel.id], date_from, date_to)
        per = (cost / acquired).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) if acquired else None
        rows.append(ChannelRow(channel, acquired, touches, cost, per))
    return rows


def adds_today(session: Session, code_ids: list[int], today: dt.date) -> dict[int, tuple[int, int]]:
    """code id -> (scans, adds) today. Cost: one primary-key lookup (code_id, day) per code."""
    if not code_ids:
        return {}
    rows = session.execute(
        select(ChannelCodeDay.code_id, ChannelCodeDay.scans, ChannelCodeDay.adds).where(
            ChannelCodeDay.code_id.in_(code_ids), ChannelCodeDay.day == today
        )
    )
    return {code_id: (int(scans), int(adds)) for code_id, scans, adds in rows}


def _acquired_per_day(
    session: Session, workspace_id: int, channel_ids: list[int], tz: ZoneInfo, start: dt.datetime, end: dt.datetime
) -> dict[int, dict[dt.date, int]]:
    """First touches per channel and local day.

    Cost: the same index range scan as `acquired_per_channel`, grouped by (channel, local day) on
    PostgreSQL (exact in any zone, DST included). SQLite has no time zones: it groups by UTC hour and
    the hours are folded into local days here (exact for whole-hour offsets such as China's); at most
    24 × days × channels small rows."""
    out: dict[int, dict[dt.date, int]] = defaultdict(lambda: defaultdict(int))
    if not channel_ids:
        return out
    postgres = session.connection().dialect.name == "postgresql"
    bucket: ColumnElement[object]
    if postgres:
        bucket = cast(func.timezone(tz.key, func.timezone("UTC", ChannelTouch.at)), Date)
    else:
        bucket = func.strftime("%Y-%m-%d %H", ChannelTouch.at)
    rows = session.execute(
        select(ChannelTouch.channel_id, bucket, func.count())
        .where(
            ChannelTouch.workspace_id == workspace_id,
            ChannelTouch.channel_id.in_(channel_ids),
            ChannelTouch.at >= start,
            ChannelTouch.at < end,
            ChannelTouch.first.is_(True),
        )
        .group_by(ChannelTouch.channel_id, bucket)
    )
    for channel_id, key, count in rows:
        if isinstance(key, dt.date):
            day = key
        else:
            hour = dt.datetime.strptime(str(key), "%Y-%m-%d %H").replace(tzinfo=dt.UTC)
            day = hour.astimezone(tz).date()
        out[channel_id][day] += int(count)
    return out


def overview(
    session: Session, workspace_id: int, tz: ZoneInfo, date_from: dt.date, date_to: dt.date, now: dt.datetime
) -> Overview:
    start, end = local_day_bounds(date_from, date_to, tz)
    today = now.astimezone(tz).date()
    today_start, today_end = local_day_bounds(today, today, tz)
    live = (Contact.workspace_id == workspace_id, Contact.merged_into_id.is_(None))
    # Total: the one query whose cost grows with the workspace: a scan of the workspace's contact rows
    # (ix_contact_workspace_id_id, plus the heap for merged_into_id) — about 0.1 s per million rows on
    # PostgreSQL. Everything else on this page is bounded by the date range.
    total = session.scalar(select(func.count()).select_from(Contact).where(*live)) or 0
    # New today: a range of ix_contact_workspace_id_created_at covering today's rows only.
    new_today = (
        session.scalar(
            select(func.count())
            .select_from(Contact)
            .where(*live, Contact.created_at >= today_start, Contact.created_at < today_end)
        )
        or 0
    )
    channels = list(session.scalars(select(Channel).where(Channel.workspace_id == workspace_id).order_by(Channel.id)))
    channel_ids = [c.id for c in channels]
    result = Overview(
        date_from=date_from,
        date_to=date_to,
        days=[date_from + dt.timedelta(days=n) for n in range((date_to - date_from).days + 1)],
        total_contacts=int(total),
        new_today=int(new_today),
        channels=channels,
        acquired=_acquired_per_day(session, workspace_id, channel_ids, tz, start, end),
    )
    codes = {c.id: c for c in session.scalars(select(ChannelCode).where(ChannelCode.workspace_id == workspace_id))}
    if codes:
        # Per code: the daily counter rows, primary key (code_id, day) — codes × days rows, no touches read.
        code_rows = session.execute(
            select(ChannelCodeDay.code_id, func.sum(ChannelCodeDay.scans), func.sum(ChannelCodeDay.adds))
            .where(
                ChannelCodeDay.code_id.in_(list(codes)),
                ChannelCodeDay.day >= date_from,
                ChannelCodeDay.day <= date_to,
            )
            .group_by(ChannelCodeDay.code_id)
        )
        result.per_code = sorted(
            (
                CodeRow(code_id, codes[code_id].name, codes[code_id].channel_id, int(scans or 0), int(adds or 0))
                for code_id, scans, adds in code_rows
            ),
            key=lambda r: (-r.adds, r.code_id),
        )
        # Per staff member: the (code_id, staff_id, day) counter rows — codes × pool × days rows.
        staff_rows = session.execute(
            select(ChannelCodeStaffDay.staff_id, Staff.name, func.sum(ChannelCodeStaffDay.adds))
            .join(Staff, Staff.id == ChannelCodeStaffDay.staff_id)
            .where(
                ChannelCodeStaffDay.code_id.in_(list(codes)),
                ChannelCodeStaffDay.day >= date_from,
                ChannelCodeStaffDay.day <= date_to,
            )
            .group_by(ChannelCodeStaffDay.staff_id, Staff.name)
        )
        result.per_staff = sorted(
            (StaffRow(staff_id, name, int(adds or 0)) for staff_id, name, adds in staff_rows),
            key=lambda r: (-r.adds, r.staff_id),
        )
    if channel_ids:
        # Adds by source (link page or WeCom callback): the touch index range again, grouped by source.
        source_rows = session.execute(
            select(ChannelTouch.source, func.count())
            .where(
                ChannelTouch.workspace_id == workspace_id,
                ChannelTouch.channel_id.in_(channel_ids),
                ChannelTouch.at >= start,
                ChannelTouch.at < end,
            )
            .group_by(ChannelTouch.source)
        )
        result.per_source = {str(getattr(source, "value", source)): int(count) for source, count in source_rows}
    # Welcome messages through WeCom, by outcome: ix_wecom_callback_workspace_id_received_at, the range only.
    welcome_rows = session.execute(
        select(WeComCallbackLog.welcome, func.count())
        .where(
            WeComCallbackLog.workspace_id == workspace_id,
            WeComCallbackLog.received_at >= start,
            WeComCallbackLog.received_at < end,
            WeComCallbackLog.welcome.is_not(None),
        )
        .group_by(WeComCallbackLog.welcome)
    )
    result.welcomes = {str(outcome): int(count) for outcome, count in welcome_rows}
    return result
