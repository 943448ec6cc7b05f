from __future__ import annotations

import datetime as dt

from pydantic import Field

from siyu.kit.schemas import ReadSchema, Schema
from siyu.stafftasks.models import Escalation, TaskAction, TaskKind, TaskOutcome, TaskStatus


class Generators(Schema):
    """Which generators run in this workspace (escalation included)."""

    follow_up: bool = Field(default=True, description="a daily follow-up task per non-converted precise user")
    birthday: bool = Field(default=True, description="a task on each contact's birthday (workspace time zone)")
    unanswered: bool = Field(default=True, description="a task when a received message waits longer than the SLA")
    escalation: bool = Field(default=True, description="overdue tasks are escalated to the owner's lead")


class TaskSettings(Schema):
    """A workspace's staff-task settings. Missing fields take their defaults."""

    sla_minutes: int = Field(
        default=30, ge=1, le=24 * 60, description="a received message unanswered this long becomes a task"
    )
    escalation_grace_minutes: int = Field(
        default=120,
        ge=0,
        le=7 * 24 * 60,
        description="a task still open this long after its due time is escalated (unanswered tasks: after sla_minutes)",
    )
    follow_up_segment_id: int | None = Field(
        default=None,
        description="precise users are this segment's members; null: contacts who consulted "
        "(first_consult_at, a consult question or a received message)",
    )
    follow_up_exclude_converted: bool = Field(
        default=True, description="leave out contacts who have paid an order (order.paid)"
    )
    follow_up_due_time: dt.time = Field(default=dt.time(18, 0), description="local time follow-ups are due by")
    birthday_due_time: dt.time = Field(default=dt.time(10, 0), description="local time birthday tasks are due by")
    generators: Generators = Field(default_factory=Generators)
    wecom_notify: bool = Field(
        default=True,
        description="send staff their new tasks (journey, unanswered, manual, hand-overs), escalations and the "
        "morning digest as WeCom app messages (needs the WeCom app's agent_id and each staff member's wecom_userid)",
    )
    wecom_digest_time: dt.time | None = Field(
        default=dt.time(9, 0),
        description="local time of the morning digest (today's open tasks by kind, and how many are overdue); "
        "null: no digest",
    )


class TaskSettingsRead(TaskSettings):
    follow_up_done_on: dt.date | None = Field(default=None, description="the last local day follow-ups were made")
    birthday_done_on: dt.date | None = Field(default=None, description="the last local day birthday tasks were made")
    digest_done_on: dt.date | None = Field(default=None, description="the last local day the digest went out")


class TaskCreate(Schema):
    """A manual task. A consultant creates tasks for themselves (staff_id omitted or their own)."""

    title: str = Field(min_length=1, max_length=200, examples=["回访：确认试听时间"])
    detail: str | None = Field(default=None, max_length=5000)
    staff_id: int | None = Field(default=None, description="whose task; default: the signed-in staff member")
    contact_id: int | None = None
    due_at: dt.datetime | None = Field(default=None, description="default: now")


class TaskComplete(Schema):
    note: str | None = Field(default=None, max_length=5000, description="what was done; kept on the task")
    note_to_contact: bool = Field(
        default=True, description="also add the note to the contact's notes (needs a contact and a note)"
    )


class TaskSnooze(Schema):
    until: dt.datetime = Field(description="when the task comes back (in the future)")


class TaskHandOver(Schema):
    to_staff_id: int = Field(description="an active staff member of this workspace")
    note: str | None = Field(default=None, max_length=5000)
    change_owner: bool = Field(
        default=False, description="also make them the contact's owner (operators and admins only)"
    )


class ContactBrief(ReadSchema):
    id: int
    name: str | None
    lifecycle_stage: str | None = None
    intention_level: str | None = None
    transaction_stage: str | None = None


class TaskLogRead(ReadSchema):
    at: dt.datetime
    action: TaskAction
    actor_staff_id: int | None
    from_staff_id: int | None
    to_staff_id: int | None
    note: str | None


class TaskRead(ReadSchema):
    id: int
    kind: TaskKind
    title: str
    detail: str | None
    why: str = Field(description="why this task exists, in one line")
    staff_id: int
    contact: ContactBrief | None
    source_key: str
    source_at: dt.datetime | None
    status: TaskStatus
    due_at: dt.datetime
    first_due_at: dt.datetime
    overdue: bool
    snoozed_until: dt.datetime | None
    handed_over_from_id: int | None
    handed_over_at: dt.datetime | None
    escalation: Escalation | None
    escalated_at: dt.datetime | None
    escalated_to_id: int | None
    completed_at: dt.datetime | None
    completed_by_id: int | None
    outcome: TaskOutcome | None
    note: str | None
    created_at: dt.datetime


class TaskDetail(TaskRead):
    history: list[TaskLogRead]


class InboxRead(ReadSchema):
    staff_id: int
    day: dt.date = Field(description="today in the workspace's time zone")
    tasks: list[TaskRead] = Field(description="open tasks due today or overdue, not snoozed, by due time")
    escalated: list[TaskRead] = Field(description="open tasks of the staff member's team escalated to them")
    total: int = Field(description="tasks due today or overdue (`tasks` lists the first 500)")
    counts: dict[str, int] = Field(description="those tasks by kind")
    overdue: int
    snoozed: int = Field(description="open tasks snoozed until later")
