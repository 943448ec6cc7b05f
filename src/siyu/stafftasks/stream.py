"""Unanswered messages (seed 004: reply within 30 minutes), from the event stream.

The consumer reads a workspace's `message.received`, `message.sent` and `contact.merged` events in
sequence order after its own cursor ("stafftasks" in `stream_cursor`) and keeps one row per contact
waiting for a reply (`staff_task_awaiting_reply`: the earliest unanswered message). The rows, the
tasks it closes and the cursor commit together, so a crash or a restart reads nothing twice and
misses nothing. Separately, rows older than the SLA become `unanswered` tasks, due at once, keyed
"unanswered:<contact>:<event seq>", and a later reply closes such a task ("answered").

Only direct messages count: an event with a `group_id` is a group conversation, not a message
waiting for its owner. A message older than `MAX_AGE` when read (a history import) is ignored.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from siyu.contacts.models import Contact
from siyu.db import Database
from siyu.events import cursors
from siyu.events.models import Event
from siyu.kit.time import ensure_utc, utcnow
from siyu.staff.models import Staff
from siyu.stafftasks import service
from siyu.stafftasks.models import AwaitingReply, StaffTask, TaskKind, TaskStatus

CURSOR = "stafftasks"
BATCH_EVENTS = 5_000
BATCH_BREACHES = 500
TYPES = ("message.received", "message.sent", "contact.merged")
MAX_AGE = dt.timedelta(hours=24)
DETAIL_MAX = 500


@dataclass
class Waiting:
    received_at: dt.datetime
    seq: int
    staff_id: int | None


def _is_direct(props: dict[str, object]) -> bool:
    group = props.get("group_id")
    return group is None or str(group) == ""


def step(session: Session, workspace_id: int, *, batch: int = BATCH_EVENTS) -> int:
    """Applies up to `batch` events after the cursor. Returns events read (0: up to date). The caller commits."""
    read = cursors.read_next(session, CURSOR, workspace_id, TYPES, batch)
    if read is None:
        return 0
    rows = read.rows
    settings = service.load_settings(session, workspace_id)
    horizon = utcnow() - MAX_AGE
    for kind, contact_id, _at, raw_props, _seq in rows:
        if kind == "contact.merged":
            merged = (raw_props or {}).get("merged_contact_id")
            if isinstance(merged, int):
                _move_to_survivor(session, workspace_id, merged, contact_id)
    contacts = {r[1] for r in rows if r[0] != "contact.merged"}
    waiting: dict[int, Waiting | None] = dict(_load_waiting(session, workspace_id, contacts))
    with_open_task = _with_open_task(session, workspace_id, contacts)
    changed: set[int] = set()
    replies: dict[int, dt.datetime] = {}
    for kind, contact_id, occurred_at, raw_props, seq in rows:
        props = raw_props or {}
        if kind == "contact.merged" or not _is_direct(props):
            continue
        at = ensure_utc(occurred_at)
        current = waiting.get(contact_id)
        if kind == "message.received":
            if not settings.generators.unanswered or at < horizon or contact_id in with_open_task:
                continue
            if current is None or at < current.received_at:
                staff = props.get("staff_id")
                waiting[contact_id] = Waiting(at, seq, staff if isinstance(staff, int) else None)
                changed.add(contact_id)
        else:  # message.sent: a reply answers what was received before it
            if current is not None and current.received_at <= at:
                waiting[contact_id] = None
                changed.add(contact_id)
            if contact_id in with_open_task:
                replies[contact_id] = max(at, replies.get(contact_id, at))
                with_open_task.discard(contact_id)  # answered: a later message starts a new wait
    _store_waiting(session, workspace_id, {c: waiting.get(c) for c in changed})
    for contact_id, at in replies.items():
        service.mark_answered(session, workspace_id, contact_id, at)
    done = read.advance()
    session.flush()
    return done


def _load_waiting(session: Session, workspace_id: int, contacts: set[int]) -> dict[int, Waiting]:
    if not contacts:
        return {}
    rows = session.execute(
        select(AwaitingReply.contact_id, AwaitingReply.received_at, AwaitingReply.event_seq, AwaitingReply.staff_id)
        .where(AwaitingReply.workspace_id == workspace_id, AwaitingReply.contact_id.in_(sorted(contacts)))
        .with_for_update()
    ).all()
    return {r[0]: Waiting(ensure_utc(r[1]), r[2], r[3]) for r in rows}


def _with_open_task(session: Session, workspace_id: int, contacts: set[int]) -> set[int]:
    if not contacts:
        return set()
    return set(
        session.scalars(
            select(StaffTask.contact_id).where(
                StaffTask.workspace_id == workspace_id,
                StaffTask.contact_id.in_(sorted(contacts)),
                StaffTask.kind == TaskKind.unanswered,
                StaffTask.status == TaskStatus.open,
            )
        )
    )


def _store_waiting(session: Session, workspace_id: int, rows: dict[int, Waiting | None]) -> None:
    if not rows:
        return
    session.execute(
        delete(AwaitingReply).where(
            AwaitingReply.workspace_id == workspace_id, AwaitingReply.contact_id.in_(sorted(rows))
        )
    )
    session.add_all(
        AwaitingReply(
            workspace_id=workspace_id,
            contact_id=contact_id,
            received_at=w.received_at,
            event_seq=w.seq,
            staff_id=w.staff_id,
        )
        for contact_id, w in sorted(rows.items())
        if w is not None
    )
    session.flush()


def _move_to_survivor(session: Session, workspace_id: int, merged_id: int, survivor_id: int) -> None:
    """A merged profile's tasks and waiting message belong to the survivor now."""
    session.execute(
        update(StaffTask)
        .where(StaffTask.workspace_id == workspace_id, StaffTask.contact_id == merged_id)
        .values(contact_id=survivor_id)
        .execution_options(synchronize_session=False)
    )
    moving = session.get(AwaitingReply, merged_id)
    if moving is None:
        return
    staying = session.get(AwaitingReply, survivor_id)
    if staying is None or moving.received_at < staying.received_at:
        if staying is not None:
            session.delete(staying)
            session.flush()
        session.add(
            AwaitingReply(
                workspace_id=workspace_id,
                contact_id=survivor_id,
                received_at=moving.received_at,
                event_seq=moving.event_seq,
                staff_id=moving.staff_id,
            )
        )
    session.delete(moving)
    session.flush()


def raise_unanswered(session: Session, workspace_id: int, *, now: dt.datetime, batch: int = BATCH_BREACHES) -> int:
    """Messages waiting longer than the SLA become tasks for the contact's owner (or, for a contact
    without an active owner, the staff member written to), due now; with nobody to give it to, the
    wait is dropped. Returns waits handled."""
    settings = service.load_settings(session, workspace_id)
    if not settings.generators.unanswered:
        return 0
    deadline = now - dt.timedelta(minutes=settings.sla_minutes)
    rows = session.execute(
        select(AwaitingReply, Contact.owner_id, Contact.name)
        .join(Contact, Contact.id == AwaitingReply.contact_id)
        .where(AwaitingReply.workspace_id == workspace_id, AwaitingReply.received_at <= deadline)
        .order_by(AwaitingReply.received_at)
        .limit(batch)
        .with_for_update(of=AwaitingReply, skip_locked=True)
    ).all()
    if not rows:
        return 0
    candidates = {r[1] for r in rows if r[1] is not None} | {r[0].staff_id for r in rows if r[0].staff_id}
    active = set(
        session.scalars(
            select(Staff.id).where(
                Staff.workspace_id == workspace_id, Staff.id.in_(sorted(candidates)), Staff.is_active.is_(True)
            )
        )
    )
    texts: dict[int, dict[str, object]] = dict(
        session.execute(
            select(Event.seq, Event.properties).where(
                Event.workspace_id == workspace_id, Event.seq.in_(sorted(r[0].event_seq for r in rows))
            )
        ).all()
    )
    for waiting, owner_id, name in rows:
        staff_id = owner_id if owner_id in active else waiting.staff_id if waiting.staff_id in active else None
        if staff_id is not None:
            text = (texts.get(waiting.event_seq) or {}).get("text")
            service.create_generated(
                session,
                workspace_id,
                staff_id=staff_id,
                kind=TaskKind.unanswered,
                title=name or f"#{waiting.contact_id}",
                contact_id=waiting.contact_id,
                due_at=now,
                source_key=f"unanswered:{waiting.contact_id}:{waiting.event_seq}",
                source_at=ensure_utc(waiting.received_at),
                detail=text[:DETAIL_MAX] if isinstance(text, str) and text else None,
            )
        session.delete(waiting)  # made a task, or nobody to give it to
    session.flush()
    return len(rows)


# --------------------------------------------------------------------------- running


def workspaces_past_sla(session: Session, now: dt.datetime) -> list[int]:
    """Workspaces whose oldest waiting message is older than their SLA (the table holds only the
    contacts waiting now, so this is read on every turn of the worker without a write lock)."""
    oldest = session.execute(
        select(AwaitingReply.workspace_id, func.min(AwaitingReply.received_at))
        .group_by(AwaitingReply.workspace_id)
        .order_by(AwaitingReply.workspace_id)
    ).all()
    return [
        workspace_id
        for workspace_id, received_at in oldest
        if ensure_utc(received_at)
        <= now - dt.timedelta(minutes=service.load_settings(session, workspace_id).sla_minutes)
    ]


def run_pending(db: Database, *, max_steps: int = 20) -> int:
    """Reads the stream up to its head, then turns overdue waits into tasks. Returns work done."""
    done = cursors.run_behind(db, CURSOR, step, max_steps=max_steps)
    now = utcnow()
    with db.transaction(write=False) as session:
        late = workspaces_past_sla(session, now)
    for workspace_id in late:
        with db.transaction() as session:
            done += raise_unanswered(session, workspace_id, now=now)
    return done


def catch_up(db: Database) -> int:
    total = 0
    while (done := run_pending(db)) > 0:
        total += done
    return total
