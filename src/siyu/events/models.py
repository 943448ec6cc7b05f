from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, UTCDateTime
from siyu.kit.models import IdMixin, WorkspaceScoped


class Event(IdMixin, WorkspaceScoped, Base):
    """One thing a contact did. Append-only: rows are never updated, except `contact_id` on a merge."""

    __tablename__ = "event"
    __table_args__ = (
        # Consumers read "seq > last seen" in order; seq is handed out in commit order.
        UniqueConstraint("workspace_id", "seq"),
        # The sender's id makes a replayed batch add nothing.
        UniqueConstraint("workspace_id", "event_id"),
        Index("ix_event_contact_id_occurred_at", "contact_id", "occurred_at"),
    )

    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    event_id: Mapped[str] = mapped_column(String(128), nullable=False)
    type: Mapped[str] = mapped_column(String(64), nullable=False)
    contact_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("contact.id", ondelete="CASCADE"), nullable=False)
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False)
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)


class EventInbox(IdMixin, Base):
    """A checked batch the API has durably received but not yet stored as events (the drain does that).

    On SQLite this table is used in its own file beside the main database (`inbox.inbox_engine`), so a
    sender's commit never waits behind the single writer of the main file; the copy in the main file
    stays empty. On PostgreSQL it is this table. `id` gives the order batches are stored in.
    """

    __tablename__ = "event_inbox"
    # The drain reads a workspace's batches in order.
    __table_args__ = (Index("ix_event_inbox_workspace_id_id", "workspace_id", "id"),)

    batch_id: Mapped[str] = mapped_column(String(32), nullable=False, unique=True)
    # No foreign key: on SQLite the row lives in another file than the workspace.
    workspace_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False)
    event_count: Mapped[int] = mapped_column(Integer, nullable=False)
    # The batch's checked events (inbox.encode_payload): checked once by the API, not again by the drain.
    payload: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class IngestBatch(IdMixin, WorkspaceScoped, Base):
    """What became of one received batch, written in the transaction that stored its events."""

    __tablename__ = "ingest_batch"
    __table_args__ = (Index("ix_ingest_batch_received_at", "received_at"),)

    batch_id: Mapped[str] = mapped_column(String(32), nullable=False, unique=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # stored | failed
    event_count: Mapped[int] = mapped_column(Integer, nullable=False)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False)
    stored_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False)
    accepted: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    duplicates: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    contacts_created: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    contacts_merged: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    first_seq: Mapped[int | None] = mapped_column(BigInteger)
    last_seq: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    # A failed batch's checked events, kept so that it can be sent again once the cause is fixed.
    payload: Mapped[bytes | None] = mapped_column(LargeBinary)
