from __future__ import annotations

import enum
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Enum, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base
from siyu.kit.models import CreatedAtMixin, IdMixin, WorkspaceScoped


class ImportStatus(enum.StrEnum):
    completed = "completed"  # the rows were written (bad ones skipped if the operator chose so)
    refused = "refused"  # bad rows and no skipping: nothing but this record was written


class ContactImport(IdMixin, WorkspaceScoped, CreatedAtMixin, Base):
    """One spreadsheet brought in: who, when, which file, what came of it, and the rows that failed."""

    __tablename__ = "contact_import"
    __table_args__ = (Index("ix_contact_import_workspace_id_id", "workspace_id", "id"),)

    staff_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("staff.id", ondelete="SET NULL"), nullable=True)
    api_key_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("api_key.id", ondelete="SET NULL"), nullable=True
    )
    file_name: Mapped[str] = mapped_column(String(255), nullable=False)
    file_format: Mapped[str] = mapped_column(String(10), nullable=False)
    encoding: Mapped[str | None] = mapped_column(String(20), nullable=True)
    status: Mapped[ImportStatus] = mapped_column(
        Enum(ImportStatus, native_enum=False, length=10, validate_strings=True), nullable=False
    )
    skip_bad_rows: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    rows: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    updated: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    skipped: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    errors: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    tags_created: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # {header: target or null} as applied.
    mapping: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    # {"headers": [...], "rows": [[row number, [cells...], reason], ...]}: the error file's content.
    error_rows: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
