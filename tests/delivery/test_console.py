"""Console /console/delivery: the log with its filters and reasons, the settings form with its errors, the
staff limits, in English and in Chinese; and deliveries on the contact's timeline."""

from __future__ import annotations

import pytest
from tests.console.console_helpers import PASSWORD, csrf_of, sign_in_client

from siyu.staff.models import Role


@pytest.fixture(autouse=True)
def _frozen(clock):  # type: ignore[no-untyped-def]
    """10:00 in Shanghai: outside quiet hours whenever the suite runs."""
    return clock


def _console(app, tenant, email: str = "op@brand.cn", role: Role = Role.operator):  # type: ignore[no-untyped-def]
    created = tenant.client.post(
        "/api/v1/staff", json={"email": email, "name": "运营小李", "role": role.value, "password": PASSWORD}
    )
    assert created.status_code == 201, created.text
    return created.json()["id"], sign_in_client(app, email)


def _contact(tenant, **extra):  # type: ignore[no-untyped-def]
    return tenant.client.post("/api/v1/contacts", json={"name": "王同学", **extra}).json()["id"]


def test_the_log_says_why_in_both_languages(app, tenant) -> None:
    _, client = _console(app, tenant)
    contact = _contact(tenant)
    for step in ("a", "b"):
        tenant.client.post(
            "/api/v1/delivery/deliveries",
            json={"contact_id": contact, "step": step, "channel": "sandbox", "text": "你好"},
        )
    zh = client.get("/console/delivery", headers={"Accept-Language": "zh-CN"})
    assert zh.status_code == 200
    assert "已达每日上限" in zh.text and "王同学" in zh.text and 'data-reason="cap_day"' in zh.text
    en = client.get("/console/delivery", headers={"Accept-Language": "en"})
    assert "Daily cap reached" in en.text and "Contact budget" in en.text
    only = client.get("/console/delivery", params={"reason": "cap_day"}, headers={"Accept-Language": "en"})
    assert only.text.count("data-delivery=") == 1
    none = client.get("/console/delivery", params={"status": "failed"})
    assert "data-delivery=" not in none.text


def test_settings_form_saves_and_names_bad_fields(app, tenant) -> None:
    _, client = _console(app, tenant)
    token = csrf_of(client.get("/console/delivery").text)
    form = {
        "csrf_token": token,
        "cap_day": "2",
        "cap_week": "",
        "cap_month": "6",
        "quiet_enabled": "1",
        "quiet_start": "22:00",
        "quiet_end": "07:30",
        "welfare_days": "3",
        "opt_out_words": "退订\nTD\n不要再发了",
        "staff_send_limit": "150",
        "staff_add_limit": "",
        "staff_warmup_days": "15",
        "webhook_url": "",
    }
    saved = client.post("/console/delivery/settings", data=form)
    assert saved.status_code == 303, saved.text
    config = tenant.client.get("/api/v1/delivery/settings").json()["config"]
    assert config["caps"] == {"day": 2, "week": None, "month": 6}
    assert config["quiet_hours"] == {"start": "22:00", "end": "07:30"}
    assert config["opt_out_words"] == ["退订", "td", "不要再发了"]
    assert config["staff"]["send_limit"] == 150 and config["staff"]["add_limit"] is None
    bad = client.post("/console/delivery/settings", data={**form, "cap_day": "-3", "quiet_end": "22:00"})
    assert bad.status_code == 422
    assert "caps" in bad.text or "day" in bad.text
    assert tenant.client.get("/api/v1/delivery/settings").json()["config"]["caps"]["day"] == 2


def test_staff_limits_from_the_console(app, tenant) -> None:
    staff_id, client = _console(app, tenant)
    page = client.get("/console/delivery")
    assert f'data-staff="{staff_id}"' in page.text
    saved = client.post(
        f"/console/delivery/staff/{staff_id}",
        data={"csrf_token": csrf_of(page.text), "started_on": "2026-11-20", "send_limit": "40", "warmup_days": "20"},
    )
    assert saved.status_code == 303, saved.text
    accounts = {a["staff_id"]: a for a in tenant.client.get("/api/v1/delivery/staff-accounts").json()}
    assert accounts[staff_id]["send_limit"] == 40 and accounts[staff_id]["started_on"] == "2026-11-20"
    assert accounts[staff_id]["custom"] is True


def test_a_consultant_sees_only_their_customers(app, tenant) -> None:
    staff_id, client = _console(app, tenant, "gu@brand.cn", Role.consultant)
    mine = _contact(tenant, owner_id=staff_id)
    other = _contact(tenant)
    for contact in (mine, other):
        tenant.client.post(
            "/api/v1/delivery/deliveries", json={"contact_id": contact, "step": "a", "channel": "sandbox", "text": "hi"}
        )
    page = client.get("/console/delivery")
    assert page.status_code == 200
    assert f"/console/contacts/{mine}" in page.text and f"/console/contacts/{other}" not in page.text
    assert 'id="delivery-settings"' not in page.text
    token = csrf_of(page.text)
    assert client.post("/console/delivery/settings", data={"csrf_token": token}).status_code == 403


def test_deliveries_are_on_the_contacts_timeline(app, tenant) -> None:
    _, console = _console(app, tenant)
    contact = _contact(tenant)
    sent = tenant.client.post(
        "/api/v1/delivery/deliveries", json={"contact_id": contact, "step": "a", "channel": "sandbox", "text": "欢迎"}
    ).json()
    items = tenant.client.get(f"/api/v1/contacts/{contact}/timeline").json()["items"]
    (entry,) = [e for e in items if e["kind"] == "delivery"]
    assert entry["id"] == sent["id"] and entry["data"]["status"] == "sent" and entry["data"]["text"] == "欢迎"
    html = console.get(f"/console/contacts/{contact}", headers={"Accept-Language": "zh-CN"})
    assert html.status_code == 200
    row = html.text.split('class="entry delivery"')[1].split("</li>")[0]
    assert "触达" in row and "已发送" in row and "沙箱" in row and "欢迎" in row and "api" in row
    capped = tenant.client.post(
        "/api/v1/delivery/deliveries", json={"contact_id": contact, "step": "b", "channel": "sandbox", "text": "第二条"}
    ).json()
    assert capped["status"] == "skipped" and capped["reason"] == "cap_day"  # default: one a day
    html = console.get(f"/console/contacts/{contact}", headers={"Accept-Language": "en"})
    assert "Daily cap reached" in html.text
