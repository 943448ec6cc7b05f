"""Console pages of the content library: list with filters, editor with preview and errors, the item's
portrait page, and the push dialog showing the links it made."""

from __future__ import annotations

from content_helpers import console_client, csrf, make_contact, make_item, mount


def test_library_editor_item_and_push(app, tenant) -> None:
    mount(app)
    client = console_client(app, tenant)
    empty = client.get("/console/content")
    assert empty.status_code == 200 and 'href="/console/content"' in empty.text
    token = csrf(client)
    bad = client.post(
        "/console/content", data={"csrf_token": token, "kind": "script", "title": "太贵了", "question": "太贵了"}
    )
    assert bad.status_code == 422 and 'data-field="data.answers"' in bad.text
    created = client.post(
        "/console/content",
        data={
            "csrf_token": token,
            "kind": "script",
            "title": "价格异议",
            "status": "published",
            "question": "太贵了怎么办",
            "answers": "我们有分期\n可以先试听",
        },
    )
    assert created.status_code == 303, created.text
    item_url = created.headers["location"]
    page = client.get(item_url)
    assert page.status_code == 200
    assert "可以先试听" in page.text and 'data-figure="views"' in page.text and 'id="push-form"' in page.text
    content_id = int(item_url.rsplit("/", 1)[1])
    listed = client.get("/console/content", params={"kind": "script", "q": "价格"})
    assert f'data-content="{content_id}"' in listed.text
    assert f'data-content="{content_id}"' not in client.get("/console/content", params={"kind": "video"}).text

    edit = client.get(f"/console/content/{content_id}/edit")
    assert edit.status_code == 200 and "我们有分期" in edit.text
    preview = client.post(
        "/console/content/preview",
        data={"csrf_token": token, "kind": "article", "title": "预览", "body": "# 标题\n\n**重点**"},
        headers={"HX-Request": "true"},
    )
    assert preview.status_code == 200 and "<h2>标题</h2>" in preview.text and "<strong>重点</strong>" in preview.text

    contact = make_contact(tenant, "张同学")
    found = client.get(f"/console/content/{content_id}/contacts", params={"q": "张"})
    assert f'value="{contact}"' in found.text
    pushed = client.post(
        f"/console/content/{content_id}/pushes", data={"csrf_token": token, "contact_id": str(contact)}
    )
    assert pushed.status_code == 200, pushed.text
    assert 'id="push-links"' in pushed.text and "/r/" in pushed.text and "张同学" in pushed.text
    nothing = client.post(f"/console/content/{content_id}/pushes", data={"csrf_token": token})
    assert nothing.status_code == 422


def test_english_and_item_of_a_link_kind(app, tenant) -> None:
    item = make_item(tenant, kind="product", body=None, data={"url": "https://shop.example.cn/p/1"})
    client = console_client(app, tenant)
    client.cookies.set("siyu_lang", "en")
    page = client.get(f"/console/content/{item['id']}")
    assert page.status_code == 200 and "Content portrait" in page.text and "https://shop.example.cn/p/1" in page.text
    zh = console_client(app, tenant, email="zh@brand.cn")
    assert "内容画像" in zh.get(f"/console/content/{item['id']}").text
    assert 'data-version="1"' in page.text and "<td data-by>API key</td>" in page.text  # made through the API


def test_the_editor_opens_blank_for_every_kind(app, tenant) -> None:
    client = console_client(app, tenant)
    for kind in ("article", "script", "case", "material", "product", "mini_program", "video"):
        page = client.get("/console/content/new", params={"kind": kind})
        assert page.status_code == 200, (kind, page.text[:500])
        assert 'id="content-form"' in page.text and f'name="kind" value="{kind}"' in page.text
