"""What brings contacts into journeys, and what takes them out while they wait.

- The event stream, read after the journeys' own cursor (per workspace, locked with SKIP LOCKED on
  PostgreSQL like the user model's): goal events take contacts out at once (also while they wait),
  events a wait_event step waits for make the enrolment due at once, and event / segment triggers enrol
  (segment entries and exits are `segment.entered` / `segment.exited` events with `segment_id`).
- The tag-change log, read by id after its own cursor: "tag added" triggers.
- Date and schedule triggers fire from a cron job once `journey.next_fire_at` has come.

Each workspace's step is one transaction with its cursor, so a crash reads the same events again and
enrols nobody twice (the entry rules and the unique live enrolment see the first attempt's rows or none).
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from siyu.computed.models import StreamCursor
from siyu.computed.service import StreamEvent, read_events
from siyu.contacts.models import Contact
from siyu.db import Database
from siyu.events import cursors
from siyu.events.service import workspace_timezone
from siyu.journeys.definition import (
    DateTrigger,
    EventTrigger,
    ScheduleTrigger,
    SegmentTrigger,
    TagTrigger,
    WaitEventStep,
)
from siyu.journeys.models import EnrolmentStatus, Journey, JourneyEnrolment, JourneyStatus
from siyu.journeys.schedule import daily_after
from siyu.journeys.service import LIVE, STREAM_CURSOR, TAG_CURSOR, ref
from siyu.journeys.state import (
    ENROLMENT,
    Candidate,
    Ending,
    Pending,
    among,
    chunks,
    definitions,
    end,
    enrol,
    event_positions,
)
from siyu.kit.time import ensure_utc, utcnow
from siyu.segments import service as segments
from siyu.segments.compiler import matching_contacts
from siyu.segments.evaluate import performed
from siyu.segments.rules import RuleError
from siyu.tags.models import TagAction, TagChange
from siyu.workspaces.models import Workspace

log = logging.getLogger("siyu.journeys")

BATCH_EVENTS = 2_000
BATCH_TAG_CHANGES = 5_000
# PostgreSQL hands out tag-change ids at insert, not at commit: read only changes at least this old, so
# one committed late by a concurrent transaction is not passed by the cursor. (SQLite: one writer, no gap.)
TAG_LAG = dt.timedelta(seconds=5)
MAX_STEPS = 20


# --------------------------------------------------------------------------- the event stream


def stream_workspaces(session: Session) -> list[int]:
    """Workspaces with a live journey and events the journeys have not read."""
    live = select(Journey.workspace_id).where(Journey.status.in_(LIVE)).distinct().subquery()
    rows = session.execute(
        select(Workspace.id, Workspace.event_seq, StreamCursor.seq)
        .join(live, live.c.workspace_id == Workspace.id)
        .outerjoin(StreamCursor, (StreamCursor.workspace_id == Workspace.id) & (StreamCursor.name == STREAM_CURSOR))
    ).all()
    return sorted(int(w) for w, seq, cursor in rows if cursor is None or int(seq) > int(cursor))


def _goals_and_waits(
    session: Session, workspace_id: int, events: list[StreamEvent], now: dt.datetime, pending: Pending
) -> int:
    """Goal events take contacts out; awaited events make waiting enrolments due. Returns enrolments changed."""
    by_contact: dict[int, list[StreamEvent]] = defaultdict(list)
    for event in events:
        by_contact[event.contact_id].append(event)
    e = JourneyEnrolment
    rows: list[Any] = []
    for chunk in chunks(sorted(by_contact)):
        rows.extend(
            session.execute(
                select(
                    e.id,
                    e.journey_id,
                    e.version_id,
                    e.contact_id,
                    e.entry_seq,
                    e.step,
                    e.waiting,
                    e.wait_event,
                    e.wait_seq,
                    e.goal_at,
                ).where(
                    e.workspace_id == workspace_id,
                    e.status == EnrolmentStatus.active,
                    among(session, e.contact_id, chunk),
                )
            ).all()
        )
    if not rows:
        return 0
    defs = definitions(session, {r.version_id for r in rows})
    goal_exits: dict[int, dt.datetime] = {}
    goal_marks: dict[int, dt.datetime] = {}
    woken: list[dict[str, object]] = []
    for row in rows:
        definition = defs[row.version_id]
        mine = by_contact[row.contact_id]
        goal = definition.goal
        if goal is not None:
            hits = performed(goal.type, goal.where, [ev for ev in mine if ev.seq > row.entry_seq])
            if hits:
                if goal.exit:
                    goal_exits[row.id] = ensure_utc(hits[0].occurred_at)
                    continue
                if row.goal_at is None:
                    goal_marks[row.id] = ensure_utc(hits[0].occurred_at)
        step = definition.steps.get(row.step)
        if row.waiting and row.wait_event and isinstance(step, WaitEventStep):
            later = [ev for ev in mine if ev.seq > (row.wait_seq or 0)]
            if performed(step.event, step.where, later):
                woken.append({"b_id": row.id, "b_step": row.step, "b_event": row.wait_event})
    changed = 0
    if goal_exits:
        names = dict(
            session.execute(select(Journey.id, Journey.name).where(Journey.workspace_id == workspace_id)).all()
        )
        endings: list[Ending] = []
        for chunk in chunks(sorted(goal_exits)):
            # the row lock waits for a runner holding the enrolment; its step is read after that runner commits
            for i, journey_id, contact_id, at_step in session.execute(
                select(e.id, e.journey_id, e.contact_id, e.step)
                .where(e.id.in_(chunk), e.status == EnrolmentStatus.active)
                .order_by(e.id)
                .with_for_update()
            ):
                endings.append(
                    Ending(
                        int(i),
                        workspace_id,
                        int(journey_id),
                        int(contact_id),
                        at_step,
                        EnrolmentStatus.exited,
                        "goal",
                        goal_exits[int(i)],
                    )
                )
        end(session, endings, now=now, names=names, pending=pending)
        changed += len(endings)
    if goal_marks:
        session.execute(
            ENROLMENT.update()
            .where(ENROLMENT.c.id == bindparam("b_id"), ENROLMENT.c.goal_at.is_(None))
            .values(goal_at=bindparam("b_goal_at")),
            [{"b_id": i, "b_goal_at": at} for i, at in sorted(goal_marks.items())],
        )
        changed += len(goal_marks)
    if woken:
        session.execute(
            ENROLMENT.update()
            .where(
                ENROLMENT.c.id == bindparam("b_id"),
                ENROLMENT.c.status == EnrolmentStatus.active.value,
                ENROLMENT.c.waiting.is_(True),
                ENROLMENT.c.step == bindparam("b_step"),
                ENROLMENT.c.wait_event == bindparam("b_event"),
            )
            .values(event_matched=True, due_at=now),
            sorted(woken, key=lambda w: int(w["b_id"])),  # type: ignore[call-overload]
        )
        changed += len(woken)
    return changed


def _event_triggers(
    session: Session, workspace_id: int, events: list[StreamEvent], now: dt.datetime, pending: Pending
) -> int:
    journeys = session.scalars(
        select(Journey)
        .where(
            Journey.workspace_id == workspace_id,
            Journey.status == JourneyStatus.active,
            Journey.trigger_kind.in_(("event", "segment")),
        )
        .order_by(Journey.id)
    ).all()
    enrolled = 0
    for journey in journeys:
        journey_ref = ref(session, journey)
        trigger = journey_ref.definition.trigger
        fresh = [e for e in events if e.seq > journey.start_seq]
        if isinstance(trigger, EventTrigger):
            hits = performed(trigger.type, trigger.where, fresh)
        elif isinstance(trigger, SegmentTrigger):
            kind = f"segment.{trigger.on}"
            hits = [e for e in fresh if e.type == kind and e.properties.get("segment_id") == trigger.segment_id]
        else:
            continue
        if hits:
            result = enrol(
                session,
                journey_ref,
                [Candidate(e.contact_id, e.seq, f"{e.type}:{e.seq}") for e in hits],
                now=now,
                pending=pending,
            )
            enrolled += len(result.enrolled)
    return enrolled


def stream_step(
    session: Session, workspace_id: int, *, now: dt.datetime | None = None, batch: int = BATCH_EVENTS
) -> int:
    """Reads up to `batch` events after the journeys' cursor: goals, waits, triggers. The caller commits.
    Returns the events read (0: up to date, or another worker holds this workspace)."""
    now = now or utcnow()
    position = event_positions(session, [workspace_id]).get(workspace_id, 0)
    cursor = cursors.lock(session, STREAM_CURSOR, workspace_id, start=position)
    if cursor is None:
        return 0
    events = read_events(session, workspace_id, after_seq=cursor.seq, limit=batch)
    if not events:
        return 0
    pending = Pending()
    _goals_and_waits(session, workspace_id, events, now, pending)
    _event_triggers(session, workspace_id, events, now, pending)
    pending.write(session, now)
    cursor.seq = events[-1].seq
    cursor.updated_at = now
    session.flush()
    return len(events)


# --------------------------------------------------------------------------- tag changes


def tag_workspaces(session: Session) -> list[int]:
    rows = session.execute(
        select(Journey.workspace_id, StreamCursor.seq)
        .outerjoin(
            StreamCursor, (StreamCursor.workspace_id == Journey.workspace_id) & (StreamCursor.name == TAG_CURSOR)
        )
        .where(Journey.status == JourneyStatus.active, Journey.trigger_kind == "tag")
        .distinct()
    ).all()
    out = []
    for workspace_id, seq in rows:
        newer = session.scalar(
            select(TagChange.id).where(TagChange.workspace_id == workspace_id, TagChange.id > (seq or 0)).limit(1)
        )
        if newer is not None:
            out.append(int(workspace_id))
    return sorted(set(out))


def tags_step(
    session: Session, workspace_id: int, *, now: dt.datetime | None = None, batch: int = BATCH_TAG_CHANGES
) -> int:
    now = now or utcnow()
    cursor = cursors.lock(session, TAG_CURSOR, workspace_id)
    if cursor is None:
        return 0
    q = (
        select(TagChange.id, TagChange.contact_id, TagChange.tag_id, TagChange.action, TagChange.created_at)
        .where(TagChange.workspace_id == workspace_id, TagChange.id > cursor.seq)
        .order_by(TagChange.id)
        .limit(batch)
    )
    if session.get_bind().dialect.name == "postgresql":
        q = q.where(TagChange.created_at <= now - TAG_LAG)
    changes = session.execute(q).all()
    if not changes:
        return 0
    journeys = session.scalars(
        select(Journey)
        .where(
            Journey.workspace_id == workspace_id, Journey.status == JourneyStatus.active, Journey.trigger_kind == "tag"
        )
        .order_by(Journey.id)
    ).all()
    position = event_positions(session, [workspace_id]).get(workspace_id, 0)
    pending = Pending()
    for journey in journeys:
        journey_ref = ref(session, journey)
        trigger = journey_ref.definition.trigger
        if not isinstance(trigger, TagTrigger) or journey.activated_at is None:
            continue
        wanted = set(trigger.tag_ids)
        hits = [
            c
            for c in changes
            if c.action == TagAction.added and c.tag_id in wanted and ensure_utc(c.created_at) >= journey.activated_at
        ]
        if hits:
            enrol(
                session,
                journey_ref,
                [Candidate(int(c.contact_id), position, f"tag_change:{c.id}") for c in hits],
                now=now,
                pending=pending,
            )
    pending.write(session, now)
    cursor.seq = int(changes[-1].id)
    cursor.updated_at = now
    session.flush()
    return len(changes)


# --------------------------------------------------------------------------- polling


def poll(db: Database, *, now: dt.datetime | None = None) -> int:
    """One look at every workspace's new events and tag changes; each step its own transaction."""
    done = 0
    with db.transaction(write=False) as session:
        streams = stream_workspaces(session)
        tags = tag_workspaces(session)
    for workspace_id in streams:
        for _ in range(MAX_STEPS):
            with db.transaction() as session:
                read = stream_step(session, workspace_id, now=now)
            done += read
            if read < BATCH_EVENTS:
                break
    for workspace_id in tags:
        for _ in range(MAX_STEPS):
            with db.transaction() as session:
                read = tags_step(session, workspace_id, now=now)
            done += read
            if read < BATCH_TAG_CHANGES:
                break
    return done


# --------------------------------------------------------------------------- dates and schedules


def _birthday_codes(day: dt.date) -> list[int]:
    codes = [day.month * 100 + day.day]
    if (day.month, day.day) == (3, 1) and not calendar.isleap(day.year):
        codes.append(229)  # born on 29 February: celebrated on 1 March in other years
    return codes


def _audience(
    session: Session, journey: Journey, trigger: ScheduleTrigger | DateTrigger, fire_at: dt.datetime
) -> list[int]:
    ws = journey.workspace_id
    if isinstance(trigger, ScheduleTrigger):
        node = segments.parse(session, ws, trigger.audience)
        ctx = segments.context(session, ws, fire_at)
        return [int(c) for c in session.scalars(matching_contacts(session, ctx, node).order_by(Contact.id))]
    target = ensure_utc(fire_at).astimezone(workspace_timezone(session, ws)).date() + dt.timedelta(
        days=trigger.days_before
    )
    q = select(Contact.id).where(Contact.workspace_id == ws, Contact.merged_into_id.is_(None))
    if trigger.field == "birthday":
        q = q.where(Contact.birthday_mmdd.in_(_birthday_codes(target)))
    else:
        key = trigger.field.removeprefix("attributes.")
        q = q.where(Contact.attributes[key].as_string() == target.isoformat())
    return [int(c) for c in session.scalars(q.order_by(Contact.id))]


def fire_due(session: Session, *, now: dt.datetime | None = None) -> int:
    """Date and schedule journeys whose moment has come look at their audience and enrol it (entry rules
    apply); the next moment is set after now, so a worker that was down fires once, not once per miss."""
    now = now or utcnow()
    q = (
        select(Journey)
        .where(Journey.status == JourneyStatus.active, Journey.next_fire_at <= now)
        .order_by(Journey.next_fire_at, Journey.id)
    )
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    enrolled = 0
    for journey in session.scalars(q).all():
        journey_ref = ref(session, journey)
        trigger = journey_ref.definition.trigger
        fire_at = journey.next_fire_at or now
        tz = workspace_timezone(session, journey.workspace_id)
        if isinstance(trigger, ScheduleTrigger):
            journey.next_fire_at = trigger.cron.next_after(now, tz)
        elif isinstance(trigger, DateTrigger):
            journey.next_fire_at = daily_after(now, trigger.at, tz)
        else:
            journey.next_fire_at = None
            continue
        try:
            ids = _audience(session, journey, trigger, fire_at)
        except RuleError as exc:
            log.warning("journey %s: audience no longer valid (%s); not fired", journey.id, exc.message)
            continue
        position = event_positions(session, [journey.workspace_id]).get(journey.workspace_id, 0)
        pending = Pending()
        result = enrol(
            session,
            journey_ref,
            [Candidate(c, position, f"{trigger.kind}:{fire_at.isoformat()}") for c in ids],
            now=now,
            pending=pending,
        )
        pending.write(session, now)
        enrolled += len(result.enrolled)
    session.flush()
    return enrolled


__all__: Sequence[str] = ["fire_due", "poll", "stream_step", "tags_step"]
