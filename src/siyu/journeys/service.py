"""Journeys: create and edit drafts, publish immutable versions, activate / pause / archive, enrol by hand,
take contacts out, and the per-step numbers with the goal conversion against the holdout."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from siyu.auth.principal import Principal
from siyu.computed.models import StreamCursor
from siyu.contacts.models import AttributeDefinition, AttributeType, Contact
from siyu.content.models import ContentItem, ContentStatus
from siyu.errors import Conflict, NotFound, validation_error
from siyu.events.service import workspace_timezone
from siyu.groups.models import GroupCode
from siyu.journeys import stats
from siyu.journeys.definition import (
    DateTrigger,
    Definition,
    DefinitionError,
    JourneyCatalog,
    ScheduleTrigger,
    parse_definition,
)
from siyu.journeys.models import (
    STAT_COUNTERS,
    Arm,
    EnrolmentStatus,
    Journey,
    JourneyEnrolment,
    JourneyStatus,
    JourneyStepStat,
    JourneyVersion,
)
from siyu.journeys.schedule import daily_after
from siyu.journeys.state import (
    Candidate,
    Ending,
    EnrolResult,
    JourneyRef,
    Pending,
    definition_of,
    end,
    enrol,
)
from siyu.kit.repository import flush_unique
from siyu.kit.sql import dialect_insert
from siyu.kit.time import utcnow
from siyu.segments import service as segments
from siyu.staff.models import Staff
from siyu.tags.models import TagChange
from siyu.workspaces.models import Workspace

STREAM_CURSOR = "journeys"
TAG_CURSOR = "journeys.tags"
LIVE = (JourneyStatus.active, JourneyStatus.paused)
MAX_MANUAL = 1000


# --------------------------------------------------------------------------- checking


def catalog(session: Session, workspace_id: int) -> JourneyCatalog:
    """Everything a definition may name in this workspace."""
    return JourneyCatalog(
        rules=segments.catalog(session, workspace_id),
        staff_ids=frozenset(
            session.scalars(select(Staff.id).where(Staff.workspace_id == workspace_id, Staff.is_active.is_(True)))
        ),
        content_ids=frozenset(
            session.scalars(
                select(ContentItem.id).where(
                    ContentItem.workspace_id == workspace_id, ContentItem.status == ContentStatus.published
                )
            )
        ),
        group_code_ids=frozenset(session.scalars(select(GroupCode.id).where(GroupCode.workspace_id == workspace_id))),
        date_attributes=frozenset(
            session.scalars(
                select(AttributeDefinition.key).where(
                    AttributeDefinition.workspace_id == workspace_id, AttributeDefinition.type == AttributeType.date
                )
            )
        ),
    )


def check(session: Session, workspace_id: int, raw: Any) -> Definition:
    """Parses a definition against the workspace; DefinitionError (422) names the bad node's path."""
    return parse_definition(raw, catalog(session, workspace_id))


# --------------------------------------------------------------------------- reading


def get_journey(session: Session, workspace_id: int, journey_id: int, *, for_update: bool = False) -> Journey:
    q = select(Journey).where(Journey.id == journey_id, Journey.workspace_id == workspace_id)
    if for_update:
        q = q.with_for_update()
    journey = session.scalars(q).one_or_none()
    if journey is None:
        raise NotFound(f"journey {journey_id} not found in this workspace")
    return journey


def list_journeys(session: Session, workspace_id: int, status: JourneyStatus | None = None) -> list[Journey]:
    q = select(Journey).where(Journey.workspace_id == workspace_id)
    if status is not None:
        q = q.where(Journey.status == status)
    return list(session.scalars(q.order_by(Journey.id.desc())))


def current_version(session: Session, journey: Journey) -> JourneyVersion | None:
    if journey.version is None:
        return None
    return session.scalars(
        select(JourneyVersion).where(JourneyVersion.journey_id == journey.id, JourneyVersion.version == journey.version)
    ).one_or_none()


def list_versions(session: Session, journey: Journey) -> list[JourneyVersion]:
    return list(
        session.scalars(
            select(JourneyVersion)
            .where(JourneyVersion.journey_id == journey.id)
            .order_by(JourneyVersion.version.desc())
        )
    )


def get_version(session: Session, journey: Journey, version: int) -> JourneyVersion:
    row = session.scalars(
        select(JourneyVersion).where(JourneyVersion.journey_id == journey.id, JourneyVersion.version == version)
    ).one_or_none()
    if row is None:
        raise NotFound(f"journey {journey.id} has no version {version}")
    return row


def ref(session: Session, journey: Journey) -> JourneyRef:
    version = current_version(session, journey)
    if version is None:
        raise Conflict(f"journey {journey.name!r} has no published version yet: publish it first")
    return JourneyRef(
        journey.id, journey.workspace_id, journey.name, version.version, version.id, definition_of(version.definition)
    )


# --------------------------------------------------------------------------- writing


def create_journey(
    session: Session,
    principal: Principal,
    *,
    name: str,
    definition: Any,
    description: str | None = None,
) -> Journey:
    check(session, principal.workspace_id, definition)
    journey = Journey(
        workspace_id=principal.workspace_id,
        name=name,
        description=description,
        status=JourneyStatus.draft,
        draft=definition,
        start_seq=0,
        created_by_staff_id=principal.staff_id,
    )
    session.add(journey)
    flush_unique(session, f"a journey named {name!r} already exists")
    return journey


def update_journey(
    session: Session,
    principal: Principal,
    journey_id: int,
    *,
    name: str | None = None,
    description: str | None = None,
    definition: Any = None,
) -> Journey:
    journey = get_journey(session, principal.workspace_id, journey_id, for_update=True)
    if journey.status is JourneyStatus.archived:
        raise Conflict(f"journey {journey.name!r} is archived; copy it into a new journey instead")
    if definition is not None:
        check(session, principal.workspace_id, definition)
        journey.draft = definition
    if description is not None:
        journey.description = description or None
    if name is not None and name != journey.name:
        journey.name = name
        flush_unique(session, f"a journey named {name!r} already exists")
    journey.updated_at = utcnow()
    session.flush()
    return journey


def publish(session: Session, principal: Principal, journey_id: int) -> JourneyVersion:
    """The draft becomes the next immutable version; new enrolments enter it, current ones stay where they are."""
    journey = get_journey(session, principal.workspace_id, journey_id, for_update=True)
    if journey.status is JourneyStatus.archived:
        raise Conflict(f"journey {journey.name!r} is archived")
    definition = check(session, principal.workspace_id, journey.draft)
    latest = session.scalar(select(func.max(JourneyVersion.version)).where(JourneyVersion.journey_id == journey.id))
    current = current_version(session, journey)
    if current is not None and current.definition == journey.draft:
        return current  # nothing changed since the last publish
    version = JourneyVersion(
        workspace_id=journey.workspace_id,
        journey_id=journey.id,
        version=(latest or 0) + 1,
        definition=journey.draft,
        published_by_staff_id=principal.staff_id,
    )
    session.add(version)
    session.flush()
    journey.version = version.version
    journey.trigger_kind = definition.trigger.kind
    if journey.status is JourneyStatus.active:
        journey.next_fire_at = _next_fire(session, journey.workspace_id, definition, utcnow())
    journey.updated_at = utcnow()
    session.flush()
    return version


def _next_fire(session: Session, workspace_id: int, definition: Definition, after: dt.datetime) -> dt.datetime | None:
    trigger = definition.trigger
    if isinstance(trigger, ScheduleTrigger):
        return trigger.cron.next_after(after, workspace_timezone(session, workspace_id))
    if isinstance(trigger, DateTrigger):
        return daily_after(after, trigger.at, workspace_timezone(session, workspace_id))
    return None


def _has_other_live(session: Session, journey: Journey) -> bool:
    return bool(
        session.scalar(
            select(func.count())
            .select_from(Journey)
            .where(Journey.workspace_id == journey.workspace_id, Journey.id != journey.id, Journey.status.in_(LIVE))
        )
    )


def _start_cursors(session: Session, journey: Journey, seq: int) -> None:
    """The stream and tag-change cursors start where the workspace is now, unless other journeys are already
    reading (then they go on from where they are: this journey ignores what came before it anyway)."""
    now = utcnow()
    last_change = session.scalar(select(func.max(TagChange.id)).where(TagChange.workspace_id == journey.workspace_id))
    insert_ = dialect_insert(session)
    others = _has_other_live(session, journey)
    for name, position in ((STREAM_CURSOR, seq), (TAG_CURSOR, int(last_change or 0))):
        statement = insert_(StreamCursor).values(
            name=name, workspace_id=journey.workspace_id, seq=position, updated_at=now
        )
        if others:
            session.execute(statement.on_conflict_do_nothing())
        else:
            session.execute(
                statement.on_conflict_do_update(
                    index_elements=["name", "workspace_id"], set_={"seq": position, "updated_at": now}
                )
            )


def activate(session: Session, principal: Principal, journey_id: int) -> Journey:
    journey = get_journey(session, principal.workspace_id, journey_id, for_update=True)
    if journey.status is JourneyStatus.archived:
        raise Conflict(f"journey {journey.name!r} is archived; it cannot run again")
    if journey.status is JourneyStatus.active:
        return journey
    version = current_version(session, journey)
    if version is None:
        raise Conflict(f"journey {journey.name!r} has no published version yet: publish it first")
    now = utcnow()
    seq = int(session.scalar(select(Workspace.event_seq).where(Workspace.id == journey.workspace_id)) or 0)
    if journey.activated_at is None or journey.status is JourneyStatus.draft:
        journey.start_seq = seq
        journey.activated_at = now
    _start_cursors(session, journey, seq)
    journey.status = JourneyStatus.active
    journey.next_fire_at = _next_fire(session, journey.workspace_id, definition_of(version.definition), now)
    journey.updated_at = now
    session.flush()
    return journey


def pause(session: Session, principal: Principal, journey_id: int) -> Journey:
    journey = get_journey(session, principal.workspace_id, journey_id, for_update=True)
    if journey.status is not JourneyStatus.active:
        raise Conflict(f"journey {journey.name!r} is {journey.status.value}, not active")
    journey.status = JourneyStatus.paused
    journey.next_fire_at = None
    journey.updated_at = utcnow()
    session.flush()
    return journey


def archive(session: Session, principal: Principal, journey_id: int) -> Journey:
    """Ends the journey: every contact still in it is taken out (reason archived)."""
    journey = get_journey(session, principal.workspace_id, journey_id, for_update=True)
    if journey.status is JourneyStatus.archived:
        return journey
    now = utcnow()
    rows = session.execute(
        select(JourneyEnrolment.id, JourneyEnrolment.contact_id, JourneyEnrolment.step)
        .where(JourneyEnrolment.journey_id == journey.id, JourneyEnrolment.status == EnrolmentStatus.active)
        .order_by(JourneyEnrolment.id)
        .with_for_update()
    ).all()
    pending = Pending()
    end(
        session,
        [
            Ending(int(i), journey.workspace_id, journey.id, int(c), s, EnrolmentStatus.exited, "archived")
            for i, c, s in rows
        ],
        now=now,
        names={journey.id: journey.name},
        pending=pending,
    )
    pending.write(session, now)
    journey.status = JourneyStatus.archived
    journey.next_fire_at = None
    journey.updated_at = now
    session.flush()
    return journey


def enrol_by_hand(session: Session, principal: Principal, journey_id: int, contact_ids: Sequence[int]) -> EnrolResult:
    """Puts contacts into an active journey now (tests, operations), under its entry rules."""
    journey = get_journey(session, principal.workspace_id, journey_id)
    if journey.status is not JourneyStatus.active:
        raise Conflict(f"journey {journey.name!r} is {journey.status.value}: activate it before enrolling")
    if len(contact_ids) > MAX_MANUAL:
        raise validation_error("contact_ids", f"at most {MAX_MANUAL} contacts at a time")
    owner = principal.owned_contacts_only
    ids = list(dict.fromkeys(contact_ids))
    visible = set(
        session.scalars(
            _visible(select(Contact.id).where(Contact.workspace_id == journey.workspace_id, Contact.id.in_(ids)), owner)
        )
    )
    missing = [c for c in ids if c not in visible]
    if missing:
        raise validation_error("contact_ids", f"no contacts {missing[:10]} in this workspace")
    seq = int(session.scalar(select(Workspace.event_seq).where(Workspace.id == journey.workspace_id)) or 0)
    who = f"staff:{principal.staff_id}" if principal.staff_id else f"api_key:{principal.api_key_id}"
    return enrol_contacts(session, journey, [Candidate(c, seq, f"manual:{who}") for c in ids])


def enrol_contacts(session: Session, journey: Journey, candidates: Sequence[Candidate]) -> EnrolResult:
    return enrol(session, ref(session, journey), candidates, now=utcnow())


def _visible(q: Select[Any], owner: int | None) -> Select[Any]:
    return q if owner is None else q.where(Contact.owner_id == owner)


def take_out(session: Session, principal: Principal, journey_id: int, enrolment_id: int) -> JourneyEnrolment:
    journey = get_journey(session, principal.workspace_id, journey_id)
    row = session.scalars(
        select(JourneyEnrolment)
        .where(JourneyEnrolment.id == enrolment_id, JourneyEnrolment.journey_id == journey.id)
        .with_for_update()
    ).one_or_none()
    if row is None or not _owned(session, principal, row.contact_id):
        raise NotFound(f"enrolment {enrolment_id} not found in journey {journey_id}")
    if row.status is not EnrolmentStatus.active:
        raise Conflict(f"enrolment {enrolment_id} has already ended ({row.exit_reason})")
    now = utcnow()
    pending = Pending()
    end(
        session,
        [Ending(row.id, row.workspace_id, journey.id, row.contact_id, row.step, EnrolmentStatus.exited, "removed")],
        now=now,
        names={journey.id: journey.name},
        pending=pending,
    )
    pending.write(session, now)
    session.refresh(row)
    return row


def _owned(session: Session, principal: Principal, contact_id: int) -> bool:
    owner = principal.owned_contacts_only
    if owner is None:
        return True
    return session.scalar(select(Contact.owner_id).where(Contact.id == contact_id)) == owner


# --------------------------------------------------------------------------- enrolments


@dataclass
class EnrolmentFilter:
    status: EnrolmentStatus | None = None
    step: str | None = None
    contact_id: int | None = None


def list_enrolments(
    session: Session,
    principal: Principal,
    journey: Journey,
    filters: EnrolmentFilter,
    *,
    before: int | None,
    limit: int,
) -> list[JourneyEnrolment]:
    q = select(JourneyEnrolment).where(JourneyEnrolment.journey_id == journey.id)
    if filters.status is not None:
        q = q.where(JourneyEnrolment.status == filters.status)
    if filters.step is not None:
        q = q.where(JourneyEnrolment.step == filters.step)
    if filters.contact_id is not None:
        q = q.where(JourneyEnrolment.contact_id == filters.contact_id)
    if before is not None:
        q = q.where(JourneyEnrolment.id < before)
    owner = principal.owned_contacts_only
    if owner is not None:
        q = q.where(JourneyEnrolment.contact_id.in_(select(Contact.id).where(Contact.owner_id == owner)))
    return list(session.scalars(q.order_by(JourneyEnrolment.id.desc()).limit(limit)))


def contact_enrolments(session: Session, principal: Principal, contact_id: int) -> list[tuple[JourneyEnrolment, str]]:
    contact = session.get(Contact, contact_id)
    if contact is None or contact.workspace_id != principal.workspace_id or not _owned(session, principal, contact_id):
        raise NotFound(f"contact {contact_id} not found in this workspace")
    return [
        (e, n)
        for e, n in session.execute(
            select(JourneyEnrolment, Journey.name)
            .join(Journey, Journey.id == JourneyEnrolment.journey_id)
            .where(JourneyEnrolment.contact_id == contact_id, JourneyEnrolment.workspace_id == principal.workspace_id)
            .order_by(JourneyEnrolment.id.desc())
        ).all()
    ]


# --------------------------------------------------------------------------- numbers


@dataclass
class StepNumbers:
    step: str
    type: str | None  # None: a step of an earlier version only
    name: str | None
    waiting: int
    counters: dict[str, int]


@dataclass
class Conversion:
    goal: str | None
    overall: stats.Rate
    treated: stats.Rate
    holdout: stats.Rate
    lift: stats.Lift
    has_holdout: bool


@dataclass
class Numbers:
    entered: int
    active: int
    completed: int
    exited: int
    steps: list[StepNumbers]
    conversion: Conversion


def numbers(session: Session, journey: Journey) -> Numbers:
    """Per step: waiting now (live), arrived / passed / exited and delivery outcomes (counters); the goal
    conversion of the treated against the holdout with 95 % intervals (siyu.journeys.stats)."""
    waiting = dict(
        session.execute(
            select(JourneyEnrolment.step, func.count())
            .where(JourneyEnrolment.journey_id == journey.id, JourneyEnrolment.status == EnrolmentStatus.active)
            .group_by(JourneyEnrolment.step)
        ).all()
    )
    counters = {
        row.step: {c: int(getattr(row, c)) for c in STAT_COUNTERS}
        for row in session.scalars(select(JourneyStepStat).where(JourneyStepStat.journey_id == journey.id))
    }
    by_status = dict(
        session.execute(
            select(JourneyEnrolment.status, func.count())
            .where(JourneyEnrolment.journey_id == journey.id)
            .group_by(JourneyEnrolment.status)
        ).all()
    )
    version = current_version(session, journey)
    raw = version.definition if version is not None else journey.draft
    described: list[tuple[str, str | None, str | None]] = []
    try:
        definition = definition_of(raw) if version is not None else parse_definition(raw)
        names = {s.get("id"): s.get("name") for s in raw.get("steps", []) if isinstance(s, dict)}
        described = [(i, definition.steps[i].type, names.get(i)) for i in definition.order]
        goal = definition.goal.type if definition.goal else None
    except DefinitionError:  # an old draft that no longer parses: the counters still show
        goal = None
    known = {s for s, _, _ in described}
    extra = sorted((set(counters) | set(waiting)) - known)
    steps = [
        StepNumbers(s, t, n, int(waiting.get(s, 0)), counters.get(s, dict.fromkeys(STAT_COUNTERS, 0)))
        for s, t, n in [*described, *((s, None, None) for s in extra)]
    ]
    arms = dict(
        (a, (int(n), int(g)))
        for a, n, g in session.execute(
            select(JourneyEnrolment.arm, func.count(), func.count(JourneyEnrolment.goal_at))
            .where(JourneyEnrolment.journey_id == journey.id)
            .group_by(JourneyEnrolment.arm)
        ).all()
    )
    total_n = sum(n for n, _ in arms.values())
    total_g = sum(g for _, g in arms.values())
    treated = stats.wilson(arms.get(Arm.treated, (0, 0))[1], arms.get(Arm.treated, (0, 0))[0])
    holdout = stats.wilson(arms.get(Arm.holdout, (0, 0))[1], arms.get(Arm.holdout, (0, 0))[0])
    conversion = Conversion(
        goal,
        stats.wilson(total_g, total_n),
        treated,
        holdout,
        stats.newcombe(treated, holdout),
        Arm.holdout in arms or Arm.treated in arms,
    )
    return Numbers(
        entered=total_n,
        active=int(by_status.get(EnrolmentStatus.active, 0)),
        completed=int(by_status.get(EnrolmentStatus.completed, 0)),
        exited=int(by_status.get(EnrolmentStatus.exited, 0)),
        steps=steps,
        conversion=conversion,
    )


def summary_counts(session: Session, journey_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Entered, in it now and reached the goal, per journey (the list page)."""
    out: dict[int, dict[str, int]] = {j: {"entered": 0, "active": 0, "goal": 0} for j in journey_ids}
    if not journey_ids:
        return out
    for journey_id, status, n, goals in session.execute(
        select(
            JourneyEnrolment.journey_id,
            JourneyEnrolment.status,
            func.count(),
            func.count(JourneyEnrolment.goal_at),
        )
        .where(JourneyEnrolment.journey_id.in_(list(journey_ids)))
        .group_by(JourneyEnrolment.journey_id, JourneyEnrolment.status)
    ):
        row = out[int(journey_id)]
        row["entered"] += int(n)
        row["goal"] += int(goals)
        if status == EnrolmentStatus.active:
            row["active"] += int(n)
    return out
