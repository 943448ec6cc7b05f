"""Console pages through the ASGI app: sign-in, redirects, CSRF, roles, and each page's work."""

from __future__ import annotations

import re

from console_helpers import PASSWORD, csrf_of

from siyu.staff.models import Role


def test_root_and_console_redirect_to_sign_in_when_signed_out(anonymous) -> None:
    root = anonymous.get("/", follow_redirects=False)
    assert root.status_code == 307 and root.headers["location"] == "/console"
    for path in ("/console", "/console/contacts", "/console/tags", "/console/contacts/1"):
        response = anonymous.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/console/sign-in"), path
    deep = anonymous.get("/console/tags?x=1", follow_redirects=False)
    assert deep.headers["location"] == "/console/sign-in?next=%2Fconsole%2Ftags%3Fx%3D1"
    htmx = anonymous.get("/console/contacts", headers={"HX-Request": "true"}, follow_redirects=False)
    assert htmx.headers["HX-Redirect"].startswith("/console/sign-in")
    assert anonymous.get("/docs").status_code == 200
    assert anonymous.get("/console/static/vendor/htmx-2.0.4.min.js").status_code == 200


def test_an_api_key_does_not_open_the_console(app, tenant) -> None:
    from fastapi.testclient import TestClient

    client = TestClient(app, cookies={"siyu_session": tenant.key}, follow_redirects=False)
    assert client.get("/console/contacts").status_code == 303


def test_sign_in_wrong_password_locks_out_and_sign_out_ends_the_session(app, tenant, console_staff, settings) -> None:
    from fastapi.testclient import TestClient

    staff = console_staff("lock@brand.cn")
    assert staff.client.get("/console/contacts").status_code == 200
    out = staff.post("/console/sign-out", {})
    assert out.status_code == 303
    assert staff.client.get("/console/contacts").status_code == 303
    client = TestClient(app, follow_redirects=False)
    for _ in range(settings.sign_in_max_failures):
        token = csrf_of(client.get("/console/sign-in").text)
        wrong = client.post(
            "/console/sign-in", data={"email": "lock@brand.cn", "password": "nope", "csrf_token": token}
        )
        assert wrong.status_code == 401
        assert "wrong" in wrong.text.lower() or "错误" in wrong.text
    token = csrf_of(client.get("/console/sign-in").text)
    locked = client.post("/console/sign-in", data={"email": "lock@brand.cn", "password": PASSWORD, "csrf_token": token})
    assert locked.status_code == 401
    assert "locked" in locked.text or "锁定" in locked.text


def test_every_console_post_needs_the_csrf_token(console_staff) -> None:
    staff = console_staff()
    missing = staff.client.post("/console/contacts/bulk", data={"action": "add_tag"})
    assert missing.status_code == 403
    assert "CSRF" in missing.text and "text/html" in missing.headers["content-type"]
    wrong = staff.client.post("/console/tags/groups", data={"name": "x", "csrf_token": "0" * 64})
    assert wrong.status_code == 403 and "CSRF" in wrong.text
    header = staff.client.post(
        "/console/tags/groups", data={"name": "经由请求头"}, headers={"X-CSRF-Token": staff.csrf()}
    )
    assert header.status_code == 303
    anonymous_sign_in = staff.client.post("/console/sign-out")
    assert anonymous_sign_in.status_code == 403
    body = staff.client.get("/console/contacts").text
    assert re.search(r'hx-headers=\'\{"X-CSRF-Token": "[0-9a-f]{64}"\}\'', body)


def test_consultant_sees_only_their_own_contacts_on_console_pages(tenant, console_staff) -> None:
    consultant = console_staff("c@brand.cn", role=Role.consultant, name="顾问")
    mine = tenant.client.post("/api/v1/contacts", json={"name": "我的客户", "owner_id": consultant.staff_id}).json()
    other = tenant.client.post("/api/v1/contacts", json={"name": "别人的客户"}).json()
    page = consultant.client.get("/console/contacts").text
    assert "我的客户" in page and "别人的客户" not in page
    assert "别人的客户" not in consultant.client.get("/console/contacts", params={"q": "别人"}).text
    assert consultant.client.get(f"/console/contacts/{mine['id']}").status_code == 200
    assert consultant.client.get(f"/console/contacts/{other['id']}").status_code == 404
    assert 'value="owner"' not in page  # no hand-over for consultants
    token = consultant.csrf()
    bulk = consultant.client.post(
        "/console/contacts/bulk",
        data={"csrf_token": token, "scope": "all", "action": "owner", "owner_id": str(consultant.staff_id)},
    )
    assert bulk.status_code == 403
    note = consultant.client.post(f"/console/contacts/{other['id']}/notes", data={"csrf_token": token, "body": "x"})
    assert note.status_code == 404
    tags = consultant.client.get("/console/tags")
    assert tags.status_code == 200 and "/console/tags/groups" not in tags.text  # read-only for consultants
    assert consultant.client.post("/console/tags/groups", data={"csrf_token": token, "name": "x"}).status_code == 403


def test_list_search_filters_and_bulk_actions(tenant, console_staff) -> None:
    staff = console_staff()
    heir = console_staff("heir@brand.cn", role=Role.consultant, name="接手人")
    c = tenant.client
    group = c.post("/api/v1/tag-groups", json={"name": "兴趣"}).json()
    tag = c.post("/api/v1/tags", json={"group_id": group["id"], "name": "考研"}).json()
    ids = [
        c.post(
            "/api/v1/contacts",
            json={
                "name": f"王{i}",
                "source_channel": "douyin" if i < 3 else "zhihu",
                "identities": [{"type": "phone", "value": f"1380013800{i}"}],
            },
        ).json()["id"]
        for i in range(5)
    ]
    page = staff.client.get("/console/contacts", params={"q": "138 0013 8002"}).text
    assert "王2" in page and "王1" not in page
    douyin = staff.client.get("/console/contacts", params={"source_channel": "douyin", "sort": "oldest"}).text
    assert douyin.index("王0") < douyin.index("王2") and "王3" not in douyin
    assert "/api/v1/contacts/export?format=xlsx&amp;source_channel=douyin" in douyin
    bad = staff.client.get("/console/contacts", params={"created_from": "yesterday"})
    assert bad.status_code == 200 and "created_from" in bad.text
    token = staff.csrf()
    picked = staff.client.post(
        "/console/contacts/bulk",
        data={
            "csrf_token": token,
            "scope": "selected",
            "action": "add_tag",
            "tag_id": str(tag["id"]),
            "contact_id": [str(ids[0]), str(ids[4])],
            "filter_query": "",
        },
    )
    assert picked.status_code == 303
    assert {x["id"] for x in c.get("/api/v1/contacts", params={"tag": tag["id"]}).json()["items"]} == {ids[0], ids[4]}
    everyone = staff.client.post(
        "/console/contacts/bulk",
        data={
            "csrf_token": token,
            "scope": "all",
            "action": "owner",
            "owner_id": str(heir.staff_id),
            "filter_query": "source_channel=douyin",
            "reason": "离职继承",
        },
    )
    assert everyone.status_code == 303 and everyone.headers["location"] == "/console/contacts?source_channel=douyin"
    owned = c.get("/api/v1/contacts", params={"owner_id": heir.staff_id}).json()["items"]
    assert sorted(x["id"] for x in owned) == sorted(ids[:3])
    notice = staff.client.get(everyone.headers["location"]).text
    assert "3" in notice and ("Owner changed" in notice or "负责人" in notice)


def test_contact_page_profile_tags_notes_and_timeline(tenant, console_staff, clock) -> None:
    staff = console_staff()
    c = tenant.client
    c.post("/api/v1/attributes", json={"key": "exam_year", "label": "报考年份", "type": "number"})
    group = c.post("/api/v1/tag-groups", json={"name": "兴趣"}).json()
    tag = c.post("/api/v1/tags", json={"group_id": group["id"], "name": "考研"}).json()
    contact = c.post(
        "/api/v1/contacts",
        json={"name": "韩梅梅", "birthday": "1999-11-26", "identities": [{"type": "phone", "value": "13900139000"}]},
    ).json()
    url = f"/console/contacts/{contact['id']}"
    page = staff.client.get(url)
    assert page.status_code == 200 and "韩梅梅" in page.text and "+8613900139000" in page.text
    assert "🎂" in page.text  # 26 Nov is 3 days after the frozen clock's 23 Nov
    token = csrf_of(page.text)
    bad = staff.client.post(url + "/profile", data={"csrf_token": token, "name": "韩梅梅", "attr.exam_year": "明年"})
    assert bad.status_code == 422 and "is not a number" in bad.text
    bad_date = staff.client.post(url + "/profile", data={"csrf_token": token, "birthday": "1999-02-30"})
    assert bad_date.status_code == 422 and "birthday" in bad_date.text
    good = staff.client.post(
        url + "/profile", data={"csrf_token": token, "name": "韩梅梅", "attr.exam_year": "2027", "region": "北京"}
    )
    assert good.status_code == 303
    assert c.get(f"/api/v1/contacts/{contact['id']}").json()["attributes"] == {"exam_year": 2027}
    tagged = staff.client.post(
        url + "/tags", data={"csrf_token": token, "add": str(tag["id"])}, headers={"HX-Request": "true"}
    )
    assert tagged.status_code == 200 and 'id="live"' in tagged.text and "考研" in tagged.text
    noted = staff.client.post(
        url + "/notes", data={"csrf_token": token, "body": "问了学费 <b>"}, headers={"HX-Request": "true"}
    )
    assert noted.status_code == 200 and "问了学费 &lt;b&gt;" in noted.text
    full = staff.client.get(url).text
    assert full.count('class="entry') >= 2  # the note and the tag change
    empty = staff.client.post(url + "/notes", data={"csrf_token": token, "body": "  "})
    assert empty.status_code == 422
    assert staff.client.get("/console/contacts/999999").status_code == 404


def test_tags_page_create_rename_merge_and_delete_with_confirmation(tenant, console_staff) -> None:
    staff = console_staff()
    c = tenant.client
    token = staff.csrf("/console/tags")
    assert staff.client.post("/console/tags/groups", data={"csrf_token": token, "name": "意向"}).status_code == 303
    group = c.get("/api/v1/tag-groups").json()[0]
    for name in ("A级", "A+", "B级"):
        assert (
            staff.client.post(
                "/console/tags", data={"csrf_token": token, "group_id": str(group["id"]), "name": name}
            ).status_code
            == 303
        )
    tags = {t["name"]: t for t in c.get("/api/v1/tags").json()}
    contact = c.post("/api/v1/contacts", json={"name": "x"}).json()
    c.post(f"/api/v1/contacts/{contact['id']}/tags", json={"add": [tags["A+"]["id"]]})
    page = staff.client.get("/console/tags").text
    assert "A级" in page and "data-chart" in page and "echarts-5.6.0.min.js" in page
    renamed = staff.client.post(
        f"/console/tags/{tags['B级']['id']}/rename", data={"csrf_token": token, "name": "B-弱意向"}
    )
    assert renamed.status_code == 303
    dup = staff.client.post("/console/tags", data={"csrf_token": token, "group_id": str(group["id"]), "name": "A级"})
    assert dup.status_code == 409 and "already has a tag" in dup.text
    merged = staff.client.post(
        f"/console/tags/{tags['A+']['id']}/merge", data={"csrf_token": token, "into_tag_id": str(tags["A级"]["id"])}
    )
    assert merged.status_code == 303
    assert [t["name"] for t in c.get(f"/api/v1/contacts/{contact['id']}").json()["tags"]] == ["A级"]
    ask = staff.client.post(f"/console/tags/{tags['A级']['id']}/delete", data={"csrf_token": token})
    assert ask.status_code == 200 and 'name="confirm"' in ask.text
    assert "A级" in {t["name"] for t in c.get("/api/v1/tags").json()}
    done = staff.client.post(f"/console/tags/{tags['A级']['id']}/delete", data={"csrf_token": token, "confirm": "yes"})
    assert done.status_code == 303
    history = c.get(f"/api/v1/contacts/{contact['id']}/tag-history").json()
    assert history[0]["action"] == "removed" and "deleted" in history[0]["reason"]


def test_language_from_browser_and_switch(app, console_staff) -> None:
    staff = console_staff()
    zh = staff.client.get("/console/contacts", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}).text
    en = staff.client.get("/console/contacts", headers={"Accept-Language": "en-US,en;q=0.9"}).text
    assert '<html lang="zh-CN">' in zh and "客户" in zh
    assert '<html lang="en">' in en and "Contacts" in en and "客户</a>" not in en
    token = csrf_of(en)
    switched = staff.client.post("/console/language", data={"csrf_token": token, "lang": "en", "next": "/console/tags"})
    assert switched.status_code == 303 and switched.headers["location"] == "/console/tags"
    after = staff.client.get("/console/contacts", headers={"Accept-Language": "zh-CN"}).text
    assert '<html lang="en">' in after
    evil = staff.client.post(
        "/console/language", data={"csrf_token": token, "lang": "en", "next": "https://evil.example"}
    )
    assert evil.headers["location"] == "/console"
    assert staff.client.post("/console/language", data={"csrf_token": token, "lang": "fr"}).status_code == 422
