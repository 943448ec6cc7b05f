"""Tables of staff tasks: the tasks, what happened to them, per-workspace settings and the messages
waiting for a reply.

A task is one row, unique on (workspace_id, source_key), so a generator or a journey step that runs
twice makes one task. Snoozing moves `due_at` (the inbox, the overdue mark and escalation all read
that one indexed column) and keeps the first due time in `first_due_at`. An escalated task stays the
owner's; the lead's inbox reads `escalated_to_id` (no second task to keep in step).
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, Enum, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, UTCDateTime
from siyu.kit.models import CreatedAtMixin, IdMixin, WorkspaceScoped
from siyu.kit.time import utcnow


class TaskKind(enum.StrEnum):
    follow_up = "follow_up"  # daily follow-up of a non-converted precise user (seed 001)
    birthday = "birthday"
    journey = "journey"  # created by a journey step
    unanswered = "unanswered"  # a received message not answered within the SLA (seed 004)
    manual = "manual"


class TaskStatus(enum.StrEnum):
    open = "open"
    done = "done"


class TaskOutcome(enum.StrEnum):
    completed = "completed"  # by a staff member
    answered = "answered"  # an unanswered-message task closed by the reply


class Escalation(enum.StrEnum):
    escalated = "escalated"  # shown in the lead's inbox
    unescalatable = "unescalatable"  # overdue, but the owner has no active lead


class TaskAction(enum.StrEnum):
    created = "created"
    completed = "completed"
    answered = "answered"
    snoozed = "snoozed"
    handed_over = "handed_over"
    escalated = "escalated"
    unescalatable = "unescalatable"


def _enum(cls: type[enum.StrEnum], length: int) -> Enum:
    return Enum(
        cls, native_enum=False, length=length, validate_strings=True, values_callable=lambda e: [m.value for m in e]
    )


class StaffTask(IdMixin, WorkspaceScoped, CreatedAtMixin, Base):
    __tablename__ = "staff_task"
    __table_args__ = (
        UniqueConstraint("workspace_id", "source_key"),
        # A staff member's inbox: open tasks due before the end of their day, by due time.
        Index("ix_staff_task_ws_staff_status_due", "workspace_id", "staff_id", "status", "due_at"),
        # Escalation scans open tasks by due time; the lead's inbox reads escalated_to_id.
        Index("ix_staff_task_ws_status_due", "workspace_id", "status", "due_at"),
        Index("ix_staff_task_escalated_to_id", "escalated_to_id"),
        Index("ix_staff_task_contact_id", "contact_id"),
    )

    staff_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("staff.id", ondelete="CASCADE"), nullable=False)
    kind: Mapped[TaskKind] = mapped_column(_enum(TaskKind, 20), nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    contact_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("contact.id", ondelete="CASCADE"), nullable=True
    )
    # Who or what made it: "follow_up:<contact>:<local date>", "journey:<id>:<step>:<enrolment>" ...
    source_key: Mapped[str] = mapped_column(String(200), nullable=False)
    # When what caused it happened (the unanswered message, the birthday's day start); None for manual tasks.
    source_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    status: Mapped[TaskStatus] = mapped_column(_enum(TaskStatus, 10), nullable=False, default=TaskStatus.open)
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False)
    first_due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False)
    snoozed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    handed_over_from_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("staff.id", ondelete="SET NULL"), nullable=True
    )
    handed_over_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    escalation: Mapped[Escalation | None] = mapped_column(_enum(Escalation, 20), nullable=True)
    escalated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    escalated_to_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("staff.id", ondelete="SET NULL"), nullable=True
    )
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    completed_by_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("staff.id", ondelete="SET NULL"), nullable=True
    )
    outcome: Mapped[TaskOutcome | None] = mapped_column(_enum(TaskOutcome, 20), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)


class StaffTaskLog(IdMixin, WorkspaceScoped, Base):
    """What happened to a task, in order: who completed, snoozed, handed it over (from, to), escalated."""

    __tablename__ = "staff_task_log"
    __table_args__ = (Index("ix_staff_task_log_task_id", "task_id"),)

    task_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("staff_task.id", ondelete="CASCADE"), nullable=False)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    action: Mapped[TaskAction] = mapped_column(_enum(TaskAction, 20), nullable=False)
    actor_staff_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("staff.id", ondelete="SET NULL"), nullable=True
    )
    from_staff_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("staff.id", ondelete="SET NULL"), nullable=True
    )
    to_staff_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("staff.id", ondelete="SET NULL"), nullable=True
    )
    note: Mapped[str | None] = mapped_column(Text, nullable=True)


class StaffTaskSettings(Base):
    """Per workspace: the settings (JSON, validated by schemas.TaskSettings) and how far the daily
    generators have run (the local day they last completed), so each runs once a local day."""

    __tablename__ = "staff_task_settings"

    workspace_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("workspace.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    config: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    follow_up_done_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    birthday_done_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    digest_done_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)  # the WeCom morning digest
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class AwaitingReply(WorkspaceScoped, Base):
    """A contact whose message has not been answered yet: the earliest unanswered message.

    Kept from the event stream (message.received adds, message.sent removes); a row older than the
    SLA becomes an `unanswered` task.
    """

    __tablename__ = "staff_task_awaiting_reply"
    __table_args__ = (Index("ix_staff_task_awaiting_reply_ws_received_at", "workspace_id", "received_at"),)

    contact_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False)
    event_seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    # The staff member the message was written to (message.received's staff_id): the task goes to the
    # contact's owner, or to them when the contact has none.
    staff_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("staff.id", ondelete="SET NULL"), nullable=True)
