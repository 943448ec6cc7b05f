"""The /api/v1/smart-tags endpoints: CRUD, and validation errors that name what was wrong."""

from __future__ import annotations

from typing import Any

import pytest
from smarttag_helpers import make_smart_tag, make_tag, mounted

from siyu.auth.scopes import Scope

SHANGHAI = {"attribute": "region", "op": "eq", "value": "上海"}


def _error(response: Any) -> tuple[str, list[dict[str, Any]]]:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    return error["message"], error.get("details", [])


def test_create_read_update_delete(tenant) -> None:
    c = mounted(tenant.client)
    tag_id = make_tag(c, "asked price")
    created = make_smart_tag(
        c, name="问价", tag_id=tag_id, kind="keywords", keywords=["  多少钱 ", "How  much", "how much"]
    )
    assert created["keywords"] == ["多少钱", "How much"]  # trimmed, blanks collapsed, duplicates dropped
    assert created["rule"] is None and created["enabled"] is True and created["added_total"] == 0
    assert c.get("/api/v1/smart-tags").json()[0]["id"] == created["id"]
    url = f"/api/v1/smart-tags/{created['id']}"
    changed = c.patch(url, json={"keywords": ["价格"], "enabled": False, "name": "价格"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["keywords"] == ["价格"] and changed.json()["enabled"] is False
    rule = make_smart_tag(c, name="上海", tag_id=tag_id, kind="rule", rule=SHANGHAI, remove_when_unmatched=True)
    assert rule["rule"] == SHANGHAI and rule["keywords"] is None
    duplicate = c.post("/api/v1/smart-tags", json={"name": "上海", "tag_id": tag_id, "kind": "rule", "rule": SHANGHAI})
    assert duplicate.status_code == 409 and "上海" in duplicate.json()["error"]["message"]
    assert c.delete(url).status_code == 204
    assert c.get(url).status_code == 404
    assert [r["name"] for r in c.get("/api/v1/smart-tags").json()] == ["上海"]


def test_deleting_the_tag_deletes_its_smart_tags(tenant) -> None:
    c = mounted(tenant.client)
    tag_id = make_tag(c, "临时")
    make_smart_tag(c, name="临时", tag_id=tag_id, kind="keywords", keywords=["临时"])
    assert c.delete(f"/api/v1/tags/{tag_id}").status_code == 204
    assert c.get("/api/v1/smart-tags").json() == []


def test_a_bad_rule_is_refused_with_the_path_of_the_bad_node(tenant) -> None:
    c = mounted(tenant.client)
    tag_id = make_tag(c, "上海客户")
    body = {
        "name": "坏规则",
        "tag_id": tag_id,
        "kind": "rule",
        "rule": {"and": [SHANGHAI, {"attribute": "shoe_size", "op": "eq", "value": "42"}]},
    }
    message, details = _error(c.post("/api/v1/smart-tags", json=body))
    assert details[0]["path"] == "$.and[1].attribute" and "shoe_size" in message
    own = {**body, "rule": {"or": [SHANGHAI, {"not": {"tags": [tag_id]}}]}}
    message, details = _error(c.post("/api/v1/smart-tags", json=own))
    assert details[0]["path"] == "$.or[1].not.tags[0]" and "flip" in message
    saved = make_smart_tag(c, **{**body, "rule": SHANGHAI})
    message, details = _error(c.patch(f"/api/v1/smart-tags/{saved['id']}", json={"rule": {"tags": []}}))
    assert details[0]["path"] == "$.tags"


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"kind": "keywords", "keywords": []}, "keywords", "1 to 50"),
        ({"kind": "keywords"}, "keywords", "1 to 50"),
        ({"kind": "keywords", "keywords": [f"词{n}" for n in range(51)]}, "keywords", "at most 50"),
        ({"kind": "keywords", "keywords": ["价格", "   "]}, "keywords[1]", "blank"),
        ({"kind": "keywords", "keywords": ["长" * 51]}, "keywords[0]", "at most 50"),
        ({"kind": "keywords", "keywords": ["价格", "？！"]}, "keywords[1]", "no letters"),
        ({"kind": "keywords", "keywords": ["价格"], "rule": SHANGHAI}, "rule", "send keywords"),
        (
            {"kind": "keywords", "keywords": ["价格"], "remove_when_unmatched": True},
            "remove_when_unmatched",
            "rule-based",
        ),
        ({"kind": "rule"}, "rule", "give a segment rule"),
        ({"kind": "rule", "rule": SHANGHAI, "keywords": ["价格"]}, "keywords", "send rule"),
        ({"kind": "rule", "rule": SHANGHAI, "tag_id": 999_999}, "tag_id", "no tag 999999"),
    ],
)
def test_invalid_smart_tags_name_the_field(tenant, body: dict[str, Any], field: str, words: str) -> None:
    c = mounted(tenant.client)
    tag_id = make_tag(c, "标签")
    message, details = _error(c.post("/api/v1/smart-tags", json={"name": "x", "tag_id": tag_id, **body}))
    assert details[0]["field"] == field and words in message, message


def test_patch_keeps_kinds_apart(tenant) -> None:
    c = mounted(tenant.client)
    tag_id = make_tag(c, "标签")
    rule = make_smart_tag(c, name="上海", tag_id=tag_id, kind="rule", rule=SHANGHAI)
    keywords = make_smart_tag(c, name="问价", tag_id=tag_id, kind="keywords", keywords=["价格"])
    _, details = _error(c.patch(f"/api/v1/smart-tags/{rule['id']}", json={"keywords": ["价格"]}))
    assert details[0]["field"] == "keywords"
    _, details = _error(c.patch(f"/api/v1/smart-tags/{keywords['id']}", json={"rule": SHANGHAI}))
    assert details[0]["field"] == "rule"
    _, details = _error(c.patch(f"/api/v1/smart-tags/{keywords['id']}", json={"keywords": ["  "]}))
    assert details[0]["field"] == "keywords[0]"


def test_another_workspace_sees_and_changes_nothing(make_tenant) -> None:
    a, b = make_tenant("A"), make_tenant("B")
    ca, cb = mounted(a.client), mounted(b.client)
    b_tag = make_tag(cb, "B的标签")
    b_rule = make_smart_tag(cb, name="B规则", tag_id=b_tag, kind="rule", rule=SHANGHAI)
    url = f"/api/v1/smart-tags/{b_rule['id']}"
    assert ca.get("/api/v1/smart-tags").json() == []
    assert ca.get(url).status_code == 404
    assert ca.patch(url, json={"name": "hijacked"}).status_code == 404
    assert ca.post(f"{url}/run").status_code == 404
    assert ca.delete(url).status_code == 404
    # A cannot point its own smart tag at B's tag, nor at B's tag inside a rule
    _, details = _error(
        ca.post("/api/v1/smart-tags", json={"name": "x", "tag_id": b_tag, "kind": "rule", "rule": SHANGHAI})
    )
    assert details[0]["field"] == "tag_id"
    a_tag = make_tag(ca, "A的标签")
    _, details = _error(
        ca.post("/api/v1/smart-tags", json={"name": "x", "tag_id": a_tag, "kind": "rule", "rule": {"tags": [b_tag]}})
    )
    assert details[0]["path"] == "$.tags[0]"
    assert cb.get(url).json()["name"] == "B规则"


def test_scopes(make_tenant) -> None:
    reader = make_tenant("R", scopes=frozenset({Scope.tags_read}))
    c = mounted(reader.client)
    assert c.get("/api/v1/smart-tags").status_code == 200
    assert c.post("/api/v1/smart-tags/keywords/test", json={"text": "多少钱"}).status_code == 200
    denied = c.post("/api/v1/smart-tags", json={"name": "x", "tag_id": 1, "kind": "keywords", "keywords": ["价格"]})
    assert denied.status_code == 403
