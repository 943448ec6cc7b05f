"""One row per use of a script: who copied which answer, when, and for which contact (if known)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, ForeignKey, Index, Integer
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, UTCDateTime
from siyu.kit.models import IdMixin, WorkspaceScoped
from siyu.kit.time import utcnow


class ScriptUse(IdMixin, WorkspaceScoped, Base):
    __tablename__ = "script_use"
    __table_args__ = (
        Index("ix_script_use_content_id_used_at", "content_id", "used_at"),
        Index("ix_script_use_workspace_id_used_at", "workspace_id", "used_at"),
        Index("ix_script_use_contact_id", "contact_id"),
    )

    content_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("content_item.id", ondelete="CASCADE"), nullable=False
    )
    answer_index: Mapped[int] = mapped_column(Integer, nullable=False)
    contact_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("contact.id", ondelete="SET NULL"), nullable=True
    )
    staff_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("staff.id", ondelete="SET NULL"), nullable=True)
    api_key_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("api_key.id", ondelete="SET NULL"), nullable=True
    )
    used_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
