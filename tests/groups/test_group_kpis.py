"""Each KPI on a known history, with a frozen clock; and the console pages rendering them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "console"))

from console_helpers import PASSWORD, csrf_of, sign_in_client
from group_helpers import event, make_code, make_group, mount, phone, send

from siyu.groups.service import is_question

RANGE = "from=2026-11-01&to=2026-11-20"


@pytest.fixture(autouse=True)
def _mounted(app) -> None:  # type: ignore[no-untyped-def]
    mount(app)


def _history(tenant, db) -> dict:  # type: ignore[no-untyped-def,type-arg]
    g = make_group(tenant, name="通知大群", purpose="broadcast", wecom_chat_id="wrK")
    p1, p2, p3, p4 = phone(1), phone(2), phone(3), phone(4)
    send(
        tenant,
        db,
        *(event("group.joined", p, "2026-11-01T02:00:00Z", group_id="wrK") for p in (p1, p2, p3)),
        event("group.left", p3, "2026-11-10T02:00:00Z", group_id="wrK"),
        event("group.joined", p4, "2026-11-22T01:00:00Z", group_id="wrK"),  # after the range
        event("message.received", p1, "2026-11-05T02:00:00Z", group_id="wrK", text="怎么报名？"),
        event("message.sent", p1, "2026-11-05T02:20:00Z", group_id="wrK", text="点群公告链接"),
        event("message.received", p2, "2026-11-06T02:00:00Z", group_id="wrK", text="明天上课吗"),
        event("message.sent", p2, "2026-11-06T03:00:00Z", group_id="wrK", text="是的"),  # 60 min: too late
        event("message.received", p2, "2026-11-07T02:00:00Z", group_id="wrK", text="好的"),
        event("content.viewed", p1, "2026-11-08T02:00:00Z", content_id="c1", group_id="wrK"),
        event("content.viewed", p3, "2026-11-09T02:00:00Z", content_id="c1", channel="group"),
        event("order.paid", p1, "2026-11-09T03:00:00Z", order_id="o1", amount=99),
        event("order.paid", p3, "2026-11-08T03:00:00Z", order_id="o2", amount=50),  # before their view
        event("coupon.redeemed", p2, "2026-11-12T02:00:00Z", coupon_id="k1"),
        event("coupon.redeemed", p3, "2026-11-15T02:00:00Z", coupon_id="k2"),  # after leaving
        event("form.submitted", p1, "2026-11-13T02:00:00Z", group_id="wrK"),
        event("message.received", p4, "2026-11-22T02:00:00Z", group_id="wrK", text="？"),  # outside
    )
    return g


def test_each_kpi_on_a_known_history(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    g = _history(tenant, db)
    k = tenant.client.get(f"/api/v1/groups/{g['id']}/kpis?{RANGE}").json()
    t = k["totals"]
    assert k["headline"] == "open_rate" and k["from"] == "2026-11-01"
    assert t["members"] == 3  # p1, p2, p3 (p3 left inside the range); p4 joined after
    assert (t["speakers"], t["activity"]) == (2, 0.6667)
    assert (t["viewers"], t["open_rate"]) == (2, 0.6667)
    assert (t["orders"], t["order_amount"], t["buyers"]) == (1, 99.0, 1)
    assert (t["participants"], t["participation"]) == (2, 0.6667)
    assert (t["questions"], t["answered"], t["answer_rate"]) == (2, 1, 0.5)
    days = {d["day"]: d for d in k["per_day"]}
    assert len(days) == 20
    assert days["2026-11-05"]["questions"] == 1 and days["2026-11-05"]["answered"] == 1
    assert days["2026-11-06"]["answered"] == 0 and days["2026-11-07"]["speakers"] == 1
    assert days["2026-11-09"]["members"] == 3 and days["2026-11-11"]["members"] == 2
    bad = tenant.client.get(f"/api/v1/groups/{g['id']}/kpis?from=2026-11-20&to=2026-11-01")
    assert bad.status_code == 422


def test_question_rule() -> None:
    assert is_question("怎么报名") and is_question("is it free?") and is_question("能不能退款")
    assert not is_question("好的，谢谢") and not is_question(None)


def test_console_pages_render_and_forms_work(tenant, db, clock, app) -> None:  # type: ignore[no-untyped-def]
    g = _history(tenant, db)
    code = make_code(tenant, [g["id"]], template={"name_pattern": "冲刺 {n} 群", "purpose": "training"})
    created = tenant.client.post(
        "/api/v1/staff", json={"email": "op@g.cn", "name": "运营", "role": "operator", "password": PASSWORD}
    )
    assert created.status_code == 201
    client = sign_in_client(app, "op@g.cn")
    page = client.get(f"/console/groups?{RANGE}")
    assert page.status_code == 200 and "通知大群" in page.text and "66.7%" in page.text
    assert 'href="/console/groups"' in page.text  # the navigation item
    detail = client.get(f"/console/groups/{g['id']}?{RANGE}")
    assert detail.status_code == 200 and 'data-kpi="answered"' in detail.text and "data-chart" in detail.text
    code_page = client.get(f"/console/group-codes/{code['id']}")
    assert code_page.status_code == 200 and code["link_path"] in code_page.text
    token = csrf_of(page.text)
    bad = client.post("/console/groups", data={"name": "", "purpose": "welfare", "csrf_token": token})
    assert bad.status_code == 422
    ok = client.post(
        "/console/groups", data={"name": "福利群", "purpose": "welfare", "capacity": "500", "csrf_token": token}
    )
    assert ok.status_code == 303 and ok.headers["location"].startswith("/console/groups/")
    opened = client.post(f"/console/group-codes/{code['id']}/open-group", data={"csrf_token": token})
    assert opened.status_code == 303
    after = client.get(f"/console/group-codes/{code['id']}")
    assert "pending-task" in after.text and "冲刺 2 群" in after.text
    consultant = tenant.client.post(
        "/api/v1/staff", json={"email": "c@g.cn", "name": "顾问", "role": "consultant", "password": PASSWORD}
    )
    assert consultant.status_code == 201
    reader = sign_in_client(app, "c@g.cn")
    read_page = reader.get("/console/groups")
    assert read_page.status_code == 200 and 'id="group-form"' not in read_page.text
