"""Recommendations for a contact, a group and a segment: interests, stage fit, seen items, exploration."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from tests.groups.group_helpers import make_group
from tests.recommend.recommend_helpers import contact, event, feed, item, reset_feed, send, tag_group

from siyu.groups import stream as group_stream
from siyu.recommend import ranking, service
from siyu.usermodel import pipeline


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    reset_feed()
    service.clear_cache()
    yield
    reset_feed()


def _library(tenant):  # type: ignore[no-untyped-def]
    topics = tag_group(tenant, "主题", ["考研", "英语", "公考"])
    stages = tag_group(tenant, "适用阶段 stage", ["激活", "成交"])
    ids = {
        "A": item(tenant, "考研择校指南", [topics["考研"]]),
        "B": item(tenant, "四级英语", [topics["英语"]]),
        "C": item(tenant, "公考申论", [topics["公考"]]),
        "D": item(tenant, "考研冲刺营", [topics["考研"], stages["激活"]]),
        "E": item(tenant, "考研老学员续报", [topics["考研"], stages["成交"]]),
        "F": item(tenant, "草稿", [topics["考研"]], status="draft"),
    }
    return topics, ids


def test_contact_recommendations_rank_by_interest_and_stage_and_say_why(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    _, ids = _library(tenant)
    me = contact(tenant, 1)
    send(
        tenant,
        event("content.viewed", 1, "2026-11-22T01:00:00Z", content_id=str(ids["A"])),
        event("content.favorited", 1, "2026-11-22T01:05:00Z", content_id=str(ids["A"])),
    )
    pipeline.catch_up(db)  # lifecycle stage: activated
    feed(db, tenant.workspace_id)
    c = tenant.client
    response = c.get(f"/api/v1/contacts/{me}/recommendations?limit=10&seed=7")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["stage"] == "activated"
    assert body["seed"] == 7
    assert body["interests"] == {"考研": 1.0}
    got = [r["content_id"] for r in body["items"]]
    assert ids["A"] not in got  # seen
    assert ids["F"] not in got  # a draft
    assert set(got) == {ids["B"], ids["C"], ids["D"], ids["E"]}
    # Thompson draws from Beta(1, 1) for all (no pushes yet) add noise; the contact's side is exact
    by_id = {r["content_id"]: r for r in body["items"]}
    assert by_id[ids["D"]]["interest"] == pytest.approx(1.1)
    assert by_id[ids["D"]]["stage"] == pytest.approx(1.3)
    assert by_id[ids["E"]]["stage"] == pytest.approx(0.7)
    assert by_id[ids["B"]]["interest"] == pytest.approx(0.1)
    why = by_id[ids["D"]]["why"]
    assert "考研 interest 1.00" in why and "not seen" in why and "stage: activated" in why and "exploration" in why
    assert "stage mismatch" in by_id[ids["E"]]["why"]
    assert "no interest yet in 英语" in by_id[ids["B"]]["why"]
    scores = [r["score"] for r in body["items"]]
    assert scores == sorted(scores, reverse=True)
    # same seed, same ranking; include_seen lists the seen item, penalised, last
    assert c.get(f"/api/v1/contacts/{me}/recommendations?limit=10&seed=7").json() == body
    with_seen = c.get(f"/api/v1/contacts/{me}/recommendations?limit=10&seed=7&include_seen=true").json()
    assert with_seen["items"][-1]["content_id"] == ids["A"]
    assert with_seen["items"][-1]["seen_count"] == 2
    assert "seen 2×" in with_seen["items"][-1]["why"]
    # over many draws the interest and stage win: D is first far more often than B or C
    firsts = [
        c.get(f"/api/v1/contacts/{me}/recommendations?limit=1&seed={s}").json()["items"][0]["content_id"]
        for s in range(40)
    ]
    assert firsts.count(ids["D"]) > 20
    assert c.get(f"/api/v1/contacts/{me}/recommendations?limit=0").status_code == 422


def test_exploration_tries_new_items_and_learns_from_pushes(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    topics = tag_group(tenant, "主题", ["考研"])
    old = item(tenant, "老文章", [topics["考研"]])
    people = [contact(tenant, n) for n in range(1, 41)]
    # the old item went to 40 people and nobody opened it
    pushed = tenant.client.post(f"/api/v1/content/{old}/pushes", json={"contact_ids": people})
    assert pushed.status_code == 201, pushed.text
    new = item(tenant, "新文章", [topics["考研"]])
    firsts = [
        tenant.client.get(f"/api/v1/contacts/{people[0]}/recommendations?limit=1&seed={s}").json()["items"][0]
        for s in range(20)
    ]
    assert sum(f["content_id"] == new for f in firsts) >= 18
    both = tenant.client.get(f"/api/v1/contacts/{people[0]}/recommendations?limit=2&seed=1").json()["items"]
    assert any("0 engaged of 40 reached" in r["why"] for r in both if r["content_id"] == old)


def test_group_recommendations_use_members_mean_and_skip_pushed(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    _, ids = _library(tenant)
    g = make_group(tenant, name="考研冲刺 1 群", wecom_chat_id="wrREC1")
    for n in (1, 2, 3):
        contact(tenant, n)
    send(
        tenant,
        *[event("group.joined", n, "2026-11-20T01:00:00Z", group_id="wrREC1") for n in (1, 2, 3)],
        event("content.viewed", 1, "2026-11-22T01:00:00Z", content_id=str(ids["A"])),
        event("content.viewed", 2, "2026-11-22T01:00:00Z", content_id=str(ids["A"])),
        event("content.viewed", 3, "2026-11-22T01:00:00Z", content_id=str(ids["B"])),
    )
    group_stream.catch_up(db)
    pipeline.catch_up(db)
    feed(db, tenant.workspace_id)
    pushed = tenant.client.post(f"/api/v1/content/{ids['D']}/pushes", json={"group_id": g["id"]})
    assert pushed.status_code == 201, pushed.text
    body = tenant.client.get(f"/api/v1/groups/{g['id']}/recommendations?limit=10&seed=3").json()
    assert body["members"] == 3
    assert body["interests"] == pytest.approx({"考研": 1.0, "英语": 0.5})
    got = [r["content_id"] for r in body["items"]]
    assert ids["D"] not in got  # already pushed to the group
    assert ids["A"] in got  # seen by members, not pushed to the group
    assert body["stage"] == "activated"


def test_segment_batch_pages_through_members(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    _, ids = _library(tenant)
    people = [contact(tenant, n) for n in range(1, 6)]
    send(tenant, *[event("content.viewed", n, "2026-11-22T01:00:00Z", content_id=str(ids["A"])) for n in range(1, 6)])
    segment = tenant.client.post(
        "/api/v1/segments",
        json={"name": "看过内容", "rule": {"event": "content.viewed", "count": {"op": "gte", "value": 1}}},
    )
    assert segment.status_code == 201, segment.text
    pipeline.catch_up(db)
    feed(db, tenant.workspace_id)
    url = f"/api/v1/segments/{segment.json()['id']}/recommendations"
    first = tenant.client.post(url, json={"limit": 3, "seed": 1, "page_size": 3})
    assert first.status_code == 200, first.text
    page = first.json()
    assert [r["contact_id"] for r in page["rows"]] == people[:3]
    assert page["next_after_contact_id"] == people[2]
    for row in page["rows"]:
        assert len(row["content_ids"]) == 3 and ids["A"] not in row["content_ids"]
        assert row["scores"] == sorted(row["scores"], reverse=True)
    rest = tenant.client.post(url, json={"limit": 3, "seed": 1, "page_size": 3, "after_contact_id": people[2]}).json()
    assert [r["contact_id"] for r in rest["rows"]] == people[3:]
    assert rest["next_after_contact_id"] is None
    assert tenant.client.post(url, json={"limit": 3, "bogus": 1}).status_code == 422


def test_other_workspace_gets_nothing(tenant, make_tenant, db) -> None:  # type: ignore[no-untyped-def]
    _library(tenant)
    me = contact(tenant, 1)
    g = make_group(tenant, name="群")
    segment = tenant.client.post(
        "/api/v1/segments",
        json={"name": "全部", "rule": {"event": "content.viewed", "count": {"op": "gte", "value": 0}}},
    ).json()
    other = make_tenant("品牌B")
    assert other.client.get(f"/api/v1/contacts/{me}/recommendations").status_code == 404
    assert other.client.get(f"/api/v1/contacts/{me}/portrait").status_code == 404
    assert other.client.get(f"/api/v1/groups/{g['id']}/recommendations").status_code == 404
    assert other.client.post(f"/api/v1/segments/{segment['id']}/recommendations", json={}).status_code == 404
    # and the other workspace's own contact gets none of the first workspace's items
    mine = contact(other, 2)
    assert other.client.get(f"/api/v1/contacts/{mine}/recommendations").json()["items"] == []


def test_batch_matches_one_by_one_scores() -> None:
    weights = ranking.Weights()
    catalog = ranking.build_catalog(
        [10, 11, 12],
        ["a", "b", "c"],
        ["article"] * 3,
        [[1], [2], [1, 2]],
        [["activated"], [], []],
        [1, 2],
        ["x", "y"],
        weights,
    )
    catalog.engaged = np.array([0.0, 5.0, 1.0])
    catalog.exposed = np.array([0.0, 10.0, 20.0])
    interest = ranking.relative(np.array([[2.0, 1.0], [0.0, 0.0]], dtype=np.float32))
    assert interest.tolist() == [[1.0, 0.5], [0.0, 0.0]]
    stages = np.array([ranking.stage_row("activated"), ranking.stage_row(None)], dtype=np.intp)
    theta = np.ones((2, 3), dtype=np.float32)
    scores = ranking.score_block(catalog, interest, stages, theta, weights)
    assert scores[0].tolist() == pytest.approx([1.1 * 1.3, 0.6, 0.85])
    assert scores[1].tolist() == pytest.approx([0.1, 0.1, 0.1])
    rows = list(
        ranking.batch_top_k(
            catalog, interest, stages, ranking.csr([[0], []]), 2, weights, np.random.default_rng(1), chunk=1
        )
    )
    assert [r[0] for r in rows] == [0, 1]
    assert 0 not in rows[0][1][0].tolist()  # seen: penalised out of the top 2
