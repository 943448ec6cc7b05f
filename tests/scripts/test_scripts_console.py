"""The console's script library page, the results fragment, the copy button and the contact panel."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "console"))

from console_helpers import PASSWORD, csrf_of, sign_in_client
from scripts_helpers import add_library, contact_of, event, send

from siyu.db import Database
from siyu.scripts.models import ScriptUse


def _operator(tenant, app):  # type: ignore[no-untyped-def]
    created = tenant.client.post(
        "/api/v1/staff", json={"email": "op@s.cn", "name": "运营", "role": "operator", "password": PASSWORD}
    )
    assert created.status_code == 201, created.text
    return created.json()["id"], sign_in_client(app, "op@s.cn")


def _uses(db: Database) -> list[ScriptUse]:
    with db.transaction(write=False) as session:
        return list(session.query(ScriptUse).order_by(ScriptUse.id))


def test_search_page_results_and_copy(app, db, tenant) -> None:  # type: ignore[no-untyped-def]
    ids = add_library(db, tenant.workspace_id)
    staff_id, client = _operator(tenant, app)
    page = client.get("/console/scripts", params={"q": "这个课程多少钱"})
    assert page.status_code == 200 and "话术库" in page.text
    assert f'data-script="{ids["edu-price"]}"' in page.text and "data-copy=" in page.text
    assert page.text.startswith(f'data-script="{ids["edu-price"]}"', page.text.index('data-script="'))
    english = client.get("/console/scripts", params={"q": "x"}, headers={"Accept-Language": "en"})
    assert english.status_code == 200
    fragment = client.get("/console/scripts/results", params={"q": "宝宝红屁屁"}, headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert f'data-script="{ids["baby-diaper-rash"]}"' in fragment.text
    copied = client.post(
        f"/console/scripts/{ids['edu-price']}/uses",
        data={"answer_index": "1", "contact_id": ""},
        headers={"X-CSRF-Token": csrf_of(page.text), "HX-Request": "true"},
    )
    assert copied.status_code == 200 and 'data-uses="1"' in copied.text
    (use,) = _uses(db)
    assert (use.content_id, use.answer_index, use.staff_id, use.contact_id) == (ids["edu-price"], 1, staff_id, None)
    refused = client.post(f"/console/scripts/{ids['edu-price']}/uses", data={"answer_index": "0"})
    assert refused.status_code == 403  # no CSRF token


def test_contact_panel_is_prefilled_with_the_last_question(app, db, tenant, clock) -> None:  # type: ignore[no-untyped-def]
    ids = add_library(db, tenant.workspace_id)
    send(tenant, event("message.received", "13900139999", "2026-11-23T09:30:00+08:00", text="宝宝几个月可以吃辅食？"))
    contact = contact_of(db, tenant.workspace_id, "13900139999")
    _staff, client = _operator(tenant, app)
    panel = client.get("/console/scripts/panel", params={"contact_id": contact}, headers={"HX-Request": "true"})
    assert panel.status_code == 200 and "<html" not in panel.text
    assert "宝宝几个月可以吃辅食？" in panel.text
    first = panel.text.index('data-script="')
    assert panel.text.startswith(f'data-script="{ids["baby-solid-food"]}"', first)
    assert f"&#34;contact_id&#34;: {contact}" in panel.text or f'"contact_id": {contact}' in panel.text
    copied = client.post(
        f"/console/scripts/{ids['baby-solid-food']}/uses",
        data={"answer_index": "0", "contact_id": str(contact)},
        headers={"X-CSRF-Token": csrf_of(client.get("/console/scripts").text)},
    )
    assert copied.status_code == 200
    assert _uses(db)[0].contact_id == contact
    assert client.get("/console/scripts/panel", params={"contact_id": 999999}).status_code == 404
