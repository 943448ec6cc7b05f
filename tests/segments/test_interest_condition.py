"""The interest condition in segments: saved segments follow the portrait, the builder offers content tags,
the preview counts, and "why" shows the decayed affinity next to the threshold."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from tests.content.content_helpers import console_client
from tests.recommend.recommend_helpers import contact, event, item, reset_feed, send, tag_group

from siyu.recommend import service as recommend_service
from siyu.usermodel import pipeline


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    reset_feed()
    recommend_service.clear_cache()
    yield
    reset_feed()


def _members(tenant, segment_id: int) -> set[int]:  # type: ignore[no-untyped-def]
    response = tenant.client.get(f"/api/v1/segments/{segment_id}/member-ids")
    assert response.status_code == 200, response.text
    return set(response.json()["items"])


def test_segments_on_interest_follow_views_and_decay(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    topics = tag_group(tenant, "主题", ["考试"])
    guide = item(tenant, "考试指南", [topics["考试"]])
    keen, casual = contact(tenant, 1), contact(tenant, 2)
    created = tenant.client.post(
        "/api/v1/segments",
        json={"name": "考试兴趣", "rule": {"and": [{"interest": topics["考试"], "at_least": 1.5}]}},
    )
    assert created.status_code == 201, created.text
    segment_id = created.json()["id"]
    send(
        tenant,
        event("content.viewed", 1, clock.now.isoformat(), content_id=str(guide)),
        event("content.viewed", 1, clock.now.isoformat(), content_id=str(guide)),
        event("content.viewed", 2, clock.now.isoformat(), content_id=str(guide)),
    )
    pipeline.catch_up(db)
    assert _members(tenant, segment_id) == {keen}
    preview = tenant.client.post(
        "/api/v1/segments/preview", json={"rule": {"interest": topics["考试"], "at_least": 0.9}}
    ).json()
    assert preview["count"] == 2 and casual in {c["id"] for c in preview["sample"]}
    # 2 x 0.5^(6/14) = 1.49 < 1.5: the periodic pass takes them out, recorded as segment.exited
    clock.advance(days=6)
    with db.transaction() as session:
        pipeline.refresh_everything(session, tenant.workspace_id)
    assert _members(tenant, segment_id) == set()
    exited = tenant.client.get("/api/v1/events", params={"type": "segment.exited"}).json()
    assert [e["contact_id"] for e in exited] == [keen]
    why = tenant.client.get(f"/api/v1/contacts/{keen}/segments").json()
    assert why == [] or all(s["id"] != segment_id for s in why)


def test_builder_offers_content_tags_and_why_shows_the_affinity(app, tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    topics = tag_group(tenant, "主题", ["考试", "就业"])
    guide = item(tenant, "考试指南", [topics["考试"]])
    keen = contact(tenant, 1)
    send(
        tenant,
        event("content.viewed", 1, clock.now.isoformat(), content_id=str(guide)),
        event("content.favorited", 1, clock.now.isoformat(), content_id=str(guide)),
    )
    pipeline.catch_up(db)
    client = console_client(app, tenant)
    builder = client.get("/console/segments/new")
    assert builder.status_code == 200
    raw = re.search(r'data-json="([^"]*)"', builder.text).group(1)  # type: ignore[union-attr]
    vocab = json.loads(raw.replace("&#34;", '"').replace("&amp;", "&"))
    assert vocab["contentTags"] == [
        {"name": "主题", "tags": [{"id": topics["就业"], "name": "就业"}, {"id": topics["考试"], "name": "考试"}]}
    ]
    assert vocab["text"]["interest"] == "内容兴趣"
    assert "每 14 天减半" in vocab["text"]["interestHelp"] and "收藏加 3" in vocab["text"]["interestHelp"]

    token = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', builder.text).group(1)  # type: ignore[union-attr]
    rule = {"and": [{"interest": topics["考试"], "at_least": 4}]}
    preview = client.post(
        "/console/segments/preview",
        data={"rule": json.dumps(rule)},
        headers={"HX-Request": "true", "X-CSRF-Token": token},
    )
    assert 'data-count="1"' in preview.text
    bad = client.post(
        "/console/segments/preview",
        data={"rule": json.dumps({"and": [{"interest": topics["考试"], "at_least": -1}]})},
        headers={"HX-Request": "true", "X-CSRF-Token": token},
    )
    assert 'data-error-path="$.and[0].at_least"' in bad.text
    saved = client.post(
        "/console/segments",
        data={"name": "考试高兴趣", "description": "", "rule": json.dumps(rule), "csrf_token": token},
    )
    assert saved.status_code == 303, saved.text
    segment_id = int(saved.headers["location"].rsplit("/", 1)[1])
    page = client.get(saved.headers["location"])
    assert "对「考试」的兴趣 ≥ 4" in page.text and 'id="segment-count">1<' in page.text
    why = client.get(f"/console/segments/{segment_id}/why/{keen}", headers={"HX-Request": "true"})
    assert "对「考试」的兴趣 ≥ 4 — 4.00" in why.text and 'class="unmet"' not in why.text
    client.cookies.set("siyu_lang", "en")
    english = client.get(f"/console/segments/{segment_id}/why/{keen}").text
    assert "interest in 考试 ≥ 4 — 4.00" in english
