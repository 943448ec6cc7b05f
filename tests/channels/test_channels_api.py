"""Channels and channel codes through the API: CRUD, clear 422s, pause/resume, QR images, stats."""

from __future__ import annotations

import datetime as dt
import io

import segno
from channel_helpers import add_staff, make_channel, make_code, phone

from siyu.channels.attribution import record_add


def test_channel_crud_with_costs(tenant) -> None:
    c = tenant.client
    created = c.post(
        "/api/v1/channels",
        json={
            "kind": "xiaohongshu",
            "name": "小红书笔记",
            "costs": [{"period_start": "2026-11-01", "period_end": "2026-11-30", "amount": "3000.50"}],
        },
    )
    assert created.status_code == 201, created.text
    channel = created.json()
    assert channel["costs"] == [{"period_start": "2026-11-01", "period_end": "2026-11-30", "amount": 3000.5}]
    assert c.post("/api/v1/channels", json={"kind": "zhihu", "name": "小红书笔记"}).status_code == 409
    patched = c.patch(f"/api/v1/channels/{channel['id']}", json={"name": "小红书-笔记", "costs": []}).json()
    assert patched["name"] == "小红书-笔记" and patched["costs"] == []
    assert [x["id"] for x in c.get("/api/v1/channels").json()] == [channel["id"]]
    assert c.delete(f"/api/v1/channels/{channel['id']}").status_code == 204
    assert c.get(f"/api/v1/channels/{channel['id']}").status_code == 404


def _field(response) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == 422, response.text
    body = response.json()["error"]
    return " ".join([body["message"], *(d["field"] for d in body.get("details", []))])


def test_bad_input_is_a_422_naming_the_field(tenant, make_tenant) -> None:
    c = tenant.client
    staff = add_staff(tenant, "小王")
    channel = make_channel(tenant)
    other = make_tenant("别家")
    other_staff = add_staff(other, "别家员工")
    other_group = other.client.post("/api/v1/tag-groups", json={"name": "组"}).json()
    other_tag = other.client.post("/api/v1/tags", json={"group_id": other_group["id"], "name": "别家标签"}).json()
    other_channel = make_channel(other, "别家渠道")

    assert "kind" in _field(c.post("/api/v1/channels", json={"kind": "tiktok", "name": "x"}))
    assert "period_end" in _field(
        c.post(
            "/api/v1/channels",
            json={
                "kind": "weibo",
                "name": "x",
                "costs": [{"period_start": "2026-11-02", "period_end": "2026-11-01", "amount": 1}],
            },
        )
    )
    assert "amount" in _field(
        c.post(
            "/api/v1/channels",
            json={
                "kind": "weibo",
                "name": "x",
                "costs": [{"period_start": "2026-11-01", "period_end": "2026-11-01", "amount": -1}],
            },
        )
    )
    base = {"channel_id": channel, "name": "码", "pool": [{"staff_id": staff}]}
    cases = [
        ({"pool": [{"staff_id": staff, "daily_cap": -1}]}, "pool[0].daily_cap"),
        ({"pool": [{"staff_id": staff, "weight": 0}]}, "pool[0].weight"),
        ({"pool": [{"staff_id": staff, "hours": {"start": "09:00", "end": "25:00"}}]}, "pool[0].hours.end"),
        ({"pool": [{"staff_id": other_staff}]}, "pool[0].staff_id"),
        ({"pool": [{"staff_id": staff}, {"staff_id": staff}]}, "pool"),
        ({"pool": []}, "pool"),
        ({"backup_staff_id": other_staff}, "backup_staff_id"),
        ({"tag_ids": [other_tag["id"]]}, "tag_ids[0]"),
        ({"rotation": "random"}, "rotation"),
        ({"channel_id": other_channel}, "channel_id"),
        ({"identity_type": "email"}, "identity_type"),
        ({"welcome_link_url": "javascript:alert(1)"}, "welcome_link_url"),
    ]
    for change, field in cases:
        assert field in _field(c.post("/api/v1/channel-codes", json={**base, **change})), change
    code = make_code(tenant, channel, [{"staff_id": staff}])
    assert "pool[0].weight" in _field(
        c.patch(f"/api/v1/channel-codes/{code['id']}", json={"pool": [{"staff_id": staff, "weight": -2}]})
    )
    assert "rotation" in _field(c.patch(f"/api/v1/channel-codes/{code['id']}", json={"rotation": None}))


def test_code_edit_pause_resume_and_qr(tenant, db) -> None:
    c = tenant.client
    a, b = add_staff(tenant, "甲"), add_staff(tenant, "乙")
    group = c.post("/api/v1/tag-groups", json={"name": "来源"}).json()
    tag = c.post("/api/v1/tags", json={"group_id": group["id"], "name": "直播"}).json()
    code = make_code(
        tenant,
        make_channel(tenant),
        [{"staff_id": a, "weight": 2, "daily_cap": 10, "hours": {"start": "09:00", "end": "21:00"}}, {"staff_id": b}],
        rotation="weighted",
        backup_staff_id=b,
        tag_ids=[tag["id"]],
        welcome_text="你好，我是你的专属顾问",
        welcome_link_title="新人福利",
        welcome_link_url="https://example.cn/gift",
    )
    assert code["status"] == "active" and code["link_path"] == f"/c/{code['slug']}" and len(code["slug"]) >= 16
    assert code["pool"][0] == {
        "staff_id": a,
        "staff_name": "甲",
        "weight": 2,
        "daily_cap": 10,
        "hours": {"start": "09:00", "end": "21:00"},
    }
    assert code["tag_ids"] == [tag["id"]]
    edited = c.patch(f"/api/v1/channel-codes/{code['id']}", json={"pool": [{"staff_id": b}], "tag_ids": []}).json()
    assert [p["staff_id"] for p in edited["pool"]] == [b] and edited["tag_ids"] == []
    assert edited["welcome_text"] == "你好，我是你的专属顾问"
    assert c.post(f"/api/v1/channel-codes/{code['id']}/pause").json()["status"] == "paused"
    with db.transaction() as session:
        try:
            record_add(
                session, tenant.workspace_id, code["id"], {"phone": phone(1)}, occurred_at=dt.datetime.now(dt.UTC)
            )
        except Exception as exc:
            assert "paused" in str(exc) and getattr(exc, "status_code", None) == 409
        else:
            raise AssertionError("a paused code took an add")
    assert c.post(f"/api/v1/channel-codes/{code['id']}/resume").json()["status"] == "active"
    assert [x["id"] for x in c.get("/api/v1/channel-codes").json()] == [code["id"]]

    png = c.get(f"/api/v1/channel-codes/{code['id']}/qr.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    svg = c.get(f"/api/v1/channel-codes/{code['id']}/qr.svg")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in svg.content
    # The image encodes the link page's URL.
    expected = io.BytesIO()
    segno.make(f"http://testserver/c/{code['slug']}", error="m", micro=False).save(
        expected, kind="svg", scale=10, border=2
    )
    assert svg.content == expected.getvalue()


def test_stats_and_cost_per_contact(tenant, db, clock) -> None:
    c = tenant.client
    staff = add_staff(tenant, "甲")
    channel = make_channel(
        tenant,
        costs=[
            {"period_start": "2026-11-01", "period_end": "2026-11-30", "amount": "3000"},
            {"period_start": "2026-12-01", "period_end": "2026-12-31", "amount": "9999"},
        ],
    )
    code = make_code(tenant, channel, [{"staff_id": staff}])
    other_code = make_code(tenant, make_channel(tenant, "传单", "offline_flyer"), [{"staff_id": staff}])
    for _ in range(4):
        assert c.get(f"/c/{code['slug']}").status_code == 200
    with db.transaction() as session:
        for n in range(3):
            record_add(session, tenant.workspace_id, code["id"], {"phone": phone(n)}, occurred_at=clock.now)
        # The same person through another channel: a touch there, but not acquired by it.
        record_add(session, tenant.workspace_id, other_code["id"], {"phone": phone(0)}, occurred_at=clock.now)
    stats = c.get(f"/api/v1/channels/{channel}/stats", params={"from": "2026-11-21", "to": "2026-11-23"}).json()
    assert stats == {
        "channel_id": channel,
        "from": "2026-11-21",
        "to": "2026-11-23",
        "contacts_acquired": 3,
        "touches": 3,
        "cost": 300.0,  # 3 of November's 30 days
        "cost_per_contact": 100.0,
    }
    other = c.get(
        f"/api/v1/channels/{other_code['channel_id']}/stats", params={"from": "2026-11-23", "to": "2026-11-23"}
    )
    assert other.json()["contacts_acquired"] == 0 and other.json()["touches"] == 1
    assert other.json()["cost_per_contact"] is None
    code_stats = c.get(f"/api/v1/channel-codes/{code['id']}/stats", params={"from": "2026-11-22", "to": "2026-11-23"})
    body = code_stats.json()
    assert body["scans"] == 4 and body["adds"] == 3
    assert body["per_staff"] == [{"staff_id": staff, "staff_name": "甲", "adds": 3}]
    assert body["per_day"] == [
        {"day": "2026-11-22", "scans": 0, "adds": 0},
        {"day": "2026-11-23", "scans": 4, "adds": 3},
    ]
    assert "from" in _field(
        c.get(f"/api/v1/channels/{channel}/stats", params={"from": "2026-11-24", "to": "2026-11-23"})
    )
    default = c.get(f"/api/v1/channel-codes/{code['id']}/stats").json()
    assert default["to"] == "2026-11-23" and len(default["per_day"]) == 30
