"""GET /api/v1/scripts/search: ranking on Chinese and English questions, only published scripts, one
workspace's scripts only, the index rebuilt when scripts change."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from scripts_helpers import add_library, add_script, mount, set_status

from siyu.auth.scopes import Scope
from siyu.content.models import ContentStatus


def _search(tenant, q: str, limit: int = 5) -> list[dict]:  # type: ignore[no-untyped-def]
    response = tenant.client.get("/api/v1/scripts/search", params={"q": q, "limit": limit})
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def test_chinese_and_english_questions_find_their_scripts(app, db, tenant) -> None:  # type: ignore[no-untyped-def]
    mount(app)
    ids = add_library(db, tenant.workspace_id)
    top = _search(tenant, "你好，请问这个班报名要交多少钱啊？")
    assert top[0]["id"] == ids["edu-price"]
    assert "价格" in top[0]["matched_terms"] and top[0]["score"] > 0
    assert top[0]["answers"] and top[0]["question"]
    assert [h["score"] for h in top] == sorted((h["score"] for h in top), reverse=True)
    assert _search(tenant, "宝宝屁股红红的怎么处理")[0]["id"] == ids["baby-diaper-rash"]
    english = _search(tenant, "My order arrived damaged, what now?")
    assert english[0]["id"] == ids["en-retail-damaged"]
    assert _search(tenant, "ＷＨＥＮ　ｗｉｌｌ　ｍｙ　ｏｒｄｅｒ　ｓｈｉｐ？")[0]["id"] == ids["en-retail-shipping"]
    assert _search(tenant, "zzzz qqqq") == []


def test_only_published_scripts_and_the_index_follows_changes(app, db, tenant) -> None:  # type: ignore[no-untyped-def]
    mount(app)
    published = add_script(db, tenant.workspace_id, "退费政策", "报名后可以退费吗", ["7 天内全额退费。"])
    draft = add_script(db, tenant.workspace_id, "退费草稿", "退费怎么退", ["草稿"], ContentStatus.draft)
    assert [h["id"] for h in _search(tenant, "能退费吗")] == [published]
    set_status(db, draft, ContentStatus.published)
    assert {h["id"] for h in _search(tenant, "能退费吗")} == {published, draft}
    set_status(db, published, ContentStatus.archived)
    assert [h["id"] for h in _search(tenant, "能退费吗")] == [draft]


def test_another_workspace_sees_none_of_the_scripts(app, db, make_tenant) -> None:  # type: ignore[no-untyped-def]
    mount(app)
    a, b = make_tenant("品牌A"), make_tenant("品牌B")
    add_script(db, a.workspace_id, "包邮", "包邮吗", ["满 99 包邮。"])
    mine = add_script(db, b.workspace_id, "运费", "运费多少", ["8 元。"])
    assert _search(a, "包邮吗 运费")[0]["title"] == "包邮"
    assert [h["id"] for h in _search(b, "包邮吗 运费")] == [mine]
    assert b.client.get(f"/api/v1/scripts/{_search(a, '包邮')[0]['id']}/stats").status_code == 404


def test_an_empty_query_lists_the_most_used_and_scopes_are_checked(app, db, make_tenant) -> None:  # type: ignore[no-untyped-def]
    mount(app)
    tenant = make_tenant()
    first = add_script(db, tenant.workspace_id, "甲", "问题甲", ["回答"])
    second = add_script(db, tenant.workspace_id, "乙", "问题乙", ["回答"])
    assert tenant.client.post(f"/api/v1/scripts/{first}/uses", json={}).status_code == 201
    listed = _search(tenant, "")
    assert [h["id"] for h in listed] == [first, second] and listed[0]["score"] is None and listed[0]["uses"] == 1
    no_scope = make_tenant("无权限", scopes=frozenset({Scope.contacts_read}))
    assert no_scope.client.get("/api/v1/scripts/search", params={"q": "x"}).status_code == 403
