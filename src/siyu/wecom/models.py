"""A workspace's WeCom settings (secrets encrypted at rest) and the outcome of each callback received."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
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
