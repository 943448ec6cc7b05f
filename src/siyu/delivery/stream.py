"""Delivery's background work: releasing held deliveries, opt-outs from received messages, the sandbox's
simulated engagement, and housekeeping. Each runs in short transactions of its own (see tasks.py).

Opt-outs read a workspace's events in sequence order after their own cursor ("delivery.optouts" in
`stream_cursor`), and commit the opt-outs and the cursor together, so a crash repeats nothing and loses
nothing. A `message.received` whose whole text, normalised (full-width to half-width, trimmed, lower
case), is one of the workspace's opt-out words opts its contact out; a `contact.merged` carries an
opt-out of the merged profile over to the survivor.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import String, cast, delete, exists, literal, or_, select
from sqlalchemy.orm import Session

from siyu.content.models import ContentPush
from siyu.content.service import record_view
from siyu.db import Database
from siyu.delivery import budget, policy, reasons, service
from siyu.delivery.models import (
    Channel,
    ContactSendDay,
    Delivery,
    DeliveryStatus,
    OptOut,
    SandboxMessage,
    StaffSendDay,
)
from siyu.events import cursors
from siyu.events.repository import record_system_event
from siyu.jobs.models import Job, JobStatus
from siyu.kit.time import utcnow

OPT_OUT_CURSOR = "delivery.optouts"
OPT_OUT_TYPES = ("message.received", "contact.merged")
BATCH_EVENTS = 5_000
HELD_BATCH = 500
ENGAGEMENT_BATCH = 500
STRANDED_AFTER = dt.timedelta(hours=1)
OPTED_OUT_EVENT = "contact.opted_out"
OPTED_IN_EVENT = "contact.opted_in"


# --------------------------------------------------------------------------- held deliveries


def release_due(db: Database, *, now: dt.datetime | None = None, batch: int = HELD_BATCH) -> int:
    now = now or utcnow()
    with db.transaction(write=False) as session:
        due = service.due_held(session, now, batch)
    by_workspace: dict[int, list[int]] = defaultdict(list)
    for ws, did in due:
        by_workspace[ws].append(did)
    done = 0
    for ws, ids in by_workspace.items():
        with db.transaction() as session:
            done += service.release_held(session, ws, ids, now=now)
    return done


# --------------------------------------------------------------------------- opt-outs


def record_opt_out(
    session: Session, workspace_id: int, contact_id: int, *, source: str, detail: str | None, now: dt.datetime
) -> bool:
    """Opts the contact out and records `contact.opted_out` on their stream; False if they already were."""
    if not service.opt_out(session, workspace_id, contact_id, source=source, detail=detail, now=now):
        return False
    minute = int(now.timestamp()) // 60
    record_system_event(
        session,
        workspace_id=workspace_id,
        contact_id=contact_id,
        type=OPTED_OUT_EVENT,
        event_id=f"siyu:{OPTED_OUT_EVENT}:{contact_id}:{minute}",
        properties={"source": source, "detail": detail},
        occurred_at=now,
    )
    return True


def record_opt_in(session: Session, workspace_id: int, contact_id: int, *, source: str, now: dt.datetime) -> bool:
    if not service.opt_in(session, workspace_id, contact_id):
        return False
    minute = int(now.timestamp()) // 60
    record_system_event(
        session,
        workspace_id=workspace_id,
        contact_id=contact_id,
        type=OPTED_IN_EVENT,
        event_id=f"siyu:{OPTED_IN_EVENT}:{contact_id}:{minute}",
        properties={"source": source},
        occurred_at=now,
    )
    return True


def opt_out_step(session: Session, workspace_id: int, *, batch: int = BATCH_EVENTS) -> int:
    """Reads up to `batch` events after the cursor. Returns events read (0: up to date). The caller commits."""
    read = cursors.read_next(session, OPT_OUT_CURSOR, workspace_id, OPT_OUT_TYPES, batch)
    if read is None:
        return 0
    rows = read.rows
    if rows:
        config, _ = policy.load(session, workspace_id)
        words = set(config.opt_out_words)
        for kind, contact_id, at, raw, _seq in rows:
            props = raw or {}
            if kind == "contact.merged":
                merged = props.get("merged_contact_id")
                if isinstance(merged, int) and session.get(OptOut, merged) is not None:
                    record_opt_out(
                        session, workspace_id, contact_id, source="merge", detail=f"contact {merged}", now=at
                    )
                continue
            text = props.get("text")
            if isinstance(text, str) and len(text) <= 200:
                word = policy.normalise(text)
                if word in words:
                    record_opt_out(
                        session, workspace_id, contact_id, source="message", detail=text.strip()[:200], now=at
                    )
    done = read.advance()
    session.flush()
    return done


def run_opt_outs(db: Database, *, max_steps: int = 20) -> int:
    return cursors.run_behind(db, OPT_OUT_CURSOR, opt_out_step, max_steps=max_steps)


# --------------------------------------------------------------------------- sandbox engagement


def record_engagement(db: Database, *, now: dt.datetime | None = None, batch: int = ENGAGEMENT_BATCH) -> int:
    """Records the sandbox's simulated opens (on the message) and clicks (a view of the tracked link, so
    `content.viewed` for the contact) whose time has come."""
    now = now or utcnow()
    with db.transaction(write=False) as session:
        any_due = session.scalar(
            select(SandboxMessage.id)
            .where(SandboxMessage.pending_at.is_not(None), SandboxMessage.pending_at <= now)
            .limit(1)
        )
    if any_due is None:
        return 0
    with db.transaction() as session:
        messages = list(
            session.scalars(
                select(SandboxMessage)
                .where(SandboxMessage.pending_at.is_not(None), SandboxMessage.pending_at <= now)
                .order_by(SandboxMessage.pending_at, SandboxMessage.id)
                .limit(batch)
                .with_for_update(skip_locked=True)
            )
        )
        pushes: dict[int, ContentPush | None] = {}
        for message in messages:
            if message.opens_at is not None and message.opened_at is None and message.opens_at <= now:
                message.opened_at = message.opens_at
            if message.clicks_at is not None and message.clicked_at is None and message.clicks_at <= now:
                push_id = session.scalar(select(Delivery.push_id).where(Delivery.id == message.id))
                if push_id is not None:
                    if push_id not in pushes:
                        pushes[push_id] = session.get(ContentPush, push_id)
                    push = pushes[push_id]
                    if push is not None:
                        record_view(session, push, message.contact_id, message.clicks_at)
                message.clicked_at = message.clicks_at
            upcoming = [
                at
                for at, done in ((message.opens_at, message.opened_at), (message.clicks_at, message.clicked_at))
                if at is not None and done is None
            ]
            message.pending_at = min(upcoming) if upcoming else None
        session.flush()
    return len(messages)


# --------------------------------------------------------------------------- housekeeping


def housekeeping(session: Session, *, now: dt.datetime | None = None) -> None:
    now = now or utcnow()
    oldest = (now - dt.timedelta(days=budget.COUNTER_RETENTION_DAYS)).date()
    session.execute(delete(ContactSendDay).where(ContactSendDay.day < oldest))
    session.execute(delete(StaffSendDay).where(StaffSendDay.day < oldest))
    settle_stranded(session, now=now)


def settle_stranded(session: Session, *, now: dt.datetime, limit: int = 1000) -> int:
    """Queued external deliveries with no pending send job (it was dead-lettered without running, e.g. a
    lease that expired on its last attempt): WeCom ones that had started a call are `unknown`, the rest
    `failed` (dead_letter), and their budget is given back. Deliveries their caller sends by itself
    (reason sent_by_caller) never had a job and are left to the caller."""
    pending_job = exists().where(
        Job.dedupe_key == literal("delivery:") + cast(Delivery.id, String),
        Job.status.in_([JobStatus.queued, JobStatus.running]),
    )
    rows = list(
        session.scalars(
            select(Delivery)
            .where(
                Delivery.status == DeliveryStatus.queued,
                Delivery.channel != Channel.sandbox,
                # a caller sending by itself has no job: it reports the outcome (record_outcomes)
                or_(Delivery.reason.is_(None), Delivery.reason != reasons.SENT_BY_CALLER),
                Delivery.updated_at < now - STRANDED_AFTER,
                ~pending_job,
            )
            .order_by(Delivery.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    for row in rows:
        row.updated_at = now
        if row.channel is Channel.wecom and row.call_started_at is not None:
            row.status, row.reason = DeliveryStatus.unknown, reasons.OUTCOME_UNKNOWN
            row.detail = "the send job stopped after calling WeCom and was given up; not repeated"
        else:
            row.status, row.reason = DeliveryStatus.failed, reasons.DEAD_LETTER
            row.detail = "the send job was given up (out of attempts) without recording an outcome"
            service.give_back(session, row)
    session.flush()
    return len(rows)
