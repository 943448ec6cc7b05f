"""Entering and leaving journeys, and the per-step counters: the writes shared by triggers, the runner and
the API. None of it commits.

Lock order, the same everywhere so concurrent transactions never deadlock: enrolment rows, then
journey_contact rows (by contact id), then the workspace row (numbering the journey.entered / exited
events), then journey_step_stat rows (by journey and step).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import BigInteger, ColumnElement, Table, any_, bindparam, func, insert, literal, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from siyu.contacts.models import Contact
from siyu.events.repository import allocate_seq, insert_events
from siyu.journeys.definition import Definition, parse_definition
from siyu.journeys.models import (
    STAT_COUNTERS,
    EnrolmentStatus,
    JourneyContact,
    JourneyEnrolment,
    JourneyStepStat,
    JourneyVersion,
)
from siyu.kit.sql import dialect_insert
from siyu.workspaces.models import Workspace

CHUNK = 900  # ids per IN (...) list

ENROLMENT: Table = JourneyEnrolment.__table__  # type: ignore[assignment]
JOURNEY_CONTACT: Table = JourneyContact.__table__  # type: ignore[assignment]


def among(session: Session, column: Any, ids: Sequence[int]) -> ColumnElement[bool]:
    """`column IN ids`: one array parameter on PostgreSQL (`= ANY(...)`), so a long list is not hundreds of
    placeholders for the driver to parse; a plain IN list on SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(literal(list(ids), ARRAY(BigInteger)))  # type: ignore[no-any-return]
    return column.in_(list(ids))  # type: ignore[no-any-return]


def chunks(values: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


@lru_cache(maxsize=512)
def _parsed(text: str) -> Definition:
    return parse_definition(orjson.loads(text))


def definition_of(raw: dict[str, Any]) -> Definition:
    """A published definition, parsed once per process (versions never change; parsing checks shape only)."""
    return _parsed(orjson.dumps(raw, option=orjson.OPT_SORT_KEYS).decode())


def definitions(session: Session, version_ids: Iterable[int]) -> dict[int, Definition]:
    ids = sorted(set(version_ids))
    out: dict[int, Definition] = {}
    for chunk in chunks(ids):
        for version_id, raw in session.execute(
            select(JourneyVersion.id, JourneyVersion.definition).where(JourneyVersion.id.in_(chunk))
        ):
            out[int(version_id)] = definition_of(raw)
    return out


def event_positions(session: Session, workspace_ids: Iterable[int]) -> dict[int, int]:
    """Each workspace's stream position now (events after it are "later")."""
    ids = sorted(set(workspace_ids))
    return {
        int(w): int(s)
        for w, s in session.execute(select(Workspace.id, Workspace.event_seq).where(Workspace.id.in_(ids)))
    }


# --------------------------------------------------------------------------- counters


class Pending:
    """Counter increments per (workspace, journey, step) and journey events, written together at the end of
    a transaction's work (events first, then counters: the lock order above)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[int, int, str], Counter[str]] = defaultdict(Counter)
        self.events: dict[int, list[tuple[int, str, int, dict[str, Any]]]] = defaultdict(list)

    def add(self, workspace_id: int, journey_id: int, step: str, counter: str, n: int = 1) -> None:
        self.rows[(workspace_id, journey_id, step)][counter] += n

    def event(
        self, workspace_id: int, enrolment_id: int, what: str, contact_id: int, properties: dict[str, Any]
    ) -> None:
        self.events[workspace_id].append((enrolment_id, what, contact_id, properties))

    def write(self, session: Session, now: dt.datetime) -> None:
        for workspace_id in sorted(self.events):
            record_events(session, workspace_id, self.events[workspace_id], now)
        self.events.clear()
        if not self.rows:
            return
        insert_ = dialect_insert(session)
        statement = insert_(JourneyStepStat)
        statement = statement.on_conflict_do_update(
            index_elements=["journey_id", "step"],
            set_={c: getattr(JourneyStepStat, c) + getattr(statement.excluded, c) for c in STAT_COUNTERS},
        )
        params = [
            {"workspace_id": ws, "journey_id": j, "step": s, **{c: counts.get(c, 0) for c in STAT_COUNTERS}}
            for (ws, j, s), counts in sorted(self.rows.items(), key=lambda item: (item[0][1], item[0][2]))
        ]
        session.execute(statement, params)
        self.rows.clear()


# --------------------------------------------------------------------------- journey events


@dataclass(frozen=True)
class JourneyRef:
    """What entering and leaving need to know of a journey."""

    id: int
    workspace_id: int
    name: str
    version: int
    version_id: int
    definition: Definition


def record_events(
    session: Session, workspace_id: int, rows: list[tuple[int, str, int, dict[str, Any]]], now: dt.datetime
) -> None:
    """journey.entered / journey.exited on the contacts' timelines, numbered in the stream like any event.

    rows: (enrolment id, "entered" | "exited", contact id, properties). Event ids are derived from the
    enrolment, so a replay adds nothing.
    """
    if not rows:
        return
    first = allocate_seq(session, workspace_id, len(rows))
    insert_events(
        session,
        [
            {
                "workspace_id": workspace_id,
                "seq": first + n,
                "event_id": f"siyu:journey:{enrolment_id}:{what}",
                "type": f"journey.{what}",
                "contact_id": contact_id,
                "occurred_at": now,
                "received_at": now,
                "properties": properties,
            }
            for n, (enrolment_id, what, contact_id, properties) in enumerate(rows)
        ],
    )


# --------------------------------------------------------------------------- entering


@dataclass(frozen=True)
class Candidate:
    contact_id: int
    entry_seq: int  # the stream position of what triggered it (goal events after it count)
    trigger: str


@dataclass
class EnrolResult:
    enrolled: list[tuple[int, int]]  # (contact id, enrolment id)
    refused: dict[int, str]  # contact id -> why not


def _allowed(row: JourneyContact | None, definition: Definition, now: dt.datetime) -> str | None:
    if row is None:
        return None
    if row.active_enrolment_id is not None:
        return "already in this journey"
    entry = definition.entry
    if row.enrolments == 0:
        return None
    if entry.mode == "once":
        return "entered before; the journey lets a contact in once"
    recent = row.last_entered_at is not None and now - row.last_entered_at < dt.timedelta(days=entry.days)
    if entry.mode == "every_n_days" and recent:
        return f"entered less than {entry.days} days ago"
    return None


def enrol(
    session: Session,
    journey: JourneyRef,
    candidates: Sequence[Candidate],
    *,
    now: dt.datetime,
    pending: Pending | None = None,
) -> EnrolResult:
    """Enters each candidate the entry rules let in, at the first step, due now.

    The per-(journey, contact) rows are created if missing and locked (in contact order) before the
    rules are read, so concurrent callers deciding for one contact take turns; the unique live enrolment
    per journey and contact backs that up.
    """
    first_of: dict[int, Candidate] = {}
    for c in candidates:
        first_of.setdefault(c.contact_id, c)
    ids = sorted(first_of)
    result = EnrolResult([], {})
    if not ids:
        return result
    live: set[int] = set()
    for chunk in chunks(ids):
        live.update(
            int(c)
            for c in session.scalars(
                select(Contact.id).where(
                    Contact.workspace_id == journey.workspace_id,
                    among(session, Contact.id, chunk),
                    Contact.merged_into_id.is_(None),
                )
            )
        )
    for cid in ids:
        if cid not in live:
            result.refused[cid] = "no such contact in this workspace (or merged into another)"
    ids = [c for c in ids if c in live]
    if not ids:
        return result
    insert_ = dialect_insert(session)
    session.execute(
        insert_(JourneyContact).on_conflict_do_nothing(index_elements=["journey_id", "contact_id"]),
        [
            {"workspace_id": journey.workspace_id, "journey_id": journey.id, "contact_id": c, "enrolments": 0}
            for c in ids
        ],
    )
    rows: dict[int, JourneyContact] = {}
    for chunk in chunks(ids):
        for row in session.scalars(
            select(JourneyContact)
            .where(JourneyContact.journey_id == journey.id, among(session, JourneyContact.contact_id, chunk))
            .order_by(JourneyContact.contact_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ):
            rows[row.contact_id] = row
    admitted: list[Candidate] = []
    for cid in ids:
        why = _allowed(rows.get(cid), journey.definition, now)
        if why is None:
            admitted.append(first_of[cid])
        else:
            result.refused[cid] = why
    if not admitted:
        return result
    first = journey.definition.first
    rows_in = [
        {
            "workspace_id": journey.workspace_id,
            "journey_id": journey.id,
            "version_id": journey.version_id,
            "contact_id": c.contact_id,
            "status": EnrolmentStatus.active,
            "step": first,
            "waiting": False,
            "due_at": now,
            "event_matched": False,
            "entry_seq": c.entry_seq,
            "trigger": c.trigger[:100],
            "entered_at": now,
            "live_contact_id": c.contact_id,
        }
        for c in admitted
    ]
    ids_out = _insert_enrolments(session, rows_in)
    result.enrolled = [(c.contact_id, eid) for c, eid in zip(admitted, ids_out, strict=True)]
    for cid, eid in result.enrolled:
        row = rows[cid]
        row.enrolments += 1
        row.active_enrolment_id = eid
        row.last_entered_at = now
    session.flush()
    own = pending or Pending()
    properties = {"journey_id": journey.id, "journey_name": journey.name, "version": journey.version}
    for cid, eid in result.enrolled:
        own.event(journey.workspace_id, eid, "entered", cid, {**properties, "enrolment_id": eid, "step": first})
    own.add(journey.workspace_id, journey.id, first, "arrived", len(result.enrolled))
    if pending is None:
        own.write(session, now)
    return result


def _insert_enrolments(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    """Inserts enrolments and returns their ids in order. PostgreSQL numbers them with RETURNING; SQLite
    cannot promise RETURNING's order for a multi-row insert (SQLAlchemy would insert row by row), but
    the transaction holds its only write lock, so the next ids are max(id)+1 onwards."""
    if session.get_bind().dialect.name == "sqlite":
        start = int(session.scalar(select(func.coalesce(func.max(JourneyEnrolment.id), 0))) or 0) + 1
        ids = list(range(start, start + len(rows)))
        session.execute(insert(JourneyEnrolment), [{**r, "id": i} for r, i in zip(rows, ids, strict=True)])
        return ids
    inserted = session.execute(
        insert(JourneyEnrolment).returning(JourneyEnrolment.id, sort_by_parameter_order=True), rows
    ).all()
    return [int(r[0]) for r in inserted]


# --------------------------------------------------------------------------- leaving


@dataclass(frozen=True)
class Ending:
    enrolment_id: int
    workspace_id: int
    journey_id: int
    contact_id: int
    step: str
    status: EnrolmentStatus  # completed or exited
    reason: str  # completed, goal, exit_step, archived, removed, merged
    goal_at: dt.datetime | None = None
    arm: str | None = None
    version: int | None = None


def end(
    session: Session,
    endings: Sequence[Ending],
    *,
    now: dt.datetime,
    names: dict[int, str],
    pending: Pending,
    update_rows: bool = True,
) -> None:
    """Takes enrolments out: the row (unless the caller writes it), the per-contact row, the timeline event,
    and the step's counters (completed counts as passed, anything else as exited)."""
    if not endings:
        return
    if update_rows:
        session.execute(
            ENROLMENT.update()
            .where(ENROLMENT.c.id == bindparam("b_id"))
            .values(
                status=bindparam("b_status"),
                exit_reason=bindparam("b_reason"),
                step=bindparam("b_step"),
                ended_at=now,
                due_at=None,
                waiting=False,
                wait_event=None,
                live_contact_id=None,
                goal_at=bindparam("b_goal_at"),
            ),
            [
                {
                    "b_id": e.enrolment_id,
                    "b_status": e.status.value,
                    "b_reason": e.reason,
                    "b_step": e.step,
                    "b_goal_at": e.goal_at,
                }
                for e in endings
            ],
        )
    ordered = sorted(endings, key=lambda e: (e.journey_id, e.contact_id))
    session.execute(
        update(JOURNEY_CONTACT)
        .where(
            JOURNEY_CONTACT.c.journey_id == bindparam("b_journey"),
            JOURNEY_CONTACT.c.contact_id == bindparam("b_contact"),
            JOURNEY_CONTACT.c.active_enrolment_id == bindparam("b_enrolment"),
        )
        .values(active_enrolment_id=None, last_exited_at=now),
        [{"b_journey": e.journey_id, "b_contact": e.contact_id, "b_enrolment": e.enrolment_id} for e in ordered],
    )
    for e in endings:
        pending.event(
            e.workspace_id,
            e.enrolment_id,
            "exited",
            e.contact_id,
            {
                "journey_id": e.journey_id,
                "journey_name": names.get(e.journey_id, ""),
                "enrolment_id": e.enrolment_id,
                "step": e.step,
                "reason": e.reason,
                **({"version": e.version} if e.version is not None else {}),
            },
        )
        pending.add(
            e.workspace_id, e.journey_id, e.step, "passed" if e.status is EnrolmentStatus.completed else "exited"
        )
        if e.reason == "goal":
            pending.add(e.workspace_id, e.journey_id, e.step, "goal")
