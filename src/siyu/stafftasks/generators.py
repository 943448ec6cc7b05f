"""The daily generators: follow-ups of non-converted precise users (seed 001) and birthdays.

Each runs once per local day of the workspace (the day it last finished is on the settings row) as one
set-based `INSERT ... SELECT ... ON CONFLICT DO NOTHING`: the source key ("follow_up:<contact>:<day>",
"birthday:<contact>:<day>") makes a second run on the same day add nothing, so a crash between the
insert and the marker costs nothing but the repeat.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, and_, exists, func, literal, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from siyu.computed.models import ContactEventStat
from siyu.contacts.models import Contact
from siyu.events.service import workspace_timezone
from siyu.kit.sql import dialect_insert
from siyu.segments.models import SegmentMember
from siyu.staff.models import Staff
from siyu.stafftasks import notices, service
from siyu.stafftasks.models import StaffTask, TaskKind, TaskStatus
from siyu.stafftasks.schemas import TaskSettings

CONVERTED_EVENT = "order.paid"
CONSULT_EVENT = "message.received"
TASK_COLUMNS = [
    "workspace_id",
    "staff_id",
    "kind",
    "title",
    "contact_id",
    "source_key",
    "source_at",
    "status",
    "due_at",
    "first_due_at",
    "created_at",
]


@dataclass(frozen=True)
class Day:
    """A local day of a workspace: its date, and UTC instants of its start and of a time of day."""

    date: dt.date
    start: dt.datetime
    tz: dt.tzinfo

    def at(self, time: dt.time) -> dt.datetime:
        return dt.datetime.combine(self.date, time, self.tz).astimezone(dt.UTC)


def _has_event(workspace_id: int, event_type: str) -> Any:
    return exists().where(
        ContactEventStat.workspace_id == workspace_id,
        ContactEventStat.contact_id == Contact.id,
        ContactEventStat.event_type == event_type,
        ContactEventStat.count > 0,
    )


def precise_users(workspace_id: int, settings: TaskSettings) -> ColumnElement[bool]:
    """Who gets a daily follow-up: a live contact with an owner who is a precise user (a member of
    `follow_up_segment_id`, or else someone who has consulted: first_consult_at, a consult question
    or a received message) and, unless told otherwise, has not paid (no `order.paid`)."""
    conditions: list[Any] = [
        Contact.workspace_id == workspace_id,
        Contact.owner_id.is_not(None),
        Contact.merged_into_id.is_(None),
    ]
    if settings.follow_up_segment_id is not None:
        conditions.append(
            exists().where(
                SegmentMember.segment_id == settings.follow_up_segment_id, SegmentMember.contact_id == Contact.id
            )
        )
    else:
        conditions.append(
            or_(
                Contact.first_consult_at.is_not(None),
                Contact.consult_question.is_not(None),
                _has_event(workspace_id, CONSULT_EVENT),
            )
        )
    if settings.follow_up_exclude_converted:
        conditions.append(~_has_event(workspace_id, CONVERTED_EVENT))
    return and_(*conditions)


def _key(prefix: str, day: dt.date) -> Any:
    """ "<prefix>:<contact id>:<day>" computed in SQL."""
    return literal(f"{prefix}:") + Contact.id.cast(String) + literal(f":{day.isoformat()}")


def _insert_tasks(
    session: Session,
    workspace_id: int,
    kind: TaskKind,
    who: ColumnElement[bool],
    *,
    day: Day,
    due_at: dt.datetime,
    now: dt.datetime,
) -> int:
    """One task per contact matching `who`, titled with the contact's name (or #id), for the contact's
    owner if active (an inactive owner's contacts wait for a new owner). Returns tasks added."""
    owner = Staff
    due = literal(due_at, StaffTask.due_at.type)
    query = (
        select(
            literal(workspace_id),
            Contact.owner_id,
            literal(kind.value),
            func.coalesce(Contact.name, literal("#") + Contact.id.cast(String)),
            Contact.id,
            _key(kind.value, day.date),
            literal(day.start, StaffTask.source_at.type),
            literal(TaskStatus.open.value),
            due,
            due,
            literal(now, StaffTask.created_at.type),
        )
        .join(owner, and_(owner.id == Contact.owner_id, owner.is_active.is_(True)))
        .where(who)
    )
    if kind is TaskKind.follow_up:
        # one follow-up at a time per contact: yesterday's, still open (and escalated), stands for today's
        query = query.where(
            ~exists().where(
                StaffTask.workspace_id == workspace_id,
                StaffTask.contact_id == Contact.id,
                StaffTask.kind == TaskKind.follow_up,
                StaffTask.status == TaskStatus.open,
            )
        )
    added = session.scalars(
        dialect_insert(session)(StaffTask)
        .from_select(TASK_COLUMNS, query)
        .on_conflict_do_nothing(index_elements=["workspace_id", "source_key"])
        .returning(StaffTask.id)
    ).all()
    return len(added)


def follow_ups(session: Session, workspace_id: int, settings: TaskSettings, day: Day, *, now: dt.datetime) -> int:
    return _insert_tasks(
        session,
        workspace_id,
        TaskKind.follow_up,
        precise_users(workspace_id, settings),
        day=day,
        due_at=day.at(settings.follow_up_due_time),
        now=now,
    )


def birthday_codes(day: dt.date) -> list[int]:
    """month*100+day values celebrated on `day`: 29 February is celebrated on 28 February in other years."""
    codes = [day.month * 100 + day.day]
    if (day.month, day.day) == (2, 28) and not _leap(day.year):
        codes.append(229)
    return codes


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def birthdays(session: Session, workspace_id: int, settings: TaskSettings, day: Day, *, now: dt.datetime) -> int:
    who = and_(
        Contact.workspace_id == workspace_id,
        Contact.merged_into_id.is_(None),
        Contact.owner_id.is_not(None),
        Contact.birthday_mmdd.in_(birthday_codes(day.date)),
    )
    return _insert_tasks(
        session, workspace_id, TaskKind.birthday, who, day=day, due_at=day.at(settings.birthday_due_time), now=now
    )


@dataclass(frozen=True)
class DailyResult:
    day: dt.date
    follow_ups: int | None  # None: not run (off, or already run today)
    birthdays: int | None


def local_day(tz: ZoneInfo, now: dt.datetime) -> Day:
    today = now.astimezone(tz).date()
    return Day(today, dt.datetime.combine(today, dt.time(0), tz).astimezone(dt.UTC), tz)


def run_daily(session: Session, workspace_id: int, *, now: dt.datetime) -> DailyResult:
    """Today's follow-ups and birthday tasks of one workspace, once per local day. The caller commits."""
    row = service.settings_row(session, workspace_id)  # locked: one run at a time per workspace
    settings = service.load_settings(session, workspace_id)
    day = local_day(workspace_timezone(session, workspace_id), now)
    made_follow_ups = made_birthdays = None
    if settings.generators.follow_up and row.follow_up_done_on != day.date:
        made_follow_ups = follow_ups(session, workspace_id, settings, day, now=now)
        row.follow_up_done_on = day.date
    if settings.generators.birthday and row.birthday_done_on != day.date:
        made_birthdays = birthdays(session, workspace_id, settings, day, now=now)
        row.birthday_done_on = day.date
    # after today's follow-ups and birthdays exist, from the digest time on (None: not yet, or off)
    if (
        row.digest_done_on != day.date
        and notices.morning_digest(session, workspace_id, settings, day=day.date, now=now) is not None
    ):
        row.digest_done_on = day.date
    session.flush()
    return DailyResult(day.date, made_follow_ups, made_birthdays)


def run_escalation(session: Session, workspace_id: int, *, now: dt.datetime) -> tuple[int, int]:
    settings = service.load_settings(session, workspace_id)
    if not settings.generators.escalation:
        return 0, 0
    escalated, stuck = service.escalate_overdue(session, workspace_id, settings, now=now)
    if escalated:
        notices.escalated(session, workspace_id, settings, now=now)
    return escalated, stuck
