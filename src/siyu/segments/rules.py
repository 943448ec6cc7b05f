"""The segment rule language: JSON in, typed nodes out, or an error naming the bad node's path.

Documented in docs/en/segments.md (and zh-CN). The same nodes are compiled to SQL
(`siyu.segments.compiler`) and evaluated in plain Python over raw data (`siyu.segments.evaluate`);
the differential tests hold the two together.

    {"and": [
      {"attribute": "region", "op": "eq", "value": "上海"},
      {"tags": [12], "match": "any"},
      {"event": "content.viewed", "count": {"op": "gte", "value": 2}, "within_last_days": 7},
      {"computed": "order_count", "op": "eq", "value": 0},
      {"interest": 7, "at_least": 0.5}
    ]}
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from siyu.errors import ValidationFailed

MAX_DEPTH = 12
MAX_NODES = 300
MAX_LIST = 1000


class RuleError(ValidationFailed):
    """A rule that does not validate: the JSON path of the bad node and the reason."""

    code = "invalid_rule"

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"rule {path}: {reason}", details=[{"path": path, "reason": reason}])
        self.path = path
        self.reason = reason


# --------------------------------------------------------------------------- nodes


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


FieldKind = Literal["text", "choice", "number", "date", "datetime", "staff"]


@dataclass(frozen=True)
class AttributeCond:
    """A profile field (`region`, `birthday`, ...) or a custom attribute (`attributes.level`)."""

    field: str
    kind: FieldKind
    op: str
    value: Any = None  # str | float | date | tuple, per op
    days: int | None = None  # relative date ops


@dataclass(frozen=True)
class IdentityCond:
    type: str
    present: bool = True


@dataclass(frozen=True)
class TagsCond:
    tag_ids: tuple[int, ...]
    match: Literal["any", "all", "none"]


@dataclass(frozen=True)
class ChannelCodeCond:
    code_ids: tuple[int, ...]
    touch: Literal["first", "any"]


@dataclass(frozen=True)
class PropertyFilter:
    property: str
    op: str
    value: Any = None


@dataclass(frozen=True)
class Window:
    """Local days (workspace time zone), inclusive: the last N days end today."""

    last_days: int | None = None
    start: dt.date | None = None
    end: dt.date | None = None


@dataclass(frozen=True)
class EventCountCond:
    """Performed `type` (matching `where`) count-op N times, optionally within a window of days."""

    type: str
    where: tuple[PropertyFilter, ...]
    op: Literal["gte", "lte", "eq"]
    count: int
    window: Window | None = None


@dataclass(frozen=True)
class EventTimeCond:
    """The first / last time `type` was performed is before / after a moment."""

    type: str
    where: tuple[PropertyFilter, ...]
    which: Literal["first", "last"]
    op: Literal["before", "after"]
    date: dt.date | None = None  # the start of that local day
    days_ago: int | None = None  # the start of the local day N days before today


@dataclass(frozen=True)
class ComputedCond:
    name: str
    op: str
    value: Any = None


@dataclass(frozen=True)
class SegmentCond:
    segment_id: int


@dataclass(frozen=True)
class InterestCond:
    """The user portrait's affinity for a content tag (siyu.recommend.portrait), decayed to today, is at
    least `at_least`."""

    content_tag_id: int
    at_least: float


Node = (And | Or | Not | AttributeCond | IdentityCond | TagsCond | ChannelCodeCond | EventCountCond | EventTimeCond) | (
    ComputedCond | SegmentCond | InterestCond
)


# --------------------------------------------------------------------------- vocabulary

STANDARD_FIELDS: dict[str, FieldKind] = {
    "name": "text",
    "source_channel": "text",
    "region": "text",
    "occupation": "text",
    "consult_question": "text",
    "gender": "choice",
    "birthday": "date",
    "created_at": "datetime",
    "first_consult_at": "datetime",
    "owner_id": "staff",
}
GENDERS = ("male", "female", "unknown")

PRESENCE_OPS = frozenset({"is_set", "is_not_set"})
EQUALITY_OPS = frozenset({"eq", "ne", "in", "not_in"})
ORDER_OPS = frozenset({"gt", "gte", "lt", "lte", "between"})
TEXT_OPS = frozenset({"contains", "starts_with"})
RELATIVE_DATE_OPS = frozenset({"within_last_days", "within_next_days", "more_than_days_ago"})

OPS_BY_KIND: dict[str, frozenset[str]] = {
    "text": PRESENCE_OPS | EQUALITY_OPS | TEXT_OPS,
    "choice": PRESENCE_OPS | EQUALITY_OPS,
    "staff": PRESENCE_OPS | EQUALITY_OPS,
    "number": PRESENCE_OPS | EQUALITY_OPS | ORDER_OPS,
    "date": PRESENCE_OPS | EQUALITY_OPS | ORDER_OPS | RELATIVE_DATE_OPS,
    "datetime": PRESENCE_OPS | ORDER_OPS | {"eq", "ne"} | RELATIVE_DATE_OPS,
}

# name -> (kind, description). Numbers derived from the events; the rest from the built-in models.
COMPUTED: dict[str, tuple[FieldKind, str]] = {
    "order_count": ("number", "paid orders (order.paid events)"),
    "total_paid": ("number", "sum of paid amounts minus refunds, in yuan"),
    "days_since_last_order": ("number", "local days since the last paid order; unset if none"),
    "r_score": ("number", "RFM recency score 1-5"),
    "f_score": ("number", "RFM frequency score 1-5"),
    "m_score": ("number", "RFM monetary score 1-5"),
    "intention_score": ("number", "intention points after decay"),
    "lifecycle_stage": ("choice", "acquired, activated, customer, repeat_customer, advocate, at_risk, churned"),
    "value_tier": ("choice", "loyal, high_quality, ordinary, low_frequency, lost"),
    "intention_level": ("choice", "strong, weak, none"),
    "transaction_stage": ("choice", "a stage key defined by the workspace"),
}
COMPUTED_OPS: dict[str, frozenset[str]] = {
    "number": PRESENCE_OPS | EQUALITY_OPS | ORDER_OPS,
    "choice": PRESENCE_OPS | EQUALITY_OPS,
}

# An affinity is a decayed sum of event weights (1 a view by default): thresholds above this are typos.
MAX_INTEREST = 1_000_000.0

PROPERTY_OPS = frozenset({"eq", "ne", "in", "not_in", "contains", "gt", "gte", "lt", "lte", "is_set", "is_not_set"})
PROPERTY_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
IDENTITY_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@dataclass
class Catalog:
    """What a rule may name in one workspace. `segment_rule` looks up another segment's rule (cycles)."""

    tag_ids: frozenset[int] = frozenset()
    segment_ids: frozenset[int] = frozenset()
    code_ids: frozenset[int] = frozenset()
    content_tag_ids: frozenset[int] = frozenset()
    attributes: Mapping[str, tuple[FieldKind, tuple[str, ...] | None]] = field(default_factory=dict)
    segment_rule: Callable[[int], dict[str, Any] | None] | None = None
    # the segment being saved, so "in segment X" never reaches back to itself
    self_segment_id: int | None = None


# --------------------------------------------------------------------------- parsing


@dataclass
class _Parser:
    catalog: Catalog
    nodes: int = 0
    segment_refs: set[int] = field(default_factory=set)

    def node(self, raw: Any, path: str, depth: int) -> Node:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise RuleError(path, f"rule too large: at most {MAX_NODES} conditions")
        if depth > MAX_DEPTH:
            raise RuleError(path, f"rule nested too deeply: at most {MAX_DEPTH} levels")
        if not isinstance(raw, dict):
            raise RuleError(path, f"expected an object, got {_kind(raw)}")
        for key, handler in self._heads():
            if key in raw:
                return handler(raw, path, depth)
        raise RuleError(
            path,
            "expected one of the keys and, or, not, attribute, identity, tags, channel_code, event, computed, "
            f"segment, interest; got {sorted(raw) or 'an empty object'}",
        )

    def _heads(self) -> list[tuple[str, Callable[[dict[str, Any], str, int], Node]]]:
        return [
            ("and", self._and_or),
            ("or", self._and_or),
            ("not", self._not),
            ("attribute", self._attribute),
            ("identity", self._identity),
            ("tags", self._tags),
            ("channel_code", self._channel_code),
            ("event", self._event),
            ("computed", self._computed),
            ("segment", self._segment),
            ("interest", self._interest),
        ]

    def _and_or(self, raw: dict[str, Any], path: str, depth: int) -> Node:
        key = "and" if "and" in raw else "or"
        _only(raw, {key}, path)
        items = raw[key]
        if not isinstance(items, list) or not items:
            raise RuleError(f"{path}.{key}", "expected a non-empty list of conditions")
        children = tuple(self.node(item, f"{path}.{key}[{n}]", depth + 1) for n, item in enumerate(items))
        return And(children) if key == "and" else Or(children)

    def _not(self, raw: dict[str, Any], path: str, depth: int) -> Node:
        _only(raw, {"not"}, path)
        return Not(self.node(raw["not"], f"{path}.not", depth + 1))

    def _attribute(self, raw: dict[str, Any], path: str, _depth: int) -> Node:
        _only(raw, {"attribute", "op", "value", "days"}, path)
        name = raw["attribute"]
        if not isinstance(name, str):
            raise RuleError(f"{path}.attribute", f"expected a field name, got {_kind(name)}")
        choices: tuple[str, ...] | None = None
        if name in STANDARD_FIELDS:
            kind = STANDARD_FIELDS[name]
            if name == "gender":
                choices = GENDERS
        elif name.startswith("attributes."):
            key = name.removeprefix("attributes.")
            if key not in self.catalog.attributes:
                known = ", ".join(sorted(self.catalog.attributes)) or "none declared"
                raise RuleError(f"{path}.attribute", f"no custom attribute {key!r} in this workspace (known: {known})")
            kind, choices = self.catalog.attributes[key]
        else:
            raise RuleError(
                f"{path}.attribute",
                f"unknown field {name!r}: use one of {', '.join(STANDARD_FIELDS)} or attributes.<key>",
            )
        op = _op(raw, path, OPS_BY_KIND[kind], f"a {kind} field")
        if op in RELATIVE_DATE_OPS:
            _only(raw, {"attribute", "op", "days"}, path)
            if op == "within_next_days" and kind == "datetime":
                raise RuleError(f"{path}.op", "within_next_days is for dates such as birthday")
            return AttributeCond(name, kind, op, days=_int(raw.get("days"), f"{path}.days", low=1, high=36_500))
        if "days" in raw:
            raise RuleError(f"{path}.days", f"days goes with the relative date operators, not {op!r}")
        value = _value(raw, op, path, lambda v, p: _scalar(v, p, kind, choices))
        return AttributeCond(name, kind, op, value)

    def _identity(self, raw: dict[str, Any], path: str, _depth: int) -> Node:
        _only(raw, {"identity", "present"}, path)
        kind = raw["identity"]
        if not isinstance(kind, str) or not IDENTITY_TYPE.match(kind):
            raise RuleError(f"{path}.identity", "expected an identity type such as wecom_external_userid or phone")
        present = raw.get("present", True)
        if not isinstance(present, bool):
            raise RuleError(f"{path}.present", "expected true or false")
        return IdentityCond(kind, present)

    def _tags(self, raw: dict[str, Any], path: str, _depth: int) -> Node:
        _only(raw, {"tags", "match"}, path)
        ids = _ids(raw["tags"], f"{path}.tags", self.catalog.tag_ids, "tag")
        match = raw.get("match", "any")
        if match not in ("any", "all", "none"):
            raise RuleError(f"{path}.match", f"expected any, all or none, got {match!r}")
        return TagsCond(ids, match)

    def _channel_code(self, raw: dict[str, Any], path: str, _depth: int) -> Node:
        _only(raw, {"channel_code", "touch"}, path)
        ids = _ids(raw["channel_code"], f"{path}.channel_code", self.catalog.code_ids, "channel code")
        touch = raw.get("touch", "first")
        if touch not in ("first", "any"):
            raise RuleError(f"{path}.touch", f"expected first or any, got {touch!r}")
        return ChannelCodeCond(ids, touch)

    def _event(self, raw: dict[str, Any], path: str, _depth: int) -> Node:
        event_type = raw["event"]
        if not isinstance(event_type, str) or not EVENT_TYPE.match(event_type):
            raise RuleError(f"{path}.event", "expected an event type such as content.viewed")
        where = self._where(raw.get("where", []), f"{path}.where")
        if "first" in raw or "last" in raw:
            which: Literal["first", "last"] = "first" if "first" in raw else "last"
            _only(raw, {"event", "where", which}, path)
            return self._event_time(event_type, where, which, raw[which], f"{path}.{which}")
        _only(raw, {"event", "where", "count", "performed", "within_last_days", "between"}, path)
        op: Literal["gte", "lte", "eq"] = "gte"
        count = 1
        if "performed" in raw:
            if "count" in raw:
                raise RuleError(f"{path}.performed", "give performed or count, not both")
            if not isinstance(raw["performed"], bool):
                raise RuleError(f"{path}.performed", "expected true or false")
            if not raw["performed"]:
                op, count = "eq", 0
        elif "count" in raw:
            spec = raw["count"]
            if not isinstance(spec, dict):
                raise RuleError(f"{path}.count", 'expected {"op": "gte|lte|eq", "value": N}')
            _only(spec, {"op", "value"}, f"{path}.count")
            if spec.get("op") not in ("gte", "lte", "eq"):
                raise RuleError(f"{path}.count.op", f"expected gte, lte or eq, got {spec.get('op')!r}")
            op = spec["op"]
            count = _int(spec.get("value"), f"{path}.count.value", low=0, high=1_000_000)
        window: Window | None = None
        if "within_last_days" in raw and "between" in raw:
            raise RuleError(path, "give within_last_days or between, not both")
        if "within_last_days" in raw:
            window = Window(last_days=_int(raw["within_last_days"], f"{path}.within_last_days", low=1, high=3650))
        elif "between" in raw:
            span = raw["between"]
            if not isinstance(span, list) or len(span) != 2:
                raise RuleError(f"{path}.between", 'expected ["YYYY-MM-DD", "YYYY-MM-DD"]')
            start = _date(span[0], f"{path}.between[0]")
            end = _date(span[1], f"{path}.between[1]")
            if end < start:
                raise RuleError(f"{path}.between", "the end date is before the start date")
            window = Window(start=start, end=end)
        return EventCountCond(event_type, where, op, count, window)

    def _event_time(
        self, event_type: str, where: tuple[PropertyFilter, ...], which: Literal["first", "last"], raw: Any, path: str
    ) -> Node:
        if not isinstance(raw, dict):
            raise RuleError(path, 'expected {"op": "before|after", "date": "YYYY-MM-DD"} or {"op": ..., "days_ago": N}')
        _only(raw, {"op", "date", "days_ago"}, path)
        op = raw.get("op")
        if op not in ("before", "after"):
            raise RuleError(f"{path}.op", f"expected before or after, got {op!r}")
        if ("date" in raw) == ("days_ago" in raw):
            raise RuleError(path, "give exactly one of date or days_ago")
        if "date" in raw:
            return EventTimeCond(event_type, where, which, op, date=_date(raw["date"], f"{path}.date"))
        days = _int(raw["days_ago"], f"{path}.days_ago", low=0, high=36_500)
        return EventTimeCond(event_type, where, which, op, days_ago=days)

    def _where(self, raw: Any, path: str) -> tuple[PropertyFilter, ...]:
        if not isinstance(raw, list):
            raise RuleError(path, "expected a list of property filters")
        filters = []
        for n, item in enumerate(raw):
            at = f"{path}[{n}]"
            if not isinstance(item, dict):
                raise RuleError(at, 'expected {"property": KEY, "op": ..., "value": ...}')
            _only(item, {"property", "op", "value"}, at)
            key = item.get("property")
            if not isinstance(key, str) or not PROPERTY_KEY.match(key):
                raise RuleError(f"{at}.property", "expected a property name (letters, digits, underscore)")
            op = _op(item, at, PROPERTY_OPS, "an event property")
            if op in ("gt", "gte", "lt", "lte"):
                value = _value(item, op, at, _number)
            else:
                value = _value(item, op, at, _property_scalar)
            if op == "contains" and not isinstance(value, str):
                raise RuleError(f"{at}.value", "contains expects text")
            filters.append(PropertyFilter(key, op, value))
        return tuple(filters)

    def _computed(self, raw: dict[str, Any], path: str, _depth: int) -> Node:
        _only(raw, {"computed", "op", "value"}, path)
        name = raw["computed"]
        if name not in COMPUTED:
            raise RuleError(f"{path}.computed", f"unknown computed property {name!r}: use one of {', '.join(COMPUTED)}")
        kind = COMPUTED[name][0]
        op = _op(raw, path, COMPUTED_OPS[kind], f"computed property {name}")
        value = _value(raw, op, path, lambda v, p: _scalar(v, p, "number" if kind == "number" else "text", None))
        return ComputedCond(name, op, value)

    def _segment(self, raw: dict[str, Any], path: str, _depth: int) -> Node:
        _only(raw, {"segment"}, path)
        segment_id = raw["segment"]
        if isinstance(segment_id, bool) or not isinstance(segment_id, int):
            raise RuleError(f"{path}.segment", "expected a segment id")
        if segment_id == self.catalog.self_segment_id:
            raise RuleError(f"{path}.segment", "a segment cannot contain itself")
        if segment_id not in self.catalog.segment_ids:
            raise RuleError(f"{path}.segment", f"no segment {segment_id} in this workspace")
        self.segment_refs.add(segment_id)
        return SegmentCond(segment_id)

    def _interest(self, raw: dict[str, Any], path: str, _depth: int) -> Node:
        _only(raw, {"interest", "at_least"}, path)
        tag_id = raw["interest"]
        if isinstance(tag_id, bool) or not isinstance(tag_id, int):
            raise RuleError(f"{path}.interest", f"expected a content tag id, got {_kind(tag_id)}")
        if tag_id not in self.catalog.content_tag_ids:
            raise RuleError(
                f"{path}.interest", f"no content tag {tag_id} in this workspace (GET /api/v1/content/tag-groups)"
            )
        if "at_least" not in raw:
            raise RuleError(f"{path}.at_least", "give the affinity to reach, e.g. 0.5 (one view today counts 1)")
        threshold = _number(raw["at_least"], f"{path}.at_least")
        if not 0 < threshold <= MAX_INTEREST:
            raise RuleError(
                f"{path}.at_least", f"expected a number above 0 and at most {MAX_INTEREST:g}, got {threshold:g}"
            )
        return InterestCond(tag_id, threshold)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "true/false", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__
    )


def _only(raw: dict[str, Any], allowed: set[str], path: str) -> None:
    extra = sorted(set(raw) - allowed)
    if extra:
        raise RuleError(f"{path}.{extra[0]}", f"unexpected key here (allowed: {', '.join(sorted(allowed))})")


def _op(raw: dict[str, Any], path: str, allowed: frozenset[str], what: str) -> str:
    op = raw.get("op")
    if op not in allowed:
        raise RuleError(f"{path}.op", f"expected one of {', '.join(sorted(allowed))} for {what}, got {op!r}")
    return str(op)


def _int(value: Any, path: str, *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RuleError(path, f"expected a whole number from {low} to {high}, got {_kind(value)}")
    if not low <= value <= high:
        raise RuleError(path, f"expected a whole number from {low} to {high}, got {value}")
    return value


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RuleError(path, f"expected a number, got {_kind(value)}")
    return float(value)


def _date(value: Any, path: str) -> dt.date:
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise RuleError(path, f"expected a date YYYY-MM-DD, got {value!r}")


def _property_scalar(value: Any, path: str) -> str | float | bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return value
    raise RuleError(path, f"expected text, a number or true/false, got {_kind(value)}")


def _scalar(value: Any, path: str, kind: str, choices: tuple[str, ...] | None) -> Any:
    if kind in ("number", "staff"):
        number = _number(value, path)
        return int(number) if kind == "staff" else number
    if kind in ("date", "datetime"):
        return _date(value, path)
    if not isinstance(value, str):
        raise RuleError(path, f"expected text, got {_kind(value)}")
    if choices is not None and value not in choices:
        raise RuleError(path, f"{value!r} is not one of {', '.join(choices)}")
    return value


def _value(raw: dict[str, Any], op: str, path: str, one: Callable[[Any, str], Any]) -> Any:
    if op in PRESENCE_OPS:
        if "value" in raw:
            raise RuleError(f"{path}.value", f"{op} takes no value")
        return None
    if "value" not in raw:
        raise RuleError(f"{path}.value", f"{op} needs a value")
    value = raw["value"]
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value or len(value) > MAX_LIST:
            raise RuleError(f"{path}.value", f"{op} expects a list of 1 to {MAX_LIST} values")
        return tuple(one(v, f"{path}.value[{n}]") for n, v in enumerate(value))
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise RuleError(f"{path}.value", "between expects [low, high]")
        low, high = one(value[0], f"{path}.value[0]"), one(value[1], f"{path}.value[1]")
        if high < low:
            raise RuleError(f"{path}.value", "between: high is below low")
        return (low, high)
    return one(value, f"{path}.value")


def _ids(value: Any, path: str, known: frozenset[int], what: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not value or len(value) > MAX_LIST:
        raise RuleError(path, f"expected a list of 1 to {MAX_LIST} {what} ids")
    ids = []
    for n, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, int):
            raise RuleError(f"{path}[{n}]", f"expected a {what} id")
        if item not in known:
            raise RuleError(f"{path}[{n}]", f"no {what} {item} in this workspace")
        ids.append(item)
    return tuple(dict.fromkeys(ids))


def parse_rule(raw: Any, catalog: Catalog) -> Node:
    """Checks a rule against the language and the workspace; raises RuleError naming the bad node."""
    parser = _Parser(catalog)
    node = parser.node(raw, "$", 0)
    if catalog.self_segment_id is not None and catalog.segment_rule is not None:
        _check_no_cycle(catalog, parser.segment_refs)
    return node


def conditions(node: Node) -> Iterator[Node]:
    """The conditions (leaves) of a rule, groups walked through."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, And | Or):
            stack.extend(current.children)
        elif isinstance(current, Not):
            stack.append(current.child)
        else:
            yield current


def json_values(raw: Any) -> Iterator[Any]:
    """Every value of a decoded JSON document, depth first: the document, then what each object or
    array holds."""
    yield raw
    children = raw.values() if isinstance(raw, dict) else raw if isinstance(raw, list) else ()
    for child in children:
        yield from json_values(child)


def segment_refs_in(raw: Any) -> set[int]:
    """Segment ids a saved rule's JSON names, without checking it against a workspace."""
    return {v["segment"] for v in json_values(raw) if isinstance(v, dict) and isinstance(v.get("segment"), int)}


def _check_no_cycle(catalog: Catalog, refs: set[int]) -> None:
    assert catalog.segment_rule is not None
    seen: set[int] = set()
    stack = list(refs)
    while stack:
        current = stack.pop()
        if current == catalog.self_segment_id:
            raise RuleError("$", f"segments would contain each other in a loop (through segment {current})")
        if current in seen:
            continue
        seen.add(current)
        rule = catalog.segment_rule(current)
        if rule is not None:
            stack.extend(segment_refs_in(rule))
