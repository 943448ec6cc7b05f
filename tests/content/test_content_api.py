"""The library API: create, versions and who, validation per kind (422 with the field path), filters,
archive, content tags, and workspace isolation."""

from __future__ import annotations

from content_helpers import make_item, mount

from siyu.staff.models import Role


def test_create_edit_versions_and_who(tenant) -> None:
    mount(tenant.client.app)
    staff_id, staff = tenant.as_staff("editor@brand.cn", role=Role.admin, name="编辑")
    created = staff.post("/api/v1/content", json={"kind": "article", "title": "备考指南", "body": "先定目标。"})
    assert created.status_code == 201, created.text
    item = created.json()
    assert item["version"] == 1 and item["status"] == "draft" and item["created_by_staff_id"] == staff_id
    edited = tenant.client.patch(f"/api/v1/content/{item['id']}", json={"title": "备考指南（新版）"})
    assert edited.status_code == 200, edited.text
    assert edited.json()["version"] == 2 and edited.json()["updated_by_staff_id"] is None  # an API key
    assert edited.json()["created_by_staff_id"] == staff_id
    same = tenant.client.patch(f"/api/v1/content/{item['id']}", json={"title": "备考指南（新版）"})
    assert same.json()["version"] == 2  # nothing changed, no new version
    versions = tenant.client.get(f"/api/v1/content/{item['id']}/versions").json()
    assert [(v["version"], v["title"], v["staff_id"]) for v in versions] == [
        (2, "备考指南（新版）", None),
        (1, "备考指南", staff_id),
    ]
    archived = tenant.client.post(f"/api/v1/content/{item['id']}/archive").json()
    assert archived["status"] == "archived" and archived["version"] == 3


def test_validation_names_the_field(tenant) -> None:
    mount(tenant.client.app)
    client = tenant.client
    bad_script = client.post(
        "/api/v1/content",
        json={"kind": "script", "title": "太贵了", "data": {"question": "太贵了怎么办", "answers": ["好的", " "]}},
    )
    assert bad_script.status_code == 422
    assert bad_script.json()["error"]["details"][0]["field"] == "data.answers"
    too_many = client.post(
        "/api/v1/content",
        json={"kind": "script", "title": "x", "data": {"question": "q", "answers": [f"a{i}" for i in range(11)]}},
    )
    assert too_many.status_code == 422 and too_many.json()["error"]["details"][0]["field"] == "data.answers"
    no_question = client.post("/api/v1/content", json={"kind": "script", "title": "x", "data": {"answers": ["a"]}})
    assert [d["field"] for d in no_question.json()["error"]["details"]] == ["data.question"]
    material = client.post("/api/v1/content", json={"kind": "material", "title": "海报", "data": {"url": "ftp://x"}})
    assert {d["field"] for d in material.json()["error"]["details"]} == {"data.url", "data.mime"}
    article = client.post("/api/v1/content", json={"kind": "article", "title": "空文章"})
    assert article.status_code == 422 and article.json()["error"]["details"][0]["field"] == "body"
    mini = client.post(
        "/api/v1/content", json={"kind": "mini_program", "title": "小程序", "data": {"appid": "wx1234abcd99"}}
    )
    assert mini.status_code == 422 and mini.json()["error"]["details"][0]["field"] == "data"
    unknown = client.post(
        "/api/v1/content", json={"kind": "video", "title": "v", "data": {"url": "https://v.cn/1", "x": 1}}
    )
    assert unknown.status_code == 422 and unknown.json()["error"]["details"][0]["field"] == "data.x"
    ok = client.post(
        "/api/v1/content",
        json={
            "kind": "script",
            "title": "价格异议",
            "data": {"question": "太贵了", "answers": [" 我们有分期 ", "可以先试听"]},
        },
    )
    assert ok.status_code == 201 and ok.json()["data"]["answers"] == ["我们有分期", "可以先试听"]
    item_id = ok.json()["id"]
    bad_patch = client.patch(f"/api/v1/content/{item_id}", json={"data": {"question": "q", "answers": []}})
    assert bad_patch.status_code == 422 and bad_patch.json()["error"]["details"][0]["field"] == "data.answers"
    assert client.get(f"/api/v1/content/{item_id}").json()["version"] == 1


def test_tags_and_filters(tenant) -> None:
    mount(tenant.client.app)
    client = tenant.client
    group = client.post("/api/v1/content/tag-groups", json={"name": "主题"})
    assert group.status_code == 201, group.text
    exam = client.post(f"/api/v1/content/tag-groups/{group.json()['id']}/tags", json={"name": "考研"}).json()
    job = client.post(f"/api/v1/content/tag-groups/{group.json()['id']}/tags", json={"name": "求职"}).json()
    duplicate = client.post("/api/v1/content/tag-groups", json={"name": "主题"})
    assert duplicate.status_code == 409
    a = make_item(tenant, title="考研英语作文模板", tag_ids=[exam["id"]])
    b = make_item(
        tenant, kind="video", title="求职面试技巧", body=None, data={"url": "https://v.cn/1"}, tag_ids=[job["id"]]
    )
    c = make_item(tenant, title="考研政治", status="draft", tag_ids=[exam["id"], job["id"]])
    assert [t["name"] for t in a["tags"]] == ["考研"]

    def ids(**params: object) -> list[int]:
        response = client.get("/api/v1/content", params=params)
        assert response.status_code == 200, response.text
        return [i["id"] for i in response.json()["items"]]

    assert ids() == [c["id"], b["id"], a["id"]]
    assert ids(kind="video") == [b["id"]]
    assert ids(status="draft") == [c["id"]]
    assert ids(tag_id=exam["id"]) == [c["id"], a["id"]]
    assert ids(tag_id=[exam["id"], job["id"]]) == [c["id"]]
    assert ids(q="考研 模板") == [a["id"]]
    assert ids(q="100%") == []
    page = client.get("/api/v1/content", params={"limit": 2}).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = client.get("/api/v1/content", params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [i["id"] for i in rest["items"]] == [a["id"]] and rest["next_cursor"] is None
    retag = client.patch(f"/api/v1/content/{a['id']}", json={"tag_ids": [job["id"]]}).json()
    assert [t["name"] for t in retag["tags"]] == ["求职"] and retag["version"] == 1
    groups = client.get("/api/v1/content/tag-groups").json()
    assert [t["name"] for t in groups[0]["tags"]] == ["求职", "考研"]
    missing = client.post("/api/v1/content", json={"kind": "article", "title": "x", "body": "y", "tag_ids": [99999]})
    assert missing.status_code == 422 and missing.json()["error"]["details"][0]["field"] == "tag_ids"


def test_another_workspace_sees_nothing(make_tenant) -> None:
    a, b = make_tenant("A"), make_tenant("B")
    item = make_item(a)
    mount(b.client.app)
    assert b.client.get(f"/api/v1/content/{item['id']}").status_code == 404
    assert b.client.patch(f"/api/v1/content/{item['id']}", json={"title": "x"}).status_code == 404
    assert b.client.get(f"/api/v1/content/{item['id']}/portrait").status_code == 404
    assert b.client.post(f"/api/v1/content/{item['id']}/pushes", json={"group_id": 1}).status_code == 404
    assert b.client.get("/api/v1/content").json()["items"] == []
