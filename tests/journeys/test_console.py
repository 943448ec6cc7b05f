"""Console pages for journeys: the list, the templates gallery, the builder's check as you type, saving and
publishing, a journey's page with its numbers; then the onboarding template built and published in a real
Chromium."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "console"))

from console_helpers import PASSWORD, csrf_of, sign_in_client
from test_console_browser import CHROMIUM, _sign_in, browser, server  # noqa: F401
from tests.journeys.journey_helpers import contact, lift_budgets, phone, work

from siyu.staff.models import Role
from siyu.staff.schemas import StaffCreate
from siyu.staff.service import add_staff


@pytest.fixture
def operator(tenant, db):  # type: ignore[no-untyped-def]
    with db.transaction() as session:
        add_staff(
            session,
            tenant.workspace_id,
            StaffCreate(email="op@brand.cn", name="运营小李", role=Role.operator, password=PASSWORD),
        )
    return sign_in_client(tenant.client.app, "op@brand.cn")


def _post(client, path: str, data: dict[str, str], page: str = "/console/journeys"):  # type: ignore[no-untyped-def]
    token = csrf_of(client.get(page).text)
    return client.post(path, data={**data, "csrf_token": token})


def test_from_a_template_to_a_running_journey_with_its_numbers(tenant, db, clock, operator) -> None:  # type: ignore[no-untyped-def]
    lift_budgets(tenant)
    listing = operator.get("/console/journeys")
    assert listing.status_code == 200 and "还没有旅程" in listing.text
    gallery = operator.get("/console/journeys/templates")
    assert gallery.status_code == 200 and "新客户欢迎 SOP" in gallery.text and "直播提醒" in gallery.text
    made = _post(
        operator,
        "/console/journeys/from-template",
        {"template": "onboarding", "name": "新客欢迎", "channel": "sandbox"},
    )
    assert made.status_code == 303 and re.search(r"/console/journeys/\d+/edit$", made.headers["location"])
    journey_id = int(made.headers["location"].split("/")[-2])
    builder = operator.get(made.headers["location"])
    assert builder.status_code == 200 and "check-result ok" in builder.text and "&#34;welcome&#34;" in builder.text
    draft = tenant.client.get(f"/api/v1/journeys/{journey_id}").json()["draft"]

    # the check as you type names the bad node
    broken = {**draft, "steps": [{**draft["steps"][0], "next": "nowhere"}, *draft["steps"][1:]]}
    checked = _post(operator, "/console/journeys/validate", {"definition": json.dumps(broken)})
    assert checked.status_code == 200 and 'data-error-path="$.steps[0].next"' in checked.text
    bad_json = _post(operator, "/console/journeys/validate", {"definition": "{"})
    assert "not valid JSON" in bad_json.text

    # saving a broken definition keeps what was typed and says why (422); a good one publishes
    refused = _post(
        operator,
        f"/console/journeys/{journey_id}",
        {"name": "新客欢迎", "definition": json.dumps(broken), "action": "publish"},
    )
    assert refused.status_code == 422 and "$.steps[0].next" in refused.text and "nowhere" in refused.text
    saved = _post(
        operator,
        f"/console/journeys/{journey_id}",
        {"name": "新客欢迎", "description": "新客", "definition": json.dumps(draft), "action": "publish"},
    )
    assert saved.status_code == 303, saved.text
    page = operator.get(f"/console/journeys/{journey_id}")
    assert "版本 1" in page.text and 'id="activate"' in page.text
    assert _post(operator, f"/console/journeys/{journey_id}/activate", {}).status_code == 303

    # a contact goes through the first step: the page counts them
    a = contact(tenant, "小明", phone(1))
    tenant.client.post(f"/api/v1/journeys/{journey_id}/enrolments", json={"contact_ids": [a]})
    work(db)
    page = operator.get(f"/console/journeys/{journey_id}")
    assert "运行中" in page.text and "小明" in page.text
    row = re.search(r'<tr data-step="day1">(.*?)</tr>', page.text, re.S)
    assert row is not None and re.search(r"data-waiting>1<", row.group(1))
    listing = operator.get("/console/journeys")
    assert "新客欢迎" in listing.text and "运行中" in listing.text
    assert _post(operator, f"/console/journeys/{journey_id}/pause", {}).status_code == 303
    assert 'id="journey-status">已暂停<' in operator.get(f"/console/journeys/{journey_id}").text


def test_a_contacts_page_shows_their_journeys(tenant, db, clock, operator, make_tenant) -> None:  # type: ignore[no-untyped-def]
    lift_budgets(tenant)
    made = tenant.client.post(
        "/api/v1/journeys/from-template", json={"template": "onboarding", "name": "新客欢迎", "channel": "sandbox"}
    )
    journey_id = made.json()["id"]
    assert tenant.client.post(f"/api/v1/journeys/{journey_id}/publish").status_code == 200
    assert tenant.client.post(f"/api/v1/journeys/{journey_id}/activate").status_code == 200
    inside, outside = contact(tenant, "小明", phone(1)), contact(tenant, "小红", phone(2))
    tenant.client.post(f"/api/v1/journeys/{journey_id}/enrolments", json={"contact_ids": [inside]})
    work(db)
    page = operator.get(f"/console/contacts/{inside}")
    assert f'hx-get="/console/contacts/{inside}/journeys"' in page.text
    panel = operator.get(f"/console/contacts/{inside}/journeys")
    assert panel.status_code == 200 and f'href="/console/journeys/{journey_id}"' in panel.text
    assert "新客欢迎" in panel.text and 'data-status="active"' in panel.text and "day1" in panel.text
    assert "没有参加任何旅程" in operator.get(f"/console/contacts/{outside}/journeys").text
    stranger = contact(make_tenant(), "别家的", phone(3))
    assert operator.get(f"/console/contacts/{stranger}/journeys").status_code == 404


def test_consultants_may_look_but_not_build(tenant, db) -> None:  # type: ignore[no-untyped-def]
    with db.transaction() as session:
        add_staff(
            session,
            tenant.workspace_id,
            StaffCreate(email="c@brand.cn", name="顾问", role=Role.consultant, password=PASSWORD),
        )
    consultant = sign_in_client(tenant.client.app, "c@brand.cn")
    assert consultant.get("/console/journeys").status_code == 200
    assert consultant.get("/console/journeys/new").status_code == 403


# --- in a real browser ------------------------------------------------------------------------------


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed (make test installs it)")
def test_build_and_publish_the_onboarding_template_in_chromium(browser, server, tenant, db) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    with db.transaction() as session:
        add_staff(
            session,
            tenant.workspace_id,
            StaffCreate(email="op@brand.cn", name="运营小李", role=Role.operator, password=PASSWORD),
        )
    context = browser.new_context(locale="zh-CN", viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    _sign_in(page, server, then="/console/journeys")
    page.click("#templates-link")
    page.wait_for_url("**/console/journeys/templates")
    card = page.locator("[data-template=onboarding]")
    card.locator("input[name=name]").fill("新客户欢迎（浏览器）")
    card.locator("[data-use=onboarding]").click()
    page.wait_for_url(re.compile(r".*/console/journeys/\d+/edit$"))
    # the step editor shows the template's seven steps, in step with the JSON, and the check says valid
    page.locator("#steps .step-card").nth(6).wait_for()
    assert page.locator("#steps .step-card").count() == 7
    page.locator("#check [data-valid]").wait_for()
    # a mistake in a step shows on that step, with its path and reason
    third = page.locator("#steps .step-card").nth(2)
    third.locator("input.step-id").fill("interest matched")
    page.locator("#check [data-error-path='$.steps[2].id']").wait_for()
    page.locator("#steps .step-card.invalid[data-index='2']").wait_for()
    assert "$.steps[2].id" in page.locator("#steps .step-card[data-index='2'] .error-text").inner_text()
    third.locator("input.step-id").fill("interest")
    page.locator("#check [data-valid]").wait_for()
    # add a step from the editor: the JSON follows
    page.select_option("#new-step-type", "tag")
    page.click("#add-step")
    assert page.locator("#steps .step-card").count() == 8
    definition = json.loads(page.locator("#definition-json").input_value())
    assert definition["steps"][-1] == {"id": "tag1", "type": "tag", "add": []}
    page.locator("#check [data-error-path='$.steps[7]']").wait_for()  # a tag step needs a tag
    page.locator("#steps .step-card[data-index='7'] button.danger").click()
    page.locator("#check [data-valid]").wait_for()
    page.click("#publish-journey")
    page.wait_for_url(re.compile(r".*/console/journeys/\d+$"))
    assert "版本 1" in page.locator("#journey-version").inner_text()
    page.click("#activate")
    page.locator("#journey-status.active").wait_for()
    steps = page.locator("#step-numbers tbody tr")
    assert steps.count() == 7
    context.close()
