"""The definition language: every bad node named by its JSON path, graphs checked, templates valid, cron and
times of day in the workspace zone, and the confidence intervals."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from siyu.journeys.definition import DefinitionError, JourneyCatalog, SendStep, WaitStep, parse_definition
from siyu.journeys.schedule import CronError, next_time_of_day, parse_cron
from siyu.journeys.stats import newcombe, wilson
from siyu.journeys.templates import TEMPLATES, instantiate
from siyu.segments.rules import Catalog

SHANGHAI = ZoneInfo("Asia/Shanghai")
CATALOG = JourneyCatalog(
    rules=Catalog(tag_ids=frozenset({1, 2}), segment_ids=frozenset({5}), attributes={"level": ("choice", ("A", "B"))}),
    staff_ids=frozenset({7}),
    content_ids=frozenset({9}),
    group_code_ids=frozenset({3}),
    date_attributes=frozenset({"renewal"}),
)


def ok(**overrides: Any) -> dict[str, Any]:
    return {"trigger": {"manual": True}, "steps": [{"id": "s", "type": "send", "text": "hi"}], **overrides}


def error(raw: Any) -> tuple[str, str]:
    with pytest.raises(DefinitionError) as caught:
        parse_definition(raw, CATALOG)
    return caught.value.path, caught.value.reason


@pytest.mark.parametrize(
    ("raw", "path", "words"),
    [
        ([], "$", "journey definition"),
        ({"steps": []}, "$.trigger", "needs a trigger"),
        (ok(trigger={"event": "Bad Type"}), "$.trigger.event", "event type"),
        (
            ok(trigger={"event": "order.paid", "where": [{"property": "amount", "op": "gte", "value": "x"}]}),
            "$.trigger.where[0].value",
            "number",
        ),
        (ok(trigger={"segment": 6}), "$.trigger.segment", "no segment 6"),
        (ok(trigger={"tag": [1, 99]}), "$.trigger.tag[1]", "no tag 99"),
        (ok(trigger={"date": "attributes.nope"}), "$.trigger.date", "no date attribute"),
        (ok(trigger={"date": "birthday", "at": "25:00"}), "$.trigger.at", "HH:MM"),
        (ok(trigger={"schedule": "0 8 * *", "audience": {"segment": 5}}), "$.trigger.schedule", "five fields"),
        (ok(trigger={"schedule": "0 8 * * *", "audience": {"tags": [42]}}), "$.trigger.audience.tags[0]", "no tag 42"),
        (ok(trigger={"schedule": "0 8 * * *"}), "$.trigger.audience", "needs an audience"),
        (ok(trigger={"sometimes": True}), "$.trigger", "expected one of the keys"),
        (ok(entry={"mode": "twice"}), "$.entry.mode", "once"),
        (ok(entry={"mode": "every_n_days"}), "$.entry.days", "needs days"),
        (ok(entry={"mode": "once", "days": 3}), "$.entry.days", "every_n_days"),
        (ok(goal={"where": []}), "$.goal.event", "goal is an event"),
        (ok(steps=[]), "$.steps", "non-empty"),
        (ok(steps=[{"id": "a b", "type": "exit"}]), "$.steps[0].id", "step id"),
        (ok(steps=[{"id": "a", "type": "exit"}, {"id": "a", "type": "exit"}]), "$.steps[1].id", "already used"),
        (ok(steps=[{"id": "a", "type": "teleport"}]), "$.steps[0].type", "expected one of"),
        (ok(steps=[{"id": "a", "type": "send", "text": "x", "next": "zz"}]), "$.steps[0].next", "no step 'zz'"),
        (ok(steps=[{"id": "a", "type": "send", "text": "x", "colour": 1}]), "$.steps[0].colour", "unexpected key"),
        (ok(steps=[{"id": "a", "type": "send"}]), "$.steps[0]", "needs text"),
        (ok(steps=[{"id": "a", "type": "send", "content_id": 10}]), "$.steps[0].content_id", "no published content"),
        (ok(steps=[{"id": "a", "type": "send", "text": "x", "channel": "fax"}]), "$.steps[0].channel", "sandbox"),
        (ok(steps=[{"id": "a", "type": "wait"}]), "$.steps[0]", "needs"),
        (ok(steps=[{"id": "a", "type": "wait", "for": {"days": 0}}]), "$.steps[0].for", "longer than zero"),
        (ok(steps=[{"id": "a", "type": "wait", "for": {"weeks": 1}}]), "$.steps[0].for.weeks", "unexpected key"),
        (
            ok(steps=[{"id": "a", "type": "branch", "condition": {"tags": [77]}, "then": None, "else": None}]),
            "$.steps[0].condition.tags[0]",
            "no tag 77",
        ),
        (
            ok(steps=[{"id": "a", "type": "split", "branches": [{"weight": 1, "next": None}]}]),
            "$.steps[0].branches",
            "2 to 10",
        ),
        (ok(steps=[{"id": "a", "type": "holdout", "percent": 100}]), "$.steps[0].percent", "below 100"),
        (ok(steps=[{"id": "a", "type": "tag", "add": [1], "remove": [1]}]), "$.steps[0].remove", "both added"),
        (
            ok(steps=[{"id": "a", "type": "set_attribute", "attribute": "level", "value": "C"}]),
            "$.steps[0].value",
            "not one of",
        ),
        (
            ok(steps=[{"id": "a", "type": "set_attribute", "attribute": "nope", "value": 1}]),
            "$.steps[0].attribute",
            "no custom attribute",
        ),
        (ok(steps=[{"id": "a", "type": "owner", "staff_ids": [8]}]), "$.steps[0].staff_ids[0]", "no staff member 8"),
        (
            ok(steps=[{"id": "a", "type": "invite_group", "group_code_id": 3, "text": "来"}]),
            "$.steps[0].text",
            "{link}",
        ),
        (ok(steps=[{"id": "a", "type": "webhook", "url": "ftp://x"}]), "$.steps[0].url", "http"),
        (ok(steps=[{"id": "a", "type": "task"}]), "$.steps[0].title", "non-empty"),
        (ok(steps=[{"id": "a", "type": "exit"}, {"id": "b", "type": "exit"}]), "$.steps[1]", "never reached"),
        (
            ok(steps=[{"id": "a", "type": "send", "text": "x"}, {"id": "b", "type": "tag", "add": [1], "next": "a"}]),
            "$.steps[1]",
            "loop without a wait",
        ),
    ],
)
def test_every_bad_node_is_named_by_its_path(raw: Any, path: str, words: str) -> None:
    found_path, reason = error(raw)
    assert (found_path, words in reason) == (path, True), reason


def test_a_loop_through_a_wait_is_fine_and_next_defaults_to_the_following_step() -> None:
    definition = parse_definition(
        ok(
            steps=[
                {"id": "ask", "type": "send", "text": "?"},
                {"id": "pause", "type": "wait", "for": {"days": 1}},
                {
                    "id": "again",
                    "type": "branch",
                    "condition": {"computed": "order_count", "op": "eq", "value": 0},
                    "then": "ask",
                    "else": None,
                },
            ]
        ),
        CATALOG,
    )
    assert definition.first == "ask"
    ask, pause = definition.steps["ask"], definition.steps["pause"]
    assert isinstance(ask, SendStep) and ask.next == "pause"
    assert isinstance(pause, WaitStep) and pause.duration == dt.timedelta(days=1)


def test_the_shape_alone_is_checked_without_a_catalog() -> None:
    """A published version is read back by the runner without the workspace: ids are not looked up."""
    parse_definition(ok(trigger={"tag": [12345]}, steps=[{"id": "t", "type": "tag", "add": [999]}]))


@pytest.mark.parametrize("key", sorted(TEMPLATES))
def test_every_template_is_valid_in_an_empty_workspace(key: str) -> None:
    empty = JourneyCatalog(rules=Catalog())
    definition = parse_definition(instantiate(key), empty)
    assert definition.steps


def test_templates_take_the_chosen_channel() -> None:
    from siyu.delivery.models import Channel

    sends = [s for s in instantiate("onboarding", Channel.wecom)["steps"] if s["type"] == "send"]
    assert sends and {s["channel"] for s in sends} == {"wecom"}


def test_cron_fires_in_the_workspace_zone() -> None:
    cron = parse_cron("0 8,19 * * 1-5")
    friday_evening = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)  # 20:00 Friday in Shanghai
    assert cron.next_after(friday_evening, SHANGHAI) == dt.datetime(2026, 11, 30, 0, 0, tzinfo=dt.UTC)  # Mon 08:00
    assert parse_cron("*/15 * * * *").next_after(friday_evening, SHANGHAI).minute == 15
    # day of month and day of week both restricted: either fires (crontab)
    either = parse_cron("0 10 1 * 0")
    assert either.next_after(dt.datetime(2026, 11, 23, 0, tzinfo=dt.UTC), SHANGHAI).date() == dt.date(2026, 11, 29)
    for bad in ("60 * * * *", "* * * 13 *", "*/0 * * * *", "a * * * *", "5-1 * * * *"):
        with pytest.raises(CronError):
            parse_cron(bad)


def test_until_a_time_of_day() -> None:
    at_ten = dt.time(10, 0)
    nine = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)  # 09:00 Shanghai
    assert next_time_of_day(nine, at_ten, SHANGHAI) == dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)
    ten = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)
    assert next_time_of_day(ten, at_ten, SHANGHAI) == ten
    assert next_time_of_day(ten, at_ten, SHANGHAI, strictly_after=True) == ten + dt.timedelta(days=1)


def test_wilson_and_newcombe_intervals() -> None:
    rate = wilson(10, 100)
    assert rate.rate == 0.1 and rate.low is not None and rate.high is not None
    # Newcombe (1998), example (a), method 10: 56/70 - 48/80 = 0.2000, 95 % CI 0.0524 to 0.3339
    lift = newcombe(wilson(56, 70), wilson(48, 80))
    assert lift.difference is not None and lift.low is not None and lift.high is not None
    assert math.isclose(lift.difference, 0.2, abs_tol=1e-9)
    assert math.isclose(lift.low, 0.0524, abs_tol=1e-4) and math.isclose(lift.high, 0.3339, abs_tol=1e-4)
    assert lift.significant
    assert not newcombe(wilson(5, 50), wilson(4, 50)).significant
    assert wilson(0, 0).rate is None and newcombe(wilson(0, 0), wilson(1, 2)).difference is None


def test_every_worker_runs_the_journey_pollers_and_the_schedule_cron() -> None:
    import siyu.journeys.tasks  # noqa: F401 - registers them
    from siyu.jobs.registry import registry

    assert {"journeys.triggers", "journeys.runner"} <= {name for name, _ in registry.pollers()}
    assert "journeys.schedules" in {s.name for s in registry.schedules()}
