"""Tables of broadcasts (群发).

A broadcast's audience is frozen when it starts: its contact ids are copied into `broadcast_recipient`,
and batches walk that table in contact-id order from `broadcast.position` (the last contact id done),
which moves in the same transaction as the batch's deliveries. A crash therefore resumes after the
last committed batch, re-sends nobody, and nobody who joined the segment later slips in.

Through WeCom, the contacts a batch accepted are kept in `broadcast_wecom_target` (with the staff
member who sends to them); once every batch is done they become one `broadcast_wecom_task` per staff
member (add_msg_template), whose confirmation in WeCom is polled and kept on the row.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Enum,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, UTCDateTime
from siyu.kit.models import CreatedAtMixin, IdMixin, WorkspaceScoped


class BroadcastStatus(enum.StrEnum):
    scheduled = "scheduled"  # waits for run_at; the audience is not frozen yet
    sending = "sending"  # audience frozen; batches go out
    sent = "sent"  # every recipient has an outcome (WeCom: the tasks are handed to staff)
    cancelled = "cancelled"  # stopped; what was sent before stays sent
    failed = "failed"  # could not start (e.g. WeCom unconfigured since); `error` says why


class AudienceKind(enum.StrEnum):
    segment = "segment"
    tags = "tags"
    groups = "groups"


class WeComTaskStatus(enum.StrEnum):
    pending = "pending"  # to be created in WeCom
    creating = "creating"  # add_msg_template in flight (a crash here leaves it unknown, never repeated)
    created = "created"  # WeCom has it: the staff member must confirm it in their client
    confirmed = "confirmed"  # the staff member sent it
    failed = "failed"  # WeCom refused it; `error` says why
    unknown = "unknown"  # the call may or may not have reached WeCom; not repeated (at most once)
    cancelled = "cancelled"  # the broadcast was cancelled before the task was created


def _enum(cls: type[enum.StrEnum], length: int) -> Enum:
    return Enum(
        cls, native_enum=False, length=length, validate_strings=True, values_callable=lambda e: [m.value for m in e]
    )


class Broadcast(IdMixin, WorkspaceScoped, CreatedAtMixin, Base):
    __tablename__ = "broadcast"
    __table_args__ = (
        Index("ix_broadcast_workspace_id_created_at", "workspace_id", "created_at"),
        # the poller: scheduled ones that are due, and the ones sending
        Index("ix_broadcast_status_run_at", "status", "run_at"),
    )

    name: Mapped[str] = mapped_column(String(100), nullable=False)
    status: Mapped[BroadcastStatus] = mapped_column(_enum(BroadcastStatus, 12), nullable=False)
    # Audience: one of a segment, a tag filter, chat groups.
    audience_kind: Mapped[AudienceKind] = mapped_column(_enum(AudienceKind, 10), nullable=False)
    segment_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("segment.id", ondelete="SET NULL"), nullable=True
    )
    tag_ids: Mapped[list[int] | None] = mapped_column(JSON, nullable=True)
    tag_match: Mapped[str | None] = mapped_column(String(4), nullable=True)  # any | all | none
    group_ids: Mapped[list[int] | None] = mapped_column(JSON, nullable=True)
    # What is sent.
    content_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("content_item.id", ondelete="SET NULL"), nullable=True
    )
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    channel: Mapped[str] = mapped_column(String(20), nullable=False)
    welfare: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    quiet_hours: Mapped[str] = mapped_column(String(10), nullable=False)  # hold | skip
    webhook_url: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    # When.
    run_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_by_staff_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("staff.id", ondelete="SET NULL"), nullable=True
    )
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The plan (audience after budgets) as last computed: at creation, then at the start.
    plan_total: Mapped[int | None] = mapped_column(Integer, nullable=True)
    plan_eligible: Mapped[int | None] = mapped_column(Integer, nullable=True)
    plan_excluded: Mapped[dict[str, int] | None] = mapped_column(JSON, nullable=True)
    planned_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Progress, moved with each batch in its transaction.
    total: Mapped[int] = mapped_column(Integer, nullable=False, default=0)  # frozen audience size
    position: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)  # last contact id done
    processed: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    sent: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    queued: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    held: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    skipped: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    failed: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # Why recipients were held, skipped or failed: reason -> count.
    reasons: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)


class BroadcastRecipient(WorkspaceScoped, Base):
    """The frozen audience: one row per contact, written once when the broadcast starts."""

    __tablename__ = "broadcast_recipient"
    __table_args__ = (PrimaryKeyConstraint("broadcast_id", "contact_id"),)

    broadcast_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("broadcast.id", ondelete="CASCADE"), nullable=False
    )
    contact_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("contact.id", ondelete="CASCADE"), nullable=False)


class BroadcastWeComTarget(WorkspaceScoped, Base):
    """A contact accepted for a WeCom broadcast, the staff member who sends to them and WeCom's result
    (0 not sent, 1 sent, 2 not a friend, 3 already got another broadcast: get_groupmsg_send_result)."""

    __tablename__ = "broadcast_wecom_target"
    __table_args__ = (
        PrimaryKeyConstraint("broadcast_id", "contact_id"),
        Index("ix_broadcast_wecom_target_broadcast_id_staff_id", "broadcast_id", "staff_id"),
    )

    broadcast_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("broadcast.id", ondelete="CASCADE"), nullable=False
    )
    contact_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("contact.id", ondelete="CASCADE"), nullable=False)
    staff_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("staff.id", ondelete="CASCADE"), nullable=False)
    external_userid: Mapped[str] = mapped_column(String(64), nullable=False)
    result: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)


class BroadcastWeComTask(IdMixin, WorkspaceScoped, CreatedAtMixin, Base):
    """One add_msg_template task of one staff member (a part per 10,000 customers), and its state."""

    __tablename__ = "broadcast_wecom_task"
    __table_args__ = (
        UniqueConstraint("broadcast_id", "staff_id", "part"),
        Index("ix_broadcast_wecom_task_status", "status"),
    )

    broadcast_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("broadcast.id", ondelete="CASCADE"), nullable=False
    )
    staff_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("staff.id", ondelete="CASCADE"), nullable=False)
    part: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    chat_type: Mapped[str] = mapped_column(String(10), nullable=False)  # single | group
    status: Mapped[WeComTaskStatus] = mapped_column(_enum(WeComTaskStatus, 10), nullable=False)
    # single: contact ids of this part (their external_userids are read when the task is created);
    # group: the siyu group ids the owner is asked to post in.
    contact_ids: Mapped[list[int] | None] = mapped_column(JSON, nullable=True)
    group_ids: Mapped[list[int] | None] = mapped_column(JSON, nullable=True)
    target_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    msgid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    attempted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    handed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)  # WeCom took it
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    checked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    reminded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Confirmed, and read once more after the results settled: not checked again.
    settled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # From get_groupmsg_send_result: sent, and failed (not a friend / already got a broadcast).
    sent_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    failed_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
