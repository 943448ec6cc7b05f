"""The public link page /c/{slug}: scan counted, form, phone check, attribution, paused, CSRF, limits."""

from __future__ import annotations

import re

from channel_helpers import add_staff, make_channel, make_code
from fastapi.testclient import TestClient


def _token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def test_get_counts_a_scan_and_post_attributes(tenant, anonymous: TestClient, clock) -> None:
    staff = add_staff(tenant, "王老师")
    code = make_code(
        tenant,
        make_channel(tenant),
        [{"staff_id": staff}],
        welcome_text="你好，我是王老师<b>",
        welcome_link_title="试听课",
        welcome_link_url="https://example.cn/trial",
    )
    page = anonymous.get(f"/c/{code['slug']}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "手机号" in page.text and 'lang="zh-CN"' in page.text
    done = anonymous.post(f"/c/{code['slug']}", data={"value": "138 0013 8000", "csrf_token": _token(page.text)})
    assert done.status_code == 200, done.text
    assert "王老师" in done.text and "你好，我是王老师&lt;b&gt;" in done.text  # escaped
    assert 'href="https://example.cn/trial"' in done.text and "试听课" in done.text
    contacts = tenant.client.get("/api/v1/contacts").json()["items"]
    assert [i["value"] for i in contacts[0]["identities"]] == ["+8613800138000"]
    assert contacts[0]["owner_id"] == staff
    stats = tenant.client.get(f"/api/v1/channel-codes/{code['id']}/stats").json()
    assert stats["scans"] == 1 and stats["adds"] == 1


def test_invalid_phone_shows_an_error_in_the_page(tenant, anonymous: TestClient) -> None:
    code = make_code(tenant, make_channel(tenant), [{"staff_id": add_staff(tenant, "甲")}])
    page = anonymous.get(f"/c/{code['slug']}")
    bad = anonymous.post(f"/c/{code['slug']}", data={"value": "12345", "csrf_token": _token(page.text)})
    assert bad.status_code == 422
    assert "手机号格式不正确" in bad.text and 'value="12345"' in bad.text
    english = anonymous.post(
        f"/c/{code['slug']}",
        data={"value": "12345", "csrf_token": _token(page.text)},
        headers={"Accept-Language": "en-US,en;q=0.9"},
    )
    assert "not a valid mobile number" in english.text
    assert tenant.client.get("/api/v1/contacts").json()["items"] == []


def test_platform_id_field(tenant, anonymous: TestClient) -> None:
    code = make_code(
        tenant, make_channel(tenant), [{"staff_id": add_staff(tenant, "甲")}], identity_type="douyin_open_id"
    )
    page = anonymous.get(f"/c/{code['slug']}")
    assert "抖音号" in page.text
    done = anonymous.post(f"/c/{code['slug']}", data={"value": "dy_abc123", "csrf_token": _token(page.text)})
    assert done.status_code == 200
    (contact,) = tenant.client.get("/api/v1/contacts").json()["items"]
    assert contact["identities"][0] == {**contact["identities"][0], "type": "douyin_open_id", "value": "dy_abc123"}


def test_paused_unknown_and_forged_token(tenant, anonymous: TestClient) -> None:
    code = make_code(tenant, make_channel(tenant), [{"staff_id": add_staff(tenant, "甲")}])
    page = anonymous.get(f"/c/{code['slug']}")
    token = _token(page.text)
    forged = anonymous.post(f"/c/{code['slug']}", data={"value": "13800138000", "csrf_token": "1." + "0" * 32})
    assert forged.status_code == 403 and "页面已过期" in forged.text
    other = make_code(tenant, make_channel(tenant, "其他", "weibo"), [{"staff_id": add_staff(tenant, "乙")}])
    # A token is good for its own code only.
    assert anonymous.post(f"/c/{other['slug']}", data={"value": "13800138000", "csrf_token": token}).status_code == 403
    tenant.client.post(f"/api/v1/channel-codes/{code['id']}/pause")
    paused = anonymous.get(f"/c/{code['slug']}")
    assert paused.status_code == 200 and "已暂停" in paused.text and "<form" not in paused.text
    refused = anonymous.post(f"/c/{code['slug']}", data={"value": "13800138000", "csrf_token": token})
    assert refused.status_code == 409 and "已暂停" in refused.text
    assert anonymous.get("/c/not-a-code").status_code == 404
    assert tenant.client.get("/api/v1/contacts").json()["items"] == []


def test_posts_per_client_are_limited(tenant, anonymous: TestClient) -> None:
    code = make_code(tenant, make_channel(tenant), [{"staff_id": add_staff(tenant, "甲")}])
    token = _token(anonymous.get(f"/c/{code['slug']}").text)
    answers = [
        anonymous.post(f"/c/{code['slug']}", data={"value": "bad", "csrf_token": token}).status_code for _ in range(21)
    ]
    assert answers[:20] == [422] * 20 and answers[20] == 429
