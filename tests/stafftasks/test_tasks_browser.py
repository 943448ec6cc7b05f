"""The task inbox in a real browser (Debian's Chromium driven by Playwright, against uvicorn on the test
database): a consultant completes one task with a note and snoozes another, through HTMX."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from tests.console.console_helpers import PASSWORD

from siyu.auth.principal import Principal
from siyu.auth.scopes import ALL_SCOPES
from siyu.contacts.schemas import ContactCreate, IdentityIn
from siyu.contacts.service import create_contact
from siyu.staff.models import Role
from siyu.staff.schemas import StaffCreate
from siyu.staff.service import add_staff
from siyu.stafftasks.service import TaskKind, create_task
from siyu.workspaces.service import create_workspace

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]

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
    command = [sys.executable, "-m", "uvicorn", "siyu.app:create_app", "--factory", "--host", "127.0.0.1"]
    process = subprocess.Popen(
        [*command, "--port", str(port), "--log-level", "warning"], env=env, cwd=tmp_path_factory.mktemp("server")
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
            time.sleep(0.1)  # waiting for a real server process to listen, not for time to pass in a test
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


def _later_today(now: dt.datetime, timezone: str) -> dt.datetime:
    """Five minutes from now, but never past the workspace's midnight: the inbox lists today's tasks, and
    a task due tomorrow would drop out of it (this test once failed in CI at 23:58 Shanghai time)."""
    tz = ZoneInfo(timezone)
    end_of_day = dt.datetime.combine(now.astimezone(tz).date() + dt.timedelta(days=1), dt.time(0), tz)
    return min(now + dt.timedelta(minutes=5), end_of_day.astimezone(dt.UTC) - dt.timedelta(seconds=1))


@pytest.fixture
def seeded(db) -> dict[str, int]:  # type: ignore[no-untyped-def]
    now = dt.datetime.now(dt.UTC)  # the server runs on the real clock
    with db.transaction() as session:
        workspace = create_workspace(session, "品牌A")
        me = add_staff(
            session,
            workspace.id,
            StaffCreate(email="gu@brand.cn", name="顾问小王", role=Role.consultant, password=PASSWORD),
        )
        principal = Principal(workspace_id=workspace.id, scopes=ALL_SCOPES, staff_id=me.id, role=Role.admin)
        contact = create_contact(
            session,
            principal,
            ContactCreate(name="韩梅梅", owner_id=me.id, identities=[IdentityIn(type="phone", value="13800138000")]),
            region="CN",
        )

        def task(key: str, title: str, kind: TaskKind, due: dt.datetime) -> int:
            made = create_task(
                session,
                workspace.id,
                staff_id=me.id,
                kind=kind,
                title=title,
                contact_id=contact.id,
                due_at=due,
                source_key=key,
            )
            return made.id

        ids = {
            "workspace_id": workspace.id,
            "contact_id": contact.id,
            "follow_up": task("f", "韩梅梅", TaskKind.follow_up, now - dt.timedelta(hours=3)),
            "journey": task("j", "第 3 天：电话回访", TaskKind.journey, _later_today(now, workspace.timezone)),
        }
    return ids


def test_consultant_completes_and_snoozes_tasks(browser, server, seeded) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(locale="zh-CN", viewport={"width": 1360, "height": 860})
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto(server + "/console/sign-in")
    page.fill("input[name=email]", "gu@brand.cn")
    page.fill("input[name=password]", PASSWORD)
    page.click("button.primary")
    page.wait_for_url("**/console")
    nav = page.locator("nav a[href='/console/tasks']")
    assert nav.inner_text() == "我的待办"
    nav.click()
    page.wait_for_url("**/console/tasks")
    follow_up = page.locator(f"tr[data-task='{seeded['follow_up']}']")
    journey = page.locator(f"tr[data-task='{seeded['journey']}']")
    assert follow_up.locator("[data-mark=overdue]").count() == 1
    assert "已咨询、尚未成交" in follow_up.inner_text() and "韩梅梅" in follow_up.inner_text()
    assert page.locator("#total").inner_text() == "2"
    assert page.locator("#counts [data-kind=follow_up]").inner_text() == "每日跟进 1"
    # complete the overdue follow-up with a note (HTMX swaps the inbox in place)
    follow_up.locator("input[name=note]").fill("约了周六试听")
    follow_up.locator("form[data-action=complete] button").click()
    page.locator("#notice .notice.ok").wait_for()
    follow_up.wait_for(state="detached")
    assert page.locator("#total").inner_text() == "1"
    # snooze the other for an hour: it leaves today's list and is counted as snoozed
    journey.locator("summary").click()
    journey.locator("form[data-action=snooze] select[name=preset]").select_option("1h")
    journey.locator("form[data-action=snooze] button").click()
    page.locator("[data-snoozed]").wait_for()
    assert journey.count() == 0 and page.locator("#total").inner_text() == "0"
    # it all survived: reload, and the API agrees
    page.reload()
    assert page.locator("tr[data-task]").count() == 0 and "稍后提醒 1" in page.locator("[data-snoozed]").inner_text()
    done = context.request.get(server + f"/api/v1/tasks/{seeded['follow_up']}").json()
    assert done["status"] == "done" and done["note"] == "约了周六试听"
    snoozed = context.request.get(server + f"/api/v1/tasks/{seeded['journey']}").json()
    assert snoozed["snoozed_until"] is not None and snoozed["status"] == "open"
    notes = context.request.get(server + f"/api/v1/contacts/{seeded['contact_id']}/notes").json()
    assert [n["body"] for n in notes] == ["约了周六试听"]
    context.close()
