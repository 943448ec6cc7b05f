"""Staff tasks: create (idempotently by source key), read an inbox, complete, snooze, hand over, escalate.

Services never commit; the endpoint, job or journey batch that calls them does.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, ColumnElement, and_, func, insert, literal, or_, select, update
from sqlalchemy.orm import Session, aliased

from siyu.auth.principal import Principal
from siyu.contacts.models import Contact
from siyu.contacts.schemas import NoteCreate
from siyu.contacts.service import add_note, change_owner
from siyu.errors import Conflict, NotFound, PermissionDenied, validation_error
from siyu.events.service import workspace_timezone
from siyu.kit.sql import dialect_insert
from siyu.kit.time import ensure_utc, utcnow
from siyu.scoring.models import ContactScore
from siyu.segments.models import Segment
from siyu.staff.models import Staff
from siyu.stafftasks import notices
from siyu.stafftasks.models import (
    Escalation,
    StaffTask,
    StaffTaskLog,
    StaffTaskSettings,
    TaskAction,
    TaskKind,
    TaskOutcome,
    TaskStatus,
)
from siyu.stafftasks.schemas import (
    ContactBrief,
    TaskComplete,
    TaskCreate,
    TaskHandOver,
    TaskRead,
    TaskSettings,
    TaskSettingsRead,
)

__all__ = ["TaskKind", "create_task"]

TITLE_MAX = 200
SOURCE_KEY_MAX = 200
INBOX_MAX = 500  # tasks listed in an inbox; the counts cover them all
MAX_SNOOZE = dt.timedelta(days=366)


def find_by_source_key(session: Session, workspace_id: int, source_key: str) -> StaffTask | None:
    return session.scalars(
        select(StaffTask).where(StaffTask.workspace_id == workspace_id, StaffTask.source_key == source_key)
    ).one_or_none()


def create_task(
    session: Session,
    workspace_id: int,
    *,
    staff_id: int,
    kind: TaskKind,
    title: str,
    contact_id: int | None,
    due_at: dt.datetime,
    source_key: str,
    detail: str | None = None,
    notify: bool = True,
) -> StaffTask:
    """The task for `source_key` in this workspace: made now, or the one made before (unchanged).

    A journey step or a generator that runs twice with the same key gets the same task back, even when
    two transactions race (the insert skips on the unique key). A task made now is announced to its
    staff member through WeCom when its kind calls for it (siyu.stafftasks.notices) unless `notify` is
    false. Never commits.
    """
    return create_generated(
        session,
        workspace_id,
        staff_id=staff_id,
        kind=kind,
        title=title,
        contact_id=contact_id,
        due_at=due_at,
        source_key=source_key,
        detail=detail,
        notify=notify,
    )


def create_generated(
    session: Session,
    workspace_id: int,
    *,
    staff_id: int,
    kind: TaskKind,
    title: str,
    contact_id: int | None,
    due_at: dt.datetime,
    source_key: str,
    detail: str | None = None,
    source_at: dt.datetime | None = None,
    notify: bool = True,
) -> StaffTask:
    """`create_task`, also recording when its cause happened (`source_at`)."""
    if not source_key or len(source_key) > SOURCE_KEY_MAX:
        raise validation_error("source_key", f"must be 1-{SOURCE_KEY_MAX} characters")
    existing = find_by_source_key(session, workspace_id, source_key)
    if existing is not None:
        return existing
    title = title.strip()
    if not title or len(title) > TITLE_MAX:
        raise validation_error("title", f"must be 1-{TITLE_MAX} characters")
    kind = TaskKind(kind)
    staff_workspace = session.scalar(select(Staff.workspace_id).where(Staff.id == staff_id))
    if staff_workspace != workspace_id:
        raise validation_error("staff_id", f"no staff member {staff_id} in this workspace")
    if contact_id is not None:
        contact_workspace = session.scalar(select(Contact.workspace_id).where(Contact.id == contact_id))
        if contact_workspace != workspace_id:
            raise validation_error("contact_id", f"no contact {contact_id} in this workspace")
    due = ensure_utc(due_at)
    made = session.execute(
        dialect_insert(session)(StaffTask)
        .values(
            workspace_id=workspace_id,
            staff_id=staff_id,
            kind=kind,
            title=title,
            detail=detail,
            contact_id=contact_id,
            source_key=source_key,
            source_at=ensure_utc(source_at) if source_at is not None else None,
            status=TaskStatus.open,
            due_at=due,
            first_due_at=due,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["workspace_id", "source_key"])
        .returning(StaffTask.id)
    ).scalar_one_or_none()
    task = find_by_source_key(session, workspace_id, source_key)
    assert task is not None  # inserted now, or by a transaction that committed first
    if notify and made is not None:
        notices.task_created(session, task, now=utcnow())
    return task


# --------------------------------------------------------------------------- settings


def load_settings(session: Session, workspace_id: int) -> TaskSettings:
    row = session.get(StaffTaskSettings, workspace_id)
    return TaskSettings.model_validate(row.config if row is not None and row.config else {})


def settings_read(session: Session, workspace_id: int) -> TaskSettingsRead:
    row = session.get(StaffTaskSettings, workspace_id)
    settings = load_settings(session, workspace_id)
    return TaskSettingsRead(
        **settings.model_dump(),
        follow_up_done_on=row.follow_up_done_on if row else None,
        birthday_done_on=row.birthday_done_on if row else None,
        digest_done_on=row.digest_done_on if row else None,
    )


def settings_row(session: Session, workspace_id: int) -> StaffTaskSettings:
    """The workspace's settings row, locked (made on first use)."""
    session.execute(
        dialect_insert(session)(StaffTaskSettings)
        .values(workspace_id=workspace_id, config=None, updated_at=utcnow())
        .on_conflict_do_nothing(index_elements=["workspace_id"])
    )
    row = session.scalars(
        select(StaffTaskSettings)
        .where(StaffTaskSettings.workspace_id == workspace_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    return row


def save_settings(session: Session, workspace_id: int, data: TaskSettings) -> TaskSettingsRead:
    if data.follow_up_segment_id is not None:
        segment_workspace = session.scalar(select(Segment.workspace_id).where(Segment.id == data.follow_up_segment_id))
        if segment_workspace != workspace_id:
            raise validation_error("follow_up_segment_id", f"no segment {data.follow_up_segment_id} in this workspace")
    row = settings_row(session, workspace_id)
    row.config = data.model_dump(mode="json")
    row.updated_at = utcnow()
    session.flush()
    return settings_read(session, workspace_id)


# --------------------------------------------------------------------------- reading


def _visible_to(principal: Principal) -> ColumnElement[bool]:
    """A consultant sees their own tasks and those escalated to them; others see the workspace's."""
    clause = StaffTask.workspace_id == principal.workspace_id
    me = principal.owned_contacts_only
    if me is not None:
        clause = clause & ((StaffTask.staff_id == me) | (StaffTask.escalated_to_id == me))
    return clause


def get_task(session: Session, principal: Principal, task_id: int, *, for_update: bool = False) -> StaffTask:
    q = select(StaffTask).where(StaffTask.id == task_id, _visible_to(principal))
    if for_update:
        q = q.with_for_update()
    task = session.scalars(q).one_or_none()
    if task is None:
        raise NotFound(f"task {task_id} not found")
    return task


def _active_staff(session: Session, workspace_id: int, staff_id: int, field: str) -> Staff:
    staff = session.get(Staff, staff_id)
    if staff is None or staff.workspace_id != workspace_id:
        raise validation_error(field, f"no staff member {staff_id} in this workspace")
    if not staff.is_active:
        raise validation_error(field, f"staff member {staff_id} is not active")
    return staff


def whose_tasks(session: Session, principal: Principal, staff_id: int | None) -> int:
    """Whose inbox a caller asks for: a consultant only their own; others anyone's (default: their own)."""
    me = principal.staff_id
    if staff_id is None:
        if me is None:
            raise validation_error("staff_id", "required when calling with an API key: whose tasks to show")
        return me
    if principal.owned_contacts_only is not None and staff_id != me:
        raise PermissionDenied("a consultant sees only their own tasks")
    staff = session.get(Staff, staff_id)
    if staff is None or staff.workspace_id != principal.workspace_id:
        raise validation_error("staff_id", f"no staff member {staff_id} in this workspace")
    return staff_id


@dataclass
class TaskFilter:
    status: TaskStatus | None = TaskStatus.open
    kind: TaskKind | None = None
    staff_id: int | None = None
    contact_id: int | None = None
    overdue: bool | None = None
    escalated: bool | None = None


def list_tasks(
    session: Session,
    principal: Principal,
    filters: TaskFilter,
    *,
    after: tuple[dt.datetime, int] | None,
    limit: int,
    now: dt.datetime,
) -> list[StaffTask]:
    q = select(StaffTask).where(_visible_to(principal))
    if filters.status is not None:
        q = q.where(StaffTask.status == filters.status)
    if filters.kind is not None:
        q = q.where(StaffTask.kind == filters.kind)
    if filters.staff_id is not None:
        q = q.where(StaffTask.staff_id == filters.staff_id)
    if filters.contact_id is not None:
        q = q.where(StaffTask.contact_id == filters.contact_id)
    if filters.overdue is not None:
        late = (StaffTask.status == TaskStatus.open) & (StaffTask.due_at < now)
        q = q.where(late if filters.overdue else ~late)
    if filters.escalated is not None:
        q = q.where(
            StaffTask.escalation == Escalation.escalated
            if filters.escalated
            else StaffTask.escalation.is_distinct_from(Escalation.escalated)
        )
    if after is not None:
        due, task_id = after
        q = q.where((StaffTask.due_at > due) | ((StaffTask.due_at == due) & (StaffTask.id > task_id)))
    return list(session.scalars(q.order_by(StaffTask.due_at, StaffTask.id).limit(limit)))


def day_bounds(tz: ZoneInfo, now: dt.datetime) -> tuple[dt.date, dt.datetime, dt.datetime]:
    """Today in `tz`, and its start and end (exclusive) in UTC."""
    today = now.astimezone(tz).date()
    start = dt.datetime.combine(today, dt.time(0), tz).astimezone(dt.UTC)
    end = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(0), tz).astimezone(dt.UTC)
    return today, start, end


@dataclass
class Inbox:
    staff_id: int
    day: dt.date
    tasks: list[StaffTask]
    total: int
    escalated: list[StaffTask]
    counts: dict[str, int]
    overdue: int
    snoozed: int


def inbox(session: Session, principal: Principal, staff_id: int, *, now: dt.datetime) -> Inbox:
    """A staff member's tasks for today: open, due before the end of their local day (so overdue ones
    too), not snoozed to later; and the open tasks of their team escalated to them."""
    workspace_id = principal.workspace_id
    today, _, end = day_bounds(workspace_timezone(session, workspace_id), now)
    mine = (
        (StaffTask.workspace_id == workspace_id)
        & (StaffTask.staff_id == staff_id)
        & (StaffTask.status == TaskStatus.open)
    )
    due = mine & (StaffTask.due_at < end) & or_(StaffTask.snoozed_until.is_(None), StaffTask.snoozed_until <= now)
    tasks = list(
        session.scalars(select(StaffTask).where(due).order_by(StaffTask.due_at, StaffTask.id).limit(INBOX_MAX))
    )
    counts = {
        str(k): int(n)
        for k, n in session.execute(select(StaffTask.kind, func.count()).where(due).group_by(StaffTask.kind)).all()
    }
    overdue = session.scalar(select(func.count()).where(due & (StaffTask.due_at < now))) or 0
    snoozed = session.scalar(select(func.count()).where(mine & (StaffTask.snoozed_until > now))) or 0
    escalated = list(
        session.scalars(
            select(StaffTask)
            .where(
                StaffTask.workspace_id == workspace_id,
                StaffTask.escalated_to_id == staff_id,
                StaffTask.escalation == Escalation.escalated,
                StaffTask.status == TaskStatus.open,
            )
            .order_by(StaffTask.due_at, StaffTask.id)
            .limit(INBOX_MAX)
        )
    )
    return Inbox(
        staff_id=staff_id,
        day=today,
        tasks=tasks,
        total=sum(counts.values()),
        escalated=escalated,
        counts={kind.value: counts.get(kind.value, 0) for kind in TaskKind},
        overdue=int(overdue),
        snoozed=int(snoozed),
    )


def contact_briefs(session: Session, contact_ids: set[int]) -> dict[int, ContactBrief]:
    """Name and the scoring models' stage and intention (read from siyu.scoring's table) per contact."""
    if not contact_ids:
        return {}
    rows = session.execute(
        select(
            Contact.id,
            Contact.name,
            ContactScore.lifecycle_stage,
            ContactScore.intention_level,
            ContactScore.transaction_stage,
        )
        .outerjoin(ContactScore, ContactScore.contact_id == Contact.id)
        .where(Contact.id.in_(sorted(contact_ids)))
    ).all()
    return {
        r[0]: ContactBrief(id=r[0], name=r[1], lifecycle_stage=r[2], intention_level=r[3], transaction_stage=r[4])
        for r in rows
    }


def why(task: StaffTask, tz: ZoneInfo) -> str:
    """Why the task exists, in one English line (the console says it in the reader's language)."""
    if task.kind is TaskKind.follow_up:
        return "consulted and not converted yet: follow up today"
    if task.kind is TaskKind.birthday:
        return "birthday today"
    if task.kind is TaskKind.unanswered and task.source_at is not None:
        at = task.source_at.astimezone(tz)
        return f"message received {at:%Y-%m-%d %H:%M} has had no reply"
    return task.detail or task.title


def to_read(session: Session, tasks: list[StaffTask], *, now: dt.datetime) -> list[TaskRead]:
    if not tasks:
        return []
    tz = workspace_timezone(session, tasks[0].workspace_id)
    briefs = contact_briefs(session, {t.contact_id for t in tasks if t.contact_id is not None})
    return [
        TaskRead(
            id=t.id,
            kind=t.kind,
            title=t.title,
            detail=t.detail,
            why=why(t, tz),
            staff_id=t.staff_id,
            contact=briefs.get(t.contact_id) if t.contact_id is not None else None,
            source_key=t.source_key,
            source_at=t.source_at,
            status=t.status,
            due_at=t.due_at,
            first_due_at=t.first_due_at,
            overdue=t.status is TaskStatus.open and t.due_at < now,
            snoozed_until=t.snoozed_until,
            handed_over_from_id=t.handed_over_from_id,
            handed_over_at=t.handed_over_at,
            escalation=t.escalation,
            escalated_at=t.escalated_at,
            escalated_to_id=t.escalated_to_id,
            completed_at=t.completed_at,
            completed_by_id=t.completed_by_id,
            outcome=t.outcome,
            note=t.note,
            created_at=t.created_at,
        )
        for t in tasks
    ]


def history(session: Session, task: StaffTask) -> list[StaffTaskLog]:
    return list(session.scalars(select(StaffTaskLog).where(StaffTaskLog.task_id == task.id).order_by(StaffTaskLog.id)))


# --------------------------------------------------------------------------- actions


def _log(
    session: Session,
    task: StaffTask,
    action: TaskAction,
    *,
    at: dt.datetime,
    actor: int | None,
    from_staff: int | None = None,
    to_staff: int | None = None,
    note: str | None = None,
) -> None:
    session.add(
        StaffTaskLog(
            workspace_id=task.workspace_id,
            task_id=task.id,
            at=at,
            action=action,
            actor_staff_id=actor,
            from_staff_id=from_staff,
            to_staff_id=to_staff,
            note=note,
        )
    )


def _must_be_open(task: StaffTask) -> None:
    if task.status is not TaskStatus.open:
        raise Conflict(f"task {task.id} is already done ({task.outcome.value if task.outcome else 'done'})")


def create_manual(session: Session, principal: Principal, data: TaskCreate, *, now: dt.datetime) -> StaffTask:
    staff_id = data.staff_id if data.staff_id is not None else principal.staff_id
    if staff_id is None:
        raise validation_error("staff_id", "required when calling with an API key: whose task it is")
    if principal.owned_contacts_only is not None and staff_id != principal.staff_id:
        raise PermissionDenied("a consultant creates tasks for themselves; hand a task over to give it to someone")
    _active_staff(session, principal.workspace_id, staff_id, "staff_id")
    if data.contact_id is not None:
        contact = session.get(Contact, data.contact_id)
        owner = principal.owned_contacts_only
        if (
            contact is None
            or contact.workspace_id != principal.workspace_id
            or (owner is not None and contact.owner_id != owner)
        ):
            raise validation_error("contact_id", f"no contact {data.contact_id} you can see in this workspace")
    task = create_task(
        session,
        principal.workspace_id,
        staff_id=staff_id,
        kind=TaskKind.manual,
        title=data.title,
        contact_id=data.contact_id,
        due_at=data.due_at or now,
        source_key=f"manual:{uuid.uuid4().hex}",
        detail=data.detail,
        notify=staff_id != principal.staff_id,  # a task someone gave them, not one they wrote themselves
    )
    _log(session, task, TaskAction.created, at=now, actor=principal.staff_id, to_staff=staff_id)
    session.flush()
    return task


def complete(
    session: Session, principal: Principal, task_id: int, data: TaskComplete, *, now: dt.datetime
) -> StaffTask:
    task = get_task(session, principal, task_id, for_update=True)
    _must_be_open(task)
    note = data.note or None
    if note and data.note_to_contact and task.contact_id is not None:
        try:
            add_note(session, principal, task.contact_id, NoteCreate(body=note))
        except NotFound:
            raise validation_error(
                "note_to_contact", "you cannot write notes on this contact; complete with note_to_contact false"
            ) from None
    task.status = TaskStatus.done
    task.outcome = TaskOutcome.completed
    task.completed_at = now
    task.completed_by_id = principal.staff_id
    task.note = note
    _log(session, task, TaskAction.completed, at=now, actor=principal.staff_id, note=note)
    session.flush()
    return task


def snooze(session: Session, principal: Principal, task_id: int, until: dt.datetime, *, now: dt.datetime) -> StaffTask:
    task = get_task(session, principal, task_id, for_update=True)
    _must_be_open(task)
    until = ensure_utc(until)
    if until <= now:
        raise validation_error("until", "must be in the future")
    if until > now + MAX_SNOOZE:
        raise validation_error("until", f"at most {MAX_SNOOZE.days} days ahead")
    task.due_at = until
    task.snoozed_until = until
    _log(session, task, TaskAction.snoozed, at=now, actor=principal.staff_id, note=until.isoformat())
    session.flush()
    return task


def hand_over(
    session: Session, principal: Principal, task_id: int, data: TaskHandOver, *, now: dt.datetime
) -> StaffTask:
    task = get_task(session, principal, task_id, for_update=True)
    _must_be_open(task)
    _active_staff(session, principal.workspace_id, data.to_staff_id, "to_staff_id")
    if data.to_staff_id == task.staff_id:
        raise validation_error("to_staff_id", f"task {task.id} is already theirs")
    if data.change_owner:
        if task.contact_id is None:
            raise validation_error("change_owner", "the task has no contact whose owner could change")
        change_owner(
            session,
            principal,
            select(Contact.id).where(Contact.id == task.contact_id, Contact.workspace_id == task.workspace_id),
            data.to_staff_id,
            f"task {task.id} handed over",
        )
    previous = task.staff_id
    task.staff_id = data.to_staff_id
    task.handed_over_from_id = previous
    task.handed_over_at = now
    # the new owner gets a fresh grace before escalation, to their own lead
    task.escalation = None
    task.escalated_at = None
    task.escalated_to_id = None
    _log(
        session,
        task,
        TaskAction.handed_over,
        at=now,
        actor=principal.staff_id,
        from_staff=previous,
        to_staff=data.to_staff_id,
        note=data.note,
    )
    session.flush()
    notices.handed_over(session, task, now=now)
    return task


def mark_answered(session: Session, workspace_id: int, contact_id: int, replied_at: dt.datetime) -> int:
    """A reply to the contact closes their open unanswered-message tasks for messages before it."""
    tasks = list(
        session.scalars(
            select(StaffTask).where(
                StaffTask.workspace_id == workspace_id,
                StaffTask.contact_id == contact_id,
                StaffTask.kind == TaskKind.unanswered,
                StaffTask.status == TaskStatus.open,
                StaffTask.source_at <= replied_at,
            )
        )
    )
    for task in tasks:
        task.status = TaskStatus.done
        task.outcome = TaskOutcome.answered
        task.completed_at = replied_at
        _log(session, task, TaskAction.answered, at=replied_at, actor=None)
    return len(tasks)


def escalate_overdue(
    session: Session, workspace_id: int, settings: TaskSettings, *, now: dt.datetime
) -> tuple[int, int]:
    """Open tasks past due by the grace (unanswered ones: by the SLA) go to the owner's lead.

    Set-based: the log rows and the updates are two statements each, whatever the number of tasks.
    A task whose owner has no active lead is marked unescalatable, and escalates once a lead is set.
    Returns (escalated, unescalatable).
    """
    grace = dt.timedelta(minutes=settings.escalation_grace_minutes)
    sla = dt.timedelta(minutes=settings.sla_minutes)
    owner = aliased(Staff)
    lead = aliased(Staff)
    lead_of_owner = (
        select(lead.id)
        .join(owner, owner.lead_id == lead.id)
        .where(owner.id == StaffTask.staff_id, lead.is_active.is_(True), lead.workspace_id == workspace_id)
        .scalar_subquery()
    )
    overdue = and_(
        StaffTask.workspace_id == workspace_id,
        StaffTask.status == TaskStatus.open,
        or_(StaffTask.escalation.is_(None), StaffTask.escalation == Escalation.unescalatable),
        or_(
            and_(StaffTask.kind == TaskKind.unanswered, StaffTask.due_at < now - sla),
            and_(StaffTask.kind != TaskKind.unanswered, StaffTask.due_at < now - grace),
        ),
        or_(StaffTask.handed_over_at.is_(None), StaffTask.handed_over_at < now - grace),
    )
    with_lead = and_(overdue, lead_of_owner.is_not(None))
    without_lead = and_(overdue, lead_of_owner.is_(None), StaffTask.escalation.is_(None))
    columns = ["workspace_id", "task_id", "at", "action", "from_staff_id", "to_staff_id"]
    at = literal(now, StaffTaskLog.at.type)
    session.execute(
        insert(StaffTaskLog).from_select(
            columns,
            select(
                StaffTask.workspace_id,
                StaffTask.id,
                at,
                literal(TaskAction.escalated.value),
                StaffTask.staff_id,
                lead_of_owner,
            ).where(with_lead),
        )
    )
    session.execute(
        insert(StaffTaskLog).from_select(
            columns,
            select(
                StaffTask.workspace_id,
                StaffTask.id,
                at,
                literal(TaskAction.unescalatable.value),
                StaffTask.staff_id,
                literal(None, BigInteger),
            ).where(without_lead),
        )
    )
    escalated = session.execute(
        update(StaffTask)
        .where(with_lead)
        .values(escalation=Escalation.escalated, escalated_at=now, escalated_to_id=lead_of_owner)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    stuck = session.execute(
        update(StaffTask)
        .where(without_lead)
        .values(escalation=Escalation.unescalatable, escalated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    return int(escalated), int(stuck)
