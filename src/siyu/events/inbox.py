"""Received event batches: kept durably by the API, stored as events by the drain.

    POST /events ──check──> event_inbox row (own SQLite file) ──202──> sender
    worker poller ──> drain: per workspace, oldest first, several batches per transaction:
                      store() each batch (people resolved, events numbered) + its ingest_batch outcome,
                      COMMIT; then the inbox rows are deleted.

The sender's commit is one small row in a file no other writer uses, so it never waits behind the
main database's single writer (a pipeline step, a broadcast); the drain writes many batches per
commit. A batch is checked completely before it is kept, so a 202 means it will be stored.

Crash safety: the events and the batch's outcome commit together in the main database; the inbox
row is deleted after. A drain that dies between the two finds the outcome on its next run and only
deletes the row, so nothing is stored twice (and event ids make a replay add nothing anyway).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid
import weakref
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson
from sqlalchemy import Engine, Row, Table, delete, func, insert, select
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from siyu.db import Database
from siyu.errors import NotFound, SiyuError
from siyu.events.models import EventInbox, IngestBatch
from siyu.events.schemas import IngestBatchRead, IngestResult
from siyu.events.service import store
from siyu.events.validation import PreparedEvent
from siyu.kit.time import utcnow
from siyu.workspaces.models import Workspace

log = logging.getLogger("siyu.events")

PENDING, STORED, FAILED = "pending", "stored", "failed"
# Events per drain transaction: amortises the commit; bounds how long the main write lock is held.
DRAIN_EVENTS = 10_000
POLL_SECONDS = 1.0
WORKSPACES_PER_LOOK = 50  # workspaces with waiting batches looked at per step, oldest first
HEADS_PER_WORKSPACE = 200
_INBOX: Table = EventInbox.__table__  # type: ignore[assignment]

_ready: weakref.WeakSet[Engine] = weakref.WeakSet()
_ready_lock = threading.Lock()


def inbox_engine(db: Database) -> Engine:
    """Where received batches wait: on SQLite a file beside the main one, its table made on first use
    (a later change to event_inbox must upgrade existing inbox files here: migrations run on the main
    file only)."""
    engine = db.sibling("inbox")
    if engine is not db.engine and engine not in _ready:
        with _ready_lock:
            _INBOX.create(engine, checkfirst=True)
            _ready.add(engine)
    return engine


def _reader(engine: Engine) -> Engine:
    # Reads of the inbox must not take SQLite's write lock from senders.
    return engine.execution_options(sqlite_begin="DEFERRED")


@dataclass(frozen=True, slots=True)
class Received:
    batch_id: str
    event_count: int
    received_at: dt.datetime


def accept(db: Database, workspace_id: int, items: Sequence[PreparedEvent], *, received_at: dt.datetime) -> Received:
    """Keeps a checked batch; durable when this returns."""
    received = new_received(len(items), received_at)
    with inbox_engine(db).begin() as conn:
        conn.execute(
            insert(_INBOX).values(
                batch_id=received.batch_id,
                workspace_id=workspace_id,
                received_at=received_at,
                event_count=len(items),
                payload=encode_payload(items),
            )
        )
    return received


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(list[PreparedEvent])


def encode_payload(items: Sequence[PreparedEvent]) -> bytes:
    return _ENCODER.encode(items)


def read_payload(payload: bytes) -> list[PreparedEvent]:
    """The checked events of an inbox row (or of a failed batch's outcome)."""
    if not payload.startswith(b"[{"):
        return _DECODER.decode(payload)
    # The earlier format (one object per event): batches still waiting at an upgrade are stored as sent.
    return [
        PreparedEvent(
            e["event_id"],
            e["type"],
            dt.datetime.fromisoformat(e["occurred_at"]),
            e["properties"],
            [(kind, value) for kind, value in e["pairs"]],
            e["contact_id"],
        )
        for e in orjson.loads(payload)
    ]


def drain_step(db: Database, *, max_events: int = DRAIN_EVENTS) -> int:
    """Stores the oldest waiting batches of one workspace in one transaction; how many events it took.
    Workspaces are tried oldest first; one another worker is storing is skipped (PostgreSQL)."""
    engine = inbox_engine(db)
    with _reader(engine).connect() as conn:
        first = func.min(_INBOX.c.id)
        waiting = conn.scalars(
            select(_INBOX.c.workspace_id).group_by(_INBOX.c.workspace_id).order_by(first).limit(WORKSPACES_PER_LOOK)
        ).all()
    for workspace_id in waiting:
        chosen = _oldest(engine, workspace_id, max_events)
        done = _store_batches(db, engine, workspace_id, chosen) if chosen else None
        if done is not None:
            return done
    return 0  # nothing waiting, or every waiting workspace is being stored by another worker


def _store_batches(db: Database, engine: Engine, workspace_id: int, inbox_ids: list[int]) -> int | None:
    with _reader(engine).connect() as conn:
        rows = conn.execute(select(_INBOX).where(_INBOX.c.id.in_(inbox_ids)).order_by(_INBOX.c.id)).all()
    if not rows:
        return None  # another worker stored them meanwhile: look at the next workspace
    # First all batches in one go; when one fails, all again with each batch on a savepoint of its own, so
    # that it alone is recorded failed. A savepoint makes SQLite copy every page written before it that
    # the batch writes again (a statement journal in a temporary file): ~15% of the drain at 1M contacts.
    try:
        stored = _store_in_one_transaction(db, workspace_id, rows, isolated=False)
    except _BatchFailed:  # rolled back whole
        stored = _store_in_one_transaction(db, workspace_id, rows, isolated=True)
    if not stored:
        return None  # another worker is storing this workspace's batches
    db.checkpoint_soon()
    with engine.begin() as conn:
        conn.execute(delete(_INBOX).where(_INBOX.c.id.in_([row.id for row in rows])))
    return sum(int(row.event_count) for row in rows)


def _store_in_one_transaction(db: Database, workspace_id: int, rows: Sequence[Row[Any]], *, isolated: bool) -> bool:
    """Stores the batches in one transaction with the workspace row held; False when another worker holds it."""
    with db.transaction() as session:
        # FOR NO KEY UPDATE: a foreign-key check of another transaction writing this workspace's rows
        # (FOR KEY SHARE) does not make the drain skip it.
        locked = session.scalar(
            select(Workspace.id).where(Workspace.id == workspace_id).with_for_update(skip_locked=True, key_share=True)
        )
        if locked is None:
            if session.get(Workspace, workspace_id) is not None:
                return False
            log.warning("workspace %s is gone: dropping %s received batches", workspace_id, len(rows))
        else:
            _store_rows(session, workspace_id, rows, isolated=isolated)
    return True


class _BatchFailed(Exception):
    """A batch stored without a savepoint failed: the transaction is rolled back and tried batch by batch."""


def _store_rows(session: Session, workspace_id: int, rows: Sequence[Row[Any]], *, isolated: bool) -> None:
    ids = [row.batch_id for row in rows]
    done = set(session.scalars(select(IngestBatch.batch_id).where(IngestBatch.batch_id.in_(ids))))
    outcomes: list[dict[str, Any]] = []
    for row in rows:
        if row.batch_id in done:
            continue  # stored by a drain that died before it could delete the inbox row
        received = Received(row.batch_id, row.event_count, row.received_at)
        try:
            with session.begin_nested() if isolated else nullcontext():
                result = store(session, workspace_id, read_payload(row.payload), now=row.received_at)
        except (OperationalError, InterfaceError):
            raise  # the database is unreachable or busy, not the batch's fault: the whole step is retried
        except Exception as exc:
            if not isolated:
                raise _BatchFailed from exc
            outcomes.append(_failure(workspace_id, received, row, exc))
        else:
            outcomes.append(outcome(workspace_id, received, result=result))
    if outcomes:
        session.execute(insert(IngestBatch), outcomes)


def _failure(workspace_id: int, received: Received, row: Row[Any], exc: Exception) -> dict[str, Any]:
    """The failed outcome of a batch, kept with its checked events so it can be sent again."""
    if isinstance(exc, SiyuError):
        # e.g. a contact id that was deleted after the batch was received: the batch stores nothing.
        return outcome(workspace_id, received, error=exc.message, payload=row.payload)
    # A value the database refuses, or a bug: recorded with the batch kept, so it can be sent again once
    # the cause is fixed, instead of holding up every batch behind it.
    log.error("batch %s could not be stored", row.batch_id, exc_info=exc)
    error = f"could not be stored: {getattr(exc, 'orig', None) or exc!r}"[:2000]
    return outcome(workspace_id, received, error=error, payload=row.payload)


def outcome(
    workspace_id: int,
    received: Received,
    *,
    result: IngestResult | None = None,
    error: str | None = None,
    payload: bytes | None = None,
) -> dict[str, Any]:
    """An ingest_batch row: stored with the counts, or failed with the reason (and the checked events)."""
    row: dict[str, Any] = {
        "workspace_id": workspace_id,
        "batch_id": received.batch_id,
        "event_count": received.event_count,
        "received_at": received.received_at,
        "stored_at": utcnow(),
    }
    if result is not None:
        return row | {"status": STORED, **result.model_dump()}
    return row | {"status": FAILED, "error": error, "payload": payload}


def drain_workspace(db: Database, workspace_id: int) -> int:
    """Stores the batches one workspace has waiting (before a `wait=true` batch, so that it does not go
    ahead of them). A worker already storing them holds the workspace row, which store() then waits for."""
    engine = inbox_engine(db)
    total = 0
    while True:
        chosen = _oldest(engine, workspace_id, DRAIN_EVENTS)
        done = _store_batches(db, engine, workspace_id, chosen) if chosen else None
        if not done:
            return total
        total += done


def _oldest(engine: Engine, workspace_id: int, max_events: int) -> list[int]:
    """Ids of a workspace's oldest waiting batches that fit one transaction (at least one), in order:
    a later batch never goes ahead of an earlier one."""
    with _reader(engine).connect() as conn:
        heads = conn.execute(
            select(_INBOX.c.id, _INBOX.c.event_count)
            .where(_INBOX.c.workspace_id == workspace_id)
            .order_by(_INBOX.c.id)
            .limit(HEADS_PER_WORKSPACE)
        ).all()
    chosen: list[int] = []
    events = 0
    for head in heads:
        if chosen and events + head.event_count > max_events:
            break
        chosen.append(head.id)
        events += head.event_count
    return chosen


def drain(db: Database) -> int:
    """Stores everything waiting (tests, the CLI, benchmarks); workers do this continuously."""
    total = 0
    while done := drain_step(db):
        total += done
    return total


def drain_for(db: Database, seconds: float = POLL_SECONDS) -> int:
    """The worker's poller: drains for up to `seconds`, then lets the other pollers run."""
    deadline = time.monotonic() + seconds
    total = 0
    while time.monotonic() < deadline and (done := drain_step(db)):
        total += done
    return total


def record_stored(session: Session, workspace_id: int, received: Received, result: IngestResult) -> IngestBatchRead:
    """The outcome of a batch stored at once (`wait=true`), so it can be looked up like any other."""
    row = outcome(workspace_id, received, result=result)
    session.execute(insert(IngestBatch), [row])
    return IngestBatchRead.model_validate(row)


def new_received(event_count: int, received_at: dt.datetime) -> Received:
    return Received(uuid.uuid4().hex, event_count, received_at)


def pending_read(received: Received) -> IngestBatchRead:
    return IngestBatchRead(
        batch_id=received.batch_id,
        status=PENDING,
        event_count=received.event_count,
        received_at=received.received_at,
    )


def get_batch(db: Database, session: Session, workspace_id: int, batch_id: str) -> IngestBatchRead:
    """A batch's state. The inbox is read first: a batch leaves it only after its outcome committed."""
    with _reader(inbox_engine(db)).connect() as conn:
        waiting = conn.execute(
            select(_INBOX.c.event_count, _INBOX.c.received_at).where(
                _INBOX.c.batch_id == batch_id, _INBOX.c.workspace_id == workspace_id
            )
        ).first()
    if waiting is not None:
        return pending_read(Received(batch_id, waiting.event_count, waiting.received_at))
    batch = session.scalar(
        select(IngestBatch).where(IngestBatch.workspace_id == workspace_id, IngestBatch.batch_id == batch_id)
    )
    if batch is None:
        raise NotFound(f"no event batch {batch_id!r} in this workspace")
    return IngestBatchRead.model_validate(batch)


@dataclass(frozen=True, slots=True)
class Backlog:
    batches: int
    events: int
    oldest_received_at: dt.datetime | None


def backlog(db: Database, workspace_id: int) -> Backlog:
    """What a workspace has waiting in the inbox: a backlog that only grows means no worker stores it."""
    with _reader(inbox_engine(db)).connect() as conn:
        batches, events, oldest = conn.execute(
            select(
                func.count(), func.coalesce(func.sum(_INBOX.c.event_count), 0), func.min(_INBOX.c.received_at)
            ).where(_INBOX.c.workspace_id == workspace_id)
        ).one()
    return Backlog(int(batches), int(events), oldest)


def prune_outcomes(session: Session, *, older_than: dt.timedelta) -> int:
    """Outcomes are for senders checking on recent batches; the events themselves stay."""
    result = session.execute(delete(IngestBatch).where(IngestBatch.received_at < utcnow() - older_than))
    return int(getattr(result, "rowcount", 0) or 0)
