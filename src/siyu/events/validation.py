"""Checking a batch of events, fast: ingestion's hot path.

The envelope (`id`, `type`, `contact`, `timestamp`, `properties`) is checked by hand over the dicts
orjson decodes, and standard properties by `PropertiesChecker`, which accepts a well-typed value as it
is and hands anything else to the pydantic model, so the rules and messages stay pydantic's. The models
in events.schemas and events.catalog document the same rules in OpenAPI; tests hold the two together.
"""

from __future__ import annotations

import datetime as dt
import types
import typing
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import annotated_types
import orjson
from pydantic import ValidationError as PydanticValidationError

from siyu.contacts.identities import IdentityError, normalize
from siyu.errors import ValidationFailed
from siyu.events.catalog import EVENT_TYPE_PATTERN, STANDARD_EVENT_TYPES, SYSTEM_EVENT_TYPES, Properties

MAX_FUTURE = dt.timedelta(days=1)
NO_NUL = "must not contain a NUL character (\\u0000)"  # PostgreSQL text cannot hold one
MAX_REPORTED_PROBLEMS = 1000
EVENT_FIELDS = frozenset({"id", "type", "contact", "timestamp", "properties"})
MAX_ID_LENGTH = 128
TYPE_LENGTH = (3, 64)
# Numbers above this are milliseconds since the epoch rather than seconds (as pydantic reads them).
_MS_THRESHOLD = 2e10


@dataclass(slots=True)
class PreparedEvent:
    event_id: str
    type: str
    occurred_at: dt.datetime
    properties: dict[str, Any]
    pairs: list[tuple[str, str]]
    contact_id: int | None


def parse_batch(body: bytes, *, max_events: int) -> list[Any]:
    """Decodes a request body and checks its outer shape and size; returns the raw events."""
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValidationFailed(
            f"body is not valid JSON: {exc}", details=[{"field": "body", "reason": str(exc)}]
        ) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("events"), list):
        raise ValidationFailed(
            'body must be an object {"events": [...]}', details=[{"field": "events", "reason": "missing or not a list"}]
        )
    unknown = set(raw) - {"events"}
    if unknown:
        raise ValidationFailed(
            f"body has unknown fields {sorted(unknown)}; it takes only events",
            details=[{"field": name, "reason": "unknown field"} for name in sorted(unknown)],
        )
    events: list[Any] = raw["events"]
    if b"\\u0000" in body:
        _refuse_nul(events)
    if len(events) > max_events:
        raise ValidationFailed(
            f"batch has {len(events)} events; the limit is {max_events} per request: split it",
            details=[{"field": "events", "reason": f"{len(events)} events, limit {max_events}", "limit": max_events}],
        )
    if not events:
        raise ValidationFailed("batch has no events", details=[{"field": "events", "reason": "empty"}])
    return events


def _refuse_nul(events: list[Any]) -> None:
    """PostgreSQL text cannot hold a NUL character (\\u0000): a batch carrying one anywhere is refused
    here, naming each place, rather than answered 202 and then failing in the drain."""
    problems: list[dict[str, Any]] = []

    def walk(value: Any, index: int, path: str) -> None:
        if isinstance(value, str):
            if "\x00" in value:
                problems.append({"index": index, "field": path, "reason": NO_NUL})
        elif isinstance(value, dict):
            for key, item in value.items():
                name = f"{path}.{key}" if path else str(key)
                if "\x00" in str(key):
                    problems.append({"index": index, "field": name, "reason": "a key must not contain a NUL character"})
                walk(item, index, name)
        elif isinstance(value, list):
            for n, item in enumerate(value):
                walk(item, index, f"{path}[{n}]")

    for index, event in enumerate(events):
        walk(event, index, "")
    if problems:
        raise failed(problems, len(events))


def failed(problems: list[dict[str, Any]], total: int) -> ValidationFailed:
    problems.sort(key=lambda p: p["index"])
    problems = problems[:MAX_REPORTED_PROBLEMS]
    bad = len({p["index"] for p in problems})
    first = problems[0]
    return ValidationFailed(
        f"{bad} of {total} events are invalid, nothing was stored; first: "
        f"events[{first['index']}].{first['field']}: {first['reason']}",
        details=problems,
    )


def _timestamp(value: Any, tz: ZoneInfo) -> dt.datetime:
    if isinstance(value, str):
        parsed = dt.datetime.fromisoformat(value)  # ValueError names the problem
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if abs(value) > _MS_THRESHOLD else value
        return dt.datetime.fromtimestamp(seconds, dt.UTC)
    else:
        raise ValueError("must be an ISO 8601 time such as 2026-11-23T10:00:00+08:00")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(dt.UTC)


def prepare(events: list[Any], *, tz: ZoneInfo, region: str, now: dt.datetime) -> list[PreparedEvent]:
    """Checks every event; raises one ValidationFailed listing every problem, or returns them ready."""
    prepared: list[PreparedEvent] = []
    problems: list[dict[str, Any]] = []
    seen_ids: dict[str, int] = {}
    latest = now + MAX_FUTURE

    def bad(index: int, field: str, reason: str) -> None:
        problems.append({"index": index, "field": field, "reason": reason})

    for index, event in enumerate(events):
        if not isinstance(event, dict):
            bad(index, "event", "must be an object")
            continue
        before = len(problems)
        if not event.keys() <= EVENT_FIELDS:
            for name in sorted(event.keys() - EVENT_FIELDS):
                bad(index, str(name), f"unknown field; an event has {', '.join(sorted(EVENT_FIELDS))}")
        event_id = event.get("id")
        if not isinstance(event_id, str) or not 1 <= len(event_id) <= MAX_ID_LENGTH:
            bad(index, "id", f"is required: your unique id for the event, a string of 1-{MAX_ID_LENGTH} characters")
        elif "\x00" in event_id:
            bad(index, "id", NO_NUL)
        elif event_id in seen_ids:
            bad(index, "id", f"repeats the id of events[{seen_ids[event_id]}] in this batch")
        else:
            seen_ids[event_id] = index
        event_type = event.get("type")
        if not isinstance(event_type, str) or not TYPE_LENGTH[0] <= len(event_type) <= TYPE_LENGTH[1]:
            bad(index, "type", "is required: a string such as order.paid")
            event_type = None
        elif not EVENT_TYPE_PATTERN.match(event_type):
            bad(index, "type", "must look like 'noun.verb' in lower case, e.g. order.paid")
        elif event_type in SYSTEM_EVENT_TYPES:
            bad(index, "type", f"{event_type!r} is recorded by siyu itself and cannot be sent")
        timestamp = event.get("timestamp")
        occurred = now
        if timestamp is not None:
            try:
                occurred = _timestamp(timestamp, tz)
            except (ValueError, OverflowError, OSError) as exc:
                bad(index, "timestamp", str(exc))
        if occurred > latest:
            bad(index, "timestamp", "is more than a day in the future; check the clock or the time zone")
        properties = event.get("properties")
        if properties is None:
            properties = {}
        elif not isinstance(properties, dict):
            bad(index, "properties", "must be an object")
            properties = {}
        elif event_type is not None and event_type in STANDARD_EVENT_TYPES:
            try:
                properties = checker_for(event_type).check(properties)
            except PydanticValidationError as exc:
                for error in exc.errors():
                    loc = ".".join(str(p) for p in ("properties", *error["loc"]))
                    bad(index, loc, error["msg"])
        contact = event.get("contact")
        pairs: list[tuple[str, str]] = []
        contact_id: int | None = None
        if not isinstance(contact, dict) or not contact:
            bad(index, "contact", 'is required: the identities of the person, e.g. {"phone": "13800138000"}')
        else:
            for key, value in contact.items():
                if key == "id":
                    if isinstance(value, bool) or not isinstance(value, int):
                        bad(index, "contact.id", "must be a siyu contact id (an integer)")
                    else:
                        contact_id = value
                    continue
                try:
                    pairs.append((key, normalize(key, value, region=region)))
                except IdentityError as exc:
                    bad(index, f"contact.{key}", str(exc))
        if len(problems) == before:
            assert isinstance(event_id, str) and isinstance(event_type, str)
            prepared.append(PreparedEvent(event_id, event_type, occurred, properties, pairs, contact_id))
    if problems:
        raise failed(problems, len(events))
    return prepared


Check = typing.Callable[[Any], bool]


class PropertiesChecker:
    """Accepts properties whose known fields already have the right types and limits, unchanged;
    anything else goes through the pydantic model, which coerces ("12.5" -> 12.5) or refuses it."""

    def __init__(self, model: type[Properties]) -> None:
        self.model = model
        self.fields: list[tuple[str, bool, Check]] = []
        self.always_pydantic = False
        for name, info in model.model_fields.items():
            check = exact_check(info.annotation)
            if check is None or any(not _known_constraint(m) for m in info.metadata):
                self.always_pydantic = True
                continue
            constraints = list(info.metadata)
            if constraints:
                check = _constrained(check, constraints)
            self.fields.append((name, info.is_required(), check))

    def check(self, value: dict[str, Any]) -> dict[str, Any]:
        if not self.always_pydantic and self.fits(value):
            return value
        return self.model.model_validate(value).model_dump(exclude_unset=True)

    def fits(self, value: dict[str, Any]) -> bool:
        for name, required, check in self.fields:
            if name in value:
                if not check(value[name]):
                    return False
            elif required:
                return False
        return True


def exact_check(annotation: Any) -> Check | None:
    """A test that a decoded JSON value already is of `annotation` without any coercion, or None
    when the annotation is beyond these simple shapes (then pydantic decides)."""
    if annotation is Any or annotation is object:
        return lambda _: True
    if annotation is type(None):
        return lambda v: v is None
    if annotation is str or annotation is bool:
        return lambda v: type(v) is annotation
    if annotation is int:
        return lambda v: type(v) is int  # exact: True is not an int here, as pydantic refuses it
    if annotation is float:
        return lambda v: type(v) is float or type(v) is int
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Union or isinstance(annotation, types.UnionType):
        simple = {str: (str,), int: (int,), bool: (bool,), float: (float, int), type(None): (type(None),)}
        if all(a in simple for a in args):
            allowed = frozenset(t for a in args for t in simple[a])
            return lambda v: type(v) in allowed  # one set look-up for `str | None` and the like
        checks = [exact_check(a) for a in args]
        if any(c is None for c in checks):
            return None
        ready = typing.cast(list[Check], checks)
        return lambda v: any(c(v) for c in ready)
    if origin is list:
        item = exact_check(args[0]) if args else exact_check(Any)
        if item is None:
            return None
        return lambda v: type(v) is list and all(item(i) for i in v)
    if origin is dict:
        value_check = exact_check(args[1]) if args else exact_check(Any)
        if value_check is None or (args and args[0] is not str):
            return None
        return lambda v: type(v) is dict and all(value_check(i) for i in v.values())
    return None


def _constrained(check: Check, constraints: list[Any]) -> Check:
    return lambda v: check(v) and (v is None or all(_satisfies(c, v) for c in constraints))


def _known_constraint(constraint: Any) -> bool:
    return isinstance(
        constraint,
        annotated_types.Ge
        | annotated_types.Gt
        | annotated_types.Le
        | annotated_types.Lt
        | annotated_types.MinLen
        | annotated_types.MaxLen,
    )


def _satisfies(constraint: Any, item: Any) -> bool:
    if isinstance(constraint, annotated_types.Ge):
        return bool(item >= constraint.ge)
    if isinstance(constraint, annotated_types.Gt):
        return bool(item > constraint.gt)
    if isinstance(constraint, annotated_types.Le):
        return bool(item <= constraint.le)
    if isinstance(constraint, annotated_types.Lt):
        return bool(item < constraint.lt)
    if isinstance(constraint, annotated_types.MinLen):
        return len(item) >= constraint.min_length
    if isinstance(constraint, annotated_types.MaxLen):
        return len(item) <= constraint.max_length
    return False


_CHECKERS = {name: PropertiesChecker(model) for name, (model, _) in STANDARD_EVENT_TYPES.items()}


def checker_for(event_type: str) -> PropertiesChecker:
    return _CHECKERS[event_type]
