"""User portraits: decayed affinity per content tag, seen items, incremental == rebuild, the rule helper."""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from tests.recommend.recommend_helpers import contact, event, feed, item, reset_feed, send, tag_group

from siyu.computed.service import read_events
from siyu.recommend import portrait, service
from siyu.recommend.models import ContactContentAffinity, ContactContentSeen, ContentReach


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    reset_feed()
    service.clear_cache()
    yield
    reset_feed()


def test_decay_is_exact_whatever_the_grouping() -> None:
    h = 14.0
    d0 = dt.date(2026, 1, 1)
    assert portrait.current(8.0, d0, d0 + dt.timedelta(days=14), h) == pytest.approx(4.0)
    assert portrait.current(8.0, d0, d0 + dt.timedelta(days=28), h) == pytest.approx(2.0)
    # a later event added to an older score, and the reverse, give the same sum as of the later day
    a = portrait.advance(3.0, d0, 1.0, d0 + dt.timedelta(days=7), h)
    b = portrait.advance(1.0, d0 + dt.timedelta(days=7), 3.0, d0, h)
    assert a[1] == b[1] == d0 + dt.timedelta(days=7)
    assert a[0] == pytest.approx(b[0]) == pytest.approx(3.0 * 0.5**0.5 + 1.0)


@given(
    st.lists(
        st.tuples(st.floats(0.5, 5.0), st.integers(0, 100)),
        min_size=1,
        max_size=12,
    )
)
def test_advance_is_order_independent(gains: list[tuple[float, int]]) -> None:
    h, d0 = 10.0, dt.date(2026, 1, 1)
    forward: tuple[float, dt.date] | None = None
    for w, d in gains:
        day = d0 + dt.timedelta(days=d)
        forward = (w, day) if forward is None else portrait.advance(*forward, w, day, h)
    backward: tuple[float, dt.date] | None = None
    for w, d in reversed(gains):
        day = d0 + dt.timedelta(days=d)
        backward = (w, day) if backward is None else portrait.advance(*backward, w, day, h)
    assert forward is not None and backward is not None
    assert forward[1] == backward[1]
    assert math.isclose(forward[0], backward[0], rel_tol=1e-9)
    last = max(d for _, d in gains)
    assert math.isclose(forward[0], sum(w * 0.5 ** ((last - d) / h) for w, d in gains), rel_tol=1e-9)


def test_portrait_from_views_favourites_and_conversions(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    topics = tag_group(tenant, "主题", ["考研", "英语"])
    a = item(tenant, "考研择校", [topics["考研"]])
    c = item(tenant, "考研英语", [topics["考研"], topics["英语"]])
    item(tenant, "无关", [])
    first = contact(tenant, 1)
    contact(tenant, 2)
    send(
        tenant,
        event("content.viewed", 1, "2026-11-09T02:00:00Z", content_id=str(a)),
        event("content.favorited", 1, "2026-11-23T01:00:00Z", content_id=str(a)),
        event("content.viewed", 1, "2026-11-23T01:30:00Z", content_id=str(c)),
        event("order.paid", 1, "2026-11-23T01:40:00Z", content_id=str(c), amount=99, order_id="D1"),
        event("content.viewed", 2, "2026-11-23T01:00:00Z", content_id=str(a)),
        event("content.viewed", 2, "2026-11-23T01:00:00Z", content_id="c-edu-plan-90"),  # not an item: ignored
        event("content.viewed", 2, "2026-11-23T01:00:00Z", content_id="999999"),  # not in this workspace
    )
    touched = feed(db, tenant.workspace_id)
    assert len(touched) == 2

    body = tenant.client.get(f"/api/v1/contacts/{first}/portrait").json()
    by_tag = {a["tag"]: a for a in body["affinities"]}
    # 考研: view 14 days ago (1 -> 0.5) + favourite 3 + view 1 + order 5 = 9.5; 英语: view 1 + order 5
    assert by_tag["考研"]["current"] == pytest.approx(9.5)
    assert by_tag["英语"]["current"] == pytest.approx(6.0)
    assert body["affinities"][0]["tag"] == "考研"
    seen = {s["content_id"]: s["count"] for s in body["seen"]}
    assert seen == {a: 2, c: 1}  # order.paid is a conversion, not a "seen" event

    clock.advance(days=14)
    body = tenant.client.get(f"/api/v1/contacts/{first}/portrait").json()
    assert {x["tag"]: x["current"] for x in body["affinities"]} == pytest.approx({"考研": 4.75, "英语": 3.0})

    with db.transaction(write=False) as session:
        reach = dict(session.execute(select(ContentReach.content_id, ContentReach.viewers)).all())
        assert reach == {a: 2, c: 1}
        today = portrait.today_in(session, tenant.workspace_id)

        def ids(threshold: float) -> set[int]:
            query = portrait.affinity_at_least(tenant.workspace_id, topics["考研"], threshold, today, 14.0)
            return set(session.scalars(query))

        assert ids(4.75) == {first}
        assert ids(4.8) == set()
        assert len(ids(0.5)) == 2
        assert len(ids(0)) == 2
        helper = portrait.affinity_at_least_for(session, tenant.workspace_id, topics["英语"], 2.9)
        assert set(session.scalars(helper)) == {first}


def test_settings_change_weights_and_rebuild(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    topics = tag_group(tenant, "主题", ["考研"])
    a = item(tenant, "考研择校", [topics["考研"]])
    first = contact(tenant, 1)
    send(tenant, event("content.viewed", 1, "2026-11-23T01:00:00Z", content_id=str(a)))
    feed(db, tenant.workspace_id)
    settings_body = tenant.client.get("/api/v1/recommendations/settings").json()["config"]
    assert settings_body["half_life_days"] == 14.0
    settings_body["weights"]["content.viewed"] = 2.5
    put = tenant.client.put("/api/v1/recommendations/settings", json=settings_body)
    assert put.status_code == 200, put.text
    # the pipeline has read the event: the rebuild goes up to its cursor
    assert put.json()["rebuilt_events"] == 1
    reset_feed()
    feed(db, tenant.workspace_id)
    body = tenant.client.get(f"/api/v1/contacts/{first}/portrait").json()
    assert body["affinities"][0]["current"] == pytest.approx(2.5)
    bad = tenant.client.put("/api/v1/recommendations/settings", json={"half_life_days": 0})
    assert bad.status_code == 422


def _snapshot(db, workspace_id: int):  # type: ignore[no-untyped-def]
    with db.transaction(write=False) as session:
        a = {
            (r.contact_id, r.content_tag_id): (r.score, r.as_of_day, r.level)
            for r in session.execute(
                select(
                    ContactContentAffinity.contact_id,
                    ContactContentAffinity.content_tag_id,
                    ContactContentAffinity.score,
                    ContactContentAffinity.as_of_day,
                    ContactContentAffinity.level,
                ).where(ContactContentAffinity.workspace_id == workspace_id)
            )
        }
        s = {
            (r.contact_id, r.content_id): (r.first_at, r.last_at, r[4])
            for r in session.execute(
                select(
                    ContactContentSeen.contact_id,
                    ContactContentSeen.content_id,
                    ContactContentSeen.first_at,
                    ContactContentSeen.last_at,
                    ContactContentSeen.count,
                ).where(ContactContentSeen.workspace_id == workspace_id)
            )
        }
        r = dict(
            session.execute(
                select(ContentReach.content_id, ContentReach.viewers).where(ContentReach.workspace_id == workspace_id)
            ).all()
        )
    return a, s, r


TYPES = ["content.viewed", "content.favorited", "content.commented", "content.shared", "order.paid", "page.viewed"]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    events=st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 2), st.sampled_from(TYPES), st.integers(0, 90 * 24)),
        min_size=1,
        max_size=25,
    ),
    cuts=st.lists(st.integers(1, 24), max_size=4),
)
def test_incremental_equals_rebuild(make_tenant, db, events, cuts) -> None:  # type: ignore[no-untyped-def]
    tenant = make_tenant(f"品牌{len(events)}-{len(cuts)}")
    topics = tag_group(tenant, "主题", ["考研", "英语", "公考"])
    items = [
        item(tenant, "A", [topics["考研"]]),
        item(tenant, "B", [topics["考研"], topics["英语"]]),
        item(tenant, "C", [topics["公考"], topics["英语"]]),
    ]
    base = 30 * len(events) + 7 * len(cuts)
    for n in range(3):
        contact(tenant, base + n)
    start = dt.datetime(2026, 8, 1, tzinfo=dt.UTC)
    send(
        tenant,
        *[
            event(
                kind,
                base + who,
                (start + dt.timedelta(hours=hours)).isoformat(),
                content_id=str(items[what]),
                **({"order_id": f"D{k}", "amount": 10} if kind == "order.paid" else {}),
            )
            for k, (who, what, kind, hours) in enumerate(events)
        ],
    )
    with db.transaction() as session:
        stream = read_events(session, tenant.workspace_id)
        bounds = sorted({0, len(stream), *[c for c in cuts if c < len(stream)]})
        for lo, hi in itertools.pairwise(bounds):
            portrait.apply_content_events(session, tenant.workspace_id, stream[lo:hi])
    incremental = _snapshot(db, tenant.workspace_id)
    with db.transaction() as session:
        portrait.rebuild_portraits(session, tenant.workspace_id)
    rebuilt = _snapshot(db, tenant.workspace_id)
    assert incremental[1] == rebuilt[1]
    assert incremental[2] == rebuilt[2]
    assert incremental[0].keys() == rebuilt[0].keys()
    for key, (score, day, level) in incremental[0].items():
        r_score, r_day, r_level = rebuilt[0][key]
        assert day == r_day
        assert math.isclose(score, r_score, rel_tol=1e-9)
        assert math.isclose(level, r_level, rel_tol=1e-9, abs_tol=1e-9)
