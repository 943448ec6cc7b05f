"""Interest tags from the user portrait: a rule smart tag on `{"interest": content tag, "at_least": t}` tags a
contact when their decayed affinity reaches t as views arrive, and takes the tag off as it decays."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from smarttag_helpers import history, make_smart_tag, make_tag, mounted, tag_names
from tests.recommend.recommend_helpers import contact, event, item, reset_feed, send, tag_group

from siyu.recommend import service as recommend_service
from siyu.usermodel import pipeline


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    reset_feed()
    recommend_service.clear_cache()
    yield
    reset_feed()


def _view(tenant: Any, clock: Any, who: int, content_id: int, kind: str = "content.viewed") -> None:
    send(tenant, event(kind, who, clock.now.isoformat(), content_id=str(content_id)))


def _full_pass(db: Any, workspace_id: int) -> None:
    """What the usermodel.refresh cron does every 10 minutes: everyone, as of now."""
    with db.transaction() as session:
        pipeline.refresh_everything(session, workspace_id)


def test_interest_tag_follows_views_and_decay(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    c = mounted(tenant.client)
    topics = tag_group(tenant, "主题", ["考试", "英语"])
    exam_guide = item(tenant, "考试指南", [topics["考试"]])
    english = item(tenant, "英语入门", [topics["英语"]])
    interested = make_tag(c, "对考试感兴趣", "兴趣")
    rule = make_smart_tag(
        c,
        name="考试兴趣",
        tag_id=interested,
        kind="rule",
        rule={"interest": topics["考试"], "at_least": 2},
        remove_when_unmatched=True,
    )
    reason = f'smart tag rule "考试兴趣" (#{rule["id"]})'
    reader = contact(tenant, 1)
    bystander = contact(tenant, 2)

    # one view: affinity 1 < 2; a view of English content adds nothing to 考试
    _view(tenant, clock, 1, exam_guide)
    _view(tenant, clock, 1, english)
    _view(tenant, clock, 2, english)
    pipeline.catch_up(db)
    assert tag_names(c, reader) == set()

    # a second view an hour later, same day: exactly 2, which is "at least 2"
    clock.advance(hours=1)
    _view(tenant, clock, 1, exam_guide)
    pipeline.catch_up(db)
    assert tag_names(c, reader) == {"对考试感兴趣"}
    assert tag_names(c, bystander) == set()
    assert history(c, reader) == [("对考试感兴趣", "added", "rule", reason)]

    # a day later without events nothing runs for them; the periodic full pass sees 2 x 0.5^(1/14) < 2
    clock.advance(days=1)
    pipeline.catch_up(db)
    assert tag_names(c, reader) == {"对考试感兴趣"}
    _full_pass(db, tenant.workspace_id)
    assert tag_names(c, reader) == set()
    assert history(c, reader)[-1] == ("对考试感兴趣", "removed", "rule", reason)

    # a favourite weighs 3: back over the threshold at once (1.91 + 3)
    _view(tenant, clock, 1, exam_guide, kind="content.favorited")
    pipeline.catch_up(db)
    assert tag_names(c, reader) == {"对考试感兴趣"}

    # 4.91 halves every 14 days: still at least 2 after 14 days (2.45), no longer after 20 (1.82)
    clock.advance(days=14)
    _full_pass(db, tenant.workspace_id)
    assert tag_names(c, reader) == {"对考试感兴趣"}
    clock.advance(days=6)
    _full_pass(db, tenant.workspace_id)
    assert tag_names(c, reader) == set()
    assert [h[1] for h in history(c, reader)] == ["added", "removed", "added", "removed"]
    counters = c.get(f"/api/v1/smart-tags/{rule['id']}").json()
    assert counters["added_total"] == 2 and counters["removed_total"] == 2


def test_a_longer_half_life_keeps_the_interest(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    c = mounted(tenant.client)
    topics = tag_group(tenant, "主题", ["考试"])
    guide = item(tenant, "考试指南", [topics["考试"]])
    settings = c.get("/api/v1/recommendations/settings").json()["config"]
    assert c.put("/api/v1/recommendations/settings", json={**settings, "half_life_days": 60}).status_code == 200
    tag_id = make_tag(c, "考试意向", "兴趣")
    make_smart_tag(
        c,
        name="考试意向",
        tag_id=tag_id,
        kind="rule",
        rule={"interest": topics["考试"], "at_least": 1.5},
        remove_when_unmatched=True,
    )
    reader = contact(tenant, 1)
    _view(tenant, clock, 1, guide)
    _view(tenant, clock, 1, guide)
    pipeline.catch_up(db)
    assert tag_names(c, reader) == {"考试意向"}
    # 2 x 0.5^(20/60) = 1.59: with the default 14 days it would be 0.75
    clock.advance(days=20)
    _full_pass(db, tenant.workspace_id)
    assert tag_names(c, reader) == {"考试意向"}
    clock.advance(days=10)  # 2 x 0.5^(30/60) = 1.41
    _full_pass(db, tenant.workspace_id)
    assert tag_names(c, reader) == set()


def test_a_bad_interest_condition_names_its_path(tenant) -> None:  # type: ignore[no-untyped-def]
    c = mounted(tenant.client)
    topics = tag_group(tenant, "主题", ["考试"])
    tag_id = make_tag(c, "考试意向", "兴趣")

    def refused(rule: dict[str, Any]) -> tuple[str, str]:
        response = c.post("/api/v1/smart-tags", json={"name": "x", "tag_id": tag_id, "kind": "rule", "rule": rule})
        assert response.status_code == 422, response.text
        detail = response.json()["error"]["details"][0]
        return detail["path"], detail["reason"]

    path, reason = refused({"and": [{"interest": 999_999, "at_least": 1}]})
    assert path == "$.and[0].interest" and "no content tag 999999" in reason
    path, reason = refused({"interest": topics["考试"]})
    assert path == "$.at_least" and "0.5" in reason
    path, reason = refused({"interest": topics["考试"], "at_least": 0})
    assert path == "$.at_least" and "above 0" in reason
    path, reason = refused({"interest": topics["考试"], "at_least": "high"})
    assert path == "$.at_least" and "expected a number" in reason
    path, reason = refused({"interest": str(topics["考试"]), "at_least": 1})
    assert path == "$.interest" and "content tag id" in reason
    path, _reason = refused({"interest": topics["考试"], "at_least": 1, "within_last_days": 7})
    assert path == "$.within_last_days"
