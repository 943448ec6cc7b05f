"""Channels and channel codes: create, edit, pause, and their numbers. Services never commit."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from siyu.channels.models import (
    Channel,
    ChannelCode,
    ChannelCodeDay,
    ChannelCodeStaff,
    ChannelCodeStaffDay,
    ChannelCodeTag,
    ChannelCost,
    ChannelTouch,
    CodeStatus,
)
from siyu.channels.schemas import (
    ChannelCreate,
    ChannelRead,
    ChannelStats,
    ChannelUpdate,
    CodeCreate,
    CodeRead,
    CodeStats,
    CodeUpdate,
    CostIn,
    CostRead,
    DayCount,
    HoursRead,
    PoolEntryIn,
    PoolEntryRead,
    StaffCount,
)
from siyu.errors import Conflict, NotFound, ValidationFailed, validation_error
from siyu.events.service import workspace_timezone
from siyu.kit.repository import flush_unique, get_in_workspace
from siyu.kit.sql import dialect_insert
from siyu.kit.time import utcnow
from siyu.staff.models import Staff
from siyu.tags.models import Tag, TagGroup

MAX_STATS_DAYS = 366
SLUG_BYTES = 12  # 16 URL-safe characters: 96 random bits


# --- helpers ---------------------------------------------------------------------------------------


def local_day_bounds(date_from: dt.date, date_to: dt.date, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """UTC instants of the start of `date_from` and of the day after `date_to`, local to `tz`."""
    start = dt.datetime.combine(date_from, dt.time(), tz).astimezone(dt.UTC)
    end = dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time(), tz).astimezone(dt.UTC)
    return start, end


def resolve_range(date_from: dt.date | None, date_to: dt.date | None, tz: ZoneInfo) -> tuple[dt.date, dt.date]:
    """Defaults to the last 30 days up to today (workspace time); at most MAX_STATS_DAYS days."""
    if date_to is None:
        date_to = utcnow().astimezone(tz).date() if date_from is None else date_from + dt.timedelta(days=29)
    if date_from is None:
        date_from = date_to - dt.timedelta(days=29)
    if date_from > date_to:
        raise validation_error("from", f"{date_from} is after to={date_to}")
    if (date_to - date_from).days + 1 > MAX_STATS_DAYS:
        raise validation_error("to", f"the range covers more than {MAX_STATS_DAYS} days; ask for a shorter one")
    return date_from, date_to


def bump(session: Session, model: Any, keys: dict[str, Any], **increments: int) -> None:
    """Adds `increments` to the counter row `keys`, creating it if needed (one statement, race-free)."""
    insert = dialect_insert(session)
    statement = insert(model).values(**keys, **increments)
    table = model.__table__
    statement = statement.on_conflict_do_update(
        index_elements=[table.c[k] for k in keys if k != "workspace_id"],
        set_={k: table.c[k] + statement.excluded[k] for k in increments},
    )
    session.execute(statement)


# --- channels --------------------------------------------------------------------------------------


def get_channel(session: Session, workspace_id: int, channel_id: int) -> Channel:
    return get_in_workspace(session, Channel, workspace_id, channel_id, "channel")


def _set_costs(session: Session, channel: Channel, costs: Sequence[CostIn]) -> None:
    session.execute(delete(ChannelCost).where(ChannelCost.channel_id == channel.id))
    for cost in costs:
        session.add(
            ChannelCost(
                workspace_id=channel.workspace_id,
                channel_id=channel.id,
                period_start=cost.period_start,
                period_end=cost.period_end,
                amount=cost.amount,
            )
        )


def create_channel(session: Session, workspace_id: int, data: ChannelCreate) -> Channel:
    channel = Channel(workspace_id=workspace_id, kind=data.kind, name=data.name)
    session.add(channel)
    flush_unique(session, f"a channel named {data.name!r} already exists")
    _set_costs(session, channel, data.costs)
    session.flush()
    return channel


def update_channel(session: Session, workspace_id: int, channel_id: int, data: ChannelUpdate) -> Channel:
    channel = get_channel(session, workspace_id, channel_id)
    if data.kind is not None:
        channel.kind = data.kind
    if data.name is not None:
        channel.name = data.name
    flush_unique(session, f"a channel named {data.name!r} already exists")
    if data.costs is not None:
        _set_costs(session, channel, data.costs)
    session.flush()
    return channel


def delete_channel(session: Session, workspace_id: int, channel_id: int) -> None:
    channel = get_channel(session, workspace_id, channel_id)
    codes = session.scalar(select(func.count()).select_from(ChannelCode).where(ChannelCode.channel_id == channel.id))
    if codes:
        raise Conflict(
            f"channel {channel.name!r} has {codes} channel codes and the contacts they brought; "
            "pause its codes instead of deleting it"
        )
    session.delete(channel)
    session.flush()


def list_channels(session: Session, workspace_id: int) -> list[Channel]:
    return list(session.scalars(select(Channel).where(Channel.workspace_id == workspace_id).order_by(Channel.id)))


def channels_read(session: Session, channels: list[Channel]) -> list[ChannelRead]:
    ids = [c.id for c in channels]
    costs: dict[int, list[CostRead]] = {i: [] for i in ids}
    if ids:
        rows = session.scalars(
            select(ChannelCost).where(ChannelCost.channel_id.in_(ids)).order_by(ChannelCost.period_start)
        )
        for row in rows:
            costs[row.channel_id].append(CostRead.model_validate(row))
    return [
        ChannelRead(id=c.id, kind=c.kind, name=c.name, costs=costs[c.id], created_at=c.created_at) for c in channels
    ]


def prorated_cost(costs: Sequence[ChannelCost], date_from: dt.date, date_to: dt.date) -> Decimal:
    """Each cost row counts for the share of its period's days that fall inside [date_from, date_to]."""
    total = Decimal(0)
    for cost in costs:
        first, last = max(cost.period_start, date_from), min(cost.period_end, date_to)
        if first > last:
            continue
        inside = (last - first).days + 1
        length = (cost.period_end - cost.period_start).days + 1
        total += Decimal(cost.amount) * inside / length
    return total.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def channel_stats(
    session: Session, workspace_id: int, channel_id: int, date_from: dt.date | None, date_to: dt.date | None
) -> ChannelStats:
    channel = get_channel(session, workspace_id, channel_id)
    tz = workspace_timezone(session, workspace_id)
    date_from, date_to = resolve_range(date_from, date_to, tz)
    start, end = local_day_bounds(date_from, date_to, tz)
    in_range = (
        ChannelTouch.workspace_id == workspace_id,
        ChannelTouch.channel_id == channel.id,
        ChannelTouch.at >= start,
        ChannelTouch.at < end,
    )
    touches = session.scalar(select(func.count()).select_from(ChannelTouch).where(*in_range)) or 0
    acquired = (
        session.scalar(select(func.count()).select_from(ChannelTouch).where(*in_range, ChannelTouch.first.is_(True)))
        or 0
    )
    costs = list(session.scalars(select(ChannelCost).where(ChannelCost.channel_id == channel.id)))
    cost = prorated_cost(costs, date_from, date_to)
    per_contact = (cost / acquired).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) if acquired else None
    return ChannelStats(
        channel_id=channel.id,
        date_from=date_from,
        date_to=date_to,
        contacts_acquired=int(acquired),
        touches=int(touches),
        cost=float(cost),
        cost_per_contact=float(per_contact) if per_contact is not None else None,
    )


# --- channel codes ---------------------------------------------------------------------------------


def get_code(session: Session, workspace_id: int, code_id: int, *, for_update: bool = False) -> ChannelCode:
    if not for_update:
        return get_in_workspace(session, ChannelCode, workspace_id, code_id, "channel code")
    code = session.scalar(
        select(ChannelCode)
        .where(ChannelCode.id == code_id, ChannelCode.workspace_id == workspace_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if code is None:
        raise NotFound(f"channel code {code_id} not found in this workspace")
    return code


def code_by_slug(session: Session, slug: str) -> ChannelCode | None:
    return session.scalar(select(ChannelCode).where(ChannelCode.slug == slug))


def _check_staff(session: Session, workspace_id: int, staff_id: int, field: str) -> Staff:
    staff = session.get(Staff, staff_id)
    if staff is None or staff.workspace_id != workspace_id:
        raise validation_error(field, f"staff {staff_id} does not exist in this workspace")
    if not staff.is_active:
        raise validation_error(field, f"staff {staff_id} is deactivated; pick an active staff member")
    return staff


def _check_channel(session: Session, workspace_id: int, channel_id: int) -> Channel:
    channel = session.get(Channel, channel_id)
    if channel is None or channel.workspace_id != workspace_id:
        raise validation_error("channel_id", f"channel {channel_id} does not exist in this workspace")
    return channel


def _check_tags(session: Session, workspace_id: int, tag_ids: Sequence[int]) -> list[int]:
    ids = list(dict.fromkeys(tag_ids))
    tags = {t.id: t for t in session.scalars(select(Tag).where(Tag.workspace_id == workspace_id, Tag.id.in_(ids)))}
    problems = [
        {"field": f"tag_ids[{n}]", "reason": f"tag {tag_id} does not exist in this workspace"}
        for n, tag_id in enumerate(tag_ids)
        if tag_id not in tags
    ]
    if problems:
        raise ValidationFailed("; ".join(f"{p['field']}: {p['reason']}" for p in problems), details=problems)
    exclusive = set(
        session.scalars(
            select(TagGroup.id).where(TagGroup.id.in_({t.group_id for t in tags.values()}), TagGroup.exclusive)
        )
    )
    seen: dict[int, Tag] = {}
    for tag_id in ids:
        tag = tags[tag_id]
        if tag.group_id in exclusive:
            if tag.group_id in seen:
                raise validation_error(
                    "tag_ids", f"tags {seen[tag.group_id].name!r} and {tag.name!r} are in one exclusive group; pick one"
                )
            seen[tag.group_id] = tag
    return ids


def _set_pool(session: Session, code: ChannelCode, pool: Sequence[PoolEntryIn]) -> None:
    for n, entry in enumerate(pool):
        _check_staff(session, code.workspace_id, entry.staff_id, f"pool[{n}].staff_id")
    session.execute(delete(ChannelCodeStaff).where(ChannelCodeStaff.code_id == code.id))
    for n, entry in enumerate(pool):
        session.add(
            ChannelCodeStaff(
                workspace_id=code.workspace_id,
                code_id=code.id,
                staff_id=entry.staff_id,
                position=n,
                weight=entry.weight,
                daily_cap=entry.daily_cap,
                hours_start=entry.hours.start if entry.hours else None,
                hours_end=entry.hours.end if entry.hours else None,
                wrr_current=0,
            )
        )
    code.rr_next = 0


def _set_tags(session: Session, code: ChannelCode, tag_ids: Sequence[int]) -> None:
    ids = _check_tags(session, code.workspace_id, tag_ids)
    session.execute(delete(ChannelCodeTag).where(ChannelCodeTag.code_id == code.id))
    for tag_id in ids:
        session.add(ChannelCodeTag(workspace_id=code.workspace_id, code_id=code.id, tag_id=tag_id))


def create_code(session: Session, workspace_id: int, data: CodeCreate) -> ChannelCode:
    _check_channel(session, workspace_id, data.channel_id)
    if data.backup_staff_id is not None:
        _check_staff(session, workspace_id, data.backup_staff_id, "backup_staff_id")
    _check_tags(session, workspace_id, data.tag_ids)
    code = ChannelCode(
        workspace_id=workspace_id,
        channel_id=data.channel_id,
        name=data.name,
        slug=secrets.token_urlsafe(SLUG_BYTES),
        status=CodeStatus.active,
        rotation=data.rotation,
        backup_staff_id=data.backup_staff_id,
        identity_type=data.identity_type,
        welcome_text=data.welcome_text,
        welcome_link_title=data.welcome_link_title,
        welcome_link_url=data.welcome_link_url,
        rr_next=0,
    )
    session.add(code)
    session.flush()
    _set_pool(session, code, data.pool)
    _set_tags(session, code, data.tag_ids)
    session.flush()
    _wecom_changed(session, code)
    return code


def update_code(session: Session, workspace_id: int, code_id: int, data: CodeUpdate) -> ChannelCode:
    # The row lock makes an edit wait for adds in flight (and adds wait for the edit).
    code = get_code(session, workspace_id, code_id, for_update=True)
    fields = data.model_dump(exclude_unset=True, exclude={"pool", "tag_ids"})
    if "channel_id" in fields:
        if fields["channel_id"] is None:
            raise validation_error("channel_id", "a channel code must belong to a channel")
        _check_channel(session, workspace_id, fields["channel_id"])
    if fields.get("backup_staff_id") is not None:
        _check_staff(session, workspace_id, fields["backup_staff_id"], "backup_staff_id")
    for name in ("name", "rotation", "identity_type"):
        if name in fields and fields[name] is None:
            raise validation_error(name, "cannot be null; leave it out to keep the current value")
    for name, value in fields.items():
        setattr(code, name, value)
    if data.pool is not None:
        _set_pool(session, code, data.pool)
    elif "rotation" in fields:
        for entry in session.scalars(select(ChannelCodeStaff).where(ChannelCodeStaff.code_id == code.id)):
            entry.wrr_current = 0
    if data.tag_ids is not None:
        _set_tags(session, code, data.tag_ids)
    session.flush()
    _wecom_changed(session, code)
    return code


def set_status(session: Session, workspace_id: int, code_id: int, status: CodeStatus) -> ChannelCode:
    code = get_code(session, workspace_id, code_id, for_update=True)
    code.status = status
    session.flush()
    _wecom_changed(session, code)
    return code


def _wecom_changed(session: Session, code: ChannelCode) -> None:
    """Give the code its WeCom state and, if the workspace uses WeCom, sync its 「联系我」 contact way (a job)."""
    from siyu.wecom.service import code_changed  # late: siyu.wecom imports the channels package

    code_changed(session, code)
    session.flush()


def list_codes(session: Session, workspace_id: int, channel_id: int | None) -> list[ChannelCode]:
    q = select(ChannelCode).where(ChannelCode.workspace_id == workspace_id)
    if channel_id is not None:
        q = q.where(ChannelCode.channel_id == channel_id)
    return list(session.scalars(q.order_by(ChannelCode.id)))


def pool_of(session: Session, code_ids: Sequence[int]) -> dict[int, list[tuple[ChannelCodeStaff, Staff]]]:
    out: dict[int, list[tuple[ChannelCodeStaff, Staff]]] = {i: [] for i in code_ids}
    if code_ids:
        rows = session.execute(
            select(ChannelCodeStaff, Staff)
            .join(Staff, Staff.id == ChannelCodeStaff.staff_id)
            .where(ChannelCodeStaff.code_id.in_(code_ids))
            .order_by(ChannelCodeStaff.code_id, ChannelCodeStaff.position)
        )
        for entry, staff in rows:
            out[entry.code_id].append((entry, staff))
    return out


def codes_read(session: Session, codes: list[ChannelCode]) -> list[CodeRead]:
    ids = [c.id for c in codes]
    pools = pool_of(session, ids)
    tags: dict[int, list[int]] = {i: [] for i in ids}
    if ids:
        rows = session.execute(
            select(ChannelCodeTag.code_id, ChannelCodeTag.tag_id)
            .where(ChannelCodeTag.code_id.in_(ids))
            .order_by(ChannelCodeTag.tag_id)
        )
        for code_id, tag_id in rows:
            tags[code_id].append(tag_id)
    return [
        CodeRead(
            id=c.id,
            channel_id=c.channel_id,
            name=c.name,
            status=c.status,
            rotation=c.rotation,
            pool=[
                PoolEntryRead(
                    staff_id=e.staff_id,
                    staff_name=s.name,
                    weight=e.weight,
                    daily_cap=e.daily_cap,
                    hours=HoursRead(start=e.hours_start, end=e.hours_end)
                    if e.hours_start is not None and e.hours_end is not None
                    else None,
                )
                for e, s in pools[c.id]
            ],
            backup_staff_id=c.backup_staff_id,
            tag_ids=tags[c.id],
            identity_type=c.identity_type,
            welcome_text=c.welcome_text,
            welcome_link_title=c.welcome_link_title,
            welcome_link_url=c.welcome_link_url,
            slug=c.slug,
            link_path=f"/c/{c.slug}",
            created_at=c.created_at,
        )
        for c in codes
    ]


def count_scan(session: Session, code: ChannelCode, at: dt.datetime) -> None:
    day = at.astimezone(workspace_timezone(session, code.workspace_id)).date()
    bump(session, ChannelCodeDay, {"workspace_id": code.workspace_id, "code_id": code.id, "day": day}, scans=1)


def code_stats(
    session: Session, workspace_id: int, code_id: int, date_from: dt.date | None, date_to: dt.date | None
) -> CodeStats:
    code = get_code(session, workspace_id, code_id)
    tz = workspace_timezone(session, workspace_id)
    date_from, date_to = resolve_range(date_from, date_to, tz)
    days = {
        row.day: row
        for row in session.scalars(
            select(ChannelCodeDay).where(
                ChannelCodeDay.code_id == code.id, ChannelCodeDay.day >= date_from, ChannelCodeDay.day <= date_to
            )
        )
    }
    per_day = []
    day = date_from
    while day <= date_to:
        row = days.get(day)
        per_day.append(DayCount(day=day, scans=row.scans if row else 0, adds=row.adds if row else 0))
        day += dt.timedelta(days=1)
    staff_rows = session.execute(
        select(ChannelCodeStaffDay.staff_id, Staff.name, func.sum(ChannelCodeStaffDay.adds))
        .join(Staff, Staff.id == ChannelCodeStaffDay.staff_id)
        .where(
            ChannelCodeStaffDay.code_id == code.id,
            ChannelCodeStaffDay.day >= date_from,
            ChannelCodeStaffDay.day <= date_to,
        )
        .group_by(ChannelCodeStaffDay.staff_id, Staff.name)
        .order_by(ChannelCodeStaffDay.staff_id)
    )
    return CodeStats(
        code_id=code.id,
        date_from=date_from,
        date_to=date_to,
        scans=sum(d.scans for d in per_day),
        adds=sum(d.adds for d in per_day),
        per_staff=[StaffCount(staff_id=s, staff_name=n, adds=int(a or 0)) for s, n, a in staff_rows],
        per_day=per_day,
    )
