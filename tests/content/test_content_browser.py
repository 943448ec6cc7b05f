"""The content library in a real Chromium: an operator writes an article, publishes it, pushes it to a
contact and hands over the tracked link; the person opens it on their phone; the view is counted on the
item's portrait and shows in the contact's timeline, attributed to them."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "console"))

from content_helpers import BROWSER, make_contact, mount
from test_console_browser import CHROMIUM, SCREENSHOTS, _sign_in, browser, server  # noqa: F401
from tests.console.console_helpers import PASSWORD

from siyu.staff.models import Role

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed (make test installs it)")


@pytest.fixture
def library(app, tenant) -> dict[str, int]:  # type: ignore[no-untyped-def]
    mount(app)
    staff = tenant.client.post(
        "/api/v1/staff",
        json={"email": "op@brand.cn", "name": "运营小李", "role": Role.operator.value, "password": PASSWORD},
    )
    assert staff.status_code == 201, staff.text
    group = tenant.client.post("/api/v1/content/tag-groups", json={"name": "主题"})
    assert group.status_code == 201, group.text
    tag = tenant.client.post(f"/api/v1/content/tag-groups/{group.json()['id']}/tags", json={"name": "考研"})
    assert tag.status_code == 201, tag.text
    return {"reader": make_contact(tenant, "韩梅梅"), "other": make_contact(tenant, "李雷"), "tag": tag.json()["id"]}


def test_write_publish_push_and_see_the_view_attributed(browser, server, library) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    context = browser.new_context(locale="zh-CN", viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    _sign_in(page, server, then="/console/content")

    # write an article as a draft, with a live preview and a content tag
    page.click("a[href='/console/content/new']")
    page.wait_for_url("**/console/content/new")
    page.fill("#content-form input[name=title]", "考研择校指南")
    page.fill("#content-form textarea[name=body]", "# 第一步\n\n先定**目标**，再选学校。")
    page.locator("#preview h2", has_text="第一步").wait_for()
    assert page.locator("#preview strong").inner_text() == "目标"
    page.check(f"#content-form input[name=tag_id][value='{library['tag']}']")
    page.click("#content-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/console/content/\d+$"))
    content_id = int(page.url.rsplit("/", 1)[1])
    assert page.locator("#push-form").count() == 0  # a draft cannot be pushed yet

    # publish it: a new version, and the push dialog appears
    page.click(f"a[href='/console/content/{content_id}/edit']")
    page.select_option("#content-form select[name=status]", "published")
    page.click("#content-form button[type=submit]")
    page.wait_for_url(f"**/console/content/{content_id}")
    assert page.locator("#versions tbody tr").count() == 2
    assert page.locator("#versions tbody tr [data-by]").all_inner_texts() == ["运营小李", "运营小李"]  # who made what
    assert page.locator("#portrait [data-figure=views]").inner_text() == "0"

    # push it to 韩梅梅: find her, create her own tracked link
    page.fill("#push-form input[name=q]", "韩梅")
    page.locator(f"#push-contacts input[value='{library['reader']}']").wait_for()
    assert page.locator("#push-contacts input[name=contact_id]").count() == 1  # not 李雷
    page.click("#push-form button[type=submit]")
    link = page.locator(f"#push-links li[data-contact='{library['reader']}'] input").input_value()
    assert re.fullmatch(re.escape(server) + r"/r/[A-Za-z0-9_\-.]+", link), link
    assert "manual" in page.locator("#pushes").inner_text()

    # the person opens it in WeChat on their phone: redirected to the article, counted once
    phone = browser.new_context(locale="zh-CN", user_agent=BROWSER, viewport={"width": 390, "height": 844})
    reader = phone.new_page()
    reader.goto(link)
    reader.wait_for_url("**/view")
    assert "先定" in reader.content() and "考研择校指南" in reader.title() + reader.content()
    # the headless browser itself is a bot: opening the link there counts nothing
    bot = browser.new_context().new_page()
    bot.goto(link)

    # the item's portrait counts the view; the contact's timeline shows it, for this item and push
    page.goto(f"{server}/console/content/{content_id}")
    figures = {
        name: page.locator(f"#portrait [data-figure={name}]").inner_text()
        for name in ("views", "unique_viewers", "open_rate")
    }
    assert figures == {"views": "1", "unique_viewers": "1", "open_rate": "100.0%"}
    page.goto(f"{server}/console/contacts/{library['reader']}")
    viewed = page.locator("#timeline li.entry", has_text="content.viewed")
    viewed.first.wait_for()
    assert viewed.count() == 1
    assert f"content_id={content_id}" in viewed.first.inner_text()
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / "content-view-on-timeline.png"), full_page=True)
    page.goto(f"{server}/console/contacts/{library['other']}")
    assert page.locator("#timeline li.entry", has_text="content.viewed").count() == 0
    phone.close()
    page.wait_for_load_state("networkidle")  # nothing in flight when the next test empties the tables
    context.close()
