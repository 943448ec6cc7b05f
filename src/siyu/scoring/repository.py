"""Reads of the facts the built-in models need, and the bulk write of contact_score.

Set-based: one grouped query gives every contact's lifecycle and RFM facts, one range query the daily
counts intention decays, one query per stage trigger the contacts that met it. A full run reads each
once for the whole workspace; an incremental run filters each by a chunk of contact ids.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterator, Sequence
from typing import Any

import orjson
from sqlalchemy import ColumnElement, String, case, delete, func, insert, select, type_coerce
from sqlalchemy.orm import Session

from siyu.computed.models import ContactEventDay, ContactEventStat
from siyu.contacts.models import Contact
from siyu.events.models import Event
from siyu.kit.sql import sqlite_datetime
from siyu.scoring.config import ScoringConfig, StageTrigger
from siyu.scoring.models import ContactScore
from siyu.scoring.rules import Facts, LocalDays
from siyu.segments.models import Segment, SegmentMember

CHUNK = 5000  # contact ids per IN (...): well under SQLite's bound-variable limit


def chunks(ids: Sequence[int], size: int = CHUNK) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


def _in_workspace(column: Any, workspace_id: int, contact_ids: Collection[int] | None) -> ColumnElement[bool]:
    """With a list of contacts, `+ 0` keeps the planner off the (workspace, type, day) index: walking each
    contact's primary key is far cheaper than scanning the workspace's whole window."""
    return (column + 0 if contact_ids is not None else column) == workspace_id  # type: ignore[no-any-return]


def _only(column: Any, contact_ids: Collection[int] | None) -> list[ColumnElement[bool]]:
    return [] if contact_ids is None else [column.in_(list(contact_ids))]


def facts(
    session: Session, workspace_id: int, config: ScoringConfig, contact_ids: Collection[int] | None, days: LocalDays
) -> list[Facts]:
    """Every live (not merged away) contact's facts, or those of `contact_ids` that are live."""
    stat = ContactEventStat
    life, rfm = config.lifecycle, config.rfm
    engagement = list(life.engagement_events)
    advocate = list(life.advocate_events)
    active = sorted({*engagement, *advocate, rfm.order_event})
    is_order = stat.event_type == rfm.order_event
    per_contact = (
        select(
            stat.contact_id.label("contact_id"),
            _raw(func.max(case((stat.event_type.in_(active), stat.last_at)))).label("last_active_at"),
            _raw(func.min(case((stat.event_type.in_(engagement), stat.first_at)))).label("first_engaged_at"),
            func.sum(case((stat.event_type.in_(advocate), stat.count), else_=0)).label("advocacy"),
            func.sum(case((is_order, stat.count), else_=0)).label("orders"),
            _raw(func.max(case((is_order, stat.last_at)))).label("last_order_at"),
            func.sum(case((is_order, stat.amount_cents), else_=0)).label("paid_cents"),
            func.sum(case((stat.event_type == rfm.refund_event, stat.amount_cents), else_=0)).label("refunded_cents"),
        )
        .where(
            _in_workspace(stat.workspace_id, workspace_id, contact_ids),
            stat.event_type.in_(sorted({*active, rfm.refund_event})),
            *_only(stat.contact_id, contact_ids),
        )
        .group_by(stat.contact_id)
        .subquery()
    )
    rows = session.execute(
        # Columns in Facts' order: id, added, last active, first engaged, advocacy, orders, last order, paid, refunded.
        select(Contact.id, _raw(Contact.created_at), *[c for c in per_contact.c if c.name != "contact_id"])
        .outerjoin(per_contact, per_contact.c.contact_id == Contact.id)
        .where(
            Contact.workspace_id == workspace_id,
            Contact.merged_into_id.is_(None),
            *_only(Contact.id, contact_ids),
        )
        .order_by(Contact.id)
    )
    return [
        Facts(
            row[0],
            days(row[1]),  # type: ignore[arg-type]
            days(row[2]),
            days(row[3]),
            int(row[4] or 0),
            int(row[5] or 0),
            days(row[6]),
            int(row[7] or 0),
            int(row[8] or 0),
        )
        for row in rows
    ]


def _raw(expression: Any) -> Any:
    """A timestamp as the driver returns it (text on SQLite): LocalDays converts it, far cheaper than
    SQLAlchemy making an aware datetime of each of a million values."""
    return type_coerce(expression, String())


def intention_days(
    session: Session, workspace_id: int, config: ScoringConfig, today: int, contact_ids: Collection[int] | None
) -> dict[int, list[tuple[str, int, int]]]:
    """(event type, age in local days, count) per contact for the scored event types within the window."""
    day = ContactEventDay
    types = [r.event_type for r in config.intention.rules]
    out: dict[int, list[tuple[str, int, int]]] = {}
    if not types:
        return out
    since = dt.date.fromordinal(today - config.intention.window_days)
    rows = session.execute(
        select(day.contact_id, day.event_type, type_coerce(day.day, String()), day.count).where(
            _in_workspace(day.workspace_id, workspace_id, contact_ids),
            day.event_type.in_(types),
            day.day > since,
            *_only(day.contact_id, contact_ids),
        )
    )
    ages: dict[object, int] = {}
    for contact_id, event_type, on, count in rows:
        age = ages.get(on)
        if age is None:
            ordinal = (dt.date.fromisoformat(on) if isinstance(on, str) else on).toordinal()
            age = ages[on] = today - ordinal
        found = out.get(contact_id)
        if found is None:
            out[contact_id] = [(event_type, age, count)]
        else:
            found.append((event_type, age, count))
    return out


def trigger_hits(
    session: Session, workspace_id: int, trigger: StageTrigger, contact_ids: Collection[int] | None, days: LocalDays
) -> dict[int, int | None]:
    """Contacts that met one stage trigger, with the local day they first did (a segment: entered)."""
    if trigger.segment_id is not None:
        member = SegmentMember
        query = select(member.contact_id, _raw(member.entered_at)).where(
            member.workspace_id == workspace_id,
            member.segment_id == trigger.segment_id,
            *_only(member.contact_id, contact_ids),
        )
        return {contact_id: days(since) for contact_id, since in session.execute(query)}
    if trigger.property is None:
        stat = ContactEventStat
        query = select(stat.contact_id, _raw(stat.first_at)).where(
            stat.workspace_id == workspace_id,
            stat.event_type == trigger.event_type,
            *_only(stat.contact_id, contact_ids),
        )
        return {contact_id: days(since) for contact_id, since in session.execute(query)}
    # A property condition is not in the computed properties: read the raw events of that type.
    earliest: dict[int, int | None] = {}
    rows = session.execute(
        select(Event.contact_id, Event.occurred_at, Event.properties).where(
            Event.workspace_id == workspace_id,
            Event.type == trigger.event_type,
            *_only(Event.contact_id, contact_ids),
        )
    )
    for contact_id, occurred_at, properties in rows:
        value = properties.get(trigger.property, _MISSING) if isinstance(properties, dict) else _MISSING
        if not _json_equal(value, trigger.equals):
            continue
        day = days(occurred_at)
        known = earliest.get(contact_id)
        if known is None or (day is not None and day < known):
            earliest[contact_id] = day
    return earliest


_MISSING = object()


def _json_equal(value: object, expected: object) -> bool:
    # In JSON true is not 1, though in Python True == 1.
    return isinstance(value, bool) == isinstance(expected, bool) and value == expected


def segment_names(session: Session, workspace_id: int, segment_ids: Collection[int]) -> dict[int, str]:
    if not segment_ids:
        return {}
    rows = session.execute(
        select(Segment.id, Segment.name).where(Segment.workspace_id == workspace_id, Segment.id.in_(segment_ids))
    )
    return {segment_id: name for segment_id, name in rows}


# --- writing ------------------------------------------------------------------------------------

# A row as the engine builds it; computed_at is added on insert.
SCORE_COLUMNS = (
    "workspace_id",
    "contact_id",
    "lifecycle_stage",
    "r_score",
    "f_score",
    "m_score",
    "value_tier",
    "intention_score",
    "intention_level",
    "transaction_stage",
    "reasons",
)
_INSERTED = (*SCORE_COLUMNS, "computed_at")
_SQLITE_INSERT = f"INSERT INTO contact_score ({', '.join(_INSERTED)}) VALUES ({', '.join('?' for _ in _INSERTED)})"


def delete_scores(session: Session, workspace_id: int, contact_ids: Collection[int] | None) -> None:
    session.execute(
        delete(ContactScore)
        .where(ContactScore.workspace_id == workspace_id, *_only(ContactScore.contact_id, contact_ids))
        .execution_options(synchronize_session=False)
    )


def insert_scores(session: Session, rows: list[tuple[Any, ...]], computed_at: dt.datetime) -> None:
    """Rows are SCORE_COLUMNS, reasons still a dict. The caller deleted the old rows."""
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        # A million rows: one DB-API executemany, values written as SQLAlchemy's SQLite JSON and DATETIME
        # types write them (tests/scoring check the rows read back through the ORM).
        stamp = sqlite_datetime(computed_at)
        connection.exec_driver_sql(_SQLITE_INSERT, [(*row[:-1], orjson.dumps(row[-1]).decode(), stamp) for row in rows])
        return
    connection.execute(
        insert(ContactScore),
        [{**dict(zip(SCORE_COLUMNS, row, strict=True)), "computed_at": computed_at} for row in rows],
    )
