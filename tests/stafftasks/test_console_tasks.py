"""The console's task inbox (/console/tasks) through the HTTP client: what a consultant and an operator
see, and the HTMX actions answering with the refreshed inbox."""

from __future__ import annotations

from tests.console.console_helpers import PASSWORD, csrf_of, sign_in_client
from tests.stafftasks.helpers import add_contact, manual

from siyu.staff.models import Role


def _staff(tenant, email: str, name: str, role: Role = Role.consultant, lead_id: int | None = None) -> int:  # type: ignore[no-untyped-def]
    body = {"email": email, "name": name, "role": role.value, "password": PASSWORD, "lead_id": lead_id}
    created = tenant.client.post("/api/v1/staff", json=body)
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def test_consultant_inbox_and_htmx_actions(app, tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    me = _staff(tenant, "gu@brand.cn", "顾问小王")
    other = _staff(tenant, "tong@brand.cn", "同事小张")
    who = add_contact(tenant, "韩梅梅", me)
    c = tenant.client
    first = manual(c, "约试听", staff_id=me, contact_id=who, due_at="2026-11-22T03:00:00Z")
    second = manual(c, "发资料", staff_id=me, due_at="2026-11-23T08:00:00Z")
    hidden = manual(c, "别人的", staff_id=other)
    browser = sign_in_client(app, "gu@brand.cn")
    page = browser.get("/console/tasks")
    assert page.status_code == 200, page.text
    html = page.text
    assert f'data-task="{first["id"]}"' in html and f'data-task="{second["id"]}"' in html
    assert f'data-task="{hidden["id"]}"' not in html
    assert 'data-mark="overdue"' in html and "韩梅梅" in html and 'id="pick-staff"' not in html
    token = csrf_of(html)
    hx = {"HX-Request": "true"}
    done = browser.post(
        f"/console/tasks/{first['id']}/complete", data={"csrf_token": token, "note": "约了周六"}, headers=hx
    )
    assert done.status_code == 200 and 'id="inbox"' in done.text and f'data-task="{first["id"]}"' not in done.text
    assert "待办已完成" in done.text or "Task completed" in done.text
    snoozed = browser.post(
        f"/console/tasks/{second['id']}/snooze", data={"csrf_token": token, "preset": "1h"}, headers=hx
    )
    assert snoozed.status_code == 200 and f'data-task="{second["id"]}"' not in snoozed.text
    assert "data-snoozed" in snoozed.text
    clock.advance(hours=1, minutes=1)
    assert f'data-task="{second["id"]}"' in browser.get("/console/tasks").text
    # a bad hand-over says why, in the inbox's notice
    bad = browser.post(
        f"/console/tasks/{second['id']}/hand-over", data={"csrf_token": token, "to_staff_id": str(me)}, headers=hx
    )
    assert bad.status_code == 200 and "notice error" in bad.text and "already theirs" in bad.text
    # without HTMX: a redirect and a flash
    moved = browser.post(
        f"/console/tasks/{second['id']}/hand-over", data={"csrf_token": token, "to_staff_id": str(other)}
    )
    assert moved.status_code == 303 and moved.headers["location"] == "/console/tasks"
    assert c.get(f"/api/v1/tasks/{second['id']}").json()["staff_id"] == other
    # someone else's task is not found for a consultant
    stolen = browser.post(f"/console/tasks/{hidden['id']}/complete", data={"csrf_token": token}, headers=hx)
    assert "notice error" in stolen.text and c.get(f"/api/v1/tasks/{hidden['id']}").json()["status"] == "open"
    # a consultant's staff_id parameter is ignored: always their own inbox
    assert f'data-task="{hidden["id"]}"' not in browser.get(f"/console/tasks?staff_id={other}").text


def test_operator_picks_a_staff_member_and_sees_escalations(app, tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    lead = _staff(tenant, "lead@brand.cn", "组长", Role.operator)
    me = _staff(tenant, "gu@brand.cn", "顾问小王", lead_id=lead)
    task = manual(tenant.client, "回访", staff_id=me, due_at="2026-11-22T00:00:00Z")
    from tests.stafftasks.helpers import run_escalation

    assert run_escalation(db, tenant.workspace_id) == (1, 0)
    browser = sign_in_client(app, "lead@brand.cn")
    mine = browser.get("/console/tasks").text
    assert 'id="pick-staff"' in mine and 'id="escalated"' in mine and f'data-task="{task["id"]}"' in mine
    theirs = browser.get(f"/console/tasks?staff_id={me}").text
    assert "顾问小王" in theirs and 'data-mark="escalated"' in theirs
    assert browser.get("/console/tasks", headers={"Accept-Language": "en"}).status_code == 200


def test_a_consultant_lead_completes_an_escalated_task_with_a_note(app, tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    lead = _staff(tenant, "lead@brand.cn", "组长")  # a consultant who leads a team
    me = _staff(tenant, "gu@brand.cn", "顾问小王", lead_id=lead)
    who = add_contact(tenant, "韩梅梅", me)
    task = manual(tenant.client, "回访", staff_id=me, contact_id=who, due_at="2026-11-22T00:00:00Z")
    from tests.stafftasks.helpers import run_escalation

    assert run_escalation(db, tenant.workspace_id) == (1, 0)
    browser = sign_in_client(app, "lead@brand.cn")
    page = browser.get("/console/tasks").text
    assert 'id="escalated"' in page and 'name="note_to_contact" value="0"' in page
    # through the API the contact note is refused, naming the field; the console leaves it on the task
    api = browser.post(
        f"/api/v1/tasks/{task['id']}/complete", json={"note": "已电话"}, headers={"X-CSRF-Token": csrf_of(page)}
    )
    assert api.status_code == 422 and "note_to_contact" in api.text
    done = browser.post(
        f"/console/tasks/{task['id']}/complete",
        data={"csrf_token": csrf_of(page), "note": "已电话", "note_to_contact": "0"},
        headers={"HX-Request": "true"},
    )
    assert done.status_code == 200 and "notice ok" in done.text
    assert tenant.client.get(f"/api/v1/tasks/{task['id']}").json()["note"] == "已电话"
    assert tenant.client.get(f"/api/v1/contacts/{who}/notes").json() == []
