"""Tags: groups, exclusive groups, one-contact and bulk tagging, and the history of every change."""

from __future__ import annotations

from siyu.staff.models import Role


def _setup(c):  # type: ignore[no-untyped-def]
    level = c.post("/api/v1/tag-groups", json={"name": "意向等级", "exclusive": True}).json()
    a = c.post("/api/v1/tags", json={"group_id": level["id"], "name": "A-强意向"}).json()
    b = c.post("/api/v1/tags", json={"group_id": level["id"], "name": "B-弱意向"}).json()
    topics = c.post("/api/v1/tag-groups", json={"name": "兴趣"}).json()
    exam = c.post("/api/v1/tags", json={"group_id": topics["id"], "name": "考研"}).json()
    return level, a, b, topics, exam


def test_exclusive_group_keeps_one_tag_and_history_says_why(tenant) -> None:
    c = tenant.client
    _, a, b, _, exam = _setup(c)
    contact = c.post("/api/v1/contacts", json={"name": "客户"}).json()
    url = f"/api/v1/contacts/{contact['id']}/tags"
    assert c.post(url, json={"add": [a["id"], exam["id"]], "reason": "问了学费"}).status_code == 200
    after = c.post(url, json={"add": [b["id"]]}).json()
    assert sorted(t["name"] for t in after["tags"]) == ["B-弱意向", "考研"]
    both = c.post(url, json={"add": [a["id"], b["id"]]})
    assert both.status_code == 422 and "exclusive" in both.json()["error"]["message"]
    history = c.get(f"/api/v1/contacts/{contact['id']}/tag-history").json()
    summary = [(h["tag_name"], h["action"], h["source"], h["reason"]) for h in reversed(history)]
    assert summary[:2] == [("A-强意向", "added", "api", "问了学费"), ("考研", "added", "api", "问了学费")]
    assert ("A-强意向", "removed", "exclusive", "replaced by 'B-弱意向' (exclusive group)") in summary
    assert summary[-1] == ("B-弱意向", "added", "api", None)
    assert all(h["actor_api_key_id"] is not None for h in history)


def test_adding_a_held_tag_changes_nothing(tenant) -> None:
    c = tenant.client
    *_, exam = _setup(c)
    contact = c.post("/api/v1/contacts", json={}).json()
    for _ in range(3):
        c.post(f"/api/v1/contacts/{contact['id']}/tags", json={"add": [exam["id"]]})
    assert len(c.get(f"/api/v1/contacts/{contact['id']}/tag-history").json()) == 1
    removed = c.post(f"/api/v1/contacts/{contact['id']}/tags", json={"remove": [exam["id"]]}).json()
    assert removed["tags"] == []
    assert c.post(f"/api/v1/contacts/{contact['id']}/tags", json={}).status_code == 422


def test_bulk_tagging_by_ids_and_by_filter(tenant) -> None:
    c = tenant.client
    _, a, _, _, exam = _setup(c)
    ids = [
        c.post("/api/v1/contacts", json={"source_channel": "douyin" if i < 6 else "zhihu"}).json()["id"]
        for i in range(10)
    ]
    by_ids = c.post(
        "/api/v1/contacts/bulk/tags",
        json={"add": [exam["id"]], "selection": {"contact_ids": ids[:3]}, "reason": "导入名单"},
    ).json()
    assert by_ids == {"matched": 3, "added": 3, "removed": 0}
    by_filter = c.post(
        "/api/v1/contacts/bulk/tags",
        json={"add": [exam["id"], a["id"]], "selection": {"filter": {"source_channel": "douyin"}}},
    ).json()
    assert by_filter == {"matched": 6, "added": 3 + 6, "removed": 0}
    counts = {t["name"]: t["contacts"] for t in c.get("/api/v1/tags").json()}
    assert counts == {"A-强意向": 6, "B-弱意向": 0, "考研": 6}
    untag = c.post(
        "/api/v1/contacts/bulk/tags",
        json={"remove": [exam["id"]], "selection": {"filter": {"tag": [str(a["id"])]}}},
    ).json()
    assert untag == {"matched": 6, "added": 0, "removed": 6}
    neither = c.post("/api/v1/contacts/bulk/tags", json={"add": [exam["id"]], "selection": {}})
    assert neither.status_code == 422


def test_consultant_bulk_tags_only_their_own(tenant) -> None:
    c = tenant.client
    *_, exam = _setup(c)
    staff_id, consultant = tenant.as_staff("c@brand.cn", role=Role.consultant)
    mine = c.post("/api/v1/contacts", json={"owner_id": staff_id}).json()["id"]
    other = c.post("/api/v1/contacts", json={}).json()["id"]
    result = consultant.post(
        "/api/v1/contacts/bulk/tags", json={"add": [exam["id"]], "selection": {"contact_ids": [mine, other]}}
    ).json()
    assert result == {"matched": 1, "added": 1, "removed": 0}
    history = c.get(f"/api/v1/contacts/{mine}/tag-history").json()
    assert history[0]["source"] == "manual" and history[0]["actor_staff_id"] == staff_id
    assert consultant.post("/api/v1/tags", json={"group_id": exam["group_id"], "name": "x"}).status_code == 403


def test_names_are_unique_and_deleting_a_tag_in_use_asks_first(tenant) -> None:
    c = tenant.client
    level, a, *_ = _setup(c)
    assert c.post("/api/v1/tag-groups", json={"name": "意向等级"}).status_code == 409
    assert c.post("/api/v1/tags", json={"group_id": level["id"], "name": "A-强意向"}).status_code == 409
    renamed = c.patch(f"/api/v1/tags/{a['id']}", json={"name": "A级"}).json()
    assert renamed["name"] == "A级"
    contact = c.post("/api/v1/contacts", json={}).json()
    c.post(f"/api/v1/contacts/{contact['id']}/tags", json={"add": [a["id"]]})
    refused = c.delete(f"/api/v1/tags/{a['id']}")
    assert refused.status_code == 409 and "force=true" in refused.json()["error"]["message"]
    assert c.delete(f"/api/v1/tags/{a['id']}", params={"force": "true"}).status_code == 204
    history = c.get(f"/api/v1/contacts/{contact['id']}/tag-history").json()
    assert (history[0]["tag_name"], history[0]["action"], history[0]["tag_id"]) == ("A级", "removed", None)
    assert c.get(f"/api/v1/contacts/{contact['id']}").json()["tags"] == []


def test_a_group_becomes_exclusive_only_when_nobody_holds_two(tenant) -> None:
    c = tenant.client
    *_, topics, exam = _setup(c)
    other = c.post("/api/v1/tags", json={"group_id": topics["id"], "name": "专升本"}).json()
    contact = c.post("/api/v1/contacts", json={}).json()
    c.post(f"/api/v1/contacts/{contact['id']}/tags", json={"add": [exam["id"], other["id"]]})
    refused = c.patch(f"/api/v1/tag-groups/{topics['id']}", json={"exclusive": True})
    assert refused.status_code == 409 and "1 contacts" in refused.json()["error"]["message"]
    c.post(f"/api/v1/contacts/{contact['id']}/tags", json={"remove": [other["id"]]})
    assert c.patch(f"/api/v1/tag-groups/{topics['id']}", json={"exclusive": True}).json()["exclusive"] is True
