"""/api/v1/tasks: staff members' inboxes and tasks (scopes tasks:read / tasks:write).

A consultant sees and works their own tasks and the tasks escalated to them; admins, operators and
API keys see everyone's and may filter by staff member. Settings take tasks:read to read and
tasks:write plus a non-consultant caller to change.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from sqlalchemy.orm import Session

from siyu.auth.dependencies import Authorize, ReadSession, WriteSession
from siyu.auth.principal import Principal
from siyu.auth.scopes import Scope
from siyu.errors import PermissionDenied, validation_error
from siyu.kit.schemas import Page, decode_cursor, encode_cursor
from siyu.kit.time import ensure_utc, utcnow
from siyu.stafftasks import service
from siyu.stafftasks.models import StaffTask, TaskKind, TaskStatus
from siyu.stafftasks.schemas import (
    InboxRead,
    TaskComplete,
    TaskCreate,
    TaskDetail,
    TaskHandOver,
    TaskLogRead,
    TaskRead,
    TaskSettings,
    TaskSettingsRead,
    TaskSnooze,
)

router = APIRouter(tags=["tasks"])

ReadTasks = Annotated[Principal, Depends(Authorize(Scope.tasks_read))]
WriteTasks = Annotated[Principal, Depends(Authorize(Scope.tasks_write))]
MAX_LIMIT = 500


@router.get("/tasks/settings", response_model=TaskSettingsRead, summary="Staff-task settings")
def get_settings(session: ReadSession, principal: ReadTasks) -> TaskSettingsRead:
    return service.settings_read(session, principal.workspace_id)


@router.put("/tasks/settings", response_model=TaskSettingsRead, summary="Replace the staff-task settings")
def put_settings(data: TaskSettings, session: WriteSession, principal: WriteTasks) -> TaskSettingsRead:
    """SLA, escalation grace, who counts as a precise user for follow-ups, and which generators run.
    Missing fields take their defaults."""
    if principal.owned_contacts_only is not None:
        raise PermissionDenied("a consultant cannot change the workspace's task settings; ask an operator")
    result = service.save_settings(session, principal.workspace_id, data)
    session.commit()
    return result


@router.get("/tasks/inbox", response_model=InboxRead, summary="A staff member's tasks for today")
def get_inbox(
    session: ReadSession,
    principal: ReadTasks,
    staff_id: Annotated[
        int | None, Query(description="whose inbox (admins, operators, API keys); default: the caller's")
    ] = None,
) -> InboxRead:
    """Open tasks due today (workspace time zone) or overdue, not snoozed to later, by due time; and
    the open tasks escalated to this staff member as a lead."""
    whose = service.whose_tasks(session, principal, staff_id)
    now = utcnow()
    box = service.inbox(session, principal, whose, now=now)
    return InboxRead(
        staff_id=box.staff_id,
        day=box.day,
        tasks=service.to_read(session, box.tasks, now=now),
        escalated=service.to_read(session, box.escalated, now=now),
        counts=box.counts,
        total=box.total,
        overdue=box.overdue,
        snoozed=box.snoozed,
    )


@router.get("/tasks", response_model=Page[TaskRead], summary="List tasks")
def list_tasks(
    session: ReadSession,
    principal: ReadTasks,
    task_status: Annotated[
        TaskStatus | None, Query(alias="status", description="open (default) or done; omit with all=true")
    ] = TaskStatus.open,
    all_statuses: Annotated[bool, Query(alias="all", description="open and done")] = False,
    kind: TaskKind | None = None,
    staff_id: Annotated[int | None, Query(description="whose tasks (a consultant: only their own)")] = None,
    contact_id: int | None = None,
    overdue: Annotated[bool | None, Query(description="open and past due (true) or not (false)")] = None,
    escalated: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    cursor: str | None = None,
) -> Page[TaskRead]:
    """By due time. A consultant sees their own tasks and those escalated to them."""
    if staff_id is not None:
        service.whose_tasks(session, principal, staff_id)
    after = None
    if cursor is not None:
        raw_due, raw_id = decode_cursor(cursor, 2)
        try:
            after = (ensure_utc(dt.datetime.fromisoformat(str(raw_due))), int(raw_id))
        except ValueError:
            raise validation_error(
                "cursor", "not a cursor this API returned; pass next_cursor back unchanged"
            ) from None
    filters = service.TaskFilter(
        status=None if all_statuses else task_status,
        kind=kind,
        staff_id=staff_id,
        contact_id=contact_id,
        overdue=overdue,
        escalated=escalated,
    )
    now = utcnow()
    tasks = service.list_tasks(session, principal, filters, after=after, limit=limit, now=now)
    last = tasks[-1] if len(tasks) == limit else None
    return Page(
        items=service.to_read(session, tasks, now=now),
        next_cursor=encode_cursor([last.due_at.isoformat(), last.id]) if last is not None else None,
    )


@router.post("/tasks", response_model=TaskDetail, status_code=status.HTTP_201_CREATED, summary="Create a task")
def create_task(data: TaskCreate, session: WriteSession, principal: WriteTasks) -> TaskDetail:
    now = utcnow()
    task = service.create_manual(session, principal, data, now=now)
    result = _detail(session, task, now)
    session.commit()
    return result


@router.get("/tasks/{task_id}", response_model=TaskDetail, summary="A task and its history")
def get_task(task_id: int, session: ReadSession, principal: ReadTasks) -> TaskDetail:
    return _detail(session, service.get_task(session, principal, task_id), utcnow())


@router.post("/tasks/{task_id}/complete", response_model=TaskDetail, summary="Complete a task")
def complete_task(task_id: int, data: TaskComplete, session: WriteSession, principal: WriteTasks) -> TaskDetail:
    """409 if it is already done. The note is kept on the task and, unless note_to_contact is false,
    added to the contact's notes."""
    now = utcnow()
    result = _detail(session, service.complete(session, principal, task_id, data, now=now), now)
    session.commit()
    return result


@router.post("/tasks/{task_id}/snooze", response_model=TaskDetail, summary="Snooze a task until a time")
def snooze_task(task_id: int, data: TaskSnooze, session: WriteSession, principal: WriteTasks) -> TaskDetail:
    """The task leaves the inbox and comes back, due, at `until`."""
    now = utcnow()
    result = _detail(session, service.snooze(session, principal, task_id, data.until, now=now), now)
    session.commit()
    return result


@router.post("/tasks/{task_id}/hand-over", response_model=TaskDetail, summary="Hand a task to someone else")
def hand_over_task(task_id: int, data: TaskHandOver, session: WriteSession, principal: WriteTasks) -> TaskDetail:
    """To another active staff member; from and to are recorded. The contact's owner changes only with
    change_owner (operators and admins)."""
    now = utcnow()
    result = _detail(session, service.hand_over(session, principal, task_id, data, now=now), now)
    session.commit()
    return result


def _detail(session: Session, task: StaffTask, now: dt.datetime) -> TaskDetail:
    (read,) = service.to_read(session, [task], now=now)
    return TaskDetail(
        **read.model_dump(),
        history=[TaskLogRead.model_validate(h) for h in service.history(session, task)],
    )
