"""Console pages of channels and channel codes, through the app: forms, inline errors, pause/resume,
numbers after adds, date ranges, and consultants reading only."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "channels"))

from channel_helpers import add_staff, make_channel, make_code, phone

from siyu.channels.attribution import record_add
from siyu.channels.service import code_stats
from siyu.kit.time import utcnow
from siyu.staff.models import Role


def _code_id(location: str) -> int:
    match = re.fullmatch(r"/console/channel-codes/(\d+)", location)
    assert match, location
    return int(match.group(1))


def test_create_a_channel_and_a_code_through_the_forms_then_pause_it(db, tenant, console_staff) -> None:  # type: ignore[no-untyped-def]
    op = console_staff()
    alice, bob = add_staff(tenant, "小王"), add_staff(tenant, "小张")
    group = tenant.client.post("/api/v1/tag-groups", json={"name": "来源"}).json()
    tag = tenant.client.post("/api/v1/tags", json={"group_id": group["id"], "name": "抖音客户"}).json()

    created = op.post(
        "/console/channels",
        {
            "kind": "douyin",
            "name": "抖音直播间",
            "cost-0-start": "2026-11-01",
            "cost-0-end": "2026-11-30",
            "cost-0-amount": "3000",
            "cost-1-start": "",
            "cost-1-end": "",
            "cost-1-amount": "",
        },
        page="/console/channels",
    )
    assert created.status_code == 303, created.text
    channel_path = created.headers["location"]
    channel_id = int(channel_path.rsplit("/", 1)[1])
    channel = tenant.client.get(f"/api/v1/channels/{channel_id}").json()
    assert channel["name"] == "抖音直播间" and channel["costs"][0]["amount"] == 3000

    new_code = op.client.get(f"/console/channels/{channel_id}/codes/new")
    assert new_code.status_code == 200 and 'name="pool-0-staff_id"' in new_code.text
    code_form = {
        "name": "直播福利码",
        "channel_id": str(channel_id),
        "rotation": "weighted",
        "pool-0-staff_id": str(alice),
        "pool-0-weight": "3",
        "pool-0-cap": "50",
        "pool-0-start": "09:00",
        "pool-0-end": "21:00",
        "pool-1-staff_id": str(bob),
        "pool-1-weight": "1",
        "pool-2-staff_id": "",
        "backup_staff_id": str(bob),
        "tag_ids": str(tag["id"]),
        "identity_type": "phone",
        "welcome_text": "你好，欢迎！",
        "welcome_link_title": "领取资料",
        "welcome_link_url": "https://example.cn/gift",
    }
    made = op.post(f"/console/channels/{channel_id}/codes", code_form, page=channel_path)
    assert made.status_code == 303, made.text
    code_id = _code_id(made.headers["location"])
    code = tenant.client.get(f"/api/v1/channel-codes/{code_id}").json()
    assert code["rotation"] == "weighted" and code["backup_staff_id"] == bob and code["tag_ids"] == [tag["id"]]
    assert [(p["staff_id"], p["weight"], p["daily_cap"], p["hours"]) for p in code["pool"]] == [
        (alice, 3, 50, {"start": "09:00", "end": "21:00"}),
        (bob, 1, None, None),
    ]
    assert code["welcome_link_url"] == "https://example.cn/gift"

    page = op.client.get(f"/console/channel-codes/{code_id}")
    assert page.status_code == 200
    assert f'src="/api/v1/channel-codes/{code_id}/qr.svg"' in page.text
    assert f"/c/{code['slug']}" in page.text
    # the console's session cookie opens the QR image of the API
    qr = op.client.get(f"/api/v1/channel-codes/{code_id}/qr.svg")
    assert qr.status_code == 200 and qr.headers["content-type"].startswith("image/svg+xml")

    # the edit form shows what was saved, and saving it unchanged keeps it
    edit = op.client.get(f"/console/channel-codes/{code_id}/edit")
    assert 'value="09:00"' in edit.text and "你好，欢迎！" in edit.text
    code_form["name"] = "直播福利码2"
    saved = op.post(f"/console/channel-codes/{code_id}/edit", code_form, page=channel_path)
    assert saved.status_code == 303
    assert tenant.client.get(f"/api/v1/channel-codes/{code_id}").json()["name"] == "直播福利码2"

    paused = op.post(f"/console/channel-codes/{code_id}/pause", {"next": channel_path}, page=channel_path)
    assert paused.status_code == 303 and paused.headers["location"] == channel_path
    assert tenant.client.get(f"/api/v1/channel-codes/{code_id}").json()["status"] == "paused"
    listing = op.client.get(channel_path).text
    assert 'data-status="paused"' in listing and f"/console/channel-codes/{code_id}/resume" in listing
    resumed = op.post(f"/console/channel-codes/{code_id}/resume", {}, page=channel_path)
    assert resumed.status_code == 303
    assert tenant.client.get(f"/api/v1/channel-codes/{code_id}").json()["status"] == "active"


def test_validation_errors_are_shown_inline_and_nothing_is_saved(tenant, console_staff) -> None:  # type: ignore[no-untyped-def]
    op = console_staff()
    make_channel(tenant, "已有渠道")
    duplicate = op.post("/console/channels", {"kind": "douyin", "name": "已有渠道"}, page="/console/channels")
    assert duplicate.status_code == 422 and "already exists" in duplicate.text
    assert 'value="已有渠道"' in duplicate.text  # the form keeps what was typed
    overlap = op.post(
        "/console/channels",
        {
            "kind": "zhihu",
            "name": "知乎",
            "cost-0-start": "2026-11-01",
            "cost-0-end": "2026-11-30",
            "cost-0-amount": "100",
            "cost-1-start": "2026-11-15",
            "cost-1-end": "2026-12-15",
            "cost-1-amount": "abc",
        },
        page="/console/channels",
    )
    assert overlap.status_code == 422 and 'id="form-errors"' in overlap.text
    assert "costs.1.amount" in overlap.text
    assert [c["name"] for c in tenant.client.get("/api/v1/channels").json()] == ["已有渠道"]

    channel_id = make_channel(tenant, "小红书", "xiaohongshu")
    staff = add_staff(tenant, "小王")
    bad = op.post(
        f"/console/channels/{channel_id}/codes",
        {
            "name": "码",
            "channel_id": str(channel_id),
            "rotation": "round_robin",
            "pool-0-staff_id": str(staff),
            "pool-0-start": "25:00",
            "pool-0-end": "21:00",
            "identity_type": "phone",
            "welcome_link_url": "not a link",
        },
        page="/console/channels",
    )
    assert bad.status_code == 422
    assert "pool.0.hours.start" in bad.text and "welcome_link_url" in bad.text
    assert 'value="25:00"' in bad.text
    empty_pool = op.post(
        f"/console/channels/{channel_id}/codes",
        {"name": "码", "channel_id": str(channel_id), "rotation": "round_robin", "identity_type": "phone"},
        page="/console/channels",
    )
    assert empty_pool.status_code == 422 and "pool" in empty_pool.text
    assert tenant.client.get("/api/v1/channel-codes").json() == []
    missing_csrf = op.client.post("/console/channels", data={"kind": "douyin", "name": "x"})
    assert missing_csrf.status_code == 403


def test_numbers_after_adds_match_the_service(db, tenant, console_staff, clock) -> None:  # type: ignore[no-untyped-def]
    op = console_staff()
    alice, bob = add_staff(tenant, "小王"), add_staff(tenant, "小张")
    today = utcnow().astimezone(dt.timezone(dt.timedelta(hours=8))).date()
    twenty_days = [  # 20 yuan over 20 days: 1 yuan a day
        {
            "period_start": (today - dt.timedelta(days=10)).isoformat(),
            "period_end": (today + dt.timedelta(days=9)).isoformat(),
            "amount": "20",
        }
    ]
    channel_id = make_channel(tenant, "抖音", costs=twenty_days)
    code = make_code(tenant, channel_id, [{"staff_id": alice}, {"staff_id": bob}], name="福利码")
    now = utcnow()
    with db.transaction() as session:
        for n in range(5):
            record_add(session, tenant.workspace_id, code["id"], {"phone": phone(n)}, occurred_at=now)
        session.commit()

    page = op.client.get(f"/console/channel-codes/{code['id']}")
    assert page.status_code == 200
    assert re.search(r'data-figure="adds">5<', page.text)
    with db.transaction(write=False) as session:
        stats = code_stats(session, tenant.workspace_id, code["id"], None, None)
    for row in stats.per_staff:
        assert re.search(rf'data-staff="{row.staff_id}"><td>[^<]+</td><td class="num" data-adds>{row.adds}<', page.text)
    assert sorted(r.adds for r in stats.per_staff) == [2, 3]
    chart = re.search(r"id=\"chart-code\" data-chart=\"series\" data-series='([^']*)'", page.text)
    assert chart, "the code page has no chart"
    series = json.loads(html.unescape(chart.group(1)))["series"]
    assert [sum(s["values"]) for s in series] == [stats.scans, stats.adds] == [0, 5]

    listing = op.client.get(f"/console/channels/{channel_id}").text
    assert re.search(r"data-adds-today>5<", listing)
    channels = op.client.get("/console/channels", params={"from": today.isoformat(), "to": today.isoformat()}).text
    api = tenant.client.get(
        f"/api/v1/channels/{channel_id}/stats", params={"from": today.isoformat(), "to": today.isoformat()}
    ).json()
    assert api["contacts_acquired"] == 5 and api["cost"] == 1.0
    assert re.search(r"data-acquired>5<", channels)
    assert re.search(rf"data-cost>{api['cost']:.2f}<", channels)
    assert re.search(rf"data-per-contact>{api['cost_per_contact']:.2f}<", channels)
    # a range before the adds: nothing acquired
    earlier = op.client.get("/console/channels", params={"from": "2026-01-01", "to": "2026-01-31"}).text
    assert re.search(r"data-acquired>0<", earlier)
    bad_range = op.client.get("/console/channels", params={"from": "2026-02-01", "to": "2026-01-01"})
    assert bad_range.status_code == 200 and "is after" in bad_range.text


def test_consultants_read_channels_and_change_nothing(tenant, console_staff) -> None:  # type: ignore[no-untyped-def]
    consultant = console_staff("c@brand.cn", role=Role.consultant, name="顾问")
    channel_id = make_channel(tenant, "抖音")
    code = make_code(tenant, channel_id, [{"staff_id": consultant.staff_id}], name="顾问码")
    listing = consultant.client.get("/console/channels")
    assert listing.status_code == 200 and "抖音" in listing.text and 'id="channel-form"' not in listing.text
    channel_page = consultant.client.get(f"/console/channels/{channel_id}").text
    assert "顾问码" in channel_page and "/pause" not in channel_page and "codes/new" not in channel_page
    code_page = consultant.client.get(f"/console/channel-codes/{code['id']}")
    assert code_page.status_code == 200 and "qr.svg" in code_page.text and "/edit" not in code_page.text
    token = consultant.csrf("/console/channels")
    for path, data in (
        ("/console/channels", {"kind": "douyin", "name": "x"}),
        (f"/console/channels/{channel_id}", {"kind": "douyin", "name": "x"}),
        (f"/console/channel-codes/{code['id']}/pause", {}),
        (f"/console/channel-codes/{code['id']}/edit", {"name": "x"}),
    ):
        refused = consultant.client.post(path, data={**data, "csrf_token": token})
        assert refused.status_code == 403, path
    assert consultant.client.get(f"/console/channel-codes/{code['id']}/edit").status_code == 403
    assert tenant.client.get(f"/api/v1/channel-codes/{code['id']}").json()["status"] == "active"
