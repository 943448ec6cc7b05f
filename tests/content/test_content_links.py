"""Tracked links: push -> link -> one view for the right contact and push; bots, previews and
reloads within the minute do not count; tampered tokens are 404; group links; archived items."""

from __future__ import annotations

import pytest
from content_helpers import BROWSER, make_contact, make_item, push
from fastapi.testclient import TestClient

from siyu.content.links import is_person


def _views(tenant, contact_id: int) -> list[dict]:  # type: ignore[no-untyped-def]
    response = tenant.client.get("/api/v1/events", params={"contact_id": contact_id, "type": "content.viewed"})
    assert response.status_code == 200, response.text
    return list(response.json())


def _open(client: TestClient, url: str, **headers: str):  # type: ignore[no-untyped-def]
    return client.get(url, headers={"User-Agent": BROWSER, **headers}, follow_redirects=False)


def test_push_link_records_one_view_for_the_right_contact(tenant, anonymous: TestClient, clock) -> None:
    item = make_item(tenant, kind="video", body=None, data={"url": "https://v.example.cn/1"})
    first, second = make_contact(tenant, "甲"), make_contact(tenant, "乙")
    created = push(tenant, item["id"], contact_ids=[first, second], source="broadcast:7")
    assert created["recipient_count"] == 2 and created["source"] == "broadcast:7"
    links = {link["contact_id"]: link for link in created["links"]}
    assert set(links) == {first, second} and links[first]["token"] != links[second]["token"]
    assert links[first]["url"].endswith(f"/r/{links[first]['token']}")

    opened = _open(anonymous, f"/r/{links[first]['token']}")
    assert opened.status_code == 302 and opened.headers["location"] == "https://v.example.cn/1"
    assert _open(anonymous, f"/r/{links[first]['token']}").status_code == 302  # a reload: same minute
    views = _views(tenant, first)
    assert len(views) == 1
    assert views[0]["properties"] == {"content_id": str(item["id"]), "push_id": created["id"], "channel": "wecom"}
    assert _views(tenant, second) == []
    clock.advance(minutes=2)
    _open(anonymous, f"/r/{links[first]['token']}")
    assert len(_views(tenant, first)) == 2


@pytest.mark.parametrize(
    "headers",
    [
        {"User-Agent": ""},
        {"User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"},
        {"User-Agent": "Mozilla/5.0 (compatible; Baiduspider/2.0)"},
        {"User-Agent": "facebookexternalhit/1.1"},
        {"User-Agent": "Mozilla/5.0 WeChatShareExtension/1.0"},
        {"User-Agent": "Mozilla/5.0 (Windows NT 10.0) wxwork/4.1 link-preview"},
        {"User-Agent": "curl/8.5.0"},
        {"User-Agent": "python-requests/2.31"},
        {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/120.0"},
        {"User-Agent": BROWSER, "Purpose": "prefetch"},
        {"User-Agent": BROWSER, "Sec-Purpose": "prefetch;prerender"},
        {"User-Agent": BROWSER, "X-Purpose": "preview"},
    ],
)
def test_bots_and_previews_do_not_count(tenant, anonymous: TestClient, headers: dict[str, str]) -> None:
    item = make_item(tenant)
    contact = make_contact(tenant)
    token = push(tenant, item["id"], contact_ids=[contact])["links"][0]["token"]
    response = anonymous.get(f"/r/{token}", headers=headers, follow_redirects=False)
    assert response.status_code == 302  # the fetcher still gets where the link goes
    assert _views(tenant, contact) == []


def test_head_does_not_count(tenant, anonymous: TestClient) -> None:
    item = make_item(tenant)
    contact = make_contact(tenant)
    token = push(tenant, item["id"], contact_ids=[contact])["links"][0]["token"]
    assert anonymous.head(f"/r/{token}", headers={"User-Agent": BROWSER}, follow_redirects=False).status_code == 302
    assert _views(tenant, contact) == []


def test_is_person_rule() -> None:
    from starlette.requests import Request

    def request(method: str = "GET", **headers: str) -> Request:
        raw = [(k.lower().replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
        return Request({"type": "http", "method": method, "headers": raw, "path": "/r/x", "query_string": b""})

    assert is_person(request(user_agent=BROWSER))
    assert is_person(request(user_agent="Mozilla/5.0 (Linux; Android 14) wxwork/4.1.22 MicroMessenger/7.0.1"))
    assert not is_person(request("HEAD", user_agent=BROWSER))
    assert not is_person(request())
    assert not is_person(request(user_agent="Mozilla/5.0 Bytespider"))


def test_tampered_or_unknown_token_is_404(tenant, anonymous: TestClient) -> None:
    item = make_item(tenant)
    contact = make_contact(tenant)
    token = push(tenant, item["id"], contact_ids=[contact])["links"][0]["token"]
    push_part, contact_part, mac = token.split(".")
    other_contact = format(contact + 1, "x")
    for bad in (
        f"{push_part}.{other_contact}.{mac}",  # another contact, same signature
        f"{push_part}.{contact_part}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}",
        f"{push_part}.{contact_part}",
        "nothing",
    ):
        response = _open(anonymous, f"/r/{bad}")
        assert response.status_code == 404, bad
        assert "链接不存在" in response.text
    assert _views(tenant, contact) == []


def test_article_renders_in_siyu_and_the_page_does_not_count(tenant, anonymous: TestClient, clock) -> None:
    item = make_item(tenant, body="# 第一步\n\n先定目标 <script>x</script>")
    contact = make_contact(tenant)
    token = push(tenant, item["id"], contact_ids=[contact])["links"][0]["token"]
    opened = _open(anonymous, f"/r/{token}")
    assert opened.status_code == 302 and opened.headers["location"] == f"/r/{token}/view"
    page = _open(anonymous, f"/r/{token}/view")
    assert page.status_code == 200 and "<h2>第一步</h2>" in page.text and "&lt;script&gt;" in page.text
    clock.advance(minutes=5)
    _open(anonymous, f"/r/{token}/view")
    assert len(_views(tenant, contact)) == 1


def test_group_link_counts_for_the_group_unless_the_viewer_is_known(tenant, app, clock) -> None:
    item = make_item(tenant)
    contact = make_contact(tenant)
    group = push(tenant, item["id"], group_id=42, channel="group")
    assert group["recipient_count"] == 0 and [(k["group_id"], k["contact_id"]) for k in group["links"]] == [(42, None)]
    stranger = TestClient(app)
    _open(stranger, f"/r/{group['links'][0]['token']}")
    portrait = tenant.client.get(f"/api/v1/content/{item['id']}/portrait").json()
    assert portrait["views"] == 1 and portrait["anonymous_group_views"] == 1 and portrait["unique_viewers"] == 0
    # The same browser opened a personal link before: the group link counts for that person.
    known = TestClient(app)
    personal = push(tenant, item["id"], contact_ids=[contact])["links"][0]["token"]
    _open(known, f"/r/{personal}")
    clock.advance(minutes=1)
    _open(known, f"/r/{group['links'][0]['token']}")
    views = _views(tenant, contact)
    assert len(views) == 2 and views[-1]["properties"]["group_id"] == "42"  # in sequence order
    assert views[-1]["properties"]["push_id"] == group["id"]


def test_archived_item_is_gone_and_drafts_cannot_be_pushed(tenant, anonymous: TestClient) -> None:
    item = make_item(tenant)
    contact = make_contact(tenant)
    token = push(tenant, item["id"], contact_ids=[contact])["links"][0]["token"]
    tenant.client.post(f"/api/v1/content/{item['id']}/archive")
    assert _open(anonymous, f"/r/{token}").status_code == 410
    assert _views(tenant, contact) == []
    draft = make_item(tenant, status="draft")
    refused = tenant.client.post(f"/api/v1/content/{draft['id']}/pushes", json={"contact_ids": [contact]})
    assert refused.status_code == 409


def test_push_body_is_checked(tenant, make_tenant) -> None:
    item = make_item(tenant)
    both = tenant.client.post(f"/api/v1/content/{item['id']}/pushes", json={"contact_ids": [1], "group_id": 2})
    assert both.status_code == 422
    other = make_tenant("B")
    foreign = make_contact(other)
    refused = tenant.client.post(f"/api/v1/content/{item['id']}/pushes", json={"contact_ids": [foreign]})
    assert refused.status_code == 422 and refused.json()["error"]["details"][0]["field"] == "contact_ids"
    again = tenant.client.get(f"/api/v1/content/{item['id']}/pushes").json()
    assert again == []
