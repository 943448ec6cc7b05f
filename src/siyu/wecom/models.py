"""A workspace's WeCom settings (secrets encrypted at rest), the outcome of each callback received, and the
app messages sent to staff."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import BigInteger, Enum, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, UTCDateTime
from siyu.kit.models import CreatedAtMixin, IdMixin, WorkspaceScoped
from siyu.kit.time import utcnow


class WeComSettings(IdMixin, WorkspaceScoped, CreatedAtMixin, Base):
    """One per workspace. Secret, Token and EncodingAESKey are Fernet tokens (see siyu.wecom.secrets)."""

    __tablename__ = "wecom_settings"
    __table_args__ = (UniqueConstraint("workspace_id"),)

    corp_id: Mapped[str] = mapped_column(String(64), nullable=False)
    agent_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    secret_encrypted: Mapped[str] = mapped_column(Text, nullable=False)
    token_encrypted: Mapped[str] = mapped_column(Text, nullable=False)
    aes_key_encrypted: Mapped[str] = mapped_column(Text, nullable=False)
    # The last 4 characters of the secret, shown as "••••abcd" so operators can tell which one is set.
    secret_hint: Mapped[str] = mapped_column(String(8), nullable=False)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class WeComCallbackLog(IdMixin, WorkspaceScoped, Base):
    """What happened to one callback: processed, ignored (nothing siyu records), rejected or failed.

    `callback_key` is derived from the callback's content, so a redelivery finds its earlier row and is
    answered without being processed again.
    """

    __tablename__ = "wecom_callback"
    __table_args__ = (
        UniqueConstraint("workspace_id", "callback_key"),
        Index("ix_wecom_callback_workspace_id_received_at", "workspace_id", "received_at"),
    )

    callback_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False)
    kind: Mapped[str] = mapped_column(String(80), nullable=False)  # e.g. change_external_contact/add_external_contact
    outcome: Mapped[str] = mapped_column(String(20), nullable=False)  # processed | ignored | rejected | failed
    detail: Mapped[str | None] = mapped_column(String(500), nullable=True)
    contact_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("contact.id", ondelete="SET NULL"), nullable=True
    )
    code_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("channel_code.id", ondelete="SET NULL"), nullable=True
    )
    # The welcome message: sent | already_sent | expired | failed | skipped (None: none was due).
    welcome: Mapped[str | None] = mapped_column(String(20), nullable=True)
    welcome_detail: Mapped[str | None] = mapped_column(String(500), nullable=True)


class AppMessageStatus(enum.StrEnum):
    queued = "queued"  # a `wecom.app_message` job will send it
    sent = "sent"
    failed = "failed"  # WeCom refused it, or retries ran out (detail says why)
    skipped = "skipped"  # never sent: the reason says why (no WeCom userid, hourly cap ...)


class WeComAppMessage(IdMixin, WorkspaceScoped, CreatedAtMixin, Base):
    """An app message (应用消息) to one staff member, sent by the workspace's WeCom app (agent_id): a task
    reminder, the morning digest, an escalation. Queued in the caller's transaction with its job (outbox);
    `dedupe_key` makes the same notice twice one row."""

    __tablename__ = "wecom_app_message"
    __table_args__ = (
        UniqueConstraint("workspace_id", "dedupe_key"),
        Index("ix_wecom_app_message_ws_created_at", "workspace_id", "created_at"),
        Index("ix_wecom_app_message_staff_created_at", "staff_id", "created_at"),
    )

    staff_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("staff.id", ondelete="SET NULL"), nullable=True)
    userid: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the recipient's WeCom userid
    kind: Mapped[str] = mapped_column(String(40), nullable=False)  # task | digest | escalation | hand_over ...
    dedupe_key: Mapped[str] = mapped_column(String(200), nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False)
    url: Mapped[str | None] = mapped_column(String(2048), nullable=True)  # opens the console (a text card)
    status: Mapped[AppMessageStatus] = mapped_column(
        Enum(
            AppMessageStatus,
            native_enum=False,
            length=10,
            validate_strings=True,
            values_callable=lambda e: [m.value for m in e],
        ),
        nullable=False,
    )
    reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    detail: Mapped[str | None] = mapped_column(String(500), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # Set (and committed) just before the call: a run that finds it set knows an earlier call may have landed.
    call_started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    msgid: Mapped[str | None] = mapped_column(String(64), nullable=True)
