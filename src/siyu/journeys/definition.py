"""The journey definition language: JSON in, typed steps out, or an error naming the bad node's JSON path.

Documented in docs/en/journeys.md (and zh-CN). In short:

    {"trigger": {"event": "contact.added"},
     "entry": {"mode": "once"},
     "goal": {"event": "order.paid"},
     "steps": [
       {"id": "welcome", "type": "send", "channel": "wecom", "text": "欢迎 {name}!"},
       {"id": "day3", "type": "wait", "for": {"days": 3}, "until": "10:00"},
       {"id": "call", "type": "task", "title": "回访新客户"},
       {"id": "bought", "type": "branch", "condition": {"computed": "order_count", "op": "gte", "value": 1},
        "then": "done", "else": "offer"},
       {"id": "offer", "type": "send", "channel": "wecom", "text": "专属优惠", "welfare": true},
       {"id": "done", "type": "exit"}]}

Conditions (branch steps, schedule audiences) are segment rules (siyu.segments.rules); event property
filters (`where`) are the segment rules' property filters. A step's `next` defaults to the step after it
in the list; the last step ends the journey. Parsing with a `JourneyCatalog` also checks that every tag,
segment, staff member, content item and group code named exists in the workspace; without one (the
runner reading a published version) only the shape is checked.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from siyu.delivery.models import Channel, QuietHoursPolicy
from siyu.journeys.schedule import Cron, CronError, parse_cron, parse_hhmm
from siyu.segments.rules import Catalog, EventCountCond, PropertyFilter, RuleError, parse_rule

MAX_STEPS = 100
MAX_TEXT = 2000
MAX_DURATION = dt.timedelta(days=366)
STEP_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
URL = re.compile(r"^https?://\S+$")
TEMPLATE_FIELDS = ("{name}", "{link}")


class DefinitionError(RuleError):
    """A definition that does not validate: the JSON path of the bad node and the reason (422)."""

    code = "invalid_journey"

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(path, reason)
        self.message = f"journey {path}: {reason}"
        self.args = (self.message,)


# --------------------------------------------------------------------------- triggers


@dataclass(frozen=True)
class EventTrigger:
    type: str
    where: tuple[PropertyFilter, ...] = ()
    kind: str = "event"


@dataclass(frozen=True)
class SegmentTrigger:
    segment_id: int
    on: Literal["entered", "exited"] = "entered"
    kind: str = "segment"


@dataclass(frozen=True)
class TagTrigger:
    tag_ids: tuple[int, ...]
    kind: str = "tag"


@dataclass(frozen=True)
class DateTrigger:
    """N days before a date: the birthday (every year) or a date attribute (that date), at HH:MM local."""

    field: str  # "birthday" or "attributes.<key>"
    days_before: int
    at: dt.time
    kind: str = "date"


@dataclass(frozen=True)
class ScheduleTrigger:
    cron: Cron
    audience: Any  # a segment rule (JSON), compiled when the schedule fires
    kind: str = "schedule"


@dataclass(frozen=True)
class ManualTrigger:
    kind: str = "manual"


Trigger = EventTrigger | SegmentTrigger | TagTrigger | DateTrigger | ScheduleTrigger | ManualTrigger
ENTRY_MODES = ("once", "again_after_exit", "every_n_days")


@dataclass(frozen=True)
class Entry:
    mode: Literal["once", "again_after_exit", "every_n_days"] = "once"
    days: int = 0  # every_n_days: at least this many days between two entries


@dataclass(frozen=True)
class Goal:
    type: str
    where: tuple[PropertyFilter, ...] = ()
    exit: bool = True  # reaching the goal takes the contact out (false: counted, carries on)


# --------------------------------------------------------------------------- steps


@dataclass(frozen=True)
class Step:
    id: str
    type: str
    next: str | None  # None: the journey ends after this step (for steps with one way on)

    def exits(self) -> tuple[str | None, ...]:
        return (self.next,)


@dataclass(frozen=True)
class WaitStep(Step):
    duration: dt.timedelta | None = None
    until: dt.time | None = None  # then on to the next HH:MM, workspace time


@dataclass(frozen=True)
class WaitEventStep(Step):
    event: str = ""
    where: tuple[PropertyFilter, ...] = ()
    timeout: dt.timedelta = dt.timedelta(days=1)
    on_event: str | None = None
    on_timeout: str | None = None

    def exits(self) -> tuple[str | None, ...]:
        return (self.on_event, self.on_timeout)


@dataclass(frozen=True)
class BranchStep(Step):
    condition: Any = None  # a segment rule (JSON)
    then: str | None = None
    otherwise: str | None = None

    def exits(self) -> tuple[str | None, ...]:
        return (self.then, self.otherwise)


@dataclass(frozen=True)
class SplitStep(Step):
    branches: tuple[tuple[int, str | None], ...] = ()  # (weight, next)

    def exits(self) -> tuple[str | None, ...]:
        return tuple(n for _, n in self.branches)


@dataclass(frozen=True)
class HoldoutStep(Step):
    percent: float = 10.0


@dataclass(frozen=True)
class SendStep(Step):
    channel: Channel = Channel.sandbox
    text: str | None = None
    content_id: int | None = None
    recommend: bool = False  # the best item for the contact (siyu.recommend); text is the fallback
    welfare: bool = False
    service: bool = False  # a service message the contact asked for: frequency caps do not stop it
    quiet_hours: QuietHoursPolicy = QuietHoursPolicy.hold


@dataclass(frozen=True)
class TagStep(Step):
    add: tuple[int, ...] = ()
    remove: tuple[int, ...] = ()


@dataclass(frozen=True)
class AttributeStep(Step):
    attribute: str = ""
    value: Any = None


@dataclass(frozen=True)
class TaskStep(Step):
    title: str = ""
    detail: str | None = None
    due_in: dt.timedelta = dt.timedelta(0)


@dataclass(frozen=True)
class OwnerStep(Step):
    staff_ids: tuple[int, ...] = ()  # one: that staff member; several: in turn, by enrolment


@dataclass(frozen=True)
class InviteStep(Step):
    group_code_id: int = 0
    channel: Channel = Channel.sandbox
    text: str = "{link}"
    base_url: str = ""  # the public address of siyu; the link is base_url + /g/<slug>


@dataclass(frozen=True)
class WebhookStep(Step):
    url: str = ""
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExitStep(Step):
    def exits(self) -> tuple[str | None, ...]:
        return ()


WAIT_TYPES = ("wait", "wait_event")
OUTREACH_TYPES = ("send", "invite_group", "webhook", "task")
STEP_TYPES = (
    "wait",
    "wait_event",
    "branch",
    "split",
    "holdout",
    "send",
    "tag",
    "set_attribute",
    "task",
    "owner",
    "invite_group",
    "webhook",
    "exit",
)


@dataclass(frozen=True)
class Definition:
    trigger: Trigger
    entry: Entry
    goal: Goal | None
    steps: Mapping[str, Step]
    first: str
    order: tuple[str, ...]

    def step(self, step_id: str) -> Step:
        return self.steps[step_id]


# --------------------------------------------------------------------------- catalog


@dataclass
class JourneyCatalog:
    """What a definition may name in one workspace (parsing without one checks the shape only)."""

    rules: Catalog
    staff_ids: frozenset[int] = frozenset()
    content_ids: frozenset[int] = frozenset()  # published items
    group_code_ids: frozenset[int] = frozenset()
    date_attributes: frozenset[str] = frozenset()


# --------------------------------------------------------------------------- helpers


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "true/false", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__
    )


def _object(raw: Any, path: str, what: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise DefinitionError(path, f"expected {what} (an object), got {_kind(raw)}")
    return raw


def _only(raw: dict[str, Any], allowed: set[str], path: str) -> None:
    extra = sorted(set(raw) - allowed)
    if extra:
        raise DefinitionError(f"{path}.{extra[0]}", f"unexpected key here (allowed: {', '.join(sorted(allowed))})")


def _int(value: Any, path: str, *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        shown = value if isinstance(value, int) and not isinstance(value, bool) else _kind(value)
        raise DefinitionError(path, f"expected a whole number from {low} to {high}, got {shown}")
    return value


def _bool(raw: dict[str, Any], key: str, path: str, default: bool) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise DefinitionError(f"{path}.{key}", f"expected true or false, got {_kind(value)}")
    return value


def _text(value: Any, path: str, *, limit: int = MAX_TEXT, required: bool = True) -> str:
    if not isinstance(value, str) or (required and not value.strip()):
        raise DefinitionError(path, "expected non-empty text" if required else "expected text")
    if len(value) > limit:
        raise DefinitionError(path, f"at most {limit} characters, got {len(value)}")
    return value


def _event_type(value: Any, path: str) -> str:
    if not isinstance(value, str) or not EVENT_TYPE.match(value) or len(value) > 64:
        raise DefinitionError(path, "expected an event type such as order.paid")
    return value


def _rebased(exc: RuleError, path: str) -> DefinitionError:
    """A segment-rule error at `$...` moved under `path` in the journey."""
    inner = exc.path[1:] if exc.path.startswith("$") else f".{exc.path}"
    return DefinitionError(f"{path}{inner}", exc.reason)


def _where(raw: Any, path: str) -> tuple[PropertyFilter, ...]:
    """Property filters in the segment rule language (`where` of an event condition)."""
    try:
        node = parse_rule({"event": "x.y", "where": raw}, Catalog())
    except RuleError as exc:
        inner = exc.path.removeprefix("$.where")
        raise DefinitionError(f"{path}{inner}", exc.reason) from None
    assert isinstance(node, EventCountCond)
    return node.where


def _rule(raw: Any, path: str, catalog: JourneyCatalog | None) -> Any:
    if catalog is None:
        if not isinstance(raw, dict):
            raise DefinitionError(path, f"expected a condition (an object), got {_kind(raw)}")
        return raw
    try:
        parse_rule(raw, catalog.rules)
    except RuleError as exc:
        raise _rebased(exc, path) from None
    return raw


def _duration(raw: Any, path: str) -> dt.timedelta:
    spec = _object(raw, path, '{"days": N, "hours": N, "minutes": N}')
    _only(spec, {"days", "hours", "minutes"}, path)
    if not spec:
        raise DefinitionError(path, "give days, hours or minutes")
    delta = dt.timedelta(
        days=_int(spec.get("days", 0), f"{path}.days", low=0, high=366),
        hours=_int(spec.get("hours", 0), f"{path}.hours", low=0, high=8784),
        minutes=_int(spec.get("minutes", 0), f"{path}.minutes", low=0, high=527_040),
    )
    if delta <= dt.timedelta(0):
        raise DefinitionError(path, "the duration must be longer than zero")
    if delta > MAX_DURATION:
        raise DefinitionError(path, "at most 366 days")
    return delta


def _hhmm(value: Any, path: str) -> dt.time:
    if not isinstance(value, str):
        raise DefinitionError(path, f"expected a time of day HH:MM, got {_kind(value)}")
    try:
        return parse_hhmm(value)
    except ValueError as exc:
        raise DefinitionError(path, str(exc)) from None


def _ids(
    value: Any, path: str, known: frozenset[int] | None, what: str, *, allow_empty: bool = False
) -> tuple[int, ...]:
    if not isinstance(value, list) or (not value and not allow_empty) or len(value) > 100:
        raise DefinitionError(path, f"expected a list of 1 to 100 {what} ids")
    out = []
    for n, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, int):
            raise DefinitionError(f"{path}[{n}]", f"expected a {what} id, got {_kind(item)}")
        if known is not None and item not in known:
            raise DefinitionError(f"{path}[{n}]", f"no {what} {item} in this workspace")
        out.append(item)
    return tuple(dict.fromkeys(out))


def _id(value: Any, path: str, known: frozenset[int] | None, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DefinitionError(path, f"expected a {what} id, got {_kind(value)}")
    if known is not None and value not in known:
        raise DefinitionError(path, f"no {what} {value} in this workspace")
    return value


def _channel(raw: dict[str, Any], path: str) -> Channel:
    value = raw.get("channel", "sandbox")
    try:
        return Channel(value)
    except ValueError:
        choices = ", ".join(c.value for c in Channel)
        raise DefinitionError(f"{path}.channel", f"expected one of {choices}, got {value!r}") from None


# --------------------------------------------------------------------------- parts


def _trigger(raw: Any, path: str, catalog: JourneyCatalog | None) -> Trigger:
    spec = _object(raw, path, "a trigger")
    if "event" in spec:
        _only(spec, {"event", "where"}, path)
        return EventTrigger(_event_type(spec["event"], f"{path}.event"), _where(spec.get("where", []), f"{path}.where"))
    if "segment" in spec:
        _only(spec, {"segment", "on"}, path)
        known = catalog.rules.segment_ids if catalog else None
        segment_id = _id(spec["segment"], f"{path}.segment", known, "segment")
        on = spec.get("on", "entered")
        if on not in ("entered", "exited"):
            raise DefinitionError(f"{path}.on", f"expected entered or exited, got {on!r}")
        return SegmentTrigger(segment_id, on)
    if "tag" in spec:
        _only(spec, {"tag"}, path)
        raw_ids = spec["tag"] if isinstance(spec["tag"], list) else [spec["tag"]]
        return TagTrigger(_ids(raw_ids, f"{path}.tag", catalog.rules.tag_ids if catalog else None, "tag"))
    if "date" in spec:
        _only(spec, {"date", "days_before", "at"}, path)
        name = spec["date"]
        if name != "birthday":
            if not isinstance(name, str) or not name.startswith("attributes."):
                raise DefinitionError(f"{path}.date", "expected birthday or attributes.<key> (a date attribute)")
            key = name.removeprefix("attributes.")
            if catalog is not None and key not in catalog.date_attributes:
                listed = ", ".join(sorted(catalog.date_attributes)) or "none declared"
                raise DefinitionError(f"{path}.date", f"no date attribute {key!r} in this workspace (known: {listed})")
        days = _int(spec.get("days_before", 0), f"{path}.days_before", low=0, high=365)
        return DateTrigger(name, days, _hhmm(spec.get("at", "10:00"), f"{path}.at"))
    if "schedule" in spec:
        _only(spec, {"schedule", "audience"}, path)
        if not isinstance(spec["schedule"], str):
            raise DefinitionError(f"{path}.schedule", "expected a cron expression such as '0 8 * * 1-5'")
        try:
            cron = parse_cron(spec["schedule"])
        except CronError as exc:
            raise DefinitionError(f"{path}.schedule", str(exc)) from None
        if "audience" not in spec:
            raise DefinitionError(
                f"{path}.audience", 'a schedule needs an audience: a segment rule, e.g. {"segment": 3}'
            )
        return ScheduleTrigger(cron, _rule(spec["audience"], f"{path}.audience", catalog))
    if "manual" in spec:
        _only(spec, {"manual"}, path)
        if spec["manual"] is not True:
            raise DefinitionError(f"{path}.manual", "expected true")
        return ManualTrigger()
    raise DefinitionError(
        path, f"expected one of the keys event, segment, tag, date, schedule, manual; got {sorted(spec) or 'nothing'}"
    )


def _entry(raw: Any, path: str) -> Entry:
    spec = _object(raw, path, '{"mode": "once" | "again_after_exit" | "every_n_days", "days": N}')
    _only(spec, {"mode", "days"}, path)
    mode = spec.get("mode", "once")
    if mode not in ENTRY_MODES:
        raise DefinitionError(f"{path}.mode", f"expected one of {', '.join(ENTRY_MODES)}, got {mode!r}")
    if mode == "every_n_days":
        if "days" not in spec:
            raise DefinitionError(f"{path}.days", "every_n_days needs days: the least number of days between entries")
        return Entry(mode, _int(spec["days"], f"{path}.days", low=1, high=3650))
    if "days" in spec:
        raise DefinitionError(f"{path}.days", f"days goes with the mode every_n_days, not {mode}")
    return Entry(mode)


def _goal(raw: Any, path: str) -> Goal:
    spec = _object(raw, path, '{"event": TYPE, "where": [...]}')
    _only(spec, {"event", "where", "exit"}, path)
    if "event" not in spec:
        raise DefinitionError(f"{path}.event", "a goal is an event type, e.g. order.paid")
    return Goal(
        _event_type(spec["event"], f"{path}.event"),
        _where(spec.get("where", []), f"{path}.where"),
        _bool(spec, "exit", path, True),
    )


COMMON = {"id", "type", "name", "next"}


def _step(raw: dict[str, Any], path: str, step_id: str, nxt: str | None, catalog: JourneyCatalog | None) -> Step:
    kind = raw["type"]

    def keys(*extra: str) -> None:
        _only(raw, COMMON | set(extra), path)

    if kind == "wait":
        keys("for", "until")
        if "for" not in raw and "until" not in raw:
            raise DefinitionError(path, 'a wait needs "for" (a duration), "until" (HH:MM) or both')
        duration = _duration(raw["for"], f"{path}.for") if "for" in raw else None
        until = _hhmm(raw["until"], f"{path}.until") if "until" in raw else None
        return WaitStep(step_id, kind, nxt, duration=duration, until=until)
    if kind == "wait_event":
        _only(raw, {"id", "type", "name", "event", "where", "timeout", "on_event", "on_timeout"}, path)
        for key in ("event", "timeout"):
            if key not in raw:
                raise DefinitionError(f"{path}.{key}", f"a wait_event step needs {key}")
        return WaitEventStep(
            step_id,
            kind,
            None,
            event=_event_type(raw["event"], f"{path}.event"),
            where=_where(raw.get("where", []), f"{path}.where"),
            timeout=_duration(raw["timeout"], f"{path}.timeout"),
            on_event=_ref(raw, "on_event", path, nxt),
            on_timeout=_ref(raw, "on_timeout", path, nxt),
        )
    if kind == "branch":
        _only(raw, {"id", "type", "name", "condition", "then", "else"}, path)
        if "condition" not in raw:
            raise DefinitionError(f"{path}.condition", "a branch needs a condition (a segment rule)")
        return BranchStep(
            step_id,
            kind,
            None,
            condition=_rule(raw["condition"], f"{path}.condition", catalog),
            then=_ref(raw, "then", path, nxt),
            otherwise=_ref(raw, "else", path, nxt),
        )
    if kind == "split":
        _only(raw, {"id", "type", "name", "branches"}, path)
        branches = raw.get("branches")
        if not isinstance(branches, list) or not 2 <= len(branches) <= 10:
            raise DefinitionError(f"{path}.branches", 'expected 2 to 10 branches [{"weight": N, "next": STEP}, ...]')
        parsed = []
        for n, branch in enumerate(branches):
            at = f"{path}.branches[{n}]"
            item = _object(branch, at, '{"weight": N, "next": STEP}')
            _only(item, {"weight", "next"}, at)
            parsed.append(
                (_int(item.get("weight", 1), f"{at}.weight", low=1, high=10_000), _ref(item, "next", at, None))
            )
        return SplitStep(step_id, kind, None, branches=tuple(parsed))
    if kind == "holdout":
        keys("percent")
        percent = raw.get("percent", 10)
        if isinstance(percent, bool) or not isinstance(percent, int | float) or not 0 < percent < 100:
            raise DefinitionError(f"{path}.percent", "expected a share of contacts held out, above 0 and below 100")
        return HoldoutStep(step_id, kind, nxt, percent=float(percent))
    if kind == "send":
        keys("channel", "text", "content_id", "recommend", "welfare", "service", "quiet_hours")
        text = _text(raw["text"], f"{path}.text") if "text" in raw else None
        content_id = None
        if "content_id" in raw:
            content_id = _id(
                raw["content_id"],
                f"{path}.content_id",
                catalog.content_ids if catalog else None,
                "published content item",
            )
        recommend = _bool(raw, "recommend", path, False)
        if recommend and content_id is not None:
            raise DefinitionError(f"{path}.recommend", "give content_id or recommend, not both")
        if text is None and content_id is None and not recommend:
            raise DefinitionError(path, "a send needs text, content_id or recommend: true")
        policy = raw.get("quiet_hours", "hold")
        if policy not in ("hold", "skip"):
            raise DefinitionError(f"{path}.quiet_hours", f"expected hold or skip, got {policy!r}")
        return SendStep(
            step_id,
            kind,
            nxt,
            channel=_channel(raw, path),
            text=text,
            content_id=content_id,
            recommend=recommend,
            welfare=_bool(raw, "welfare", path, False),
            service=_bool(raw, "service", path, False),
            quiet_hours=QuietHoursPolicy(policy),
        )
    if kind == "tag":
        keys("add", "remove")
        known = catalog.rules.tag_ids if catalog else None
        add = _ids(raw.get("add", []), f"{path}.add", known, "tag", allow_empty=True)
        remove = _ids(raw.get("remove", []), f"{path}.remove", known, "tag", allow_empty=True)
        if not add and not remove:
            raise DefinitionError(path, "a tag step adds or removes at least one tag")
        both = set(add) & set(remove)
        if both:
            raise DefinitionError(f"{path}.remove", f"tag {min(both)} is both added and removed")
        return TagStep(step_id, kind, nxt, add=add, remove=remove)
    if kind == "set_attribute":
        keys("attribute", "value")
        attribute = raw.get("attribute")
        if not isinstance(attribute, str) or not attribute:
            raise DefinitionError(f"{path}.attribute", "expected a custom attribute key")
        if "value" not in raw:
            raise DefinitionError(f"{path}.value", "expected the value to set (null clears it)")
        value = raw["value"]
        if catalog is not None:
            declared = catalog.rules.attributes.get(attribute)
            if declared is None:
                listed = ", ".join(sorted(catalog.rules.attributes)) or "none declared"
                raise DefinitionError(
                    f"{path}.attribute", f"no custom attribute {attribute!r} in this workspace (known: {listed})"
                )
            if value is not None:
                _attribute_value(value, declared, f"{path}.value")
        return AttributeStep(step_id, kind, nxt, attribute=attribute, value=value)
    if kind == "task":
        keys("title", "detail", "due_in")
        due_in = _duration(raw["due_in"], f"{path}.due_in") if "due_in" in raw else dt.timedelta(0)
        detail = _text(raw["detail"], f"{path}.detail", required=False) if "detail" in raw else None
        return TaskStep(
            step_id, kind, nxt, title=_text(raw.get("title"), f"{path}.title", limit=200), detail=detail, due_in=due_in
        )
    if kind == "owner":
        keys("staff_ids")
        staff = _ids(raw.get("staff_ids"), f"{path}.staff_ids", catalog.staff_ids if catalog else None, "staff member")
        return OwnerStep(step_id, kind, nxt, staff_ids=staff)
    if kind == "invite_group":
        keys("group_code_id", "channel", "text", "base_url")
        code_id = _id(
            raw.get("group_code_id"), f"{path}.group_code_id", catalog.group_code_ids if catalog else None, "group code"
        )
        text = _text(raw.get("text", "{link}"), f"{path}.text")
        if "{link}" not in text:
            raise DefinitionError(f"{path}.text", "the text must carry the group link: write {link} where it goes")
        base = raw.get("base_url", "")
        if base and (not isinstance(base, str) or not URL.match(base)):
            raise DefinitionError(f"{path}.base_url", "expected siyu's public address, e.g. https://scrm.example.com")
        return InviteStep(
            step_id,
            kind,
            nxt,
            group_code_id=code_id,
            channel=_channel(raw, path),
            text=text,
            base_url=str(base).rstrip("/"),
        )
    if kind == "webhook":
        keys("url", "payload")
        url = raw.get("url")
        if not isinstance(url, str) or not URL.match(url) or len(url) > 1000:
            raise DefinitionError(f"{path}.url", "expected an http(s) URL of at most 1000 characters")
        payload = raw.get("payload", {})
        if not isinstance(payload, dict):
            raise DefinitionError(f"{path}.payload", f"expected an object, got {_kind(payload)}")
        return WebhookStep(step_id, kind, nxt, url=url, payload=payload)
    if kind == "exit":
        _only(raw, {"id", "type", "name"}, path)
        return ExitStep(step_id, kind, None)
    raise DefinitionError(f"{path}.type", f"expected one of {', '.join(STEP_TYPES)}, got {kind!r}")


def _ref(raw: dict[str, Any], key: str, path: str, default: str | None) -> str | None:
    """A reference to another step; checked against the step ids once all are known."""
    if key not in raw:
        return default
    value = raw[key]
    if value is None:
        return None
    if not isinstance(value, str) or not STEP_ID.match(value):
        raise DefinitionError(f"{path}.{key}", "expected a step id (or null to end the journey)")
    return value


def _attribute_value(value: Any, declared: tuple[str, tuple[str, ...] | None], path: str) -> None:
    kind, choices = declared
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise DefinitionError(path, f"the attribute is a number, got {_kind(value)}")
    elif kind == "date":
        try:
            dt.date.fromisoformat(value if isinstance(value, str) else "")
        except ValueError:
            raise DefinitionError(path, "the attribute is a date: write YYYY-MM-DD") from None
    elif kind == "choice":
        if value not in (choices or ()):
            raise DefinitionError(path, f"{value!r} is not one of {', '.join(choices or ())}")
    elif not isinstance(value, str) or len(value) > 2000:
        raise DefinitionError(path, "the attribute is text (at most 2000 characters)")


# --------------------------------------------------------------------------- the whole


def parse_definition(raw: Any, catalog: JourneyCatalog | None = None) -> Definition:
    """Checks a definition; raises DefinitionError naming the first bad node by its JSON path."""
    spec = _object(raw, "$", "a journey definition")
    _only(spec, {"trigger", "entry", "goal", "steps"}, "$")
    if "trigger" not in spec:
        raise DefinitionError("$.trigger", 'a journey needs a trigger, e.g. {"event": "contact.added"}')
    trigger = _trigger(spec["trigger"], "$.trigger", catalog)
    entry = _entry(spec.get("entry", {}), "$.entry")
    goal = _goal(spec["goal"], "$.goal") if spec.get("goal") is not None else None
    raw_steps = spec.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise DefinitionError("$.steps", "expected a non-empty list of steps")
    if len(raw_steps) > MAX_STEPS:
        raise DefinitionError("$.steps", f"at most {MAX_STEPS} steps")
    ids: list[str] = []
    where: dict[str, str] = {}
    for n, item in enumerate(raw_steps):
        path = f"$.steps[{n}]"
        step = _object(item, path, "a step")
        step_id = step.get("id")
        if not isinstance(step_id, str) or not STEP_ID.match(step_id):
            raise DefinitionError(f"{path}.id", "expected a step id: 1 to 40 letters, digits, _ or -")
        if step_id in where:
            raise DefinitionError(f"{path}.id", f"step id {step_id!r} is already used by {where[step_id]}")
        if "type" not in step:
            raise DefinitionError(f"{path}.type", f"expected one of {', '.join(STEP_TYPES)}")
        if "name" in step and (not isinstance(step["name"], str) or len(step["name"]) > 100):
            raise DefinitionError(f"{path}.name", "expected a label of at most 100 characters")
        ids.append(step_id)
        where[step_id] = path
    steps: dict[str, Step] = {}
    for n, item in enumerate(raw_steps):
        path = f"$.steps[{n}]"
        following = ids[n + 1] if n + 1 < len(ids) else None
        nxt = _ref(item, "next", path, following)
        steps[ids[n]] = _step(item, path, ids[n], nxt, catalog)
    _check_graph(steps, ids, where, raw_steps)
    return Definition(trigger, entry, goal, steps, ids[0], tuple(ids))


def _check_graph(steps: dict[str, Step], ids: list[str], where: dict[str, str], raw_steps: list[Any]) -> None:
    keys = {"wait_event": ("on_event", "on_timeout"), "branch": ("then", "else"), "split": ()}
    for step_id, step in steps.items():
        path = where[step_id]
        if isinstance(step, SplitStep):
            refs = [(f"{path}.branches[{n}].next", target) for n, (_, target) in enumerate(step.branches)]
        elif step.type in keys:
            refs = [(f"{path}.{k}", t) for k, t in zip(keys[step.type], step.exits(), strict=True)]
        else:
            refs = [(f"{path}.next", target) for target in step.exits()]
        for ref_path, target in refs:
            if target is not None and target not in steps:
                raise DefinitionError(ref_path, f"no step {target!r} in this journey (steps: {', '.join(ids)})")
            if target == step_id:
                raise DefinitionError(ref_path, "a step cannot lead to itself")
    # every step reachable from the first
    seen = {ids[0]}
    stack = [ids[0]]
    while stack:
        for target in steps[stack.pop()].exits():
            if target is not None and target not in seen:
                seen.add(target)
                stack.append(target)
    for step_id in ids:
        if step_id not in seen:
            raise DefinitionError(where[step_id], f"step {step_id!r} is never reached: no step leads to it")
    # a loop must wait somewhere, or one run would go round it for ever
    state: dict[str, int] = {}

    def visit(step_id: str, trail: list[str]) -> None:
        state[step_id] = 1
        trail.append(step_id)
        step = steps[step_id]
        if step.type not in WAIT_TYPES:
            for target in step.exits():
                if target is None:
                    continue
                if state.get(target) == 1:
                    loop = trail[trail.index(target) :]
                    raise DefinitionError(
                        where[step_id], f"steps {' → '.join([*loop, target])} loop without a wait step"
                    )
                if state.get(target) is None:
                    visit(target, trail)
        trail.pop()
        state[step_id] = 2

    for step_id in ids:
        if state.get(step_id) is None:
            visit(step_id, [])


def fill(text: str, *, name: str | None, link: str | None = None) -> str:
    """The text with {name} (the contact's name) and {link} put in."""
    out = text.replace("{name}", name or "")
    if link is not None:
        out = out.replace("{link}", link)
    return out


__all__ = [
    "STEP_TYPES",
    "Definition",
    "DefinitionError",
    "JourneyCatalog",
    "parse_definition",
]
