"""The hand-written fast checks of ingestion agree with the pydantic models that document the rules."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from siyu.errors import ValidationFailed
from siyu.events import validation
from siyu.events.catalog import STANDARD_EVENT_TYPES
from siyu.events.validation import MAX_PROPERTY_DEPTH, Problems, check_event, checker_for, prepare, well_formed

NOW = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10**6) | st.floats(-1e6, 1e6) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=6,
)


@st.composite
def properties(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    event_type = draw(st.sampled_from(sorted(STANDARD_EVENT_TYPES)))
    model = STANDARD_EVENT_TYPES[event_type][0]
    names = [*model.model_fields, "extra"]
    chosen = draw(st.lists(st.sampled_from(names), unique=True))
    return event_type, {name: draw(json_values) for name in chosen}


def _numeric_equal(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_numeric_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_numeric_equal(x, y) for x, y in zip(a, b, strict=True))
    # 99 and 99.0 are the same amount; True and 1 are not the same value.
    return bool(a == b) and isinstance(a, bool) == isinstance(b, bool)


# generation is slow on a busy 2-core machine; that is the health check's business, not this test's
@settings(suppress_health_check=[HealthCheck.too_slow])
@given(properties())
def test_the_fast_path_accepts_only_what_pydantic_accepts_unchanged(case: tuple[str, dict[str, Any]]) -> None:
    event_type, value = case
    model = STANDARD_EVENT_TYPES[event_type][0]
    checker = checker_for(event_type)
    try:
        expected: dict[str, Any] | None = model.model_validate(value).model_dump(exclude_unset=True)
    except ValidationError:
        expected = None
    if checker.fits(value):
        assert expected is not None, f"fast path accepted what pydantic refuses: {value}"
        assert _numeric_equal(expected, value)
    try:
        got: dict[str, Any] | None = checker.check(value)
    except ValidationError:
        got = None
    assert (got is None) == (expected is None)
    if got is not None and expected is not None:
        assert _numeric_equal(got, expected)


def _one(**event: Any) -> list[Any]:
    base: dict[str, Any] = {"id": "e1", "type": "form.submitted", "contact": {"email": "a@b.cn"}}
    base.update(event)
    return prepare([base], tz=SHANGHAI, region="CN", now=NOW)


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("2026-11-23T10:00:00+08:00", dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)),
        ("2026-11-23T02:00:00Z", dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)),
        ("2026-11-23 10:00:00", dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)),  # workspace time zone
        (1795399200, dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)),  # seconds
        (1795399200000, dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)),  # milliseconds
        (None, NOW),
    ],
)
def test_timestamps(timestamp: Any, expected: dt.datetime) -> None:
    (event,) = _one(timestamp=timestamp)
    assert event.occurred_at == expected


def _nested(levels: int) -> dict[str, Any]:
    """Properties whose objects and arrays nest `levels` deep (the properties object is the first)."""
    value: Any = {"leaf": 1}
    for wrap in range(1, levels):  # objects and arrays by turns, the outermost an object
        value = {"down": value} if (levels - 1 - wrap) % 2 == 0 else [value]
    return dict(value)


def test_properties_may_nest_up_to_the_limit() -> None:
    assert _nested(MAX_PROPERTY_DEPTH) != _nested(MAX_PROPERTY_DEPTH + 1)
    (event,) = _one(properties=_nested(MAX_PROPERTY_DEPTH))
    assert event.properties == _nested(MAX_PROPERTY_DEPTH)


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"timestamp": True}, "timestamp"),
        ({"id": 7}, "id"),
        ({"id": "x" * 129}, "id"),
        ({"type": None}, "type"),
        ({"contact": "13800138000"}, "contact"),
        ({"contact": {"id": "42"}}, "contact.id"),
        ({"properties": [1]}, "properties"),
        ({"colour": "red"}, "colour"),
        ({"type": "order.paid", "properties": {"order_id": "1", "amount": -1}}, "properties.amount"),
        ({"type": "group.joined", "properties": {}}, "properties.group_id"),
        ({"type": "contact.merged\n"}, "type"),  # a trailing newline is not a way past the type's pattern
        ({"properties": _nested(MAX_PROPERTY_DEPTH + 1)}, "properties"),  # JSON storage refuses ~250 levels
    ],
)
def test_each_problem_names_its_field(event: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        _one(**event)
    assert [(d["index"], d["field"]) for d in caught.value.details] == [(0, field)]


def test_coercible_properties_are_stored_coerced() -> None:
    (event,) = _one(type="order.paid", properties={"order_id": "A1", "amount": "12.50", "note": "gift"})
    assert event.properties == {"order_id": "A1", "amount": 12.5, "note": "gift"}


def test_a_non_object_event_is_named() -> None:
    with pytest.raises(ValidationFailed) as caught:
        prepare([["not", "an", "event"]], tz=SHANGHAI, region="CN", now=NOW)
    assert caught.value.details == [{"index": 0, "field": "event", "reason": "must be an object"}]


identity_values = st.one_of(
    st.sampled_from(["13800138000", "+86 138 0013 8001", "wm-abc", "a@b.cn"]),
    st.sampled_from(["", " ", "x" * 300, "12\x003", "not-an-email"]),
    st.integers(-5, 10**12),
    st.booleans(),
    st.none(),
)
good_fields: dict[str, st.SearchStrategy[Any]] = {
    "id": st.sampled_from(["e1", "dup", "订单-1"]),
    "type": st.sampled_from(["content.viewed", "order.paid", "group.joined", "form.submitted"]),
    "contact": st.dictionaries(
        st.sampled_from(["phone", "wecom_external_userid", "member_no"]),
        st.sampled_from(["13800138000", "+86 138 0013 8001", "wm-abc"]),
        min_size=1,
        max_size=2,
    ),
    "timestamp": st.one_of(
        st.none(), st.sampled_from(["2026-11-23T10:00:00+08:00", "2026-11-23 10:00:00"]), st.integers(0, 2 * 10**12)
    ),
    "properties": st.one_of(st.none(), properties().map(lambda case: case[1])),
}
bad_fields: dict[str, st.SearchStrategy[Any]] = {
    "id": st.one_of(st.sampled_from(["", "x" * 129, "a\x00b"]), st.integers(0, 3)),
    "type": st.sampled_from(["Bad", "ab", "segment.entered", "x" * 65, "order.paid", 7]),
    "contact": st.one_of(
        st.just("13800138000"),
        st.just({}),
        st.dictionaries(st.sampled_from(["phone", "email", "Bad Type", "id"]), identity_values, max_size=3),
    ),
    "timestamp": st.one_of(
        st.sampled_from(["2031-01-01T00:00:00Z", "soon"]),
        st.integers(-(10**15), 10**15),
        st.floats(allow_nan=True),
        st.booleans(),
    ),
    "properties": st.one_of(json_values, st.dictionaries(st.sampled_from(["amount", "group_id"]), json_values)),
    "colour": st.just("red"),
}


@st.composite
def envelopes(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly well-formed events, some with one or two fields wrong, left out or added."""
    event = {name: draw(strategy) for name, strategy in good_fields.items()}
    for name in draw(st.lists(st.sampled_from(sorted(bad_fields)), max_size=2)):
        if draw(st.booleans()):
            event.pop(name, None)
        else:
            event[name] = draw(bad_fields[name])
    return event


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=400)
@given(envelopes(), st.booleans())
def test_the_fast_path_takes_only_what_the_full_check_takes_and_gives_the_same(
    event: dict[str, Any], id_seen: bool
) -> None:
    """prepare() takes a well-formed event on a fast path; anything else goes through the full check,
    which words the problems. The fast path must never take what the full check refuses, nor differ."""
    latest = NOW + dt.timedelta(days=1)
    seen = {"dup": 0} if id_seen else {}
    fast = well_formed(event, dict(seen), SHANGHAI, "CN", NOW, latest)
    problems = Problems()
    full = check_event(event, 1, dict(seen), SHANGHAI, "CN", NOW, latest, problems)
    if fast is not None:
        assert problems.found == [] and full == fast
    assert (full is None) == bool(problems.found)


def test_well_formed_events_take_the_fast_path() -> None:
    """The common case does not fall through to the full check (what makes ingestion fast)."""
    event = {
        "id": "e1",
        "type": "order.paid",
        "contact": {"phone": "13800138000", "id": 5},
        "timestamp": "2026-11-23T10:00:00+08:00",
        "properties": {"order_id": "A1", "amount": 12.5},
    }
    ready = well_formed(event, {}, SHANGHAI, "CN", NOW, NOW + dt.timedelta(days=1))
    assert ready is not None and ready.pairs == [("phone", "+8613800138000")] and ready.contact_id == 5
    coerced = {**event, "properties": {"order_id": "A1", "amount": "12.50"}}  # pydantic's to coerce
    assert well_formed(coerced, {}, SHANGHAI, "CN", NOW, NOW + dt.timedelta(days=1)) is None


def test_remembered_identities_stay_bounded_and_never_hold_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(validation, "_IDENTITIES", {})
    monkeypatch.setattr(validation, "_MAX_IDENTITIES", 3)
    latest = NOW + dt.timedelta(days=1)

    def pairs(contact: dict[str, Any]) -> list[tuple[str, str]] | None:
        ready = well_formed({"id": "e1", "type": "form.submitted", "contact": contact}, {}, SHANGHAI, "CN", NOW, latest)
        return None if ready is None else ready.pairs

    for n in range(10):
        assert pairs({"member_no": f"m{n}"}) == [("member_no", f"m{n}")]
        assert len(validation._IDENTITIES) <= 3
    for _ in range(2):  # the second time from memory, with the same answer
        assert pairs({"phone": "+86 138 0013 8000"}) == [("phone", "+8613800138000")]
    assert pairs({"phone": "12345"}) is None
    assert ("phone", "12345", "CN") not in validation._IDENTITIES
    assert pairs({"external_id": "1"}) == pairs({"external_id": 1}) == [("external_id", "1")]
    assert pairs({"external_id": True}) is None  # True == 1, yet no identity value
