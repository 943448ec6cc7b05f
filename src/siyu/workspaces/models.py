from __future__ import annotations

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base
from siyu.kit.models import CreatedAtMixin, IdMixin


class Workspace(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "workspace"

    name: Mapped[str] = mapped_column(String(200), nullable=False)
    timezone: Mapped[str] = mapped_column(String(64), nullable=False, default="Asia/Shanghai")
    # Last event sequence number handed out. Taken under a row lock by each ingesting transaction,
    # so sequence order is commit order and consumers reading "seq > last" never miss an event.
    event_seq: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
