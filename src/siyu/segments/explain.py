"""Why a contact is (or is not) in a segment: each condition of the rule, what it asked, and the answer.

Evaluated in plain Python over the contact's raw data (`siyu.segments.evaluate`), so the reason shown
is worked out from what the person did, not read back from the computed tables.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.channels.models import ChannelTouch
from siyu.computed.service import StreamEvent
from siyu.contacts.models import Contact, Identity
from siyu.events.models import Event
from siyu.scoring.models import ContactScore
from siyu.segments.context import RuleContext
from siyu.segments.evaluate import Facts, in_window, matches, performed
from siyu.segments.models import Segment, SegmentMember
from siyu.segments.rules import (
    And,
    AttributeCond,
    ChannelCodeCond,
    ComputedCond,
    EventCountCond,
    EventTimeCond,
    IdentityCond,
    Node,
    Not,
    Or,
    PropertyFilter,
    TagsCond,
)
from siyu.segments.service import context, parse
from siyu.tags.models import ContactTag

PROFILE_COLUMNS = (
    "name",
    "source_channel",
    "region",
    "occupation",
    "consult_question",
    "gender",
    "birthday",
    "created_at",
    "first_consult_at",
    "owner_id",
)
SCORE_NAMES = (
    "r_score",
    "f_score",
    "m_score",
    "intention_score",
    "lifecycle_stage",
    "value_tier",
    "intention_level",
    "transaction_stage",
)


def load_facts(
    session: Session,
    workspace_id: int,
    contact_ids: Collection[int],
    *,
    in_segment: Callable[[int, int], bool] | None = None,
) -> dict[int, Facts]:
    """Raw data of each contact. `in_segment(contact_id, segment_id)` defaults to the membership table."""
    ids = list(contact_ids)
    facts: dict[int, Facts] = {}
    for contact in session.scalars(select(Contact).where(Contact.workspace_id == workspace_id, Contact.id.in_(ids))):
        profile: dict[str, Any] = {name: getattr(contact, name) for name in PROFILE_COLUMNS}
        profile["attributes"] = dict(contact.attributes or {})
        facts[contact.id] = Facts(profile=profile)
    for contact_id, kind in session.execute(
        select(Identity.contact_id, Identity.type).where(Identity.contact_id.in_(ids))
    ):
        facts[contact_id].identity_types.add(kind)
    for contact_id, tag_id in session.execute(
        select(ContactTag.contact_id, ContactTag.tag_id).where(ContactTag.contact_id.in_(ids))
    ):
        facts[contact_id].tag_ids.add(tag_id)
    for contact_id, code_id, first in session.execute(
        select(ChannelTouch.contact_id, ChannelTouch.code_id, ChannelTouch.first).where(
            ChannelTouch.contact_id.in_(ids)
        )
    ):
        facts[contact_id].code_touches.append((code_id, bool(first)))
    for row in session.execute(
        select(Event.seq, Event.type, Event.contact_id, Event.occurred_at, Event.properties)
        .where(Event.contact_id.in_(ids))
        .order_by(Event.seq)
    ):
        facts[row.contact_id].events.append(StreamEvent(*row))
    for score in session.scalars(select(ContactScore).where(ContactScore.contact_id.in_(ids))):
        facts[score.contact_id].scores = {name: getattr(score, name) for name in SCORE_NAMES}
    if in_segment is None:
        memberships: set[tuple[int, int]] = set(
            session.execute(
                select(SegmentMember.contact_id, SegmentMember.segment_id).where(SegmentMember.contact_id.in_(ids))
            ).all()
        )

        def in_segment(contact_id: int, segment_id: int) -> bool:
            return (contact_id, segment_id) in memberships

    lookup = in_segment
    for contact_id, fact in facts.items():
        fact.in_segment = lambda segment_id, _c=contact_id: lookup(_c, segment_id)  # type: ignore[misc]
    return facts


# --------------------------------------------------------------------------- explaining


@dataclass
class ExplanationLine:
    depth: int
    text: str
    matched: bool


@dataclass
class Explanation:
    matched: bool
    lines: list[ExplanationLine] = field(default_factory=list)


OP_WORDS = {
    "eq": "=",
    "ne": "≠",
    "in": "is one of",
    "not_in": "is none of",
    "contains": "contains",
    "starts_with": "starts with",
    "gt": ">",
    "gte": "≥",
    "lt": "<",
    "lte": "≤",
    "between": "between",
    "is_set": "is set",
    "is_not_set": "is not set",
    "within_last_days": "within the last",
    "within_next_days": "within the next",
    "more_than_days_ago": "more than ... days ago:",
}


def _value_text(value: Any) -> str:
    if isinstance(value, tuple):
        return ", ".join(_value_text(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _where_text(where: tuple[PropertyFilter, ...]) -> str:
    if not where:
        return ""
    parts = [f"{f.property} {OP_WORDS[f.op]} {_value_text(f.value)}".rstrip() for f in where]
    return " where " + " and ".join(parts)


def describe(node: Node) -> str:
    if isinstance(node, And):
        return "all of"
    if isinstance(node, Or):
        return "any of"
    if isinstance(node, Not):
        return "none of"
    if isinstance(node, AttributeCond):
        if node.days is not None:
            if node.op == "more_than_days_ago":
                return f"{node.field} more than {node.days} days ago"
            return f"{node.field} {OP_WORDS[node.op]} {node.days} days"
        return f"{node.field} {OP_WORDS[node.op]} {_value_text(node.value)}".rstrip()
    if isinstance(node, IdentityCond):
        return f"has a {node.type}" if node.present else f"has no {node.type}"
    if isinstance(node, TagsCond):
        return f"tags {node.match} of {_value_text(node.tag_ids)}"
    if isinstance(node, ChannelCodeCond):
        return f"came through channel code {_value_text(node.code_ids)} ({node.touch} touch)"
    if isinstance(node, EventCountCond):
        window = ""
        if node.window is not None:
            window = (
                f" in the last {node.window.last_days} days"
                if node.window.last_days is not None
                else f" between {node.window.start} and {node.window.end}"
            )
        if node.op == "eq" and node.count == 0:
            return f"never did {node.type}{_where_text(node.where)}{window}"
        return f"{node.type}{_where_text(node.where)} {OP_WORDS[node.op]} {node.count} times{window}"
    if isinstance(node, EventTimeCond):
        when = str(node.date) if node.date is not None else f"{node.days_ago} days ago"
        return f"{node.which} {node.type}{_where_text(node.where)} {node.op} {when}"
    if isinstance(node, ComputedCond):
        return f"{node.name} {OP_WORDS[node.op]} {_value_text(node.value)}".rstrip()
    return f"in segment {node.segment_id}"


def _observed(node: Node, facts: Facts, ctx: RuleContext) -> str:
    """What the contact's data says, next to the condition."""
    if isinstance(node, EventCountCond):
        n = sum(1 for e in performed(node.type, node.where, facts.events) if in_window(node, e, ctx))
        return f"{n} times"
    if isinstance(node, AttributeCond):
        if node.field.startswith("attributes."):
            value = facts.profile.get("attributes", {}).get(node.field.removeprefix("attributes."))
        else:
            value = facts.profile.get(node.field)
        return "not set" if value is None else _value_text(getattr(value, "value", value))
    if isinstance(node, ComputedCond) and node.name in facts.scores:
        value = facts.scores.get(node.name)
        return "not computed" if value is None else _value_text(value)
    return ""


def _walk(node: Node, facts: Facts, ctx: RuleContext, depth: int, lines: list[ExplanationLine]) -> None:
    matched = matches(node, facts, ctx)
    text = describe(node)
    observed = _observed(node, facts, ctx)
    lines.append(ExplanationLine(depth, f"{text} — {observed}" if observed else text, matched))
    if isinstance(node, And | Or):
        for child in node.children:
            _walk(child, facts, ctx, depth + 1, lines)
    elif isinstance(node, Not):
        _walk(node.child, facts, ctx, depth + 1, lines)


def explain_membership(session: Session, workspace_id: int, contact_id: int, segment: Segment) -> Explanation:
    node = parse(session, workspace_id, segment.rule, self_segment_id=segment.id)
    facts = load_facts(session, workspace_id, [contact_id]).get(contact_id)
    if facts is None:
        return Explanation(matched=False)
    ctx = context(session, workspace_id)
    lines: list[ExplanationLine] = []
    _walk(node, facts, ctx, 0, lines)
    return Explanation(matched=lines[0].matched, lines=lines)
