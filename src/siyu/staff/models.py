from __future__ import annotations

import enum

from sqlalchemy import BigInteger, Boolean, Enum, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base
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
    lead_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("staff.id", ondelete="SET NULL"), nullable=True)
