"""The user portrait in a real Chromium: the contact page's panel (interest bars, content seen, what to
send next and why, another sample on demand), and the segment builder's interest condition."""

from __future__ import annotations

import datetime as dt
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "console"))

from test_console_browser import CHROMIUM, SCREENSHOTS, _sign_in, browser, server  # noqa: F401
from tests.console.console_helpers import PASSWORD
from tests.recommend.recommend_helpers import contact, event, item, reset_feed, send, tag_group
from tests.scripts.scripts_helpers import add_library

from siyu.recommend import service
from siyu.usermodel import pipeline

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed (make test installs it)")


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    reset_feed()
    service.clear_cache()
    yield
    reset_feed()


@pytest.fixture
def reader(app, tenant, db) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """A contact who read and favourited 考研 content and read some English today (the server's clock is real)."""
    created = tenant.client.post(
        "/api/v1/staff", json={"email": "op@brand.cn", "name": "运营小李", "role": "operator", "password": PASSWORD}
    )
    assert created.status_code == 201, created.text
    topics = tag_group(tenant, "主题", ["考研", "英语"])
    stages = tag_group(tenant, "适用阶段 stage", ["激活"])
    ids = {
        "guide": item(tenant, "考研择校指南", [topics["考研"]]),
        "english": item(tenant, "四级英语", [topics["英语"]]),
        "camp": item(tenant, "考研冲刺营", [topics["考研"], stages["激活"]]),
    }
    me = contact(tenant, 1)
    other = contact(tenant, 2)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    # seconds apart, so that all three fall on the server's today except in the first seconds after midnight
    at = [(now - dt.timedelta(seconds=s)).isoformat() for s in (3, 2, 1)]
    send(
        tenant,
        event("content.viewed", 1, at[0], content_id=str(ids["guide"])),
        event("content.favorited", 1, at[1], content_id=str(ids["guide"])),
        event("content.viewed", 1, at[2], content_id=str(ids["english"])),
    )
    pipeline.catch_up(db)
    return {"contact": me, "other": other, "考研": topics["考研"], "英语": topics["英语"], **ids}


def test_contact_page_portrait_and_recommendations(browser, server, reader) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    context = browser.new_context(locale="zh-CN", viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    _sign_in(page, server, then=f"/console/contacts/{reader['contact']}")

    panel = page.locator("#portrait-panel")
    panel.locator("#affinities").wait_for()  # loaded after the page
    assert panel.locator("h2").inner_text() == "用户画像"
    exam, english = (panel.locator(f"li[data-tag='{reader[t]}']") for t in ("考研", "英语"))
    assert exam.locator(".num").inner_text() == "4.00"  # a view and a favourite today
    assert english.locator(".num").inner_text() == "1.00"
    widths = [row.locator(".bar").evaluate("e => e.getBoundingClientRect().width") for row in (exam, english)]
    assert widths[0] > 0 and widths[1] == pytest.approx(widths[0] / 4, abs=1.5)  # bars to scale
    assert panel.locator("li[data-tag]").first.get_attribute("data-tag") == str(reader["考研"])  # strongest first
    assert "考研择校指南" in panel.locator("#seen-content").inner_text()
    journeys = page.locator("section#journeys-panel")  # also loaded after the page, in place of its placeholder
    journeys.wait_for()
    assert journeys.locator("h2").inner_text() == "SOP 旅程" and "没有参加任何旅程" in journeys.inner_text()

    # what to send next: the one published item not seen yet, and why
    recommended = panel.locator("#recommendations > li")
    assert recommended.count() == 1
    camp = recommended.first
    assert camp.get_attribute("data-content") == str(reader["camp"])
    reasons = camp.locator(".reasons li").all_inner_texts()
    assert "对「考研」的兴趣 1.00" in reasons and "未看过" in reasons and "适合当前阶段：已激活" in reasons
    assert any(r.startswith("探索 ") for r in reasons)
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / "contact-portrait.png"), full_page=True)

    # "other suggestions" draws the panel again (a new exploration sample) in place
    drawn = page.locator("#portrait-panel").element_handle()
    page.click("#recommendations-again")
    page.wait_for_function("old => !old.isConnected", arg=drawn)
    assert page.locator("#portrait-panel").count() == 1
    assert page.locator("#portrait-panel #recommendations > li").count() == 1

    # the item links to its page
    page.click(f"#portrait-panel a[href='/console/content/{reader['camp']}']")
    page.wait_for_url(f"**/console/content/{reader['camp']}")
    page.wait_for_load_state("networkidle")  # nothing in flight when the next test empties the tables
    context.close()


def test_segment_builder_interest_condition(browser, server, reader) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    context = browser.new_context(locale="zh-CN", viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    _sign_in(page, server, then="/console/segments/new")
    page.locator("#preview [data-empty]").wait_for()
    page.fill("#segment-name", "考研兴趣高")

    def wait_count(n: int) -> None:
        page.wait_for_function(
            f"(document.querySelector('#preview-count') || {{dataset: {{}}}}).dataset.count === '{n}'"
        )

    page.click("#builder .add-condition")
    page.locator("#builder .row-cond").nth(0).locator("select.kind").select_option("interest")
    row = page.locator("#builder .row-cond").nth(0)
    assert "收藏加 3" in row.locator(".help").inner_text() and "每 14 天减半" in row.locator(".help").inner_text()
    row.locator("select.content-tag").select_option(str(reader["英语"]))
    wait_count(1)  # at least 1 by default: the one who read English today
    row.locator("input.at-least").fill("1.5")
    wait_count(0)
    row.locator("select.content-tag").select_option(str(reader["考研"]))
    row.locator("input.at-least").fill("3")
    wait_count(1)
    rule = page.locator("#rule-json").input_value()
    assert re.sub(r"\s", "", rule) == f'{{"and":[{{"interest":{reader["考研"]},"at_least":3}}]}}'
    # a threshold of 0 is refused, on its row, with the reason
    row.locator("input.at-least").fill("0")
    page.locator("#preview [data-error-path='$.and[0].at_least']").wait_for()
    page.locator("#builder .row-cond.invalid").wait_for()
    row.locator("input.at-least").fill("3")
    wait_count(1)
    page.click("#save-segment")
    page.wait_for_url(re.compile(r".*/console/segments/\d+$"))
    assert page.locator("#segment-count").inner_text() == "1"
    assert "对「考研」的兴趣 ≥ 3" in page.content()
    # the saved rule comes back into the builder as the same row
    page.goto(page.url + "/edit")
    row = page.locator("#builder .row-cond").nth(0)
    assert row.locator("select.kind").input_value() == "interest"
    assert row.locator("select.content-tag").input_value() == str(reader["考研"])
    assert row.locator("input.at-least").input_value() == "3"
    page.wait_for_load_state("networkidle")  # nothing in flight when the next test empties the tables
    context.close()


def test_a_consultant_finds_a_script_beside_the_portrait(browser, server, reader, tenant, db) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """The issue's "done when": a consultant pastes the customer's question on the contact page and copies
    the right script, next to what the portrait suggests sending."""
    scripts = add_library(db, tenant.workspace_id)
    created = tenant.client.post(
        "/api/v1/staff", json={"email": "cs@brand.cn", "name": "顾问小王", "role": "consultant", "password": PASSWORD}
    )
    assert created.status_code == 201, created.text
    owned = tenant.client.patch(f"/api/v1/contacts/{reader['contact']}", json={"owner_id": created.json()["id"]})
    assert owned.status_code == 200, owned.text

    context = browser.new_context(locale="zh-CN", viewport={"width": 1400, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server)
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto(server + "/console/sign-in")
    page.fill("input[name=email]", "cs@brand.cn")
    page.fill("input[name=password]", PASSWORD)
    page.click("button.primary")
    page.wait_for_url("**/console")
    page.goto(f"{server}/console/contacts/{reader['contact']}")
    page.locator("#portrait-panel #recommendations > li").first.wait_for()

    page.fill("#script-panel textarea[name=q]", "宝宝多大能开始吃辅食呀")
    best = page.locator("#script-panel-results article.script").first
    page.wait_for_function(
        "id => (document.querySelector('#script-panel-results article.script') || {dataset: {}}).dataset.script === id",
        arg=str(scripts["baby-solid-food"]),
    )
    best.locator("button.copy").first.click()
    best.locator("[data-uses='1']").wait_for()  # the use is recorded, for this contact
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("一般 6 个月开始添加")
    # a consultant sees only their own contacts
    assert page.goto(f"{server}/console/contacts/{reader['other']}").status == 404
    page.wait_for_load_state("networkidle")  # nothing in flight when the next test empties the tables
    context.close()
