"""Console pages of broadcasts: the list, compose with its live preview, saving (and refusals naming the
field), a broadcast's page with its progress; then composing and scheduling in a real Chromium."""

from __future__ import annotations

import datetime as dt
import re
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from tests.broadcasts.broadcast_helpers import contact, segment, tag, work
from tests.console.console_helpers import PASSWORD, csrf_of, sign_in_client

from siyu.auth.principal import Principal
from siyu.auth.scopes import ALL_SCOPES
from siyu.broadcasts.models import Broadcast, BroadcastStatus
from siyu.contacts.schemas import ContactCreate
from siyu.contacts.service import create_contact
from siyu.segments.service import create_segment
from siyu.staff.models import Role
from siyu.staff.schemas import StaffCreate
from siyu.staff.service import add_staff
from siyu.tags.models import ContactTag
from siyu.tags.schemas import TagCreate, TagGroupCreate
from siyu.tags.service import create_group, create_tag
from siyu.workspaces.service import create_workspace


@pytest.fixture
def operator(app, tenant):  # type: ignore[no-untyped-def]
    made = tenant.client.post(
        "/api/v1/staff", json={"email": "op@brand.cn", "name": "运营小李", "role": "operator", "password": PASSWORD}
    )
    assert made.status_code == 201, made.text
    return sign_in_client(app, "op@brand.cn")


def _form(client, **fields):  # type: ignore[no-untyped-def]
    page = client.get("/console/broadcasts/new")
    assert page.status_code == 200, page.text
    return {"csrf_token": csrf_of(page.text), **fields}


def test_compose_preview_save_and_follow(operator, tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    exam = tag(tenant)
    for n in range(3):
        contact(tenant, f"客户{n}", tags=[exam])
    seg = segment(tenant, exam, "考研意向")
    page = operator.get("/console/broadcasts/new")
    assert "考研意向" in page.text and 'id="plan"' in page.text
    base = {
        "name": "双十一",
        "kind": "segment",
        "segment_id": str(seg),
        "text": "五折",
        "channel": "sandbox",
        "when": "now",
    }
    preview = operator.post("/console/broadcasts/preview", data=_form(operator, **base), headers={"HX-Request": "true"})
    assert preview.status_code == 200
    assert re.search(r'id="plan-eligible" data-count="3"', preview.text), preview.text
    bad = operator.post("/console/broadcasts/preview", data=_form(operator, **{**base, "segment_id": "99999"}))
    assert 'data-error-field="audience.segment_id"' in bad.text
    refused = operator.post("/console/broadcasts", data=_form(operator, **{**base, "text": "", "name": ""}))
    assert refused.status_code == 422 and 'data-error="name"' in refused.text
    saved = operator.post("/console/broadcasts", data=_form(operator, **base))
    assert saved.status_code == 303, saved.text
    location = saved.headers["location"]
    shown = operator.get(location)
    assert shown.status_code == 200 and 'data-status="sending"' in shown.text and 'hx-trigger="every 2s"' in shown.text
    work(db)
    done = operator.get(location + "/progress")
    assert 'data-status="sent"' in done.text and 'data-figure="sent">3<' in done.text
    listed = operator.get("/console/broadcasts")
    assert "双十一" in listed.text and "3 / 3" in listed.text


def test_schedule_in_workspace_time_then_start_and_cancel(operator, tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    exam = tag(tenant)
    contact(tenant, "甲", tags=[exam])
    later = {
        "name": "晚上八点",
        "kind": "tags",
        "tag_ids": str(exam),
        "match": "any",
        "text": "直播开始",
        "channel": "sandbox",
        "when": "later",
        "run_at": "2026-11-23T20:00",  # Shanghai time
    }
    saved = operator.post("/console/broadcasts", data=_form(operator, **later))
    assert saved.status_code == 303, saved.text
    with db.transaction(write=False) as session:
        broadcast = session.scalars(select(Broadcast)).one()
        assert broadcast.status is BroadcastStatus.scheduled
        assert broadcast.run_at.isoformat() == "2026-11-23T12:00:00+00:00"
    page = operator.get(saved.headers["location"])
    token = csrf_of(page.text)
    started = operator.post(f"{saved.headers['location']}/start", data={"csrf_token": token})
    assert started.status_code == 303
    stopped = operator.post(f"{saved.headers['location']}/cancel", data={"csrf_token": token})
    assert stopped.status_code == 303
    assert 'data-status="cancelled"' in operator.get(saved.headers["location"]).text
    again = operator.post(f"{saved.headers['location']}/cancel", data={"csrf_token": token})
    assert again.status_code == 303  # refused with a notice, not an error page
    past = operator.post("/console/broadcasts", data=_form(operator, **{**later, "run_at": "2026-11-01T08:00"}))
    assert past.status_code == 422 and 'data-error="run_at"' in past.text


def test_consultants_do_not_see_broadcasts(app, tenant) -> None:  # type: ignore[no-untyped-def]
    tenant.client.post(
        "/api/v1/staff", json={"email": "cs@brand.cn", "name": "顾问", "role": "consultant", "password": PASSWORD}
    )
    consultant = sign_in_client(app, "cs@brand.cn")
    assert consultant.get("/console/broadcasts").status_code == 403
    assert "/console/broadcasts" not in consultant.get("/console/contacts").text


# --- in a real Chromium ------------------------------------------------------------------------------

sys.path.insert(0, str(Path(__file__).parents[1] / "console"))  # test_console_browser imports console_helpers

from tests.console.test_console_browser import CHROMIUM, SCREENSHOTS, _sign_in, browser, server  # noqa: E402, F401

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def seeded(db) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with db.transaction() as session:
        workspace = create_workspace(session, "品牌A")
        staff = add_staff(
            session,
            workspace.id,
            StaffCreate(email="op@brand.cn", name="运营小李", role=Role.operator, password=PASSWORD),
        )
        principal = Principal(workspace_id=workspace.id, scopes=ALL_SCOPES, staff_id=staff.id, role=Role.operator)
        group = create_group(session, workspace.id, TagGroupCreate(name="兴趣"))
        exam = create_tag(session, workspace.id, TagCreate(group_id=group.id, name="考研"))
        for n in range(7):
            person = create_contact(session, principal, ContactCreate(name=f"学员{n}"), region="CN")
            if n < 5:
                session.add(ContactTag(workspace_id=workspace.id, contact_id=person.id, tag_id=exam.id))
        session.flush()
        segment_row = create_segment(session, principal, name="考研意向", rule={"tags": [exam.id], "match": "any"})
        return {"workspace_id": workspace.id, "segment_id": segment_row.id}


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed (make test installs it)")
def test_compose_and_schedule_a_broadcast_to_a_segment_in_chromium(browser, server, seeded, db) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    context = browser.new_context(locale="zh-CN", viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    _sign_in(page, server, "/console/broadcasts")
    page.click("#new-broadcast")
    page.wait_for_url("**/console/broadcasts/new")
    page.fill("#broadcast-name", "考研冲刺福利")
    page.fill("#broadcast-text", "冲刺课今晚开讲")
    # scheduled for 20:00 (Shanghai) the day after tomorrow: outside quiet hours, and always in the future
    day = (dt.datetime.now(SHANGHAI) + dt.timedelta(days=2)).date()
    run_at = dt.datetime.combine(day, dt.time(20, 0), SHANGHAI)
    page.check("#when-later")
    page.fill("#run-at", run_at.strftime("%Y-%m-%dT%H:%M"))
    page.check("#kind-segment")
    page.select_option("#segment-id", str(seeded["segment_id"]))
    page.locator("#plan-eligible[data-count='5']").wait_for()  # the live preview after budgets
    assert page.locator("#plan-eligible").inner_text() == "5"
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / "console-broadcast-compose.png"), full_page=True)
    page.click("#save-broadcast")
    page.wait_for_url(re.compile(r".*/console/broadcasts/\d+$"))
    assert page.locator("#progress").get_attribute("data-status") == "scheduled"
    assert page.locator("#plan-eligible").inner_text() == "5"
    assert page.locator("#start-now").count() == 1
    with db.transaction(write=False) as session:
        broadcast = session.scalars(select(Broadcast).where(Broadcast.workspace_id == seeded["workspace_id"])).one()
        assert broadcast.status is BroadcastStatus.scheduled and broadcast.segment_id == seeded["segment_id"]
        assert broadcast.run_at == run_at.astimezone(dt.UTC)  # 20:00 in Shanghai
    page.goto(server + "/console/broadcasts")
    assert page.locator("#broadcasts tr[data-status='scheduled']").count() == 1
    context.close()
