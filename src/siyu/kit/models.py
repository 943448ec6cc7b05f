"""Column helpers shared by the domain models."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, ForeignKey
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from siyu.db import BigIntPK, UTCDateTime
from siyu.kit.time import utcnow


class IdMixin:
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)


class CreatedAtMixin:
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class WorkspaceScoped:
    """Every business row belongs to a workspace: nothing crosses workspaces."""

    @declared_attr
    def workspace_id(cls) -> Mapped[int]:
        return mapped_column(BigInteger, ForeignKey("workspace.id", ondelete="CASCADE"), nullable=False, index=False)
