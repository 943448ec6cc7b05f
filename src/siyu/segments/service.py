"""Saved segments: create, preview, keep membership live, and say why a contact is in one.

Membership changes (after the first fill) are recorded as `segment.entered` / `segment.exited` events,
numbered in the workspace's stream like any other, so journeys can start from them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, delete, func, insert, literal, select, update
from sqlalchemy.orm import Session

from siyu.auth.principal import Principal
from siyu.channels.models import ChannelCode
from siyu.contacts.models import AttributeDefinition, Contact
from siyu.content.models import ContentTag
from siyu.errors import Conflict, NotFound
from siyu.events.repository import allocate_seq, insert_events
from siyu.events.service import workspace_timezone
from siyu.kit.repository import flush_unique
from siyu.kit.sql import IdFilter
from siyu.kit.time import utcnow
from siyu.recommend import portrait
from siyu.segments.compiler import count_matching, matching_contacts
from siyu.segments.context import RuleContext
from siyu.segments.models import Segment, SegmentMember, SegmentSizeDay
from siyu.segments.rules import Catalog, FieldKind, Node, RuleError, parse_rule, segment_refs_in
from siyu.tags.models import Tag

SAMPLE_SIZE = 20


def context(session: Session, workspace_id: int, now: dt.datetime | None = None) -> RuleContext:
    return RuleContext(
        workspace_id,
        workspace_timezone(session, workspace_id),
        now or utcnow(),
        half_life_days=portrait.half_life_days(session, workspace_id),
    )


def catalog(session: Session, workspace_id: int, *, self_segment_id: int | None = None) -> Catalog:
    attributes: dict[str, tuple[FieldKind, tuple[str, ...] | None]] = {}
    for definition in session.scalars(
        select(AttributeDefinition).where(AttributeDefinition.workspace_id == workspace_id)
    ):
        choices = tuple(definition.choices) if definition.choices else None
        attributes[definition.key] = (definition.type.value, choices)  # type: ignore[assignment]
    rules: dict[int, dict[str, Any]] = dict(
        session.execute(select(Segment.id, Segment.rule).where(Segment.workspace_id == workspace_id)).all()
    )
    return Catalog(
        tag_ids=frozenset(session.scalars(select(Tag.id).where(Tag.workspace_id == workspace_id))),
        segment_ids=frozenset(rules),
        code_ids=frozenset(session.scalars(select(ChannelCode.id).where(ChannelCode.workspace_id == workspace_id))),
        content_tag_ids=frozenset(
            session.scalars(select(ContentTag.id).where(ContentTag.workspace_id == workspace_id))
        ),
        attributes=attributes,
        segment_rule=rules.get,
        self_segment_id=self_segment_id,
    )


def parse(session: Session, workspace_id: int, rule: Any, *, self_segment_id: int | None = None) -> Node:
    return parse_rule(rule, catalog(session, workspace_id, self_segment_id=self_segment_id))


# --------------------------------------------------------------------------- reading


def get_segment(session: Session, workspace_id: int, segment_id: int) -> Segment:
    segment = session.get(Segment, segment_id)
    if segment is None or segment.workspace_id != workspace_id:
        raise NotFound(f"segment {segment_id} not found")
    return segment


def list_segments(session: Session, workspace_id: int) -> list[Segment]:
    return list(session.scalars(select(Segment).where(Segment.workspace_id == workspace_id).order_by(Segment.name)))


@dataclass
class Preview:
    count: int
    sample: list[int]


def preview(session: Session, principal: Principal, rule: Any, *, sample_size: int = SAMPLE_SIZE) -> Preview:
    """Count and a sample of who a rule matches now, without saving it (the builder's live count)."""
    node = parse(session, principal.workspace_id, rule)
    ctx = context(session, principal.workspace_id)
    query = matching_contacts(session, ctx, node)
    owner = principal.owned_contacts_only
    if owner is not None:
        query = query.where(Contact.owner_id == owner)
        total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    else:
        total = count_matching(session, ctx, node)
    sample = list(session.scalars(query.order_by(Contact.id.desc()).limit(sample_size)))
    return Preview(total, sample)


def members_query(segment: Segment, principal: Principal) -> Select[Any]:
    q = select(SegmentMember.contact_id).where(SegmentMember.segment_id == segment.id)
    owner = principal.owned_contacts_only
    if owner is not None:
        q = q.join(Contact, Contact.id == SegmentMember.contact_id).where(Contact.owner_id == owner)
    return q


def list_member_ids(
    session: Session, segment: Segment, principal: Principal, *, after: int | None, limit: int
) -> list[int]:
    q = members_query(segment, principal)
    if after is not None:
        q = q.where(SegmentMember.contact_id > after)
    return list(session.scalars(q.order_by(SegmentMember.contact_id).limit(limit)))


def size_history(session: Session, segment: Segment, days: int = 30) -> list[SegmentSizeDay]:
    return list(
        session.scalars(
            select(SegmentSizeDay)
            .where(SegmentSizeDay.segment_id == segment.id)
            .order_by(SegmentSizeDay.day.desc())
            .limit(days)
        )
    )[::-1]


def segments_of_contact(session: Session, contact_id: int) -> list[Segment]:
    return list(
        session.scalars(
            select(Segment)
            .join(SegmentMember, SegmentMember.segment_id == Segment.id)
            .where(SegmentMember.contact_id == contact_id)
            .order_by(Segment.name)
        )
    )


# --------------------------------------------------------------------------- writing


def create_segment(
    session: Session, principal: Principal, *, name: str, rule: Any, description: str | None = None
) -> Segment:
    """Saves a segment and fills it. The first fill records no entry events: nobody entered, it began."""
    node = parse(session, principal.workspace_id, rule)
    segment = Segment(
        workspace_id=principal.workspace_id,
        name=name,
        description=description,
        rule=rule,
        created_by_staff_id=principal.staff_id,
    )
    session.add(segment)
    flush_unique(session, f"a segment named {name!r} already exists")
    ctx = context(session, principal.workspace_id)
    session.execute(
        insert(SegmentMember).from_select(
            ["workspace_id", "contact_id", "segment_id", "entered_at"],
            select(
                Contact.workspace_id, Contact.id, literal(segment.id), literal(ctx.now, SegmentMember.entered_at.type)
            ).where(Contact.id.in_(matching_contacts(session, ctx, node))),
        )
    )
    size = int(
        session.scalar(select(func.count()).select_from(SegmentMember).where(SegmentMember.segment_id == segment.id))
        or 0
    )
    segment.member_count = size
    segment.refreshed_at = ctx.now
    _note_size(session, segment, ctx, entered=0, exited=0)
    return segment


def update_segment(
    session: Session,
    principal: Principal,
    segment_id: int,
    *,
    name: str | None = None,
    rule: Any = None,
    description: str | None = None,
) -> Segment:
    segment = get_segment(session, principal.workspace_id, segment_id)
    if name is not None and name != segment.name:
        segment.name = name
        flush_unique(session, f"a segment named {name!r} already exists")
    if description is not None:
        segment.description = description
    if rule is not None:
        parse(session, principal.workspace_id, rule, self_segment_id=segment.id)
        segment.rule = rule
        segment.version += 1
        refresh(session, segment, context(session, principal.workspace_id))
    return segment


def delete_segment(session: Session, principal: Principal, segment_id: int) -> None:
    segment = get_segment(session, principal.workspace_id, segment_id)
    users = [s.name for s in list_segments(session, principal.workspace_id) if segment_id in _refs(s)]
    if users:
        raise Conflict(f"segment {segment.name!r} is used by segment(s) {', '.join(users)}; change those first")
    session.delete(segment)


def _refs(segment: Segment) -> set[int]:
    return segment_refs_in(segment.rule)


# --------------------------------------------------------------------------- keeping membership live


def in_dependency_order(segments: Sequence[Segment]) -> list[Segment]:
    """Segments a rule depends on ("in segment X") come before it."""
    by_id = {s.id: s for s in segments}
    ordered: list[Segment] = []
    state: dict[int, int] = {}  # 1 visiting, 2 done

    def visit(segment: Segment) -> None:
        if state.get(segment.id) == 2:
            return
        if state.get(segment.id) == 1:
            return  # a loop slipped in (refused when saved): evaluate in whatever order
        state[segment.id] = 1
        for ref in sorted(_refs(segment)):
            if ref in by_id:
                visit(by_id[ref])
        state[segment.id] = 2
        ordered.append(segment)

    for segment in sorted(segments, key=lambda s: s.id):
        visit(segment)
    return ordered


@dataclass
class RefreshResult:
    entered: int = 0
    exited: int = 0


def refresh(
    session: Session, segment: Segment, ctx: RuleContext, *, among: Collection[int] | None = None
) -> RefreshResult:
    """Brings membership up to date (for `among` only, or everyone) and records who entered and left."""
    try:
        node = parse(session, segment.workspace_id, segment.rule, self_segment_id=segment.id)
    except RuleError:
        # a tag or attribute it names was deleted since: keep the members, say so in the log of refreshes
        return RefreshResult()
    matching = set(session.scalars(matching_contacts(session, ctx, node, among=among)))
    current_q = select(SegmentMember.contact_id).where(SegmentMember.segment_id == segment.id)
    if among is not None:  # one bound parameter however many contacts a step touched
        current_q = current_q.where(IdFilter(session.get_bind().dialect.name, among)(SegmentMember.contact_id))
    current = set(session.scalars(current_q))
    entered = sorted(matching - current)
    exited = sorted(current - matching)
    if entered:
        session.execute(
            insert(SegmentMember),
            [
                {"workspace_id": segment.workspace_id, "segment_id": segment.id, "contact_id": c, "entered_at": ctx.now}
                for c in entered
            ],
        )
    if exited:
        for chunk in _chunks(exited, 10_000):
            session.execute(
                delete(SegmentMember).where(SegmentMember.segment_id == segment.id, SegmentMember.contact_id.in_(chunk))
            )
    if entered or exited:
        _record_moves(session, segment, ctx, entered, exited)
    session.execute(
        update(Segment)
        .where(Segment.id == segment.id)
        .values(member_count=Segment.member_count + len(entered) - len(exited), refreshed_at=ctx.now)
        .execution_options(synchronize_session=False)
    )
    session.refresh(segment, ["member_count", "refreshed_at"])
    _note_size(session, segment, ctx, entered=len(entered), exited=len(exited))
    return RefreshResult(len(entered), len(exited))


def refresh_workspace(
    session: Session, workspace_id: int, *, among: Collection[int] | None = None, now: dt.datetime | None = None
) -> RefreshResult:
    """Every segment of the workspace, in dependency order. `among` limits it to contacts that changed."""
    total = RefreshResult()
    if among is not None and not among:
        return total
    ctx = context(session, workspace_id, now)
    for segment in in_dependency_order(list_segments(session, workspace_id)):
        result = refresh(session, segment, ctx, among=among)
        total.entered += result.entered
        total.exited += result.exited
    return total


def drop_merged(session: Session, contact_ids: Collection[int]) -> None:
    """Profiles merged away leave their segments quietly: the survivor carries on for them."""
    if not contact_ids:
        return
    counts = session.execute(
        select(SegmentMember.segment_id, func.count())
        .where(SegmentMember.contact_id.in_(list(contact_ids)))
        .group_by(SegmentMember.segment_id)
    ).all()
    session.execute(delete(SegmentMember).where(SegmentMember.contact_id.in_(list(contact_ids))))
    for segment_id, count in counts:
        session.execute(
            update(Segment).where(Segment.id == segment_id).values(member_count=Segment.member_count - count)
        )


def _record_moves(session: Session, segment: Segment, ctx: RuleContext, entered: list[int], exited: list[int]) -> None:
    moves = [(c, "segment.entered") for c in entered] + [(c, "segment.exited") for c in exited]
    first = allocate_seq(session, segment.workspace_id, len(moves))
    properties = {"segment_id": segment.id, "segment_name": segment.name}
    insert_events(
        session,
        [
            {
                "workspace_id": segment.workspace_id,
                "seq": first + n,
                "event_id": f"siyu:segment:{segment.id}:{first + n}",
                "type": kind,
                "contact_id": contact_id,
                "occurred_at": ctx.now,
                "received_at": ctx.now,
                "properties": properties,
            }
            for n, (contact_id, kind) in enumerate(moves)
        ],
    )


def _note_size(session: Session, segment: Segment, ctx: RuleContext, *, entered: int, exited: int) -> None:
    day = ctx.today
    row = session.get(SegmentSizeDay, (segment.id, day))
    if row is None:
        session.add(
            SegmentSizeDay(
                workspace_id=segment.workspace_id,
                segment_id=segment.id,
                day=day,
                size=segment.member_count,
                entered=entered,
                exited=exited,
            )
        )
    else:
        row.size = segment.member_count
        row.entered += entered
        row.exited += exited
    session.flush()


def _chunks(items: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
