"""Keeping computed properties: fold a run of the event stream into per-contact aggregates.

The pipeline (`siyu.usermodel.pipeline`) calls `apply_events` with the events after its cursor, in the
same transaction that moves the cursor, so each event is counted exactly once even across crashes.
`rebuild` recomputes from the raw events (repair, and the survivor of a merge); both give the same rows.
Both keep the intention level of the contacts whose daily counts they change (siyu.scoring.intention).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from siyu.computed.models import ContactEventDay, ContactEventStat
from siyu.db import sqlite_cache
from siyu.events.models import Event
from siyu.events.service import workspace_timezone
from siyu.kit.sql import dialect_insert, driver_rows, from_sqlite_datetime, sqlite_datetime
from siyu.kit.time import ensure_utc
from siyu.kit.timing import PhaseTimer
from siyu.scoring import intention


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """The part of an event the user model reads."""

    seq: int
    type: str
    contact_id: int
    occurred_at: dt.datetime
    properties: dict[str, Any]


def amount_cents(properties: dict[str, Any]) -> int:
    """The `amount` property in cents (orders, refunds); anything that is not a number counts 0."""
    amount = properties.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        return 0
    return round(amount * 100)


def local_day(moment: dt.datetime, tz: ZoneInfo) -> dt.date:
    return ensure_utc(moment).astimezone(tz).date()


@dataclass(slots=True)
class _Stat:
    count: int
    first_at: dt.datetime
    last_at: dt.datetime
    amount_cents: int


def _fold(events: Iterable[StreamEvent], tz: ZoneInfo) -> tuple[dict[tuple[int, str], _Stat], dict[Any, int]]:
    stats: dict[tuple[int, str], _Stat] = {}
    days: dict[tuple[int, str, dt.date], int] = {}
    for event in events:
        key = (event.contact_id, event.type)
        at = ensure_utc(event.occurred_at)
        cents = amount_cents(event.properties)
        stat = stats.get(key)
        if stat is None:
            stats[key] = _Stat(1, at, at, cents)
        else:
            stat.count += 1
            stat.first_at = min(stat.first_at, at)
            stat.last_at = max(stat.last_at, at)
            stat.amount_cents += cents
        day_key = (event.contact_id, event.type, at.astimezone(tz).date())
        days[day_key] = days.get(day_key, 0) + 1
    return stats, days


_SQLITE_STAT_UPSERT = (
    "INSERT INTO contact_event_stat (workspace_id, contact_id, event_type, count, first_at, last_at, amount_cents) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (contact_id, event_type) DO UPDATE SET "
    "count = count + excluded.count, first_at = min(first_at, excluded.first_at), "
    "last_at = max(last_at, excluded.last_at), amount_cents = amount_cents + excluded.amount_cents"
)
_SQLITE_DAY_UPSERT = (
    "INSERT INTO contact_event_day (workspace_id, contact_id, event_type, day, count) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (contact_id, event_type, day) DO UPDATE SET count = count + excluded.count"
)


def apply_events(
    session: Session, workspace_id: int, events: Sequence[StreamEvent], tz: ZoneInfo, *, timer: PhaseTimer | None = None
) -> set[int]:
    """Adds `events` to the aggregates; returns the contacts they touched. The caller owns the transaction.
    `timer` (the pipeline's) gets the intention refold as a phase of its own."""
    if not events:
        return set()
    timed = timer or PhaseTimer()
    stats, days = _fold(events, tz)
    # In primary-key order: consecutive upserts land on neighbouring pages of the clustered tables.
    stats, days = dict(sorted(stats.items())), dict(sorted(days.items()))
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        # The pipeline's hot path: plain DB-API executemany, values written as SQLAlchemy's SQLite
        # DATETIME and DATE types write them (the differential tests compare with a rebuild).
        connection.exec_driver_sql(
            _SQLITE_STAT_UPSERT,
            [
                (workspace_id, c, t, s.count, sqlite_datetime(s.first_at), sqlite_datetime(s.last_at), s.amount_cents)
                for (c, t), s in stats.items()
            ],
        )
        connection.exec_driver_sql(
            _SQLITE_DAY_UPSERT, [(workspace_id, c, t, d.isoformat(), n) for (c, t, d), n in days.items()]
        )
        with timed("intention"):
            intention.refold(session, workspace_id, stats)
        return {contact_id for contact_id, _ in stats}
    insert = dialect_insert(session)
    postgres = session.get_bind().dialect.name == "postgresql"
    smaller, larger = (func.least, func.greatest) if postgres else (func.min, func.max)

    stat_rows = [
        {
            "workspace_id": workspace_id,
            "contact_id": contact_id,
            "event_type": event_type,
            "count": s.count,
            "first_at": s.first_at,
            "last_at": s.last_at,
            "amount_cents": s.amount_cents,
        }
        for (contact_id, event_type), s in stats.items()
    ]
    stmt = insert(ContactEventStat)
    stmt = stmt.on_conflict_do_update(
        index_elements=["contact_id", "event_type"],
        set_={
            "count": ContactEventStat.count + stmt.excluded.count,
            "first_at": smaller(ContactEventStat.first_at, stmt.excluded.first_at),
            "last_at": larger(ContactEventStat.last_at, stmt.excluded.last_at),
            "amount_cents": ContactEventStat.amount_cents + stmt.excluded.amount_cents,
        },
    )
    session.execute(stmt, stat_rows)

    day_rows = [
        {"workspace_id": workspace_id, "contact_id": c, "event_type": t, "day": d, "count": n}
        for (c, t, d), n in days.items()
    ]
    day_stmt = insert(ContactEventDay)
    day_stmt = day_stmt.on_conflict_do_update(
        index_elements=["contact_id", "event_type", "day"],
        set_={"count": ContactEventDay.count + day_stmt.excluded.count},
    )
    session.execute(day_stmt, day_rows)
    with timed("intention"):
        intention.refold(session, workspace_id, stats)
    return {contact_id for contact_id, _ in stats}


def read_events(
    session: Session,
    workspace_id: int,
    *,
    after_seq: int = 0,
    up_to_seq: int | None = None,
    contact_ids: Collection[int] | None = None,
    limit: int | None = None,
) -> list[StreamEvent]:
    q = select(Event.seq, Event.type, Event.contact_id, Event.occurred_at, Event.properties).where(
        Event.workspace_id == workspace_id, Event.seq > after_seq
    )
    if up_to_seq is not None:
        q = q.where(Event.seq <= up_to_seq)
    if contact_ids is not None:
        q = q.where(Event.contact_id.in_(list(contact_ids)))
    q = q.order_by(Event.seq)
    if limit is not None:
        q = q.limit(limit)
    if session.get_bind().dialect.name == "sqlite":
        # The pipeline's hot read: the driver's text, parsed here (a third of SQLAlchemy's row cost).
        return [
            StreamEvent(seq, type_, contact_id, from_sqlite_datetime(at), orjson.loads(properties))
            for seq, type_, contact_id, at, properties in driver_rows(session, q)
        ]
    return [StreamEvent(*row) for row in session.execute(q)]


def forget(session: Session, contact_ids: Collection[int]) -> None:
    """Drops the aggregates of `contact_ids` (merged away, or about to be rebuilt)."""
    ids = list(contact_ids)
    if not ids:
        return
    session.execute(delete(ContactEventStat).where(ContactEventStat.contact_id.in_(ids)))
    session.execute(delete(ContactEventDay).where(ContactEventDay.contact_id.in_(ids)))
    intention.forget(session, ids)


REBUILD_CHUNK = 50_000
# A whole workspace is rebuilt a slice of contacts at a time, each slice's events read through the
# (contact_id, occurred_at) index: its rows are then complete and written in key order, instead of
# upserts in stream order landing all over tables of millions of rows.
REBUILD_CONTACTS = 20_000
# The per-day table's secondary index still takes writes all over; a bigger cache keeps them in memory.
REBUILD_CACHE_MB = 1024


def rebuild(
    session: Session,
    workspace_id: int,
    tz: ZoneInfo | None = None,
    *,
    contact_ids: Collection[int] | None = None,
    up_to_seq: int | None = None,
) -> int:
    """Recomputes the aggregates from the raw events (of `contact_ids`, or the whole workspace).

    Only events up to `up_to_seq` count, so a rebuild agrees with a cursor standing there. Returns
    how many events were read.
    """
    if tz is None:
        tz = workspace_timezone(session, workspace_id)
    if contact_ids is None:
        session.execute(delete(ContactEventStat).where(ContactEventStat.workspace_id == workspace_id))
        session.execute(delete(ContactEventDay).where(ContactEventDay.workspace_id == workspace_id))
        intention.reset(session, workspace_id)
        with sqlite_cache(session, REBUILD_CACHE_MB):
            return _rebuild_by_contact_slices(session, workspace_id, tz, up_to_seq)
    forget(session, contact_ids)
    if not contact_ids:
        return 0
    read = 0
    after = 0
    while True:
        chunk = read_events(
            session, workspace_id, after_seq=after, up_to_seq=up_to_seq, contact_ids=contact_ids, limit=REBUILD_CHUNK
        )
        if not chunk:
            return read
        # Chunks cut one contact's events in two; the upsert adds them up like the stream does.
        apply_events(session, workspace_id, chunk, tz)
        read += len(chunk)
        after = chunk[-1].seq


def _rebuild_by_contact_slices(session: Session, workspace_id: int, tz: ZoneInfo, up_to_seq: int | None) -> int:
    ids = list(
        session.scalars(
            select(Event.contact_id).where(Event.workspace_id == workspace_id).distinct().order_by(Event.contact_id)
        )
    )
    # SQLite would rather range over its (workspace_id, seq) index, i.e. read the whole stream for every
    # slice; "+ 0" keeps those two columns out of index selection so it takes (contact_id, occurred_at).
    sqlite = session.get_bind().dialect.name == "sqlite"
    workspace_column: Any = Event.workspace_id + 0 if sqlite else Event.workspace_id
    seq_column: Any = Event.seq + 0 if sqlite else Event.seq
    read = 0
    for start in range(0, len(ids), REBUILD_CONTACTS):
        low, high = ids[start], ids[min(start + REBUILD_CONTACTS, len(ids)) - 1]
        q = select(Event.seq, Event.type, Event.contact_id, Event.occurred_at, Event.properties).where(
            workspace_column == workspace_id, Event.contact_id >= low, Event.contact_id <= high
        )
        if up_to_seq is not None:
            q = q.where(seq_column <= up_to_seq)
        events = [StreamEvent(*row) for row in session.execute(q.order_by(Event.contact_id, Event.occurred_at))]
        apply_events(session, workspace_id, events, tz)
        read += len(events)
    return read
