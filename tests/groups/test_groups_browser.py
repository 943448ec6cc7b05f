"""Groups in a real Chromium: an operator creates a training group and a group code with a template;
people scan the code's public page; members join and talk; the group's page shows the KPIs that fit
its purpose, and the code opens the next group when the first is full."""

from __future__ import annotations

import datetime as dt
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "console"))

from console_helpers import PASSWORD
from group_helpers import event, mount, phone, send
from test_console_browser import CHROMIUM, SCREENSHOTS, _sign_in, browser, server  # noqa: F401

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed (make test installs it)")

PHONE_AGENT = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 MicroMessenger/8.0.50"


@pytest.fixture
def operator(app, tenant) -> None:  # type: ignore[no-untyped-def]
    mount(app)
    created = tenant.client.post(
        "/api/v1/staff", json={"email": "op@brand.cn", "name": "运营小李", "role": "operator", "password": PASSWORD}
    )
    assert created.status_code == 201, created.text
    for n in (1, 2):
        contact = tenant.client.post(
            "/api/v1/contacts", json={"name": f"学员{n}", "identities": [{"type": "phone", "value": phone(n)}]}
        )
        assert contact.status_code == 201, contact.text


def test_create_a_group_and_a_code_and_read_its_kpis(browser, server, operator, tenant, db) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    context = browser.new_context(locale="zh-CN", viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    _sign_in(page, server, then="/console/groups")
    assert page.locator("#groups tr[data-group]").count() == 0

    # a training group of 2 (small, to see the code move on)
    form = page.locator("#group-form")
    form.locator("input[name=name]").fill("考研冲刺 1 群")
    form.locator("select[name=purpose]").select_option("training")
    form.locator("input[name=capacity]").fill("2")
    form.locator("input[name=wecom_chat_id]").fill("wrB1")
    form.locator("input[name=join_url]").fill("https://work.weixin.qq.com/gm/b1")
    form.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r".*/console/groups/\d+$"))
    group_id = int(page.url.rsplit("/", 1)[1])
    assert page.locator("dd", has_text="训练营").count() == 1
    assert page.locator("#fill").inner_text() == "0 / 2"

    # a group code over it, with a template for the groups that follow
    page.goto(server + "/console/groups")
    code_form = page.locator("#code-form")
    code_form.locator("input[name=name]").fill("考研群活码")
    code_form.locator(f"input[name=group_ids][value='{group_id}']").check()
    code_form.locator("input[name=template_name]").fill("考研冲刺 {n} 群")
    code_form.locator("select[name=template_purpose]").select_option("training")
    code_form.locator("input[name=template_capacity]").fill("2")
    code_form.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r".*/console/group-codes/\d+$"))
    code_url = page.url
    assert page.locator("#code-groups tr[data-current]", has_text="考研冲刺 1 群").count() == 1
    assert page.evaluate("document.querySelector('#qr').naturalWidth") > 0  # the QR is drawn
    public = page.locator("#public-link").get_attribute("href")
    assert public and public.startswith("/g/")

    # someone scans: the public page shows the group to join
    person = browser.new_context(locale="zh-CN", user_agent=PHONE_AGENT).new_page()
    person.goto(server + public)
    assert "考研冲刺 1 群" in person.content() and "https://work.weixin.qq.com/gm/b1" in person.content()

    # two join; one asks a question that staff answer within minutes; the other stays quiet
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    at = [(now - dt.timedelta(hours=2, minutes=m)).isoformat() for m in (30, 20, 10, 0)]
    send(
        tenant,
        db,
        event("group.joined", phone(1), at[0], group_id="wrB1"),
        event("group.joined", phone(2), at[1], group_id="wrB1"),
        event("message.received", phone(1), at[2], group_id="wrB1", text="怎么报名模拟考？"),
        event("message.sent", phone(1), at[3], group_id="wrB1", text="看群公告的链接"),
    )
    page.goto(f"{server}/console/groups/{group_id}")
    assert page.locator("#fill").inner_text() == "2 / 2"
    assert page.locator(".figure .label").first.inner_text() == "问题回复率"  # the training group's KPI
    assert page.locator("[data-figure=headline]").inner_text() == "100.0%"
    assert page.locator("[data-figure=activity]").inner_text() == "50.0%"  # 1 of 2 members spoke
    assert page.locator("[data-kpi=questions]").inner_text() == "1"
    assert page.locator("[data-kpi=answered]").inner_text().startswith("1")
    assert page.locator("#members tr[data-contact]").count() == 2
    page.locator("#chart-group canvas").first.wait_for()  # ECharts drew the series per day
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / "group-kpis.png"), full_page=True)

    # the group is full: the next scan opens 考研冲刺 2 群 from the template, to be created in WeCom
    person.goto(server + public)
    assert "新群正在准备中" in person.content()
    page.goto(code_url)
    page.locator("#pending-task").wait_for()
    assert page.locator("#code-groups tr", has_text="考研冲刺 2 群").count() == 1
    assert int(page.locator("[data-figure=scans]").inner_text()) == 2
    page.goto(server + "/console/groups")
    row = page.locator("#groups tr[data-group]", has_text="考研冲刺 1 群")
    assert row.locator("[data-headline]").inner_text().endswith("100.0%")
    assert row.locator("[data-activity]").inner_text() == "50.0%"
    page.wait_for_load_state("networkidle")  # nothing in flight when the next test empties the tables
    context.close()
