"""The segments API: bad rules refused with the path, preview, members, consultants, deletion rules."""

from __future__ import annotations

from typing import Any

import pytest

from siyu.staff.models import Role


def _contact(client: Any, name: str, **fields: Any) -> dict[str, Any]:
    response = client.post("/api/v1/contacts", json={"name": name, **fields})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("rule", "path", "reason"),
    [
        ({"and": []}, "$.and", "non-empty list"),
        ({"and": [{"attribute": "region", "op": "eq"}]}, "$.and[0].value", "eq needs a value"),
        ({"attribute": "regoin", "op": "eq", "value": "x"}, "$.attribute", "unknown field 'regoin'"),
        ({"attribute": "birthday", "op": "within_next_days", "days": 0}, "$.days", "from 1 to 36500"),
        ({"attribute": "gender", "op": "eq", "value": "m"}, "$.value", "is not one of male, female, unknown"),
        ({"attribute": "attributes.level", "op": "eq", "value": 1}, "$.attribute", "no custom attribute 'level'"),
        ({"not": {"event": "Viewed", "count": {"op": "gte", "value": 1}}}, "$.not.event", "expected an event type"),
        ({"event": "content.viewed", "count": {"op": "more", "value": 1}}, "$.count.op", "expected gte, lte or eq"),
        (
            {"event": "content.viewed", "where": [{"property": "a.b", "op": "eq", "value": 1}]},
            "$.where[0].property",
            "",
        ),
        ({"event": "content.viewed", "between": ["2026-11-09", "2026-11-01"]}, "$.between", "before the start"),
        ({"tags": [999999]}, "$.tags[0]", "no tag 999999 in this workspace"),
        ({"segment": 999999}, "$.segment", "no segment 999999"),
        ({"computed": "ltv", "op": "gt", "value": 1}, "$.computed", "unknown computed property"),
        ({"computed": "value_tier", "op": "gt", "value": "loyal"}, "$.op", "expected one of"),
        ({"region": "上海"}, "$", "expected one of the keys"),
        ({"and": [{"identity": "phone", "extra": 1}]}, "$.and[0].extra", "unexpected key"),
        ({"or": [{"interest": 999999, "at_least": 1}]}, "$.or[0].interest", "no content tag 999999"),
        ({"interest": True, "at_least": 1}, "$.interest", "expected a content tag id"),
    ],
)
def test_a_bad_rule_is_refused_with_the_path_and_the_reason(tenant, rule, path, reason) -> None:  # type: ignore[no-untyped-def]
    for url, body in (
        ("/api/v1/segments", {"name": "坏规则", "rule": rule}),
        ("/api/v1/segments/preview", {"rule": rule}),
    ):
        response = tenant.client.post(url, json=body)
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "invalid_rule"
        assert error["details"][0]["path"] == path
        assert reason in error["details"][0]["reason"]
    assert tenant.client.get("/api/v1/segments").json() == []


def test_preview_counts_and_samples_without_saving(tenant) -> None:  # type: ignore[no-untyped-def]
    for n in range(3):
        _contact(tenant.client, f"上海{n}", region="上海")
    _contact(tenant.client, "北京", region="北京")
    response = tenant.client.post(
        "/api/v1/segments/preview",
        json={"rule": {"attribute": "region", "op": "eq", "value": "上海"}, "sample_size": 2},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == 3
    assert [c["name"] for c in body["sample"]] == ["上海2", "上海1"]
    assert tenant.client.get("/api/v1/segments").json() == []


def test_members_pages_and_ids(tenant) -> None:  # type: ignore[no-untyped-def]
    ids = [_contact(tenant.client, f"客户{n}", region="上海")["id"] for n in range(5)]
    segment = tenant.client.post(
        "/api/v1/segments", json={"name": "上海", "rule": {"attribute": "region", "op": "eq", "value": "上海"}}
    ).json()
    assert segment["member_count"] == 5
    first = tenant.client.get(f"/api/v1/segments/{segment['id']}/members?limit=2").json()
    second = tenant.client.get(f"/api/v1/segments/{segment['id']}/members?limit=2&cursor={first['next_cursor']}").json()
    assert [c["id"] for c in first["items"] + second["items"]] == ids[:4]
    all_ids = tenant.client.get(f"/api/v1/segments/{segment['id']}/member-ids").json()
    assert all_ids == {"items": ids, "next_cursor": None}


def test_a_consultant_sees_only_their_own_members(tenant) -> None:  # type: ignore[no-untyped-def]
    staff_id, consultant = tenant.as_staff("guwen@a.cn", Role.consultant)
    mine = _contact(tenant.client, "我的", region="上海", owner_id=staff_id)
    _contact(tenant.client, "别人的", region="上海")
    rule = {"attribute": "region", "op": "eq", "value": "上海"}
    segment = tenant.client.post("/api/v1/segments", json={"name": "上海", "rule": rule}).json()
    assert consultant.post("/api/v1/segments/preview", json={"rule": rule}).json()["count"] == 1
    members = consultant.get(f"/api/v1/segments/{segment['id']}/member-ids").json()["items"]
    assert members == [mine["id"]]
    refused = consultant.post("/api/v1/segments", json={"name": "顾问的", "rule": rule})
    assert refused.status_code == 403


def test_rules_that_use_each_other_cannot_loop_or_be_deleted_from_under(tenant) -> None:  # type: ignore[no-untyped-def]
    a = tenant.client.post("/api/v1/segments", json={"name": "A", "rule": {"identity": "phone"}}).json()
    b = tenant.client.post("/api/v1/segments", json={"name": "B", "rule": {"segment": a["id"]}}).json()
    loop = tenant.client.patch(f"/api/v1/segments/{a['id']}", json={"rule": {"segment": b["id"]}})
    assert loop.status_code == 422
    assert "loop" in loop.json()["error"]["message"]
    itself = tenant.client.patch(f"/api/v1/segments/{a['id']}", json={"rule": {"segment": a["id"]}})
    assert itself.status_code == 422
    in_use = tenant.client.delete(f"/api/v1/segments/{a['id']}")
    assert in_use.status_code == 409
    assert "B" in in_use.json()["error"]["message"]
    assert tenant.client.delete(f"/api/v1/segments/{b['id']}").status_code == 204
    assert tenant.client.delete(f"/api/v1/segments/{a['id']}").status_code == 204


def test_names_are_unique_and_a_new_rule_refreshes_members(tenant) -> None:  # type: ignore[no-untyped-def]
    shanghai = _contact(tenant.client, "沪", region="上海")
    beijing = _contact(tenant.client, "京", region="北京")
    rule = {"attribute": "region", "op": "eq", "value": "上海"}
    segment = tenant.client.post("/api/v1/segments", json={"name": "地区", "rule": rule}).json()
    twice = tenant.client.post("/api/v1/segments", json={"name": "地区", "rule": rule})
    assert twice.status_code == 409
    changed = tenant.client.patch(
        f"/api/v1/segments/{segment['id']}", json={"rule": {"attribute": "region", "op": "eq", "value": "北京"}}
    ).json()
    assert changed["version"] == 2 and changed["member_count"] == 1
    ids = tenant.client.get(f"/api/v1/segments/{segment['id']}/member-ids").json()["items"]
    assert ids == [beijing["id"]] and shanghai["id"] not in ids
