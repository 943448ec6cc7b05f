"""Staff reminders through WeCom app messages (siyu.wecom.app_messages): what is worth interrupting a
staff member for, and in what words.

- a task that needs them now — from a journey, an unanswered message, a manual task someone else gave
  them, a hand-over — one message each;
- overdue tasks escalated to a lead — one message per lead and escalation run;
- the morning digest at `wecom_digest_time` — today's open tasks by kind, and how many are overdue: the
  daily follow-ups and birthdays (dozens a day) arrive only this way, so nobody's phone is flooded.
Each notice has a dedupe key, so running twice sends once. All of it is off with `wecom_notify: false`
and silently absent while the workspace has no WeCom app (agent_id).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from siyu.contacts.models import Contact
from siyu.events.service import workspace_timezone
from siyu.staff.models import Staff
from siyu.stafftasks.models import Escalation, StaffTask, TaskKind, TaskStatus
from siyu.stafftasks.schemas import TaskSettings
from siyu.wecom import app_messages

INBOX_PATH = "/console/tasks"
# Kinds announced one by one when made; follow-ups and birthdays wait for the digest.
IMMEDIATE_KINDS = frozenset({TaskKind.journey, TaskKind.unanswered, TaskKind.manual})
KIND_LABELS = {
    TaskKind.follow_up: "跟进",
    TaskKind.birthday: "生日",
    TaskKind.journey: "SOP",
    TaskKind.unanswered: "未回复消息",
    TaskKind.manual: "其他",
}
ESCALATION_TITLES_SHOWN = 3


def _enabled(session: Session, workspace_id: int, settings: TaskSettings | None) -> bool:
    if app_messages.app_agent_id(session, workspace_id) is None:
        return False
    if settings is None:
        from siyu.stafftasks.service import load_settings

        settings = load_settings(session, workspace_id)
    return settings.wecom_notify


def _local(at: dt.datetime, tz: ZoneInfo, now: dt.datetime) -> str:
    local = at.astimezone(tz)
    return local.strftime("%H:%M") if local.date() == now.astimezone(tz).date() else local.strftime("%m-%d %H:%M")


def _about(session: Session, task: StaffTask, tz: ZoneInfo, now: dt.datetime) -> str:
    lines = [f"{KIND_LABELS.get(task.kind, task.kind.value)} · 截止 {_local(task.due_at, tz, now)}"]
    if task.contact_id is not None:
        name = session.scalar(select(Contact.name).where(Contact.id == task.contact_id))
        lines.append(f"客户：{name or f'#{task.contact_id}'}")
    if task.detail:
        lines.append(task.detail.strip().splitlines()[0])
    return "\n".join(lines)


def _tell_about_task(session: Session, task: StaffTask, *, kind: str, key: str, title: str, now: dt.datetime) -> None:
    """One message to the task's staff member, describing the task."""
    tz = workspace_timezone(session, task.workspace_id)
    app_messages.notify_staff(
        session,
        task.workspace_id,
        staff_id=task.staff_id,
        kind=kind,
        key=key,
        title=title,
        description=_about(session, task, tz, now),
        path=INBOX_PATH,
        now=now,
    )


def task_created(session: Session, task: StaffTask, *, now: dt.datetime) -> None:
    """A new task of an immediate kind: tell its staff member."""
    if task.kind not in IMMEDIATE_KINDS or not _enabled(session, task.workspace_id, None):
        return
    _tell_about_task(session, task, kind="task", key=f"task:{task.id}", title=f"新待办：{task.title}", now=now)


def handed_over(session: Session, task: StaffTask, *, now: dt.datetime) -> None:
    if not _enabled(session, task.workspace_id, None):
        return
    giver = (
        session.scalar(select(Staff.name).where(Staff.id == task.handed_over_from_id))
        if task.handed_over_from_id
        else None
    )
    _tell_about_task(
        session,
        task,
        kind="hand_over",
        key=f"task:{task.id}:to:{task.staff_id}:{now.isoformat()}",
        title=f"{giver or '同事'}转给你一项待办：{task.title}",
        now=now,
    )


def escalated(session: Session, workspace_id: int, settings: TaskSettings, *, now: dt.datetime) -> int:
    """One message per lead for the tasks escalated to them by the run at `now`; returns how many."""
    if not _enabled(session, workspace_id, settings):
        return 0
    rows = session.execute(
        select(StaffTask.escalated_to_id, StaffTask.title, Staff.name)
        .join(Staff, Staff.id == StaffTask.staff_id)
        .where(
            StaffTask.workspace_id == workspace_id,
            StaffTask.escalation == Escalation.escalated,
            StaffTask.escalated_at == now,
            StaffTask.escalated_to_id.is_not(None),
        )
        .order_by(StaffTask.due_at, StaffTask.id)
    ).all()
    by_lead: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for lead_id, title, owner_name in rows:
        if lead_id is not None:
            by_lead[lead_id].append((title, owner_name))
    for lead_id, tasks in by_lead.items():
        shown = [f"{owner}：{title}" for title, owner in tasks[:ESCALATION_TITLES_SHOWN]]
        if len(tasks) > ESCALATION_TITLES_SHOWN:
            shown.append(f"……共 {len(tasks)} 项")
        app_messages.notify_staff(
            session,
            workspace_id,
            staff_id=lead_id,
            kind="escalation",
            key=f"escalation:{lead_id}:{now.isoformat()}",
            title=f"团队有 {len(tasks)} 项待办已逾期，转给你跟进",
            description="\n".join(shown),
            path=INBOX_PATH,
            now=now,
        )
    return len(by_lead)


def morning_digest(
    session: Session, workspace_id: int, settings: TaskSettings, *, day: dt.date, now: dt.datetime
) -> int | None:
    """Today's digest for every active staff member with open tasks due today; None when it is not time
    yet (or the digest is off). Returns how many staff members were sent one."""
    if settings.wecom_digest_time is None or not _enabled(session, workspace_id, settings):
        return None
    tz = workspace_timezone(session, workspace_id)
    if now.astimezone(tz) < dt.datetime.combine(day, settings.wecom_digest_time, tz):
        return None
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tz).astimezone(dt.UTC)
    due_today = and_(
        StaffTask.workspace_id == workspace_id,
        StaffTask.status == TaskStatus.open,
        StaffTask.due_at < end,
        or_(StaffTask.snoozed_until.is_(None), StaffTask.snoozed_until <= now),
    )
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    overdue: dict[int, int] = defaultdict(int)
    late = func.sum(case((StaffTask.due_at < now, 1), else_=0))
    for staff_id, kind, n, n_late in session.execute(
        select(StaffTask.staff_id, StaffTask.kind, func.count(), late)
        .join(Staff, Staff.id == StaffTask.staff_id)
        .where(due_today, Staff.is_active.is_(True))
        .group_by(StaffTask.staff_id, StaffTask.kind)
    ).all():
        counts[int(staff_id)][KIND_LABELS.get(TaskKind(kind), str(kind))] = int(n)
        overdue[int(staff_id)] += int(n_late or 0)
    for staff_id, kinds in sorted(counts.items()):
        total = sum(kinds.values())
        parts = " · ".join(f"{label} {kinds[label]}" for label in KIND_LABELS.values() if label in kinds)
        overdue_count = overdue.get(staff_id, 0)
        app_messages.notify_staff(
            session,
            workspace_id,
            staff_id=staff_id,
            kind="digest",
            key=f"digest:{staff_id}:{day.isoformat()}",
            title=f"今日待办 {total} 项",
            description=parts + (f"\n其中已逾期 {overdue_count} 项" if overdue_count else ""),
            path=INBOX_PATH,
            now=now,
        )
    return len(counts)
