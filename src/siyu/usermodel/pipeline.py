"""The user-model pipeline: new events (and changed contacts) in, everything that follows from them out.

One step, for one workspace, in one transaction:

    events after the cursor ──> computed properties ──> keyword smart tags ──> scores
    contacts marked dirty  ──┘                       ──> rule smart tags ──> segment membership
                                                                          (segment.entered/exited)
    ...and the cursor moves to the last event read.

Because the aggregates, the tags, the memberships and the cursor commit together, a crash anywhere
leaves nothing counted twice and nothing missed: the next step starts again from the cursor. Workers
run steps through a poller (`siyu.usermodel.tasks`); on PostgreSQL the cursor row is locked with SKIP
LOCKED so two workers never work on one workspace at once.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import select, union
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from siyu.computed import service as computed
from siyu.computed.dirty import mark_dirty, take_dirty
from siyu.computed.models import ContactDirty
from siyu.db import Database
from siyu.events import cursors, inbox
from siyu.events.service import workspace_timezone
from siyu.kit.time import utcnow
from siyu.kit.timing import PhaseTimer
from siyu.recommend import portrait as portraits
from siyu.scoring import intention
from siyu.scoring import service as scoring
from siyu.segments import service as segments
from siyu.segments.models import Segment
from siyu.segments.rules import json_values, segment_refs_in
from siyu.smarttags import service as smarttags
from siyu.smarttags.models import SmartTagRule

log = logging.getLogger("siyu.usermodel")

CURSOR = "usermodel"
# Events per step at most: a step takes every event waiting, up to this. At a million contacts nearly
# every event dirties its own pages of each per-contact table; a bigger step upserts in key order and
# commits once for all its events (docs/adr/0011, 0013). It also bounds how long a step holds SQLite's
# write lock (and PostgreSQL's cursor row): a few seconds at a million contacts.
BATCH_EVENTS = 20_000
MAX_YIELD_SECONDS = 0.15
PIPELINE_EVENT_TYPES = frozenset({"segment.entered", "segment.exited"})  # what step() itself records


@dataclass
class StepResult:
    events: int = 0
    dirty: int = 0
    touched: set[int] = field(default_factory=set)
    entered: int = 0
    exited: int = 0
    own_moves: int = 0  # segment entries and exits recorded and counted by the step itself
    timer: PhaseTimer = field(default_factory=PhaseTimer)  # seconds per phase, "commit" added by run_pending

    @property
    def work(self) -> int:
        return self.events + self.dirty + self.own_moves


def step(
    session: Session, workspace_id: int, *, now: dt.datetime | None = None, batch: int = BATCH_EVENTS
) -> StepResult:
    """Processes up to `batch` new events and the dirty contacts of one workspace. The caller commits."""
    result = StepResult()
    timed = result.timer
    with timed("read"):
        cursor = cursors.lock(session, CURSOR, workspace_id)
        if cursor is None:
            return result
        # Before any write (PostgreSQL): a full scoring run holds the basis exclusively while it changes
        # contacts, so taking it after touching contact rows could deadlock with it.
        intention.share_basis(session, workspace_id)
        events = computed.read_events(session, workspace_id, after_seq=cursor.seq, limit=batch)
        dirty = take_dirty(session, workspace_id)
        if not events and not dirty:
            return result
        now = now or utcnow()
        tz = workspace_timezone(session, workspace_id)

    # A merge moved the merged profile's events to the survivor: rebuild the survivor from the raw
    # events up to this batch's end rather than adding this batch's share on top.
    survivors = {e.contact_id for e in events if e.type == "contact.merged"}
    merged_away = {
        int(e.properties["merged_contact_id"])
        for e in events
        if e.type == "contact.merged" and isinstance(e.properties.get("merged_contact_id"), int)
    }
    incremental = [e for e in events if e.contact_id not in survivors]
    with timed("computed"):
        computed.apply_events(session, workspace_id, incremental, tz, timer=timed)
    with timed("portraits"):
        portraits.apply_content_events(session, workspace_id, incremental)
    if survivors or merged_away:
        with timed("merges"):
            computed.forget(session, merged_away)
            computed.rebuild(session, workspace_id, tz, contact_ids=survivors, up_to_seq=events[-1].seq)
            portraits.forget_portraits(session, workspace_id, merged_away)
            portraits.rebuild_portraits(session, workspace_id, contact_ids=survivors, up_to_seq=events[-1].seq)
            segments.drop_merged(session, merged_away)

    with timed("keyword_tags"):
        quiet = quiet_types(session, workspace_id)
        touched = ({e.contact_id for e in events if e.type not in quiet} | set(dirty)) - merged_away
        touched |= smarttags.apply_keyword_rules(session, workspace_id, events)
    with timed("scoring"):
        scoring.recompute(session, workspace_id, contact_ids=touched, now=now)
    with timed("rule_tags"):
        touched |= smarttags.apply_rule_tags(session, workspace_id, among=touched, now=now)
    with timed("segments"):
        moved = segments.refresh_workspace(session, workspace_id, among=touched, now=now)
    consumed = events[-1].seq if events else cursor.seq
    with timed("own_moves"):
        recorded = moved.entered + moved.exited
        own = _count_own_moves(session, workspace_id, tz, quiet, after_seq=consumed, recorded=recorded)

    if own or events:
        cursor.seq = own[-1].seq if own else consumed
        cursor.updated_at = now
    with timed("flush"):
        session.flush()
    result.events, result.dirty, result.touched, result.own_moves = len(events), len(dirty), touched, len(own)
    result.entered, result.exited = moved.entered, moved.exited
    return result


def _count_own_moves(
    session: Session, workspace_id: int, tz: ZoneInfo, quiet: frozenset[str], *, after_seq: int, recorded: int
) -> list[computed.StreamEvent]:
    """Quiet events (no rule reads them) right after the events this step read, as many as it recorded,
    counted in its own transaction. Usually they are the entries and exits it just recorded, whose
    contacts' pages it has just written and which the next step would only have counted; when unread
    entries of earlier steps come first, those are counted instead, which is as good (quiet events only
    need counting). Returns them (the cursor moves past them), or none when anything else lies between
    or among them (unread events, or on PostgreSQL a batch stored meanwhile): the next step then reads
    them as before."""
    if not recorded:
        return []
    own = computed.read_events(session, workspace_id, after_seq=after_seq, limit=recorded)
    contiguous = len(own) == recorded and all(e.seq == after_seq + 1 + n for n, e in enumerate(own))
    if not contiguous or any(e.type not in quiet for e in own):
        return []
    # What a step does with quiet events; keyword rules and portraits take none of these types today.
    computed.apply_events(session, workspace_id, own, tz)
    portraits.apply_content_events(session, workspace_id, own)
    tagged = smarttags.apply_keyword_rules(session, workspace_id, own)
    if tagged:
        mark_dirty(session, workspace_id, tagged)
    return own


def quiet_types(session: Session, workspace_id: int) -> frozenset[str]:
    """The pipeline's own event types (segment entries and exits) that no segment rule, smart tag rule
    or scoring setting of the workspace names: a contact whose only new events are of these has nothing
    else changed, so it is counted (computed properties) but not scored and matched again. Without this,
    each entry a step records makes the next step redo its contact. Any mention counts as a read, and so
    does any smart tag rule or transaction stage on segment membership: a step scores and tags before it
    refreshes segments, so those follow an entry in the next step, as before."""
    named: set[str] = set()
    for raw in session.scalars(select(Segment.rule).where(Segment.workspace_id == workspace_id)):
        named |= _strings_in(raw)
    rules = select(SmartTagRule.rule).where(SmartTagRule.workspace_id == workspace_id, SmartTagRule.rule.is_not(None))
    for raw in session.scalars(rules):
        named |= _strings_in(raw)
        if segment_refs_in(raw):
            return frozenset()  # a tag on segment membership: scored before segments, it follows the entries
    settings = scoring.settings_row(session, workspace_id)
    if settings is not None:
        named |= _strings_in(settings.config)
    if scoring.load_config(session, workspace_id).segment_ids():
        return frozenset()  # transaction stages moved by entering a segment, likewise
    return PIPELINE_EVENT_TYPES - named


def _strings_in(raw: object) -> set[str]:
    return {value for value in json_values(raw) if isinstance(value, str)}


def workspaces_with_work(session: Session) -> list[int]:
    behind = cursors.behind(CURSOR)
    marked = select(ContactDirty.workspace_id).distinct()
    return sorted(set(session.scalars(select(union(behind, marked).subquery().c[0]))))


def run_pending(
    db: Database,
    *,
    max_steps: int = 20,
    now: dt.datetime | None = None,
    yield_seconds: float | None = None,
    on_step: Callable[[StepResult], None] | None = None,
) -> int:
    """Steps every workspace that has new events or dirty contacts, each step its own transaction.

    Each step takes what is waiting, up to BATCH_EVENTS. On SQLite a step holds the only
    write lock; between steps the pipeline pauses for half as long as the step took (at most
    `MAX_YIELD_SECONDS`), so ingestion waiting on the lock gets its turn instead of losing every race
    to the next step. Returns the events and contacts processed (0: up to date). Each step's result,
    with its seconds per phase ("wait" for the write lock, "commit"), is logged at DEBUG and passed to
    `on_step`.
    """
    with db.transaction(write=False) as session:
        pending = workspaces_with_work(session)
    sqlite = db.engine.dialect.name == "sqlite"
    done = 0
    for workspace_id in pending:
        for _ in range(max_steps):
            started = time.perf_counter()
            with db.transaction(durable=False) as session:  # derived state: a lost step is run again
                session.connection()  # the write lock (SQLite) taken here, so that "wait" is the wait for it
                began = time.perf_counter()
                result = step(session, workspace_id, now=now, batch=BATCH_EVENTS)
                ended = time.perf_counter()
            result.timer.seconds["wait"] = began - started
            result.timer.seconds["commit"] = time.perf_counter() - ended
            if result.work:
                db.checkpoint_soon()
                log.debug(
                    "workspace %s: %s events, %s dirty contacts in %.2fs (%s)",
                    workspace_id,
                    result.events,
                    result.dirty,
                    time.perf_counter() - started,
                    result.timer.summary(),
                )
                if on_step is not None:
                    on_step(result)
            done += result.work
            if result.work == 0:
                break
            if sqlite:
                pause = yield_seconds
                if pause is None:
                    pause = min((time.perf_counter() - started) / 2, MAX_YIELD_SECONDS)
                time.sleep(pause)
    return done


def catch_up(db: Database, *, now: dt.datetime | None = None) -> int:
    """Stores received event batches, then runs steps until nothing is left (tests, the CLI, benchmarks)."""
    inbox.drain(db)
    total = 0
    while True:
        done = run_pending(db, now=now, yield_seconds=0)
        total += done
        if done == 0:
            return total


def rebuild_workspace(session: Session, workspace_id: int, *, now: dt.datetime | None = None) -> int:
    """Repair: recompute every aggregate from the raw events up to the cursor, then scores, tags, segments.

    Gives the same rows the incremental path built (tests hold the two together).
    """
    cursor = cursors.lock(session, CURSOR, workspace_id)
    if cursor is None:
        raise RuntimeError(f"workspace {workspace_id} is being processed by another worker; try again")
    read = computed.rebuild(session, workspace_id, contact_ids=None, up_to_seq=cursor.seq)
    portraits.rebuild_portraits(session, workspace_id, up_to_seq=cursor.seq)
    refresh_everything(session, workspace_id, now=now)
    return read


def refresh_everything(session: Session, workspace_id: int, *, now: dt.datetime | None = None) -> None:
    """The periodic full pass: windows slide and dates come closer even when nobody does anything."""
    now = now or utcnow()
    scoring.recompute(session, workspace_id, contact_ids=None, now=now)
    smarttags.apply_rule_tags(session, workspace_id, among=None, now=now)
    segments.refresh_workspace(session, workspace_id, now=now)


# What storing events and the pipeline's steps read and update per contact, all over their tables: the
# worker reads them into its writer cache when it starts (docs/adr/0011), least needed first. Not the
# event rows, nor indexes written only at their end (sequence, event id, the recent days of the
# per-day counts).
WORKING_SET = (
    "segment_member",
    "contact_tag",
    "contact_intention",
    "contact_score",
    "identity",
    "contact",
    "contact_event_stat",
    "contact_event_day",
    "event",
)
NOT_IN_WORKING_SET = frozenset(
    {"event", "sqlite_autoindex_event_1", "sqlite_autoindex_event_2", "ix_contact_event_day_ws_type_day"}
)


def warm_worker_cache(db: Database) -> list[str]:
    """Reads WORKING_SET into the worker's writer cache (SQLite; see Database.warm_writer_cache)."""
    return db.warm_writer_cache(WORKING_SET, skip=NOT_IN_WORKING_SET)


def start_worker_database(db: Database) -> list[str]:
    """How `siyu worker` (and bench.usermodel's worker) readies its Database before taking work: every
    write on one connection, that connection's cache warmed with WORKING_SET, a checkpointer thread.
    Returns the b-trees read; none when the schema is not there yet (the warm-up is a speed-up only:
    the jobs then say what is missing)."""
    db.keep_one_writer()
    try:
        warmed = warm_worker_cache(db)
    except OperationalError as exc:
        log.warning("the writer cache was not warmed: %s", exc)
        warmed = []
    db.start_checkpointer()
    return warmed
