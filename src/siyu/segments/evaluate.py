"""Rules evaluated in plain Python over one contact's raw data: the reference the SQL must agree with.

Used to explain on a contact page why they match (`explain`), and by the differential tests, which
check the compiled SQL over computed properties against this over raw events.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from siyu.computed.service import StreamEvent, amount_cents
from siyu.recommend.portrait import content_id_of, reaches
from siyu.segments.context import RuleContext, anniversary_days, relative_range
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
    SegmentCond,
    TagsCond,
)


@dataclass
class Facts:
    """Everything a rule can ask about one contact, as raw data."""

    profile: dict[str, Any]  # standard fields by name, and "attributes": {key: value}
    identity_types: set[str] = field(default_factory=set)
    tag_ids: set[int] = field(default_factory=set)
    code_touches: list[tuple[int, bool]] = field(default_factory=list)  # (code id, is first touch)
    events: list[StreamEvent] = field(default_factory=list)
    scores: dict[str, Any] = field(default_factory=dict)  # the built-in models' outputs
    in_segment: Callable[[int], bool] = lambda _segment_id: False
    # For interest conditions: the content items of the workspace its events name, with their content
    # tags, and the portrait's weight per event type (siyu.recommend.portrait.RecommendConfig.weights).
    item_tags: dict[int, frozenset[int]] = field(default_factory=dict)
    interest_weights: dict[str, float] = field(default_factory=dict)


def matches(node: Node, facts: Facts, ctx: RuleContext) -> bool:
    if isinstance(node, And):
        return all(matches(child, facts, ctx) for child in node.children)
    if isinstance(node, Or):
        return any(matches(child, facts, ctx) for child in node.children)
    if isinstance(node, Not):
        return not matches(node.child, facts, ctx)
    if isinstance(node, AttributeCond):
        return _attribute(node, facts, ctx)
    if isinstance(node, IdentityCond):
        return (node.type in facts.identity_types) == node.present
    if isinstance(node, TagsCond):
        held = [tag_id in facts.tag_ids for tag_id in node.tag_ids]
        return any(held) if node.match == "any" else all(held) if node.match == "all" else not any(held)
    if isinstance(node, ChannelCodeCond):
        return any(code in node.code_ids and (first or node.touch == "any") for code, first in facts.code_touches)
    if isinstance(node, EventCountCond):
        n = sum(1 for event in performed(node.type, node.where, facts.events) if in_window(node, event, ctx))
        return n >= node.count if node.op == "gte" else n <= node.count if node.op == "lte" else n == node.count
    if isinstance(node, EventTimeCond):
        moments = [e.occurred_at for e in performed(node.type, node.where, facts.events)]
        if not moments:
            return False
        moment = min(moments) if node.which == "first" else max(moments)
        day = node.date if node.date is not None else ctx.today - dt.timedelta(days=node.days_ago or 0)
        boundary = ctx.day_start(day)
        return moment < boundary if node.op == "before" else moment >= boundary
    if isinstance(node, ComputedCond):
        return _computed(node, facts, ctx)
    if isinstance(node, SegmentCond):
        return facts.in_segment(node.segment_id)
    if isinstance(node, InterestCond):
        return reaches(interest(node.content_tag_id, facts, ctx), node.at_least, ctx.half_life_days)
    raise TypeError(f"unknown rule node {node!r}")


def interest(content_tag_id: int, facts: Facts, ctx: RuleContext) -> float:
    """The contact's affinity for a content tag today, from their raw events: each event with a weight
    naming an item with the tag adds its weight, halved every half-life from its local day. As in the
    portrait, the sum is taken as of the latest such day and decays from there to today, never grows
    towards it (an event dated after today counts as of its own day)."""
    gains: list[tuple[float, dt.date]] = []
    for event in facts.events:
        weight = facts.interest_weights.get(event.type, 0.0)
        content_id = content_id_of(event.properties) if weight > 0 else None
        if content_id is not None and content_tag_id in facts.item_tags.get(content_id, frozenset()):
            gains.append((weight, ctx.local_date(event.occurred_at)))
    if not gains:
        return 0.0
    half_life = ctx.half_life_days
    latest = max(day for _, day in gains)
    total = sum(weight * 0.5 ** ((latest - day).days / half_life) for weight, day in gains)
    return float(total * 0.5 ** (max((ctx.today - latest).days, 0) / half_life))


def performed(event_type: str, where: tuple[PropertyFilter, ...], events: Iterable[StreamEvent]) -> list[StreamEvent]:
    return [e for e in events if e.type == event_type and all(_property_matches(f, e.properties) for f in where)]


def in_window(node: EventCountCond, event: StreamEvent, ctx: RuleContext) -> bool:
    if node.window is None:
        return True
    day = ctx.local_date(event.occurred_at)
    if node.window.last_days is not None:
        return day >= ctx.today - dt.timedelta(days=node.window.last_days - 1)
    assert node.window.start is not None and node.window.end is not None
    return node.window.start <= day <= node.window.end


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "other"


def _equal(expected: Any, actual: Any) -> bool:
    if isinstance(expected, bool):
        return isinstance(actual, bool) and actual == expected
    if isinstance(expected, float):
        return _json_kind(actual) == "number" and float(actual) == expected
    return isinstance(actual, str) and actual == expected


def _property_matches(item: PropertyFilter, properties: dict[str, Any]) -> bool:
    present = item.property in properties and properties[item.property] is not None
    actual = properties.get(item.property)
    op, value = item.op, item.value
    if op == "is_set":
        return present
    if op == "is_not_set":
        return not present
    if op in ("eq", "in"):
        return any(_equal(v, actual) for v in ([value] if op == "eq" else value))
    if op in ("ne", "not_in"):
        return present and not any(_equal(v, actual) for v in ([value] if op == "ne" else value))
    if op == "contains":
        return isinstance(actual, str) and value in actual
    if not isinstance(actual, int | float) or isinstance(actual, bool):
        return False
    return _compare(float(actual), op, value)


def _compare(actual: Any, op: str, value: Any) -> bool:
    if op == "eq":
        return bool(actual == value)
    if op == "ne":
        return bool(actual != value)
    if op == "in":
        return actual in value
    if op == "not_in":
        return actual not in value
    if op == "contains":
        return isinstance(actual, str) and value in actual
    if op == "starts_with":
        return isinstance(actual, str) and actual.startswith(value)
    if op == "gt":
        return bool(actual > value)
    if op == "gte":
        return bool(actual >= value)
    if op == "lt":
        return bool(actual < value)
    if op == "lte":
        return bool(actual <= value)
    if op == "between":
        return bool(value[0] <= actual <= value[1])
    raise ValueError(f"operator {op!r}")


def _profile_value(node: AttributeCond, facts: Facts) -> Any:
    if node.field.startswith("attributes."):
        value = (facts.profile.get("attributes") or {}).get(node.field.removeprefix("attributes."))
        if value is None:
            return None
        if node.kind == "number":
            return float(value) if _json_kind(value) == "number" else None
        if node.kind == "date":
            return dt.date.fromisoformat(value) if isinstance(value, str) else None
        return value if isinstance(value, str) else str(value)
    value = facts.profile.get(node.field)
    if value is not None and hasattr(value, "value") and not isinstance(value, dt.date):
        return value.value  # an enum such as gender
    return value


def _date_test(day: dt.date, op: str, value: Any, days: int | None, today: dt.date) -> bool:
    if op in ("within_last_days", "within_next_days", "more_than_days_ago"):
        assert days is not None
        low, high = relative_range(op, days, today)
        return (low is None or day >= low) and (high is None or day <= high)
    return _compare(day, op, value)


def _attribute(node: AttributeCond, facts: Facts, ctx: RuleContext) -> bool:
    value = _profile_value(node, facts)
    if node.op == "is_set":
        return value is not None
    if node.op == "is_not_set":
        return value is None
    if value is None:
        return False
    if node.field == "birthday" and node.op == "within_next_days":
        assert node.days is not None
        return (value.month, value.day) in anniversary_days(ctx.today, node.days)
    if node.kind == "datetime":
        return _date_test(ctx.local_date(value), node.op, node.value, node.days, ctx.today)
    if node.kind == "date":
        return _date_test(value, node.op, node.value, node.days, ctx.today)
    return _compare(value, node.op, node.value)


def _computed(node: ComputedCond, facts: Facts, ctx: RuleContext) -> bool:
    op, value = node.op, node.value
    orders = [e for e in facts.events if e.type == "order.paid"]
    if node.name in ("order_count", "total_paid"):
        if op in ("is_set", "is_not_set"):
            return op == "is_set"
        if node.name == "order_count":
            return _compare(float(len(orders)), op, value)
        refunds = [e for e in facts.events if e.type == "order.refunded"]
        cents = sum(amount_cents(e.properties) for e in orders) - sum(amount_cents(e.properties) for e in refunds)
        wanted = tuple(round(v * 100) for v in value) if isinstance(value, tuple) else round(value * 100)
        return _compare(cents, op, wanted)
    if node.name == "days_since_last_order":
        if not orders:
            return op == "is_not_set"
        if op in ("is_set", "is_not_set"):
            return op == "is_set"
        days = (ctx.today - ctx.local_date(max(e.occurred_at for e in orders))).days
        if op in ("eq", "ne", "in", "not_in"):
            values = [value] if op in ("eq", "ne") else list(value)
            hit = any(float(v).is_integer() and days == int(v) for v in values)
            return hit if op in ("eq", "in") else not hit
        if op == "between":
            return bool(math.ceil(value[0]) <= days <= math.floor(value[1]))
        return _compare(float(days), op, value)
    score = facts.scores.get(node.name)
    if op == "is_set":
        return score is not None
    if op == "is_not_set":
        return score is None
    return score is not None and _compare(score, op, value)
