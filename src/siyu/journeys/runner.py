"""The journey runner: claim due enrolments in batches, move each through steps until it waits or ends, send
what the steps asked for in one `send_many` call per workspace, write everything back, commit once.

Everything a batch does (steps, tags, tasks, sandbox messages, outbox rows for external channels, the
journey events, the counters) is in its one transaction: a crash anywhere rolls the batch back, and the
next run starts from the rows as they were, so nothing is lost and nothing is sent twice (delivery is
also idempotent per (journey, step, contact, enrolment)).

Steps run wave by wave: all enrolments of the batch at the same step are handled together (one query for
a branch condition, one tag change per step), then each moves on, until every one waits or ends.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from siyu.auth.principal import Principal
from siyu.computed.dirty import mark_dirty
from siyu.computed.service import StreamEvent
from siyu.contacts import attributes as attrs
from siyu.contacts.models import Contact
from siyu.contacts.service import change_owner
from siyu.db import Database
from siyu.delivery.models import Channel, DeliveryStatus
from siyu.delivery.service import SendOutcome, SendRequest, send_many
from siyu.errors import SiyuError
from siyu.events.models import Event
from siyu.events.service import workspace_timezone
from siyu.groups.models import GroupCode
from siyu.journeys.definition import (
    AttributeStep,
    BranchStep,
    Definition,
    ExitStep,
    HoldoutStep,
    InviteStep,
    OwnerStep,
    SendStep,
    SplitStep,
    Step,
    TagStep,
    TaskStep,
    WaitEventStep,
    WaitStep,
    WebhookStep,
    fill,
)
from siyu.journeys.models import Arm, EnrolmentStatus, Journey, JourneyEnrolment, JourneyStatus, JourneyVersion
from siyu.journeys.schedule import next_time_of_day
from siyu.journeys.state import ENROLMENT, Ending, Pending, among, chunks, definitions, end, event_positions
from siyu.kit.time import utcnow
from siyu.recommend.service import recommend_batch
from siyu.segments import service as segments
from siyu.segments.compiler import matching_contacts
from siyu.segments.evaluate import performed
from siyu.segments.rules import PropertyFilter, RuleError
from siyu.stafftasks.models import TaskKind
from siyu.stafftasks.service import create_task
from siyu.tags.models import Tag, TagSource
from siyu.tags.service import change_tags

log = logging.getLogger("siyu.journeys")

BATCH = 500
MAX_WAVES = 50  # steps one enrolment takes in one batch at most; the rest in the next batch
RUN_SECONDS = 0.5  # one poll of the runner works at most this long before letting other pollers in


@dataclass(slots=True)
class Run:
    """One claimed enrolment: as claimed, then as the steps leave it."""

    id: int
    workspace_id: int
    journey_id: int
    version_id: int
    contact_id: int
    step: str
    waiting: bool
    event_matched: bool
    wait_seq: int | None
    entry_seq: int
    arm: str | None
    goal_at: dt.datetime | None
    due_at: dt.datetime | None = None
    wait_event: str | None = None
    moving: bool = True
    ending: tuple[EnrolmentStatus, str] | None = None


@dataclass(slots=True)
class Outreach:
    run: Run
    step: Step
    request: SendRequest | None  # None: resolved later (recommendations)
    recommend_text: str | None = None


@dataclass
class BatchResult:
    enrolments: int = 0
    steps: int = 0
    sends: int = 0


@dataclass
class _Contact:
    owner_id: int | None
    name: str | None
    merged: bool


@dataclass
class _Batch:
    session: Session
    now: dt.datetime
    defs: dict[int, Definition]
    contacts: dict[int, _Contact]
    positions: dict[int, int]
    names: dict[int, str]
    versions: dict[int, int]
    pending: Pending = field(default_factory=Pending)
    outreach: list[Outreach] = field(default_factory=list)
    steps: int = 0
    _zones: dict[int, Any] = field(default_factory=dict)
    _codes: dict[int, str | None] = field(default_factory=dict)

    def zone(self, workspace_id: int) -> Any:
        if workspace_id not in self._zones:
            self._zones[workspace_id] = workspace_timezone(self.session, workspace_id)
        return self._zones[workspace_id]

    def slug(self, code_id: int, workspace_id: int) -> str | None:
        if code_id not in self._codes:
            row = self.session.execute(
                select(GroupCode.slug).where(GroupCode.id == code_id, GroupCode.workspace_id == workspace_id)
            ).first()
            self._codes[code_id] = row[0] if row else None
        return self._codes[code_id]


def _system(workspace_id: int) -> Principal:
    return Principal(workspace_id=workspace_id, scopes=frozenset())


def _fraction(run: Run, step_id: str) -> float:
    """A number in [0, 1) fixed by the enrolment and the step: a re-run after a crash draws the same."""
    digest = hashlib.blake2b(f"{run.id}:{step_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


# --------------------------------------------------------------------------- claiming


def claim(session: Session, now: dt.datetime, limit: int) -> list[Run]:
    """Due enrolments of active journeys, oldest first; locked (SKIP LOCKED) on PostgreSQL, where other
    workers take the rest. SQLite's one writer needs no lock."""
    e = JourneyEnrolment
    q = (
        select(
            e.id,
            e.workspace_id,
            e.journey_id,
            e.version_id,
            e.contact_id,
            e.step,
            e.waiting,
            e.event_matched,
            e.wait_seq,
            e.entry_seq,
            e.arm,
            e.goal_at,
        )
        .join(Journey, Journey.id == e.journey_id)
        .where(e.due_at <= now, e.status == EnrolmentStatus.active, Journey.status == JourneyStatus.active)
        .order_by(e.due_at, e.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update(of=e.__table__, skip_locked=True)  # type: ignore[arg-type]
    return [
        Run(
            int(r[0]),
            int(r[1]),
            int(r[2]),
            int(r[3]),
            int(r[4]),
            r[5],
            bool(r[6]),
            bool(r[7]),
            r[8],
            int(r[9]),
            r[10].value if isinstance(r[10], Arm) else r[10],
            r[11],
        )
        for r in session.execute(q)
    ]


# --------------------------------------------------------------------------- moving


def _go(batch: _Batch, run: Run, target: str | None) -> None:
    """Leaves the current step for `target` (None: the end of the path, the journey is completed)."""
    if target is None:
        run.ending = (EnrolmentStatus.completed, "completed")
        run.moving = False
        return
    batch.pending.add(run.workspace_id, run.journey_id, run.step, "passed")
    batch.pending.add(run.workspace_id, run.journey_id, target, "arrived")
    run.step = target
    run.waiting = False


def _exit(run: Run, reason: str) -> None:
    run.ending = (EnrolmentStatus.exited, reason)
    run.moving = False


def _events_of(
    session: Session, workspace_id: int, contact_ids: Sequence[int], types: set[str], after_seq: int
) -> dict[int, list[StreamEvent]]:
    """Events of these types by these contacts after a stream position, per contact, in order."""
    out: dict[int, list[StreamEvent]] = defaultdict(list)
    for chunk in chunks(sorted(set(contact_ids))):
        for row in session.execute(
            select(Event.seq, Event.type, Event.contact_id, Event.occurred_at, Event.properties)
            .where(
                Event.workspace_id == workspace_id,
                among(session, Event.contact_id, chunk),
                Event.type.in_(sorted(types)),
                Event.seq > after_seq,
            )
            .order_by(Event.seq)
        ):
            out[int(row[2])].append(StreamEvent(*row))
    return out


def _first_match(
    events: list[StreamEvent], event_type: str, where: tuple[PropertyFilter, ...], after_seq: int
) -> StreamEvent | None:
    later = [e for e in events if e.seq > after_seq]
    found = performed(event_type, where, later)
    return found[0] if found else None


def check_goals(batch: _Batch, runs: list[Run]) -> None:
    """A goal event already in the stream takes the contact out before any step runs (the trigger poller
    does this promptly too; this makes sure no step runs for someone who has converted)."""
    by_workspace: dict[int, list[Run]] = defaultdict(list)
    for run in runs:
        goal = batch.defs[run.version_id].goal
        if goal is not None:
            by_workspace[run.workspace_id].append(run)
    for workspace_id, group in by_workspace.items():
        types = {batch.defs[r.version_id].goal.type for r in group}  # type: ignore[union-attr]
        events = _events_of(
            batch.session, workspace_id, [r.contact_id for r in group], types, min(r.entry_seq for r in group)
        )
        for run in group:
            goal = batch.defs[run.version_id].goal
            assert goal is not None
            hit = _first_match(events.get(run.contact_id, []), goal.type, goal.where, run.entry_seq)
            if hit is None:
                continue
            if run.goal_at is None:
                run.goal_at = hit.occurred_at
            if goal.exit:
                _exit(run, "goal")


def _wait(batch: _Batch, step: WaitStep, runs: list[Run]) -> None:
    for run in runs:
        batch.steps += 1
        if run.waiting:  # the timer fired
            _go(batch, run, step.next)
            continue
        due = batch.now
        if step.duration is not None:
            due += step.duration
        if step.until is not None:
            # "until 10:00" alone means the next 10:00 after now; after a duration, the first one from then on
            tz = batch.zone(run.workspace_id)
            due = next_time_of_day(due, step.until, tz, strictly_after=step.duration is None)
        run.waiting, run.due_at, run.moving = True, due, False


def _wait_event(batch: _Batch, step: WaitEventStep, runs: list[Run]) -> None:
    arriving = [r for r in runs if not r.waiting]
    resuming = [r for r in runs if r.waiting]
    for run in arriving:
        batch.steps += 1
        run.waiting, run.moving = True, False
        run.wait_event = step.event
        run.wait_seq = batch.positions.get(run.workspace_id, 0)
        run.event_matched = False
        run.due_at = batch.now + step.timeout
    unmatched = [r for r in resuming if not r.event_matched]
    found: dict[int, bool] = {}
    by_workspace: dict[int, list[Run]] = defaultdict(list)
    for run in unmatched:
        by_workspace[run.workspace_id].append(run)
    for workspace_id, group in by_workspace.items():
        # the poller marks matches as events arrive; a match it has not seen yet still counts
        after = min(r.wait_seq or 0 for r in group)
        events = _events_of(batch.session, workspace_id, [r.contact_id for r in group], {step.event}, after)
        for run in group:
            found[run.id] = (
                _first_match(events.get(run.contact_id, []), step.event, step.where, run.wait_seq or 0) is not None
            )
    for run in resuming:
        batch.steps += 1
        matched = run.event_matched or found.get(run.id, False)
        run.wait_event, run.wait_seq, run.event_matched = None, None, False
        _go(batch, run, step.on_event if matched else step.on_timeout)


def _branch(batch: _Batch, step: BranchStep, runs: list[Run]) -> None:
    by_workspace: dict[int, list[Run]] = defaultdict(list)
    for run in runs:
        by_workspace[run.workspace_id].append(run)
    for workspace_id, group in by_workspace.items():
        matched: set[int] = set()
        try:
            node = segments.parse(batch.session, workspace_id, step.condition)
            ctx = segments.context(batch.session, workspace_id, batch.now)
            ids = [r.contact_id for r in group]
            for chunk in chunks(ids):
                # a plain id list: an IN (subquery) form can get a generic plan on PostgreSQL that probes the
                # whole subquery for every contact
                matched.update(
                    int(c) for c in batch.session.scalars(matching_contacts(batch.session, ctx, node, among=chunk))
                )
        except RuleError as exc:
            # something the condition names was deleted since publishing: nobody matches
            log.warning("journey %s step %s: condition no longer valid (%s)", group[0].journey_id, step.id, exc.message)
        for run in group:
            batch.steps += 1
            _go(batch, run, step.then if run.contact_id in matched else step.otherwise)


def _split(batch: _Batch, step: SplitStep, runs: list[Run]) -> None:
    total = sum(w for w, _ in step.branches)
    for run in runs:
        batch.steps += 1
        _go(batch, run, _pick(step.branches, _fraction(run, step.id) * total))


def _pick(branches: tuple[tuple[int, str | None], ...], point: float) -> str | None:
    for weight, target in branches:
        if point < weight:
            return target
        point -= weight
    return branches[-1][1]


def _holdout(batch: _Batch, step: HoldoutStep, runs: list[Run]) -> None:
    for run in runs:
        batch.steps += 1
        if run.arm is None:
            run.arm = Arm.holdout.value if _fraction(run, step.id) * 100 < step.percent else Arm.treated.value
        _go(batch, run, step.next)


def _held_out(batch: _Batch, run: Run, step: Step) -> bool:
    if run.arm == Arm.holdout.value:
        batch.pending.add(run.workspace_id, run.journey_id, step.id, "withheld")
        return True
    return False


def _send(batch: _Batch, step: SendStep, runs: list[Run]) -> None:
    for run in runs:
        batch.steps += 1
        if not _held_out(batch, run, step):
            contact = batch.contacts[run.contact_id]
            text = fill(step.text, name=contact.name) if step.text is not None else None
            if step.recommend:
                batch.outreach.append(Outreach(run, step, None, text))
            else:
                batch.outreach.append(
                    Outreach(
                        run,
                        step,
                        SendRequest(
                            source=f"journey:{run.journey_id}",
                            step=step.id,
                            contact_id=run.contact_id,
                            entry=run.id,
                            channel=step.channel,
                            text=text,
                            content_id=step.content_id,
                            welfare=step.welfare,
                            service=step.service,
                            quiet_hours=step.quiet_hours,
                        ),
                    )
                )
        _go(batch, run, step.next)


def _invite(batch: _Batch, step: InviteStep, runs: list[Run]) -> None:
    for run in runs:
        batch.steps += 1
        if not _held_out(batch, run, step):
            slug = batch.slug(step.group_code_id, run.workspace_id)
            if slug is None:  # the code was deleted since publishing
                batch.pending.add(run.workspace_id, run.journey_id, step.id, "skipped")
            else:
                link = f"{step.base_url}/g/{slug}"
                text = fill(step.text, name=batch.contacts[run.contact_id].name, link=link)
                request = SendRequest(
                    source=f"journey:{run.journey_id}",
                    step=step.id,
                    contact_id=run.contact_id,
                    entry=run.id,
                    channel=step.channel,
                    text=text,
                )
                batch.outreach.append(Outreach(run, step, request))
        _go(batch, run, step.next)


def _webhook(batch: _Batch, step: WebhookStep, runs: list[Run]) -> None:
    for run in runs:
        batch.steps += 1
        if not _held_out(batch, run, step):
            payload = {
                **step.payload,
                "journey_id": run.journey_id,
                "step": step.id,
                "enrolment_id": run.id,
                "contact_id": run.contact_id,
            }
            request = SendRequest(
                source=f"journey:{run.journey_id}",
                step=step.id,
                contact_id=run.contact_id,
                entry=run.id,
                channel=Channel.webhook,
                webhook_url=step.url,
                payload=payload,
            )
            batch.outreach.append(Outreach(run, step, request))
        _go(batch, run, step.next)


def _tag(batch: _Batch, step: TagStep, runs: list[Run]) -> None:
    by_workspace: dict[int, list[Run]] = defaultdict(list)
    for run in runs:
        by_workspace[run.workspace_id].append(run)
    for workspace_id, group in by_workspace.items():
        wanted = set(step.add) | set(step.remove)
        existing = set(
            batch.session.scalars(select(Tag.id).where(Tag.workspace_id == workspace_id, Tag.id.in_(sorted(wanted))))
        )
        add = [t for t in step.add if t in existing]
        remove = [t for t in step.remove if t in existing]
        if add or remove:
            ids = [r.contact_id for r in group]
            for chunk in chunks(ids):
                change_tags(
                    batch.session,
                    _system(workspace_id),
                    select(Contact.id).where(
                        Contact.workspace_id == workspace_id, among(batch.session, Contact.id, chunk)
                    ),
                    add=add,
                    remove=remove,
                    reason=f"journey {batch.names.get(group[0].journey_id, group[0].journey_id)}, step {step.id}",
                    source=TagSource.journey,
                )
        for run in group:
            batch.steps += 1
            _go(batch, run, step.next)


def _set_attribute(batch: _Batch, step: AttributeStep, runs: list[Run]) -> None:
    by_workspace: dict[int, list[Run]] = defaultdict(list)
    for run in runs:
        by_workspace[run.workspace_id].append(run)
    for workspace_id, group in by_workspace.items():
        definition = attrs.definitions(batch.session, workspace_id).get(step.attribute)
        value: Any = step.value
        ok = definition is not None
        if ok and value is not None:
            assert definition is not None
            try:
                value = attrs.coerce_value(definition, value)
            except ValueError:
                ok = False
        if ok:
            ids = [r.contact_id for r in group]
            for chunk in chunks(ids):
                for contact in batch.session.scalars(select(Contact).where(among(batch.session, Contact.id, chunk))):
                    current = dict(contact.attributes or {})
                    if value is None:
                        current.pop(step.attribute, None)
                    else:
                        current[step.attribute] = value
                    if current != contact.attributes:
                        contact.attributes = current
            mark_dirty(batch.session, workspace_id, ids)
        else:
            log.warning("journey %s step %s: attribute %r no longer fits", group[0].journey_id, step.id, step.attribute)
        for run in group:
            batch.steps += 1
            _go(batch, run, step.next)


def _task(batch: _Batch, step: TaskStep, runs: list[Run]) -> None:
    for run in runs:
        batch.steps += 1
        owner = batch.contacts[run.contact_id].owner_id
        if not _held_out(batch, run, step):
            if owner is None:  # nobody to do it
                batch.pending.add(run.workspace_id, run.journey_id, step.id, "withheld")
            else:
                create_task(
                    batch.session,
                    run.workspace_id,
                    staff_id=owner,
                    kind=TaskKind.journey,
                    title=fill(step.title, name=batch.contacts[run.contact_id].name),
                    contact_id=run.contact_id,
                    due_at=batch.now + step.due_in,
                    source_key=f"journey:{run.journey_id}:{step.id}:{run.id}",
                    detail=step.detail,
                )
                batch.pending.add(run.workspace_id, run.journey_id, step.id, "sent")
        _go(batch, run, step.next)


def _owner(batch: _Batch, step: OwnerStep, runs: list[Run]) -> None:
    targets: dict[tuple[int, int], list[Run]] = defaultdict(list)
    for run in runs:
        targets[(run.workspace_id, step.staff_ids[run.id % len(step.staff_ids)])].append(run)
    for (workspace_id, staff_id), group in sorted(targets.items()):
        try:
            with batch.session.begin_nested():
                change_owner(
                    batch.session,
                    _system(workspace_id),
                    select(Contact.id).where(
                        Contact.workspace_id == workspace_id, Contact.id.in_([r.contact_id for r in group])
                    ),
                    staff_id,
                    f"journey {batch.names.get(group[0].journey_id, group[0].journey_id)}, step {step.id}",
                )
            for run in group:
                batch.contacts[run.contact_id].owner_id = staff_id
        except SiyuError as exc:  # the staff member left since publishing
            log.warning("journey %s step %s: owner not changed (%s)", group[0].journey_id, step.id, exc.message)
        for run in group:
            batch.steps += 1
            _go(batch, run, step.next)


def _exit_step(batch: _Batch, step: ExitStep, runs: list[Run]) -> None:
    for run in runs:
        batch.steps += 1
        _exit(run, "exit_step")


HANDLERS: dict[type[Step], Callable[[_Batch, Any, list[Run]], None]] = {
    WaitStep: _wait,
    WaitEventStep: _wait_event,
    BranchStep: _branch,
    SplitStep: _split,
    HoldoutStep: _holdout,
    SendStep: _send,
    InviteStep: _invite,
    WebhookStep: _webhook,
    TagStep: _tag,
    AttributeStep: _set_attribute,
    TaskStep: _task,
    OwnerStep: _owner,
    ExitStep: _exit_step,
}


def _advance(batch: _Batch, runs: list[Run]) -> None:
    moving = [r for r in runs if r.moving]
    for _ in range(MAX_WAVES):
        if not moving:
            return
        groups: dict[tuple[int, str], list[Run]] = defaultdict(list)
        for run in moving:
            groups[(run.version_id, run.step)].append(run)
        for (version_id, step_id), group in groups.items():
            step = batch.defs[version_id].steps.get(step_id)
            if step is None:  # cannot happen with a published version; end rather than spin
                for run in group:
                    _exit(run, "invalid_step")
                continue
            HANDLERS[type(step)](batch, step, group)
        moving = [r for r in moving if r.moving]
    for run in moving:  # went round MAX_WAVES steps: carry on in the next batch
        run.due_at = batch.now


# --------------------------------------------------------------------------- sending


def _tally(batch: _Batch, item: Outreach, outcome: SendOutcome) -> None:
    status = outcome.status
    counter = (
        "sent"
        if status in (DeliveryStatus.sent, DeliveryStatus.queued)
        else "held"
        if status is DeliveryStatus.held
        else "skipped"
        if status is DeliveryStatus.skipped
        else "failed"
    )
    batch.pending.add(item.run.workspace_id, item.run.journey_id, item.step.id, counter)


def _send_all(batch: _Batch) -> int:
    if not batch.outreach:
        return 0
    _resolve_recommendations(batch)
    by_workspace: dict[int, list[Outreach]] = defaultdict(list)
    for item in batch.outreach:
        if item.request is not None:
            by_workspace[item.run.workspace_id].append(item)
    sent = 0
    for workspace_id in sorted(by_workspace):
        items = by_workspace[workspace_id]
        outcomes = send_many(batch.session, workspace_id, [i.request for i in items if i.request], now=batch.now)
        for item, outcome in zip(items, outcomes, strict=True):
            _tally(batch, item, outcome)
        sent += len(items)
    return sent


def _resolve_recommendations(batch: _Batch) -> None:
    wanted: dict[tuple[int, int, str], list[Outreach]] = defaultdict(list)
    for item in batch.outreach:
        if item.request is None:
            wanted[(item.run.workspace_id, item.run.journey_id, item.step.id)].append(item)
    for (workspace_id, journey_id, _step_id), items in wanted.items():
        rows = recommend_batch(
            batch.session, workspace_id, [i.run.contact_id for i in items], limit=1, seed=journey_id, now=batch.now
        )
        best = {row.contact_id: (row.content_ids[0] if row.content_ids else None) for row in rows}
        for item in items:
            step = item.step
            assert isinstance(step, SendStep)
            content_id = best.get(item.run.contact_id)
            if content_id is None and item.recommend_text is None:
                batch.pending.add(workspace_id, journey_id, step.id, "skipped")  # nothing fits, no fallback
                continue
            item.request = SendRequest(
                source=f"journey:{journey_id}",
                step=step.id,
                contact_id=item.run.contact_id,
                entry=item.run.id,
                channel=step.channel,
                text=item.recommend_text if content_id is None else None,
                content_id=content_id,
                welfare=step.welfare,
                service=step.service,
                quiet_hours=step.quiet_hours,
            )


# --------------------------------------------------------------------------- writing back


def _write(batch: _Batch, runs: list[Run]) -> None:
    session, now = batch.session, batch.now
    going = [r for r in runs if r.ending is None]
    if going:
        session.execute(
            ENROLMENT.update()
            .where(ENROLMENT.c.id == _bp("id"))
            .values(
                step=_bp("step"),
                waiting=_bp("waiting"),
                due_at=_bp("due_at"),
                wait_event=_bp("wait_event"),
                wait_seq=_bp("wait_seq"),
                event_matched=_bp("event_matched"),
                arm=_bp("arm"),
                goal_at=_bp("goal_at"),
            ),
            [
                {
                    "b_id": r.id,
                    "b_step": r.step,
                    "b_waiting": r.waiting,
                    "b_due_at": r.due_at,
                    "b_wait_event": r.wait_event,
                    "b_wait_seq": r.wait_seq,
                    "b_event_matched": r.event_matched,
                    "b_arm": r.arm,
                    "b_goal_at": r.goal_at,
                }
                for r in going
            ],
        )
    ended = [r for r in runs if r.ending is not None]
    if ended:
        session.execute(
            ENROLMENT.update()
            .where(ENROLMENT.c.id == _bp("id"))
            .values(
                status=_bp("status"),
                exit_reason=_bp("reason"),
                step=_bp("step"),
                arm=_bp("arm"),
                goal_at=_bp("goal_at"),
                ended_at=now,
                due_at=None,
                waiting=False,
                wait_event=None,
                wait_seq=None,
                event_matched=False,
                live_contact_id=None,
            ),
            [
                {
                    "b_id": r.id,
                    "b_status": r.ending[0].value,  # type: ignore[index]
                    "b_reason": r.ending[1],  # type: ignore[index]
                    "b_step": r.step,
                    "b_arm": r.arm,
                    "b_goal_at": r.goal_at,
                }
                for r in ended
            ],
        )
        end(
            session,
            [
                Ending(
                    r.id,
                    r.workspace_id,
                    r.journey_id,
                    r.contact_id,
                    r.step,
                    r.ending[0],  # type: ignore[index]
                    r.ending[1],  # type: ignore[index]
                    r.goal_at,
                    r.arm,
                    batch.versions.get(r.version_id),
                )
                for r in ended
            ],
            now=now,
            names=batch.names,
            pending=batch.pending,
            update_rows=False,
        )
    batch.pending.write(session, now)


def _bp(name: str) -> Any:
    return bindparam(f"b_{name}")


# --------------------------------------------------------------------------- one batch


def run_batch(session: Session, *, now: dt.datetime | None = None, limit: int = BATCH) -> BatchResult:
    """Claims up to `limit` due enrolments and moves them on. The caller commits (once)."""
    now = now or utcnow()
    runs = claim(session, now, limit)
    result = BatchResult(enrolments=len(runs))
    if not runs:
        return result
    defs = definitions(session, {r.version_id for r in runs})
    journey_ids = sorted({r.journey_id for r in runs})
    names = {int(i): n for i, n in session.execute(select(Journey.id, Journey.name).where(Journey.id.in_(journey_ids)))}
    versions = {
        int(i): int(v)
        for i, v in session.execute(
            select(JourneyVersion.id, JourneyVersion.version).where(JourneyVersion.id.in_(sorted(defs)))
        )
    }
    contacts: dict[int, _Contact] = {}
    for chunk in chunks(sorted({r.contact_id for r in runs})):
        for cid, owner, name, merged in session.execute(
            select(Contact.id, Contact.owner_id, Contact.name, Contact.merged_into_id).where(
                among(session, Contact.id, chunk)
            )
        ):
            contacts[int(cid)] = _Contact(owner, name, merged is not None)
    batch = _Batch(
        session,
        now,
        defs,
        contacts,
        event_positions(session, {r.workspace_id for r in runs}),
        names,
        versions,
    )
    for run in runs:
        contact = contacts.get(run.contact_id)
        if contact is None or contact.merged:
            _exit(run, "merged")
    check_goals(batch, [r for r in runs if r.moving])
    _advance(batch, runs)
    result.sends = _send_all(batch)
    _write(batch, runs)
    result.steps = batch.steps
    return result


def run_pending(
    db: Database, *, now: dt.datetime | None = None, seconds: float = RUN_SECONDS, limit: int = BATCH
) -> int:
    """Batches, each its own transaction, until nothing is due or `seconds` have gone by; the steps run."""
    started = time.perf_counter()
    done = 0
    while True:
        with db.transaction() as session:
            result = run_batch(session, now=now, limit=limit)
        done += result.steps
        if result.enrolments < limit or time.perf_counter() - started > seconds:
            return done


def run_until_idle(db: Database, *, now: dt.datetime | None = None, limit: int = BATCH) -> int:
    """Batches until nothing is due (tests, benchmarks)."""
    total = 0
    while True:
        with db.transaction() as session:
            result = run_batch(session, now=now, limit=limit)
        total += result.steps
        if result.enrolments == 0:
            return total
