"""/api/v1/delivery: settings, the log with filters, a single send, opt-outs, the audience plan."""

from __future__ import annotations

import pytest

from siyu.auth.scopes import Scope
from siyu.delivery import stream
from siyu.staff.models import Role


@pytest.fixture(autouse=True)
def _frozen(clock):  # type: ignore[no-untyped-def]
    """10:00 in Shanghai: outside quiet hours whenever the suite runs."""
    return clock


def _contact(tenant, name: str = "客户", **extra):  # type: ignore[no-untyped-def]
    response = tenant.client.post("/api/v1/contacts", json={"name": name, **extra})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_settings_default_then_replace_with_the_secret_shown_once(tenant) -> None:
    c = tenant.client
    got = c.get("/api/v1/delivery/settings").json()
    assert got["config"]["caps"] == {"day": 1, "week": 3, "month": 4}
    assert got["config"]["quiet_hours"] == {"start": "21:00", "end": "08:00"}
    assert "退订" in got["config"]["opt_out_words"] and "td" in got["config"]["opt_out_words"]
    put = c.put(
        "/api/v1/delivery/settings",
        json={
            "caps": {"day": 2, "week": None},
            "webhook_url": "https://hooks.example.com/x",
            "opt_out_words": ["ＴＤ", "退订"],
        },
    )
    assert put.status_code == 200, put.text
    body = put.json()
    assert body["config"]["caps"] == {"day": 2, "week": None, "month": 4}
    assert body["config"]["opt_out_words"] == ["td", "退订"]
    secret = body["webhook_secret"]
    assert secret.startswith("whsec_") and body["webhook_secret_hint"].endswith(secret[-4:])
    again = c.get("/api/v1/delivery/settings").json()
    assert again["webhook_secret"] is None and again["webhook_secret_hint"] == body["webhook_secret_hint"]
    rotated = c.post("/api/v1/delivery/settings/webhook-secret")
    assert rotated.status_code == 201 and rotated.json()["webhook_secret"] != secret


def test_bad_settings_name_the_field(tenant) -> None:
    c = tenant.client
    bad = c.put("/api/v1/delivery/settings", json={"quiet_hours": {"start": "25:00", "end": "08:00"}})
    assert bad.status_code == 422 and "quiet_hours" in bad.text and "start" in bad.text
    bad = c.put("/api/v1/delivery/settings", json={"caps": {"day": -1}})
    assert bad.status_code == 422 and "day" in bad.text
    bad = c.put("/api/v1/delivery/settings", json={"staff": {"warmup_days": 90}})
    assert bad.status_code == 422 and "warmup_days" in bad.text


def test_a_single_send_is_idempotent_and_shows_in_the_log(tenant) -> None:
    c = tenant.client
    contact = _contact(tenant)
    body = {"contact_id": contact, "step": "order-1-shipped", "channel": "sandbox", "text": "已发货"}
    first = c.post("/api/v1/delivery/deliveries", json=body)
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "sent" and first.json()["source"] == "api"
    second = c.post("/api/v1/delivery/deliveries", json={**body, "text": "again"})
    assert second.json()["id"] == first.json()["id"] and second.json()["text"] == "已发货"
    capped = c.post("/api/v1/delivery/deliveries", json={**body, "step": "order-2"}).json()
    assert (capped["status"], capped["reason"]) == ("skipped", "cap_day")
    assert capped["reason_text"] and "1 of 1" in capped["detail"]
    log = c.get("/api/v1/delivery/deliveries", params={"reason": "cap_day"}).json()
    assert [d["id"] for d in log["items"]] == [capped["id"]]
    page = c.get("/api/v1/delivery/deliveries", params={"limit": 1}).json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    rest = c.get("/api/v1/delivery/deliveries", params={"limit": 1, "cursor": page["next_cursor"]}).json()
    assert rest["items"][0]["id"] == first.json()["id"] and rest["next_cursor"] is None
    assert c.get(f"/api/v1/delivery/deliveries/{capped['id']}").json()["reason"] == "cap_day"
    assert c.get("/api/v1/delivery/deliveries", params={"reason": "nope"}).status_code == 422
    missing = c.post("/api/v1/delivery/deliveries", json={"contact_id": contact, "step": "x", "channel": "sandbox"})
    assert missing.status_code == 422 and "text" in missing.text


def test_opt_out_and_back_in_through_the_api(tenant, db) -> None:
    c = tenant.client
    contact = _contact(tenant)
    created = c.post("/api/v1/delivery/opt-outs", json={"contact_id": contact, "note": "电话里说不要再发"})
    assert created.status_code == 201 and created.json()["source"] == "api"
    sent = c.post(
        "/api/v1/delivery/deliveries", json={"contact_id": contact, "step": "a", "channel": "sandbox", "text": "hi"}
    ).json()
    assert (sent["status"], sent["reason"]) == ("skipped", "opted_out")
    assert [o["contact_id"] for o in c.get("/api/v1/delivery/opt-outs").json()["items"]] == [contact]
    timeline = c.get(f"/api/v1/contacts/{contact}/timeline").json()["items"]
    assert any(e["summary"] == "contact.opted_out" for e in timeline)
    assert c.delete(f"/api/v1/delivery/opt-outs/{contact}").status_code == 204
    assert c.delete(f"/api/v1/delivery/opt-outs/{contact}").status_code == 404
    back = c.post(
        "/api/v1/delivery/deliveries", json={"contact_id": contact, "step": "b", "channel": "sandbox", "text": "hi"}
    ).json()
    assert back["status"] == "sent"


def test_plan_by_contact_ids_tags_and_segment(tenant) -> None:
    c = tenant.client
    group = c.post("/api/v1/tag-groups", json={"name": "意向"}).json()
    tag = c.post("/api/v1/tags", json={"group_id": group["id"], "name": "高意向"}).json()
    ids = [_contact(tenant, f"客户{i}") for i in range(4)]
    c.post("/api/v1/contacts/bulk/tags", json={"add": [tag["id"]], "selection": {"contact_ids": ids[:3]}})
    c.post("/api/v1/delivery/opt-outs", json={"contact_id": ids[0]})
    by_ids = c.post("/api/v1/delivery/plan", json={"contact_ids": ids, "channel": "sandbox"})
    assert by_ids.status_code == 200, by_ids.text
    assert (by_ids.json()["total"], by_ids.json()["eligible"], by_ids.json()["excluded"]) == (4, 3, {"opted_out": 1})
    by_tags = c.post("/api/v1/delivery/plan", json={"tags": {"ids": [tag["id"]]}, "channel": "email"}).json()
    assert (by_tags["total"], by_tags["eligible"]) == (3, 0)
    assert by_tags["excluded"] == {"opted_out": 1, "no_address": 2}
    segment = c.post("/api/v1/segments", json={"name": "高意向", "rule": {"tags": [tag["id"]], "match": "any"}}).json()
    by_segment = c.post("/api/v1/delivery/plan", json={"segment_id": segment["id"], "channel": "sandbox"}).json()
    assert by_segment["total"] in (0, 3)  # members are kept by the segment pipeline
    two = c.post("/api/v1/delivery/plan", json={"contact_ids": ids, "tags": {"ids": [1]}, "channel": "sandbox"})
    assert two.status_code == 422 and "segment_id" in two.text
    unknown = c.post("/api/v1/delivery/plan", json={"contact_ids": [999999], "channel": "sandbox"})
    assert unknown.status_code == 422 and "contact_ids" in unknown.text


def test_consultants_see_only_their_contacts_deliveries(tenant, make_tenant) -> None:
    staff_id, consultant = tenant.as_staff("gu@x.cn", Role.consultant)
    mine = _contact(tenant, "我的", owner_id=staff_id)
    theirs = _contact(tenant, "别人的")
    for contact in (mine, theirs):
        tenant.client.post(
            "/api/v1/delivery/deliveries", json={"contact_id": contact, "step": "a", "channel": "sandbox", "text": "hi"}
        )
    items = consultant.get("/api/v1/delivery/deliveries").json()["items"]
    assert [d["contact_id"] for d in items] == [mine]
    other = tenant.client.get("/api/v1/delivery/deliveries", params={"contact_id": theirs}).json()["items"][0]
    assert consultant.get(f"/api/v1/delivery/deliveries/{other['id']}").status_code == 404
    assert consultant.post("/api/v1/delivery/opt-outs", json={"contact_id": mine}).status_code == 403
    readonly = make_tenant("只读", scopes=frozenset({Scope.delivery_read}))
    assert readonly.client.put("/api/v1/delivery/settings", json={}).status_code == 403


def test_an_unsubscribe_reply_opts_the_contact_out(tenant, db) -> None:
    c = tenant.client
    texts = [" 退订 ", "ＴＤ", "不要退订", "STOP!"]
    events = [
        {"id": f"m{n}", "type": "message.received", "contact": {"phone": f"1380000000{n}"}, "properties": {"text": t}}
        for n, t in enumerate(texts)
    ]
    assert c.post("/api/v1/events?wait=true", json={"events": events}).status_code in (200, 201, 202)
    assert stream.run_opt_outs(db) > 0
    assert stream.run_opt_outs(db) == 0
    opted = c.get("/api/v1/delivery/opt-outs").json()["items"]
    assert sorted(o["detail"] for o in opted) == sorted(["STOP!", "ＴＤ", "退订"])
    assert all(o["source"] == "message" for o in opted)
