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
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

import annotated_types
import msgspec
import orjson
from pydantic import ValidationError as PydanticValidationError

from siyu.contacts.identities import IdentityError, normalize
from siyu.errors import ValidationFailed
from siyu.events.catalog import EVENT_TYPE_PATTERN, STANDARD_EVENT_TYPES, SYSTEM_EVENT_TYPES, Properties

MAX_FUTURE = dt.timedelta(days=1)
NO_NUL = "must not contain a NUL character (\\u0000)"  # PostgreSQL text cannot hold one
MAX_REPORTED_PROBLEMS = 1000
# Levels of objects and arrays in an event's properties (the properties object is the first): stored
# properties are written as JSON, which refuses about 250, so deeper ones are refused at the door.
MAX_PROPERTY_DEPTH = 64
EVENT_FIELDS = frozenset({"id", "type", "contact", "timestamp", "properties"})
MAX_ID_LENGTH = 128
TYPE_LENGTH = (3, 64)
# Numbers above this are milliseconds since the epoch rather than seconds (as pydantic reads them).
_MS_THRESHOLD = 2e10


class PreparedEvent(msgspec.Struct, array_like=True):
    """A checked event, ready to store. array_like: kept in the inbox as a JSON array per event, which
    msgspec writes and reads back several times faster than a dict (tests/test_event_inbox.py)."""

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


def _nests_deeper(container: dict[str, Any] | list[Any], levels: int) -> bool:
    """Whether objects and arrays nest more than `levels` deep in `container` (itself counting as one).
    A plain loop: this runs on every event, whose properties are mostly flat."""
    if levels <= 0:
        return True
    items: Iterable[Any] = container.values() if isinstance(container, dict) else container
    for item in items:
        kind = type(item)
        if (kind is dict or kind is list) and _nests_deeper(item, levels - 1):
            return True
    return False


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


class Problems:
    """What is wrong with a batch: each problem with its event's index, the field and the reason."""

    def __init__(self) -> None:
        self.found: list[dict[str, Any]] = []

    def __call__(self, index: int, field: str, reason: str) -> None:
        self.found.append({"index": index, "field": field, "reason": reason})

    @property
    def count(self) -> int:
        return len(self.found)


def prepare(events: list[Any], *, tz: ZoneInfo, region: str, now: dt.datetime) -> list[PreparedEvent]:
    """Checks every event; raises one ValidationFailed listing every problem, or returns them ready."""
    prepared: list[PreparedEvent] = []
    problems = Problems()
    seen_ids: dict[str, int] = {}
    latest = now + MAX_FUTURE
    for index, event in enumerate(events):
        ready = well_formed(event, seen_ids, tz, region, now, latest)
        if ready is not None:
            seen_ids[ready.event_id] = index
            prepared.append(ready)
            continue
        # Something is off (or needs coercing): the full check names every problem, or coerces.
        checked = check_event(event, index, seen_ids, tz, region, now, latest, problems)
        if checked is not None:
            prepared.append(checked)
    if problems.found:
        raise failed(problems.found, len(events))
    return prepared


def check_event(
    event: Any,
    index: int,
    seen_ids: dict[str, int],
    tz: ZoneInfo,
    region: str,
    now: dt.datetime,
    latest: dt.datetime,
    bad: Problems,
) -> PreparedEvent | None:
    """The full check of one event: each problem reported through `bad`, coercible properties coerced.
    Returns the event ready to store when it has no problem."""
    if not isinstance(event, dict):
        bad(index, "event", "must be an object")
        return None
    before = bad.count
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
    elif not EVENT_TYPE_PATTERN.fullmatch(event_type):  # fullmatch: `$` alone lets a trailing newline through
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
    elif _nests_deeper(properties, MAX_PROPERTY_DEPTH):
        bad(index, "properties", f"nests objects and arrays more than {MAX_PROPERTY_DEPTH} levels deep")
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
    if bad.count != before:
        return None
    assert isinstance(event_id, str) and isinstance(event_type, str)
    return PreparedEvent(event_id, event_type, occurred, properties, pairs, contact_id)


# Event types seen to be valid, with their properties checker (None: a custom type), so the common
# case costs one look-up. Bounded: a sender inventing types without end must not grow it without end.
_VALID_TYPES: dict[str, PropertiesChecker | None] = {}
_MAX_VALID_TYPES = 4096


def _valid_type(event_type: str) -> tuple[bool, PropertiesChecker | None]:
    try:
        return True, _VALID_TYPES[event_type]
    except KeyError:
        pass
    if (
        not TYPE_LENGTH[0] <= len(event_type) <= TYPE_LENGTH[1]
        or not EVENT_TYPE_PATTERN.fullmatch(event_type)
        or event_type in SYSTEM_EVENT_TYPES
    ):
        return False, None
    checker = _CHECKERS.get(event_type)
    if len(_VALID_TYPES) < _MAX_VALID_TYPES:
        _VALID_TYPES[event_type] = checker
    return True, checker


# Identities well_formed() normalised, by (type, value, region): the same people come back batch after
# batch, and a look-up here is cheaper than normalize() and its cache. Only string values (as a key
# True would find 1's answer); answers only, never errors. Emptied when full, so it stays bounded.
_IDENTITIES: dict[tuple[str, str, str], str] = {}
_MAX_IDENTITIES = 1 << 16


def well_formed(
    event: Any, seen_ids: dict[str, int], tz: ZoneInfo, region: str, now: dt.datetime, latest: dt.datetime
) -> PreparedEvent | None:
    """The event ready to store when it needs no correction at all; None sends it through the full
    check in prepare(), which alone words problems and coerces. Never accepts what that check refuses,
    and returns what it would (tests/test_events_validation.py holds the two together)."""
    if type(event) is not dict or not event.keys() <= EVENT_FIELDS:
        return None
    event_id = event.get("id")
    if type(event_id) is not str or not 0 < len(event_id) <= MAX_ID_LENGTH or "\x00" in event_id:
        return None
    if event_id in seen_ids:
        return None
    event_type = event.get("type")
    if type(event_type) is not str:
        return None
    valid, checker = _valid_type(event_type)
    if not valid:
        return None
    timestamp = event.get("timestamp")
    if timestamp is None:
        occurred = now
    else:
        try:
            occurred = _timestamp(timestamp, tz)
        except (ValueError, OverflowError, OSError):
            return None
        if occurred > latest:
            return None
    properties = event.get("properties")
    if properties is None:
        properties = {}
    elif (
        type(properties) is not dict
        or _nests_deeper(properties, MAX_PROPERTY_DEPTH)
        or (checker is not None and not checker.fits_as_is(properties))
    ):
        return None
    contact = event.get("contact")
    if type(contact) is not dict or not contact:
        return None
    pairs: list[tuple[str, str]] = []
    contact_id: int | None = None
    for key, value in contact.items():
        if key == "id":
            if type(value) is not int:
                return None
            contact_id = value
            continue
        if type(value) is str and (known := _IDENTITIES.get((key, value, region))) is not None:
            pairs.append((key, known))
            continue
        try:
            normalized = normalize(key, value, region=region)
        except IdentityError:
            return None
        if type(value) is str:
            if len(_IDENTITIES) >= _MAX_IDENTITIES:
                _IDENTITIES.clear()
            _IDENTITIES[key, value, region] = normalized
        pairs.append((key, normalized))
    return PreparedEvent(event_id, event_type, occurred, properties, pairs, contact_id)


Check = typing.Callable[[Any], bool]
# How a value is tested as it is: it passes when its type is one of the set (one look-up, which is all
# `str | None` and the like need), or else when the check, if any, holds.
Exact = tuple[frozenset[type], Check | None]
_ABSENT = object()
# The types a JSON value may have to be taken as it is. Exact: True is not an int here, as pydantic
# refuses it; an int is a float (pydantic takes it, and 99 and 99.0 are the same amount).
_EXACT_TYPES: dict[type, tuple[type, ...]] = {
    str: (str,),
    int: (int,),
    bool: (bool,),
    float: (float, int),
    type(None): (type(None),),
}


class PropertiesChecker:
    """Accepts properties whose known fields already have the right types and limits, unchanged;
    anything else goes through the pydantic model, which coerces ("12.5" -> 12.5) or refuses it."""

    def __init__(self, model: type[Properties]) -> None:
        self.model = model
        # Per declared field: its name, whether required, and how its value is tested as it is.
        self.fields: list[tuple[str, bool, frozenset[type], Check | None]] = []
        self.always_pydantic = False
        for name, info in model.model_fields.items():
            exact = exact_check(info.annotation)
            if exact is None or any(not _known_constraint(m) for m in info.metadata):
                self.always_pydantic = True
                continue
            for constraint in info.metadata:
                exact = _constrained(exact, constraint)
            self.fields.append((name, info.is_required(), *exact))

    def check(self, value: dict[str, Any]) -> dict[str, Any]:
        if self.fits_as_is(value):
            return value
        return self.model.model_validate(value).model_dump(exclude_unset=True)

    def fits_as_is(self, value: dict[str, Any]) -> bool:
        return not self.always_pydantic and self.fits(value)

    def fits(self, value: dict[str, Any]) -> bool:
        # Over the declared fields, not the value's: properties the model does not declare are allowed.
        get = value.get
        for name, required, kinds, check in self.fields:
            item = get(name, _ABSENT)
            if item is _ABSENT:
                if required:
                    return False
            elif type(item) not in kinds and (check is None or not check(item)):
                return False
        return True


def _anything(_: Any) -> bool:
    return True


def _as_check(exact: Exact) -> Check:
    kinds, check = exact
    if check is None:
        return lambda v: type(v) in kinds
    if not kinds:
        return check
    return lambda v: type(v) in kinds or check(v)


def exact_check(annotation: Any) -> Exact | None:
    """How to test that a decoded JSON value already is of `annotation` without any coercion, or None
    when the annotation is beyond these simple shapes (then pydantic decides)."""
    if annotation is Any or annotation is object:
        return frozenset(), _anything
    if isinstance(annotation, type) and annotation in _EXACT_TYPES:
        return frozenset(_EXACT_TYPES[annotation]), None
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Union or isinstance(annotation, types.UnionType):
        exacts = [exact_check(a) for a in args]
        if any(e is None for e in exacts):
            return None
        ready = typing.cast(list[Exact], exacts)
        checks = [check for _, check in ready if check is not None]
        allowed = frozenset(t for kinds, _ in ready for t in kinds)
        if len(checks) > 1:
            return allowed, lambda v: any(c(v) for c in checks)
        return allowed, checks[0] if checks else None
    if origin is list:
        item = exact_check(args[0]) if args else exact_check(Any)
        if item is None:
            return None
        if item[1] is _anything:
            return frozenset(), lambda v: type(v) is list
        item_check = _as_check(item)
        return frozenset(), lambda v: type(v) is list and all(map(item_check, v))
    if origin is dict:
        value = exact_check(args[1]) if args else exact_check(Any)
        if value is None or (args and args[0] is not str):
            return None
        if value[1] is _anything:
            return frozenset(), lambda v: type(v) is dict
        value_check = _as_check(value)
        return frozenset(), lambda v: type(v) is dict and all(map(value_check, v.values()))
    return None


def _constrained(exact: Exact, constraint: Any) -> Exact:
    """`exact` with the constraint added; None, where allowed, need not meet it."""
    kinds, check = exact
    none = frozenset({type(None)})
    base = _as_check((kinds - none, check))
    meets = _meets(constraint)
    return kinds & none, lambda v: base(v) and meets(v)


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


def _meets(constraint: Any) -> Check:
    if isinstance(constraint, annotated_types.Ge):
        ge = constraint.ge
        return lambda v: v >= ge
    if isinstance(constraint, annotated_types.Gt):
        gt = constraint.gt
        return lambda v: v > gt
    if isinstance(constraint, annotated_types.Le):
        le = constraint.le
        return lambda v: v <= le
    if isinstance(constraint, annotated_types.Lt):
        lt = constraint.lt
        return lambda v: v < lt
    if isinstance(constraint, annotated_types.MinLen):
        min_length = constraint.min_length
        return lambda v: len(v) >= min_length
    if isinstance(constraint, annotated_types.MaxLen):
        max_length = constraint.max_length
        return lambda v: len(v) <= max_length
    return lambda _: False


_CHECKERS = {name: PropertiesChecker(model) for name, (model, _) in STANDARD_EVENT_TYPES.items()}


def checker_for(event_type: str) -> PropertiesChecker:
    return _CHECKERS[event_type]
