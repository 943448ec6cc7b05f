"""Tables of delivery: one row per delivery keyed (source, step, contact, entry), the per-contact and
per-staff counters the budget checks read, opt-outs, settings, staff account limits, and the sandbox's
messages.

Counters (`contact_send_day`, `staff_send_day`) are written when a send is accepted, so the checks in
`send_many` and the set-based `plan` read a few counter rows per contact and never scan deliveries.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Enum,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, UTCDateTime
from siyu.kit.models import IdMixin, WorkspaceScoped


class Channel(enum.StrEnum):
    sandbox = "sandbox"  # a row in sandbox_message: nothing leaves siyu (demo, tests, staging)
    webhook = "webhook"  # an HMAC-signed POST to the workspace's endpoint
    email = "email"  # SMTP
    wecom = "wecom"  # 1:1 through the sending staff member (add_msg_template for one external user)


class QuietHoursPolicy(enum.StrEnum):
    hold = "hold"  # keep the delivery and send it when quiet hours end
    skip = "skip"  # drop it (reason quiet_hours)


class DeliveryStatus(enum.StrEnum):
    queued = "queued"  # accepted for an external channel; a delivery.send job will send it
    sent = "sent"
    held = "held"  # waiting (quiet hours, the staff account's daily limit) until retry_at
    skipped = "skipped"  # not sent, and never will be: `reason` says why
    failed = "failed"  # the channel refused it for good, or it ran out of attempts (dead letter)
    unknown = "unknown"  # a call was made whose outcome was lost; not repeated (at most once)


ACCEPTED = (DeliveryStatus.sent, DeliveryStatus.queued)


def _enum(cls: type[enum.StrEnum], length: int) -> Enum:
    return Enum(
        cls, native_enum=False, length=length, validate_strings=True, values_callable=lambda e: [m.value for m in e]
    )


class Delivery(IdMixin, WorkspaceScoped, Base):
    """One message to one contact, written with its outcome. Unique on (workspace, source, step, contact,
    entry): asking again for the same key returns the recorded outcome and sends nothing."""

    __tablename__ = "delivery"
    __table_args__ = (
        UniqueConstraint("workspace_id", "source", "step", "contact_id", "entry"),
        Index("ix_delivery_contact_id_created_at", "contact_id", "created_at"),
        Index("ix_delivery_workspace_id_id", "workspace_id", "id"),  # the log, newest first
        # The hold poller's queue: only held rows are in this index.
        Index(
            "ix_delivery_held_retry_at",
            "retry_at",
            sqlite_where=text("status = 'held'"),
            postgresql_where=text("status = 'held'"),
        ),
    )

    source: Mapped[str] = mapped_column(String(100), nullable=False)  # "journey:12", "broadcast:7", "api"
    step: Mapped[str] = mapped_column(String(100), nullable=False)  # journey step id, or "send"
    contact_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("contact.id", ondelete="CASCADE"), nullable=False)
    entry: Mapped[int] = mapped_column(BigInteger, nullable=False)  # enrolment id; 0: the source reaches them once
    channel: Mapped[Channel] = mapped_column(_enum(Channel, 10), nullable=False)
    status: Mapped[DeliveryStatus] = mapped_column(_enum(DeliveryStatus, 10), nullable=False)
    reason: Mapped[str | None] = mapped_column(String(40), nullable=True)  # a code of siyu.delivery.reasons
    detail: Mapped[str | None] = mapped_column(String(500), nullable=True)  # readable: the numbers behind it
    retry_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # What to send (kept so a held delivery can be sent later exactly as asked).
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    content_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("content_item.id", ondelete="SET NULL"), nullable=True
    )
    push_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # content_push of (source, step)
    link: Mapped[str | None] = mapped_column(String(100), nullable=True)  # "/r/<token>": the contact's tracked link
    staff_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("staff.id", ondelete="SET NULL"))
    welfare: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # A service message the contact asked for (a reminder of what they signed up to, an order notice):
    # frequency caps and welfare days do not stop it, though it counts in them.
    service: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=false())
    quiet_hours: Mapped[QuietHoursPolicy] = mapped_column(_enum(QuietHoursPolicy, 4), nullable=False)
    webhook_url: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # The contact's local day the budget was charged to (given back on a permanent failure).
    budget_day: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # External channels: calls made, and when the current one started (set and committed before calling,
    # so a run that finds it set knows an earlier run may have sent).
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    call_started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    external_id: Mapped[str | None] = mapped_column(String(200), nullable=True)  # Message-ID, WeCom msgid


class ContactSendDay(WorkspaceScoped, Base):
    """Sends accepted for one contact on one of their local days: what frequency caps and welfare days count.
    Rows older than the longest window are pruned daily."""

    __tablename__ = "contact_send_day"
    __table_args__ = (PrimaryKeyConstraint("contact_id", "day"),)

    contact_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("contact.id", ondelete="CASCADE"), nullable=False)
    day: Mapped[dt.date] = mapped_column(Date, nullable=False)
    sends: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    welfare: Mapped[int] = mapped_column(Integer, nullable=False, default=0)  # welfare-type sends that day


class StaffSendDay(WorkspaceScoped, Base):
    """Messages a staff account sent on one local day (workspace time): its daily limit and warm-up."""

    __tablename__ = "staff_send_day"
    __table_args__ = (PrimaryKeyConstraint("staff_id", "day"),)

    staff_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("staff.id", ondelete="CASCADE"), nullable=False)
    day: Mapped[dt.date] = mapped_column(Date, nullable=False)
    sends: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class OptOut(WorkspaceScoped, Base):
    """A contact who asked to receive nothing more. Every channel honours it; deleting it opts them back in."""

    __tablename__ = "delivery_opt_out"
    __table_args__ = (Index("ix_delivery_opt_out_workspace_id_created_at", "workspace_id", "created_at"),)

    contact_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    source: Mapped[str] = mapped_column(String(20), nullable=False)  # "message", "api", "console"
    detail: Mapped[str | None] = mapped_column(String(200), nullable=True)  # the word received, or a note
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False)


class DeliverySettings(Base):
    """A workspace's budgets, quiet hours, opt-out words, staff defaults and webhook endpoint (`config`,
    see siyu.delivery.schemas.DeliveryConfig); the webhook secret encrypted at rest."""

    __tablename__ = "delivery_settings"

    workspace_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("workspace.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    config: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    webhook_secret_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    webhook_secret_hint: Mapped[str | None] = mapped_column(String(20), nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False)


class StaffAccount(WorkspaceScoped, Base):
    """A staff member's sending account: when it started (warm-up) and limits overriding the workspace's."""

    __tablename__ = "delivery_staff_account"
    __table_args__ = (Index("ix_delivery_staff_account_workspace_id", "workspace_id"),)

    staff_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    started_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)  # None: the staff row's creation day
    send_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    add_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    warmup_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False)


class SandboxMessage(WorkspaceScoped, Base):
    """What the sandbox channel 'sent': one row per delivery, written in the caller's transaction.

    `opens_at` / `clicks_at` are the simulated engagement (decided by a seed when the row is written);
    the poller records them when due: the open on this row, the click as a view of the tracked link.
    """

    __tablename__ = "sandbox_message"
    __table_args__ = (
        Index("ix_sandbox_message_workspace_id_id", "workspace_id", "id"),
        Index(
            "ix_sandbox_message_pending_at",
            "pending_at",
            sqlite_where=text("pending_at IS NOT NULL"),
            postgresql_where=text("pending_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("delivery.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )  # the delivery's id: one message per delivery, however often the send is retried
    contact_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("contact.id", ondelete="CASCADE"), nullable=False)
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    link: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False)
    opens_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    clicks_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    opened_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    clicked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The next simulated engagement still to record (None: nothing left).
    pending_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
