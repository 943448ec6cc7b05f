"""Live membership through the pipeline: events in through the API, segment.entered/exited out."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from segment_population import NOW, build_world, populations, rules, write_events
from sqlalchemy import func, select

from siyu.auth.principal import Principal
from siyu.computed.models import ContactEventStat, StreamCursor
from siyu.events.models import Event
from siyu.segments import service as segments
from siyu.segments.evaluate import matches
from siyu.segments.explain import explain_membership, load_facts
from siyu.segments.models import SegmentMember
from siyu.segments.rules import parse_rule
from siyu.usermodel import pipeline


def _events(client: Any, *events: dict[str, Any]) -> None:
    response = client.post("/api/v1/events?wait=true", json={"events": list(events)})
    assert response.status_code == 200, response.text


def _viewed(event_id: str, phone: str, topic: str = "exam", at: dt.datetime | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": event_id,
        "type": "content.viewed",
        "contact": {"phone": phone},
        "properties": {"content_id": "c1", "topic": topic},
    }
    if at is not None:
        event["timestamp"] = at.isoformat()
    return event


def _members(db, segment_id: int) -> set[int]:  # type: ignore[no-untyped-def]
    with db.transaction(write=False) as session:
        return set(session.scalars(select(SegmentMember.contact_id).where(SegmentMember.segment_id == segment_id)))


def _moves(db, workspace_id: int) -> list[tuple[str, int, int]]:  # type: ignore[no-untyped-def]
    with db.transaction(write=False) as session:
        rows = session.execute(
            select(Event.type, Event.contact_id, Event.properties)
            .where(Event.workspace_id == workspace_id, Event.type.like("segment.%"))
            .order_by(Event.seq)
        ).all()
    return [(t, c, p["segment_id"]) for t, c, p in rows]


def test_viewing_twice_this_week_enters_and_buying_exits(db, clock, tenant) -> None:  # type: ignore[no-untyped-def]
    client = tenant.client
    rule = {
        "and": [
            {"event": "content.viewed", "where": [{"property": "topic", "op": "eq", "value": "exam"}],
             "count": {"op": "gte", "value": 2}, "within_last_days": 7},
            {"computed": "order_count", "op": "eq", "value": 0},
        ]
    }  # fmt: skip
    created = client.post("/api/v1/segments", json={"name": "两次看考试内容未购买", "rule": rule})
    assert created.status_code == 201, created.text
    segment = created.json()
    assert segment["member_count"] == 0

    _events(client, _viewed("v1", "13800000001"), _viewed("v2", "13800000002"), _viewed("v3", "13800000002", "job"))
    pipeline.catch_up(db)
    assert _members(db, segment["id"]) == set()

    _events(client, _viewed("v4", "13800000001"))
    pipeline.catch_up(db)
    (member,) = _members(db, segment["id"])
    assert client.get(f"/api/v1/segments/{segment['id']}").json()["member_count"] == 1
    assert _moves(db, tenant.workspace_id) == [("segment.entered", member, segment["id"])]

    why = client.get(f"/api/v1/contacts/{member}/segments").json()
    assert why[0]["name"] == "两次看考试内容未购买"
    assert why[0]["why"][0]["matched"] is True
    assert "2 times" in why[0]["why"][1]["text"]

    _events(
        client,
        {"id": "o1", "type": "order.paid", "contact": {"phone": "13800000001"},
         "properties": {"order_id": "A1", "amount": 199}},
    )  # fmt: skip
    pipeline.catch_up(db)
    assert _members(db, segment["id"]) == set()
    assert _moves(db, tenant.workspace_id)[-1] == ("segment.exited", member, segment["id"])

    # the window slides: a week later the second viewer's views no longer count, even with no new event
    _events(client, _viewed("v5", "13800000002"))
    pipeline.catch_up(db)
    assert len(_members(db, segment["id"])) == 1
    clock.advance(days=8)
    with db.transaction() as session:
        pipeline.refresh_everything(session, tenant.workspace_id)
    assert _members(db, segment["id"]) == set()
    history = client.get(f"/api/v1/segments/{segment['id']}/history").json()
    assert [h["size"] for h in history] == [1, 0]


def test_a_tag_change_is_seen_without_any_event(db, clock, tenant) -> None:  # type: ignore[no-untyped-def]
    client = tenant.client
    group = client.post("/api/v1/tag-groups", json={"name": "意向"}).json()
    tag = client.post("/api/v1/tags", json={"group_id": group["id"], "name": "高意向"}).json()
    contact = client.post("/api/v1/contacts", json={"name": "王", "region": "上海"}).json()
    segment = client.post(
        "/api/v1/segments",
        json={
            "name": "上海高意向",
            "rule": {"and": [{"tags": [tag["id"]]}, {"attribute": "region", "op": "eq", "value": "上海"}]},
        },
    ).json()
    client.post(f"/api/v1/contacts/{contact['id']}/tags", json={"add": [tag["id"]]})
    pipeline.catch_up(db)
    assert _members(db, segment["id"]) == {contact["id"]}
    why = client.get(f"/api/v1/contacts/{contact['id']}/segments").json()[0]["why"]
    assert [(line["text"], line["matched"]) for line in why] == [
        ("all of", True),
        ("has any of the tags 高意向", True),
        ("region = 上海 — 上海", True),
    ]
    with db.transaction(write=False) as session:
        saved = segments.get_segment(session, tenant.workspace_id, segment["id"])
        in_chinese = explain_membership(session, tenant.workspace_id, contact["id"], saved, lang="zh-CN")
    assert [line.text for line in in_chinese.lines] == ["同时满足", "有任一标签 高意向", "region 等于 上海 — 上海"]
    client.patch(f"/api/v1/contacts/{contact['id']}", json={"region": "北京"})
    pipeline.catch_up(db)
    assert _members(db, segment["id"]) == set()


def test_a_merge_rebuilds_the_survivors_counts(db, clock, tenant) -> None:  # type: ignore[no-untyped-def]
    client = tenant.client
    _events(
        client,
        _viewed("a1", "13800000011"),
        {"id": "w1", "type": "content.viewed", "contact": {"wecom_external_userid": "wmX"},
         "properties": {"content_id": "c1"}},
    )  # fmt: skip
    pipeline.catch_up(db)
    # one event carrying both identities: the two profiles are one person
    _events(
        client,
        {"id": "m1", "type": "content.viewed", "contact": {"phone": "13800000011", "wecom_external_userid": "wmX"},
         "properties": {"content_id": "c1"}},
    )  # fmt: skip
    pipeline.catch_up(db)
    with db.transaction(write=False) as session:
        counts = session.execute(
            select(ContactEventStat.contact_id, ContactEventStat.count).where(
                ContactEventStat.workspace_id == tenant.workspace_id, ContactEventStat.event_type == "content.viewed"
            )
        ).all()
    assert [c for _, c in counts] == [3]


def test_a_step_that_fails_leaves_nothing_half_done(db, clock, tenant, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    client = tenant.client
    segment = client.post("/api/v1/segments", json={"name": "看过", "rule": {"event": "content.viewed"}}).json()
    _events(client, _viewed("x1", "13800000021"), _viewed("x2", "13800000022"))

    def crash(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("worker died here")

    monkeypatch.setattr(pipeline.segments, "refresh_workspace", crash)
    with pytest.raises(RuntimeError):
        pipeline.catch_up(db)
    with db.transaction(write=False) as session:
        assert session.scalar(select(func.count()).select_from(ContactEventStat)) == 0
        assert session.scalar(select(StreamCursor.seq)) in (None, 0)
    monkeypatch.undo()
    pipeline.catch_up(db)
    assert len(_members(db, segment["id"])) == 2
    with db.transaction(write=False) as session:
        viewed = select(func.sum(ContactEventStat.count)).where(ContactEventStat.event_type == "content.viewed")
        assert session.scalar(viewed) == 2  # each counted once, not again for the failed step


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_incremental_membership_agrees_with_plain_evaluation(db, clock, data) -> None:  # type: ignore[no-untyped-def]
    """Segments saved first, events arriving in batches through the pipeline: members == plain evaluation."""
    crowd, happenings = data.draw(populations())
    with db.transaction() as session:
        world = build_world(session, crowd)
        principal = Principal(workspace_id=world.workspace_id, scopes=frozenset())
        saved = [
            segments.create_segment(
                session, principal, name=f"s{n}", rule=data.draw(rules(world.tag_ids, [], world.content_tag_ids))
            )
            for n in range(3)
        ]
        ids = [(s.id, s.rule) for s in saved]
    cuts = sorted(data.draw(st.lists(st.integers(0, len(happenings)), max_size=3)))
    start = 0
    for cut in [*cuts, len(happenings)]:
        with db.transaction() as session:
            write_events(session, world, happenings[start:cut], start=start)
        start = max(start, cut)
        pipeline.catch_up(db, now=NOW)
    with db.transaction(write=False) as session:
        catalog = segments.catalog(session, world.workspace_id)
        ctx = segments.context(session, world.workspace_id, NOW)
        facts = load_facts(session, world.workspace_id, world.contact_ids)
        for segment_id, rule in ids:
            node = parse_rule(rule, catalog)
            expected = {c for c in world.contact_ids if matches(node, facts[c], ctx)}
            members = set(
                session.scalars(select(SegmentMember.contact_id).where(SegmentMember.segment_id == segment_id))
            )
            assert members == expected, rule


def test_the_steps_own_entries_are_counted_but_not_matched_again_unless_a_rule_reads_them(  # type: ignore[no-untyped-def]
    db, clock, tenant
) -> None:
    """A step records segment.entered and, while no rule names the type, counts it itself (computed
    properties) and moves the cursor past it, leaving its contact alone; once a segment's rule reads it,
    the next step reads it and matches its contact."""
    client = tenant.client
    viewed = {"event": "content.viewed", "count": {"op": "gte", "value": 1}, "within_last_days": 7}
    created = client.post("/api/v1/segments", json={"name": "viewed this week", "rule": viewed})
    assert created.status_code == 201, created.text
    _events(client, _viewed("q1", "13800000011"), _viewed("q2", "13800000012"))

    def steps() -> list[pipeline.StepResult]:
        done = []
        while True:
            with db.transaction() as session:
                result = pipeline.step(session, tenant.workspace_id)
            if result.work == 0:
                return done
            done.append(result)

    (first,) = steps()
    assert len(first.touched) == 2 and first.entered == 2
    assert first.own_moves == 2  # the two segment.entered: counted by the step that recorded them
    with db.transaction(write=False) as session:
        cursor = session.scalar(select(StreamCursor.seq).where(StreamCursor.workspace_id == tenant.workspace_id))
        last = session.scalar(select(func.max(Event.seq)).where(Event.workspace_id == tenant.workspace_id))
        assert cursor == last  # past them
        counted = session.scalar(
            select(func.sum(ContactEventStat.count)).where(
                ContactEventStat.workspace_id == tenant.workspace_id, ContactEventStat.event_type == "segment.entered"
            )
        )
    assert counted == 2

    reads = {"event": "segment.entered", "count": {"op": "gte", "value": 2}, "within_last_days": 7}
    created = client.post("/api/v1/segments", json={"name": "entered twice", "rule": reads})
    assert created.status_code == 201, created.text
    _events(client, _viewed("q3", "13800000013"))
    first, second = steps()
    assert len(first.touched) == 1 and first.entered == 1 and first.own_moves == 0
    assert second.events == 1 and len(second.touched) == 1  # its segment.entered is read by a rule now


def test_a_smart_tag_on_segment_membership_follows_an_entry(db, clock, tenant) -> None:  # type: ignore[no-untyped-def]
    """A step tags before it refreshes segments, so a tag rule on "in segment X" catches up in the next
    step: the entry it recorded must not be quiet while such a rule exists."""
    from smarttags.smarttag_helpers import make_smart_tag, make_tag, mounted, tag_names

    client = mounted(tenant.client)
    viewed = {"event": "content.viewed", "count": {"op": "gte", "value": 1}, "within_last_days": 7}
    segment = client.post("/api/v1/segments", json={"name": "viewed this week", "rule": viewed}).json()
    tag_id = make_tag(client, "看过内容")
    make_smart_tag(client, name="在分群里", tag_id=tag_id, kind="rule", rule={"segment": segment["id"]})
    _events(client, _viewed("s1", "13800000021"))
    pipeline.catch_up(db)
    (member,) = _members(db, segment["id"])
    assert tag_names(client, member) == {"看过内容"}


def test_a_transaction_stage_moved_by_a_segment_follows_an_entry(db, clock, tenant) -> None:  # type: ignore[no-untyped-def]
    """Likewise for a transaction stage moved by entering a segment: the step scores before it refreshes
    segments, so the stage follows in the next step, from the entry it recorded."""
    client = tenant.client
    viewed = {"event": "content.viewed", "count": {"op": "gte", "value": 1}, "within_last_days": 7}
    segment = client.post("/api/v1/segments", json={"name": "viewed this week", "rule": viewed}).json()
    stages = {"transaction_stages": [{"key": "browsing", "label": "看过", "moved_by": [{"segment_id": segment["id"]}]}]}
    saved = client.put("/api/v1/scoring/settings", json=stages)
    assert saved.status_code == 200, saved.text
    _events(client, _viewed("t1", "13800000031"))
    pipeline.catch_up(db)
    (member,) = _members(db, segment["id"])
    scores = client.get(f"/api/v1/contacts/{member}/scores")
    assert scores.status_code == 200, scores.text
    assert scores.json()["transaction_stage"] == "browsing"


def test_each_step_takes_what_is_waiting_up_to_the_batch(db, clock, tenant, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A step reads every event waiting, up to BATCH_EVENTS, from its first step on (no ramp from a
    small size); every event is counted once whatever the sizes."""
    client = tenant.client
    segment = client.post("/api/v1/segments", json={"name": "看过", "rule": {"event": "content.viewed"}}).json()
    _events(client, *(_viewed(f"g{n}", f"138000001{n:02d}") for n in range(23)))
    monkeypatch.setattr(pipeline, "BATCH_EVENTS", 8)
    sizes: list[tuple[int, int]] = []
    results: list[pipeline.StepResult] = []
    real_step = pipeline.step

    def step(session, workspace_id, **kwargs):  # type: ignore[no-untyped-def]
        result = real_step(session, workspace_id, **kwargs)
        sizes.append((kwargs["batch"], result.events))
        results.append(result)
        return result

    monkeypatch.setattr(pipeline, "step", step)
    assert pipeline.run_pending(db, yield_seconds=0) >= 23
    assert {batch for batch, _ in sizes} == {8}
    # Full steps while anything waits: the 23 views, then the 23 entries they led to (read, or counted
    # by a step as quiet events right after what it read), and a last step that finds nothing.
    assert [read for _, read in sizes] == [8, 8, 8, 8, 7, 0]
    assert sum(r.events + r.own_moves for r in results) == 23 + 23
    assert len(_members(db, segment["id"])) == 23
    with db.transaction(write=False) as session:
        viewed = select(func.sum(ContactEventStat.count)).where(ContactEventStat.event_type == "content.viewed")
        assert session.scalar(viewed) == 23
        # The entries: counted once each, whether read by a later step or counted as quiet events right
        # after what a step read (here the third step counts the first step's seven).
        entered = select(func.sum(ContactEventStat.count)).where(ContactEventStat.event_type == "segment.entered")
        assert session.scalar(entered) == 23
    assert any(s.own_moves for s in results) and any(s.events > 0 and s.own_moves == 0 for s in results)


def test_each_step_reports_where_its_time_went(db, clock, tenant) -> None:  # type: ignore[no-untyped-def]
    """run_pending passes every step's result to on_step with seconds per phase, the write-lock wait and
    the commit among them, adding up to no more than the step's wall time."""
    client = tenant.client
    client.post("/api/v1/segments", json={"name": "看过", "rule": {"event": "content.viewed"}})
    _events(client, *(_viewed(f"t{n}", f"138000002{n:02d}") for n in range(5)))
    steps: list[pipeline.StepResult] = []
    started = time.perf_counter()
    assert pipeline.run_pending(db, yield_seconds=0, on_step=steps.append) >= 5
    whole = time.perf_counter() - started
    assert steps and steps[0].events == 5
    phases = steps[0].timer.seconds
    for phase in ("wait", "read", "computed", "intention", "scoring", "segments", "commit"):
        assert phases[phase] >= 0, phase
    assert sum(sum(s.timer.seconds.values()) for s in steps) <= whole
    assert all(s.work > 0 for s in steps)  # idle steps are not reported
