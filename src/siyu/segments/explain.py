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

from siyu.channels.models import ChannelCode, ChannelTouch
from siyu.computed.service import StreamEvent
from siyu.contacts.models import Contact, Identity
from siyu.content.models import ContentItemTag, ContentTag
from siyu.events.models import Event
from siyu.recommend.portrait import content_id_of, load_config
from siyu.scoring.models import ContactScore
from siyu.segments.context import RuleContext
from siyu.segments.evaluate import Facts, in_window, interest, matches, performed
from siyu.segments.models import Segment, SegmentMember
from siyu.segments.rules import (
    And,
    AttributeCond,
    ChannelCodeCond,
    ComputedCond,
    EventCountCond,
    EventTimeCond,
    IdentityCond,
    InterestCond,
    Node,
    Not,
    Or,
    PropertyFilter,
    TagsCond,
)
from siyu.segments.service import context, parse
from siyu.tags.models import ContactTag, Tag

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
    _load_items(session, workspace_id, facts)
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


def _load_items(session: Session, workspace_id: int, facts: dict[int, Facts]) -> None:
    """The content tags of the items (of this workspace) the events name, and the portrait weights."""
    weights = dict(load_config(session, workspace_id).weights)
    named = {cid for fact in facts.values() for e in fact.events if (cid := content_id_of(e.properties)) is not None}
    item_tags: dict[int, set[int]] = {}
    ordered = sorted(named)
    for start in range(0, len(ordered), 5_000):
        chunk = ordered[start : start + 5_000]
        for item_id, tag_id in session.execute(
            select(ContentItemTag.content_id, ContentItemTag.tag_id).where(
                ContentItemTag.workspace_id == workspace_id, ContentItemTag.content_id.in_(chunk)
            )
        ):
            item_tags.setdefault(int(item_id), set()).add(int(tag_id))
    frozen = {item_id: frozenset(tags) for item_id, tags in item_tags.items()}
    for fact in facts.values():
        fact.item_tags = frozen
        fact.interest_weights = weights


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


# Operators and sentence parts in the two languages of the console (the API speaks English).
WORDS: dict[str, dict[str, str]] = {
    "en": {
        "eq": "=", "ne": "≠", "in": "is one of", "not_in": "is none of", "contains": "contains",
        "starts_with": "starts with", "gt": ">", "gte": "≥", "lt": "<", "lte": "≤", "between": "between",
        "is_set": "is set", "is_not_set": "is not set", "all of": "all of", "any of": "any of",
        "none of": "none of", "within_last_days": "{field} within the last {days} days",
        "within_next_days": "{field} within the next {days} days",
        "more_than_days_ago": "{field} more than {days} days ago", "has": "has a {kind}",
        "has no": "has no {kind}", "tags any": "has any of the tags {tags}", "tags all": "has all of the tags {tags}",
        "tags none": "has none of the tags {tags}", "code first": "came first through channel code {codes}",
        "code any": "came through channel code {codes}", "times": "{event}{where} {op} {n} times{window}",
        "never": "never did {event}{where}{window}", "last days": " in the last {n} days",
        "between days": " between {start} and {end}", "where": " where ", "and": " and ",
        "first": "first", "last": "last", "before": "before", "after": "on or after",
        "moment": "{which} {event}{where} {op} {when}", "days ago": "{n} days ago",
        "segment": "in segment {name}", "not set": "not set", "not computed": "not computed",
        "observed times": "{n} times", "interest": "interest in {tag} ≥ {n}",
    },
    "zh-CN": {
        "eq": "等于", "ne": "不等于", "in": "属于", "not_in": "不属于", "contains": "包含",
        "starts_with": "开头是", "gt": ">", "gte": "≥", "lt": "<", "lte": "≤", "between": "介于",
        "is_set": "已填写", "is_not_set": "未填写", "all of": "同时满足", "any of": "满足任一",
        "none of": "都不满足", "within_last_days": "{field} 在最近 {days} 天内",
        "within_next_days": "{field} 在接下来 {days} 天内", "more_than_days_ago": "{field} 在 {days} 天以前",
        "has": "有 {kind}", "has no": "没有 {kind}", "tags any": "有任一标签 {tags}", "tags all": "有全部标签 {tags}",
        "tags none": "没有标签 {tags}", "code first": "首次来自渠道活码 {codes}", "code any": "来自过渠道活码 {codes}",
        "times": "{event}{where}{window} {op} {n} 次", "never": "{window}从未 {event}{where}",
        "last days": " 最近 {n} 天", "between days": " 在 {start} 至 {end}", "where": "（", "and": "，",
        "first": "首次", "last": "最近一次", "before": "早于", "after": "不早于",
        "moment": "{which} {event}{where} {op} {when}", "days ago": "{n} 天前", "segment": "在分群「{name}」中",
        "not set": "未填写", "not computed": "尚未计算", "observed times": "{n} 次",
        "interest": "对「{tag}」的兴趣 ≥ {n}",
    },
}  # fmt: skip


@dataclass
class Names:
    """Names to show instead of ids (tags, channel codes, segments, content tags)."""

    tags: dict[int, str] = field(default_factory=dict)
    codes: dict[int, str] = field(default_factory=dict)
    segments: dict[int, str] = field(default_factory=dict)
    content_tags: dict[int, str] = field(default_factory=dict)

    @classmethod
    def of_workspace(cls, session: Session, workspace_id: int) -> Names:
        return cls(
            tags=dict(session.execute(select(Tag.id, Tag.name).where(Tag.workspace_id == workspace_id)).all()),
            codes=dict(
                session.execute(
                    select(ChannelCode.id, ChannelCode.name).where(ChannelCode.workspace_id == workspace_id)
                ).all()
            ),
            segments=dict(
                session.execute(select(Segment.id, Segment.name).where(Segment.workspace_id == workspace_id)).all()
            ),
            content_tags=dict(
                session.execute(
                    select(ContentTag.id, ContentTag.name).where(ContentTag.workspace_id == workspace_id)
                ).all()
            ),
        )


def _value_text(value: Any) -> str:
    if isinstance(value, tuple):
        return ", ".join(_value_text(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _named(ids: tuple[int, ...], names: dict[int, str]) -> str:
    return ", ".join(names.get(i, f"#{i}") for i in ids)


def describe(node: Node, names: Names | None = None, lang: str = "en") -> str:
    """One condition in words, in English or Chinese (`lang` "zh-CN", as the console names it)."""
    w = WORDS.get(lang, WORDS["en"])
    names = names or Names()

    def where(filters: tuple[PropertyFilter, ...]) -> str:
        if not filters:
            return ""
        parts = [
            f"{f.property} {w[f.op]} {_value_text(f.value) if f.value is not None else ''}".rstrip() for f in filters
        ]
        closing = "）" if lang == "zh-CN" else ""
        return w["where"] + w["and"].join(parts) + closing

    if isinstance(node, And):
        return w["all of"]
    if isinstance(node, Or):
        return w["any of"]
    if isinstance(node, Not):
        return w["none of"]
    if isinstance(node, AttributeCond):
        if node.days is not None:
            return w[node.op].format(field=node.field, days=node.days)
        value = "" if node.value is None else _value_text(node.value)
        return f"{node.field} {w[node.op]} {value}".rstrip()
    if isinstance(node, IdentityCond):
        return w["has" if node.present else "has no"].format(kind=node.type)
    if isinstance(node, TagsCond):
        return w[f"tags {node.match}"].format(tags=_named(node.tag_ids, names.tags))
    if isinstance(node, ChannelCodeCond):
        return w[f"code {node.touch}"].format(codes=_named(node.code_ids, names.codes))
    if isinstance(node, EventCountCond):
        window = ""
        if node.window is not None:
            window = (
                w["last days"].format(n=node.window.last_days)
                if node.window.last_days is not None
                else w["between days"].format(start=node.window.start, end=node.window.end)
            )
        if node.op == "eq" and node.count == 0:
            return w["never"].format(event=node.type, where=where(node.where), window=window).strip()
        return w["times"].format(event=node.type, where=where(node.where), op=w[node.op], n=node.count, window=window)
    if isinstance(node, EventTimeCond):
        when = str(node.date) if node.date is not None else w["days ago"].format(n=node.days_ago)
        return w["moment"].format(
            which=w[node.which], event=node.type, where=where(node.where), op=w[node.op], when=when
        )
    if isinstance(node, ComputedCond):
        value = "" if node.value is None else _value_text(node.value)
        return f"{node.name} {w[node.op]} {value}".rstrip()
    if isinstance(node, InterestCond):
        tag = names.content_tags.get(node.content_tag_id, f"#{node.content_tag_id}")
        return w["interest"].format(tag=tag, n=_value_text(node.at_least))
    return w["segment"].format(name=names.segments.get(node.segment_id, f"#{node.segment_id}"))


def _observed(node: Node, facts: Facts, ctx: RuleContext, w: dict[str, str]) -> str:
    """What the contact's data says, next to the condition."""
    if isinstance(node, EventCountCond):
        n = sum(1 for e in performed(node.type, node.where, facts.events) if in_window(node, e, ctx))
        return w["observed times"].format(n=n)
    if isinstance(node, AttributeCond):
        if node.field.startswith("attributes."):
            value = facts.profile.get("attributes", {}).get(node.field.removeprefix("attributes."))
        else:
            value = facts.profile.get(node.field)
        return w["not set"] if value is None else _value_text(getattr(value, "value", value))
    if isinstance(node, ComputedCond) and node.name in facts.scores:
        value = facts.scores.get(node.name)
        return w["not computed"] if value is None else _value_text(value)
    if isinstance(node, InterestCond):
        return f"{interest(node.content_tag_id, facts, ctx):.2f}"
    return ""


def _walk(
    node: Node, facts: Facts, ctx: RuleContext, depth: int, lines: list[ExplanationLine], names: Names, lang: str
) -> None:
    matched = matches(node, facts, ctx)
    text = describe(node, names, lang)
    observed = _observed(node, facts, ctx, WORDS.get(lang, WORDS["en"]))
    lines.append(ExplanationLine(depth, f"{text} — {observed}" if observed else text, matched))
    if isinstance(node, And | Or):
        for child in node.children:
            _walk(child, facts, ctx, depth + 1, lines, names, lang)
    elif isinstance(node, Not):
        _walk(node.child, facts, ctx, depth + 1, lines, names, lang)


def explain_membership(
    session: Session, workspace_id: int, contact_id: int, segment: Segment, *, lang: str = "en"
) -> Explanation:
    node = parse(session, workspace_id, segment.rule, self_segment_id=segment.id)
    facts = load_facts(session, workspace_id, [contact_id]).get(contact_id)
    if facts is None:
        return Explanation(matched=False)
    ctx = context(session, workspace_id)
    lines: list[ExplanationLine] = []
    _walk(node, facts, ctx, 0, lines, Names.of_workspace(session, workspace_id), lang)
    return Explanation(matched=lines[0].matched, lines=lines)
