from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import BigInteger, Boolean, Enum, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, UTCDateTime
from siyu.kit.models import CreatedAtMixin, IdMixin, WorkspaceScoped


class Role(enum.StrEnum):
    admin = "admin"  # sets up the workspace, staff, keys
    operator = "operator"  # designs tags, segments, content; sees every contact
    consultant = "consultant"  # owns customers; sees and changes only their own


class Staff(IdMixin, WorkspaceScoped, CreatedAtMixin, Base):
    __tablename__ = "staff"
    __table_args__ = (UniqueConstraint("workspace_id", "email"),)

    email: Mapped[str] = mapped_column(String(254), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=20, validate_strings=True), nullable=False)
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    wecom_userid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Sign-in lock-out: wrong passwords in a row, and until when the account refuses sign-ins.
    failed_sign_ins: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    lead_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("staff.id", ondelete="SET NULL"), nullable=True)
