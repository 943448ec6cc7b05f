"""The console in a real browser: Debian's Chromium driven by Playwright, against a real uvicorn server
on the test database. Never `playwright install`: `make test` installs the system chromium."""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from console_helpers import BAD_ROW, PASSWORD, write_sheet

from siyu.auth.principal import Principal
from siyu.auth.scopes import ALL_SCOPES
from siyu.contacts.schemas import ContactCreate, IdentityIn, NoteCreate
from siyu.contacts.service import add_note, create_contact
from siyu.staff.models import Role
from siyu.staff.schemas import StaffCreate
from siyu.staff.service import add_staff
from siyu.tags.schemas import TagCreate, TagGroupCreate
from siyu.tags.service import create_group, create_tag
from siyu.workspaces.service import create_workspace

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = os.environ.get("SIYU_CONSOLE_SCREENSHOTS")  # a directory: save pictures of the pages there

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed (make test installs it)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(settings, migrated_engine, tmp_path_factory) -> Iterator[str]:  # type: ignore[no-untyped-def]
    port = _free_port()
    env = {
        **os.environ,
        "SIYU_DATABASE_URL": settings.database_url,
        "SIYU_SQLITE_SYNCHRONOUS": "NORMAL",
        "SIYU_SECRET_KEY": "browser-test-secret",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "siyu.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=tmp_path_factory.mktemp("server"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the test server did not start on {url}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


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
        tag = create_tag(session, workspace.id, TagCreate(group_id=group.id, name="考研"))
        for i in range(30):
            create_contact(
                session,
                principal,
                ContactCreate(
                    name=f"客户{i:02d}",
                    source_channel="douyin" if i % 2 else "xiaohongshu",
                    region="北京",
                    identities=[IdentityIn(type="phone", value=f"139001390{i:02d}")],
                ),
                region="CN",
            )
        target = create_contact(
            session,
            principal,
            ContactCreate(
                name="韩梅梅",
                source_channel="douyin",
                birthday=None,
                identities=[IdentityIn(type="phone", value="13800138000")],
            ),
            region="CN",
        )
        add_note(session, principal, target.id, NoteCreate(body="第一次咨询：考研英语"))
        return {"workspace_id": workspace.id, "contact_id": target.id, "tag_id": tag.id}


def _sign_in(page, server: str, then: str | None = "/console/contacts") -> None:  # type: ignore[no-untyped-def]
    page.goto(server + "/")
    assert "/console/sign-in" in page.url
    page.fill("input[name=email]", "op@brand.cn")
    page.fill("input[name=password]", PASSWORD)
    page.click("button.primary")
    page.wait_for_url("**/console")  # the home: the overview
    if then:
        page.goto(server + then)


def test_sign_in_find_tag_and_note_a_contact(browser, server, seeded) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(locale="zh-CN", viewport={"width": 1360, "height": 860})
    page = context.new_page()
    page.set_default_timeout(10_000)
    _sign_in(page, server)
    assert page.locator("a.contact-link").count() == 31
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / "console-contacts.png"), full_page=True)
    page.fill("input[name=q]", "138 0013 8000")
    page.press("input[name=q]", "Enter")
    page.wait_for_url("**q=138*")
    links = page.locator("a.contact-link")
    assert links.count() == 1 and links.inner_text() == "韩梅梅"
    links.click()
    page.wait_for_url(f"**/console/contacts/{seeded['contact_id']}")
    assert "第一次咨询" in page.locator("#timeline").inner_text()
    page.select_option("#add-tag", str(seeded["tag_id"]))
    page.click("#tags button[type=submit]:not(.x)")
    page.locator("#tags .chip", has_text="考研").wait_for()
    page.fill("textarea[name=body]", "回访：想报周末班")
    page.click("#live form[action$='/notes'] button")
    page.locator("#timeline .entry.note", has_text="回访：想报周末班").wait_for()
    timeline = page.locator("#timeline").inner_text()
    assert "添加标签“考研”" in timeline
    # the work survived: reload the page, it is all there
    page.reload()
    assert "回访：想报周末班" in page.locator("#timeline").inner_text()
    assert page.locator("#tags .chip", has_text="考研").count() == 1
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / "console-contact.png"), full_page=True)
    context.close()


def test_switch_language(browser, server, seeded) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(10_000)
    _sign_in(page, server)
    assert page.locator("nav a[href='/console/contacts']").inner_text() == "客户"
    page.click("button[data-lang=en]")
    page.wait_for_load_state()
    page.locator("html[lang=en]").wait_for()
    assert page.locator("nav a[href='/console/contacts']").inner_text() == "Contacts"
    assert page.locator("button.primary", has_text="Search").count() == 1
    page.goto(server + "/console/tags")
    assert page.locator("h2", has_text="Contacts per tag").count() == 1
    page.locator(".chart canvas").wait_for()  # ECharts drew the chart from the vendored file
    page.click("button[data-lang=zh-CN]")
    page.locator("html[lang=zh-CN]").wait_for()
    assert page.locator("h2", has_text="各标签客户数").count() == 1
    context.close()


def test_import_a_sheet_refused_then_skipping_the_bad_row(browser, server, seeded, tmp_path) -> None:  # type: ignore[no-untyped-def]
    sheet = write_sheet(tmp_path / "客户统计表.xlsx")  # 姓名, 手机号, 地区, 标签; row 4 has the phone 12345
    context = browser.new_context(locale="zh-CN", viewport={"width": 1360, "height": 860})
    page = context.new_page()
    page.set_default_timeout(10_000)
    _sign_in(page, server)
    nav = page.locator("nav a[href='/console/imports']")
    assert nav.inner_text() == "导入"
    nav.click()
    page.wait_for_url("**/console/imports")
    page.set_input_files("#upload input[name=file]", str(sheet))
    page.click("#upload button[type=submit]")
    page.wait_for_url("**/console/imports/preview")
    assert page.locator("#file-format").inner_text() == "xlsx"
    assert page.locator("#headers").inner_text() == "姓名, 手机号, 地区, 标签"
    assert page.locator("select[data-header='姓名']").input_value() == "name"
    assert page.locator("select[data-header='手机号']").input_value() == "identity:phone"
    assert page.locator("select[data-header='标签']").input_value() == "tags"
    bad = page.locator(f"tr.bad[data-row='{BAD_ROW}']")
    assert "12345" in bad.inner_text() and "not a valid phone number" in bad.inner_text()
    assert page.locator("tr.bad").count() == 1
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / "console-import-preview.png"), full_page=True)

    page.click("#import")  # all or nothing: refused
    result = page.locator("#result")
    result.wait_for()
    assert "未导入任何数据" in result.inner_text()
    assert result.locator(f"td[data-row='{BAD_ROW}']").count() == 1
    assert "手机号" in result.locator("table.bad-rows").inner_text()
    found = context.request.get(server + "/api/v1/contacts", params={"q": "导入"})  # the session cookie
    assert found.ok and found.json()["items"] == []

    page.check("input[name=skip_bad_rows]")
    page.click("#import")
    page.wait_for_url(re.compile(r".*/console/imports/\d+$"))
    assert page.locator("[data-count=created]").inner_text() == "3"
    assert page.locator("[data-count=skipped]").inner_text() == "1"
    assert page.locator(f"table.bad-rows td[data-row='{BAD_ROW}']").count() == 1
    error_file = context.request.get(server + (page.locator("#error-file").get_attribute("href") or ""))
    assert error_file.ok and error_file.headers["content-type"].startswith("application/vnd.openxmlformats")
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / "console-import-done.png"), full_page=True)

    page.goto(server + "/console/contacts")
    assert page.locator("a.contact-link").count() == 34  # 31 seeded + 3 imported
    page.fill("input[name=q]", "导入")
    page.press("input[name=q]", "Enter")
    page.wait_for_url("**q=*")
    links = page.locator("a.contact-link")
    assert sorted(links.all_inner_texts()) == sorted(["导入甲", "导入乙", "导入丁"])
    links.filter(has_text="导入甲").click()
    page.wait_for_url(re.compile(r".*/console/contacts/\d+$"))
    assert page.locator("#tags .chip", has_text="考研").count() == 1  # the seeded tag of the group 兴趣
    assert page.locator("#tags .chip", has_text="新客户").count() == 1  # created by the import
    context.close()


@pytest.fixture
def channel_code(db, seeded) -> int:  # type: ignore[no-untyped-def]
    """A channel with a code of two staff members, and adds over the last days."""
    from siyu.channels.attribution import record_add
    from siyu.channels.schemas import ChannelCreate, CodeCreate, PoolEntryIn
    from siyu.channels.service import create_channel, create_code
    from siyu.kit.time import utcnow

    workspace_id = seeded["workspace_id"]
    with db.transaction() as session:
        staff = [
            add_staff(session, workspace_id, StaffCreate(email=f"s{n}@brand.cn", name=name, role=Role.consultant)).id
            for n, name in enumerate(["小王", "小张"])
        ]
        douyin = create_channel(session, workspace_id, ChannelCreate(kind="douyin", name="抖音直播"))
        redbook = create_channel(session, workspace_id, ChannelCreate(kind="xiaohongshu", name="小红书笔记"))
        pool = [PoolEntryIn(staff_id=s) for s in staff]
        code = create_code(session, workspace_id, CodeCreate(channel_id=douyin.id, name="直播福利码", pool=pool))
        other = create_code(session, workspace_id, CodeCreate(channel_id=redbook.id, name="笔记码", pool=pool))
        now = utcnow()
        for n in range(12):
            at = now - dt.timedelta(days=n % 6, hours=n)
            record_add(session, workspace_id, code if n % 3 else other, {"phone": f"1370000{n:04d}"}, occurred_at=at)
        session.commit()
        return code.id


def test_overview_and_code_page_draw_their_charts(browser, server, channel_code) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(locale="zh-CN", viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    _sign_in(page, server, then=None)
    assert page.locator("nav a[href='/console']").inner_text() == "概览"
    page.locator("#chart-acquired canvas").wait_for()  # ECharts drew the stacked bars
    assert page.locator("[data-figure=adds]").inner_text() == "12"
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / "console-overview.png"), full_page=True)
    page.click(f"#per-code a[href='/console/channel-codes/{channel_code}']")
    page.wait_for_url(f"**/console/channel-codes/{channel_code}")
    page.locator("#chart-code canvas").wait_for()
    assert page.locator("#qr").evaluate("img => img.complete && img.naturalWidth > 0")  # the API took the cookie
    assert "/c/" in page.locator("#public-link").inner_text()
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / "console-channel-code.png"), full_page=True)
    context.close()
