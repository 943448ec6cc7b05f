"""The console home: the overview of a date range, its figures equal to what the services compute."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).parents[1] / "channels"))

from channel_helpers import add_staff, make_channel, make_code, phone
from sqlalchemy import func, select

from siyu.channels.attribution import record_add
from siyu.channels.service import channel_stats, code_stats
from siyu.contacts.models import Contact
from siyu.kit.time import utcnow
from siyu.staff.models import Role

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _figure(page: str, name: str) -> int:
    match = re.search(rf'data-figure="{name}">([\d,]+)<', page)
    assert match, name
    return int(match.group(1).replace(",", ""))


def _chart(page: str) -> dict:  # type: ignore[type-arg]
    match = re.search(r"id=\"chart-acquired\" data-chart=\"series\" data-series='([^']*)'", page)
    assert match, "no chart on the overview"
    return dict(json.loads(html.unescape(match.group(1))))


def _seed(db, tenant):  # type: ignore[no-untyped-def]
    alice, bob = add_staff(tenant, "小王"), add_staff(tenant, "小张")
    douyin = make_channel(tenant, "抖音直播", "douyin")
    redbook = make_channel(tenant, "小红书笔记", "xiaohongshu")
    a1 = make_code(tenant, douyin, [{"staff_id": alice}], name="直播码")["id"]
    b1 = make_code(tenant, redbook, [{"staff_id": bob}], name="笔记码")["id"]
    now = utcnow()
    with db.transaction() as session:

        def add(code: int, n: int, at: dt.datetime) -> None:
            record_add(session, tenant.workspace_id, code, {"phone": phone(n)}, occurred_at=at)

        for n in range(3):
            add(a1, n, now - dt.timedelta(days=2))
        add(a1, 10, now - dt.timedelta(days=20))  # outside the default 14 days
        add(b1, 3, now)
        add(b1, 4, now)
        add(b1, 0, now)  # came through 直播码 first: an add, not a new contact of 小红书
        session.commit()
    return {"douyin": douyin, "redbook": redbook, "a1": a1, "b1": b1, "alice": alice, "bob": bob, "now": now}


def test_the_home_is_the_overview_and_its_figures_match_the_services(db, tenant, console_staff, clock) -> None:  # type: ignore[no-untyped-def]
    op = console_staff()
    seeded = _seed(db, tenant)
    tenant.client.post("/api/v1/contacts", json={"name": "手工录入"})
    page = op.client.get("/console")
    assert page.status_code == 200
    assert 'href="/console/contacts"' in page.text and 'href="/console/channels"' in page.text

    today = seeded["now"].astimezone(SHANGHAI).date()
    date_from = today - dt.timedelta(days=13)
    with db.transaction(write=False) as session:
        live = (Contact.workspace_id == tenant.workspace_id, Contact.merged_into_id.is_(None))
        total = session.scalar(select(func.count()).select_from(Contact).where(*live))
        acquired = {
            c: channel_stats(session, tenant.workspace_id, seeded[c], date_from, today).contacts_acquired
            for c in ("douyin", "redbook")
        }
        codes = {c: code_stats(session, tenant.workspace_id, seeded[c], date_from, today) for c in ("a1", "b1")}
    assert total == 7 and acquired == {"douyin": 3, "redbook": 2}
    assert _figure(page.text, "total") == total
    assert _figure(page.text, "new-today") == total  # every contact was created today, whatever its add's time
    assert _figure(page.text, "acquired") == sum(acquired.values())
    assert _figure(page.text, "adds") == sum(s.adds for s in codes.values()) == 6

    chart = _chart(page.text)
    assert chart["x"][0] == date_from.isoformat() and chart["x"][-1] == today.isoformat() and len(chart["x"]) == 14
    by_name = {s["name"]: s["values"] for s in chart["series"]}
    assert sum(by_name["抖音直播"]) == acquired["douyin"] and sum(by_name["小红书笔记"]) == acquired["redbook"]
    two_days_ago = (seeded["now"] - dt.timedelta(days=2)).astimezone(SHANGHAI).date()
    assert by_name["抖音直播"][chart["x"].index(two_days_ago.isoformat())] == 3
    assert by_name["小红书笔记"][-1] == 2

    for key in ("a1", "b1"):
        assert re.search(rf'data-code="{seeded[key]}">.*?data-adds>{codes[key].adds}<', page.text, re.S)
    staff_adds = {row.staff_id: row.adds for s in codes.values() for row in s.per_staff}
    assert staff_adds == {seeded["alice"]: 3, seeded["bob"]: 3}
    for staff_id, adds in staff_adds.items():
        assert re.search(rf'data-staff="{staff_id}"><td>[^<]+</td><td class="num" data-adds>{adds}<', page.text)
    assert re.search(r'data-source="link">.*?data-adds>6<', page.text)
    assert re.search(r'data-source="wecom">.*?data-adds>0<', page.text)
    assert re.search(r'data-welcome="sent">.*?data-count>0<', page.text, re.S)


def test_welcomes_sent_through_wecom_are_counted(db, tenant, console_staff) -> None:  # type: ignore[no-untyped-def]
    from siyu.wecom.models import WeComCallbackLog

    op = console_staff()
    now = dt.datetime.now(dt.UTC)
    with db.transaction() as session:
        for n, welcome in enumerate(["sent", "sent", "already_sent", "expired", "failed", None]):
            session.add(
                WeComCallbackLog(
                    workspace_id=tenant.workspace_id,
                    callback_key=f"k{n}",
                    received_at=now - dt.timedelta(hours=1),
                    kind="change_external_contact/add_external_contact",
                    outcome="processed",
                    welcome=welcome,
                )
            )
    page = op.client.get("/console").text
    counts = dict(re.findall(r'data-welcome="(\w+)">.*?data-count>(\d+)<', page, re.S))
    assert counts == {"sent": "3", "expired": "1", "failed": "1"}


def test_the_date_range_filter(db, tenant, console_staff, clock) -> None:  # type: ignore[no-untyped-def]
    op = console_staff()
    seeded = _seed(db, tenant)
    day = (seeded["now"] - dt.timedelta(days=20)).astimezone(SHANGHAI).date()
    page = op.client.get("/console", params={"from": day.isoformat(), "to": day.isoformat()}).text
    assert _figure(page, "acquired") == 1 and _figure(page, "adds") == 1
    assert _chart(page)["x"] == [day.isoformat()]
    assert re.search(rf'data-code="{seeded["a1"]}">', page) and not re.search(rf'data-code="{seeded["b1"]}">', page)
    assert _figure(page, "total") == 6  # the totals do not depend on the range
    wide = op.client.get("/console", params={"from": (day - dt.timedelta(days=1)).isoformat()}).text
    assert _figure(wide, "acquired") == 1  # to defaults to 14 days after from
    refused = op.client.get("/console", params={"from": "2026-13-01"})
    assert refused.status_code == 200 and "YYYY-MM-DD" in refused.text and len(_chart(refused.text)["x"]) == 14
    too_long = op.client.get("/console", params={"from": "2024-01-01", "to": "2026-01-01"})
    assert "366" in too_long.text


def test_consultants_see_the_overview_read_only(db, tenant, console_staff, clock) -> None:  # type: ignore[no-untyped-def]
    consultant = console_staff("c@brand.cn", role=Role.consultant, name="顾问")
    _seed(db, tenant)
    page = consultant.client.get("/console")
    assert page.status_code == 200 and _figure(page.text, "adds") == 6
    assert '<form method="post" action="/console/channel' not in page.text
