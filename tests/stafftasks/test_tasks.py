"""Creating tasks (idempotent by source key), the inbox, and the actions: complete, snooze, hand over;
what a consultant may see; every bad input answered with the field named."""

from __future__ import annotations

import datetime as dt

import pytest
from tests.stafftasks.helpers import add_contact, add_staff, inbox, manual, signed_in, tasks

from siyu.errors import ValidationFailed
from siyu.staff.models import Role
from siyu.stafftasks.service import TaskKind, create_task

DUE = dt.datetime(2026, 11, 23, 3, 0, tzinfo=dt.UTC)


def test_create_task_is_idempotent_on_the_source_key(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    me = add_staff(tenant, "顾问")
    who = add_contact(tenant, "客户", me)
    with db.transaction() as session:
        first = create_task(
            session,
            tenant.workspace_id,
            staff_id=me,
            kind=TaskKind.journey,
            title="第 3 天：电话回访",
            contact_id=who,
            due_at=DUE,
            source_key="journey:1:day3:7",
            detail="新客 7 天旅程",
        )
        again = create_task(
            session,
            tenant.workspace_id,
            staff_id=me,
            kind=TaskKind.journey,
            title="changed",
            contact_id=who,
            due_at=DUE + dt.timedelta(days=1),
            source_key="journey:1:day3:7",
        )
        assert again.id == first.id and again.title == "第 3 天：电话回访" and again.due_at == DUE
    with db.transaction() as session:  # another transaction, after the first committed
        later = create_task(
            session,
            tenant.workspace_id,
            staff_id=me,
            kind=TaskKind.journey,
            title="x",
            contact_id=None,
            due_at=DUE,
            source_key="journey:1:day3:7",
        )
        assert later.id == first.id
    (listed,) = tasks(tenant.client, staff_id=me)
    assert listed["kind"] == "journey" and listed["why"] == "新客 7 天旅程" and listed["contact"]["name"] == "客户"
    with db.transaction() as session:
        for field, kwargs in [
            ("staff_id", {"staff_id": 999_999}),
            ("contact_id", {"contact_id": 999_999}),
            ("title", {"title": " "}),
            ("source_key", {"source_key": ""}),
        ]:
            base = {
                "staff_id": me,
                "kind": TaskKind.manual,
                "title": "t",
                "contact_id": None,
                "due_at": DUE,
                "source_key": f"k-{field}",
            }
            with pytest.raises(ValidationFailed) as raised:
                create_task(session, tenant.workspace_id, **{**base, **kwargs})  # type: ignore[arg-type]
            assert raised.value.details[0]["field"] == field


def test_inbox_today_overdue_and_counts_by_kind(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    me, mine = signed_in(tenant, "顾问")
    who = add_contact(tenant, "客户", me)
    late = manual(mine, "昨天的", due_at="2026-11-22T03:00:00Z", contact_id=who)
    soon = manual(mine, "今天晚上", due_at="2026-11-23T12:00:00Z")
    manual(mine, "明天的", due_at="2026-11-23T16:30:00Z")  # 00:30 on the 24th in Shanghai
    with db.transaction() as session:
        create_task(
            session,
            tenant.workspace_id,
            staff_id=me,
            kind=TaskKind.birthday,
            title="客户",
            contact_id=who,
            due_at=DUE,
            source_key="b",
        )
    box = inbox(mine)
    assert box["day"] == "2026-11-23" and box["staff_id"] == me
    assert [t["title"] for t in box["tasks"]] == ["昨天的", "客户", "今天晚上"]
    assert box["counts"] == {"follow_up": 0, "birthday": 1, "journey": 0, "unanswered": 0, "manual": 2}
    assert box["total"] == 3 and box["overdue"] == 1
    assert box["tasks"][0]["overdue"] and not box["tasks"][2]["overdue"]
    assert box["tasks"][0]["id"] == late["id"] and box["tasks"][2]["id"] == soon["id"]


def test_complete_with_a_note_on_the_task_and_the_contact(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    me, mine = signed_in(tenant, "顾问")
    who = add_contact(tenant, "客户", me)
    task = manual(mine, "回访", contact_id=who)
    done = mine.post(f"/api/v1/tasks/{task['id']}/complete", json={"note": "约了周六试听"})
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["status"] == "done" and body["outcome"] == "completed" and body["completed_by_id"] == me
    assert body["note"] == "约了周六试听" and [h["action"] for h in body["history"]] == ["created", "completed"]
    notes = mine.get(f"/api/v1/contacts/{who}/notes").json()
    assert [n["body"] for n in notes] == ["约了周六试听"]
    again = mine.post(f"/api/v1/tasks/{task['id']}/complete", json={})
    assert again.status_code == 409 and "already done" in again.text
    quiet = manual(mine, "再回访", contact_id=who)
    assert (
        mine.post(
            f"/api/v1/tasks/{quiet['id']}/complete", json={"note": "只记在待办", "note_to_contact": False}
        ).status_code
        == 200
    )
    assert len(mine.get(f"/api/v1/contacts/{who}/notes").json()) == 1
    assert inbox(mine)["tasks"] == []
    assert len(tasks(mine, status="done")) == 2


def test_snooze_hides_the_task_until_then(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    _, mine = signed_in(tenant, "顾问")
    task = manual(mine, "回访")
    past = mine.post(f"/api/v1/tasks/{task['id']}/snooze", json={"until": "2026-11-23T01:00:00Z"})
    assert past.status_code == 422 and past.json()["error"]["details"][0]["field"] == "until"
    far = mine.post(f"/api/v1/tasks/{task['id']}/snooze", json={"until": "2028-01-01T00:00:00Z"})
    assert far.status_code == 422 and "until" in far.text
    snoozed = mine.post(f"/api/v1/tasks/{task['id']}/snooze", json={"until": "2026-11-23T04:00:00Z"})
    assert snoozed.status_code == 200, snoozed.text
    assert (
        snoozed.json()["due_at"] == "2026-11-23T04:00:00Z" and snoozed.json()["first_due_at"] == "2026-11-23T02:00:00Z"
    )
    box = inbox(mine)
    assert box["tasks"] == [] and box["snoozed"] == 1
    clock.advance(hours=2)
    box = inbox(mine)
    assert [t["id"] for t in box["tasks"]] == [task["id"]] and box["snoozed"] == 0
    assert mine.post(f"/api/v1/tasks/{task['id']}/complete", json={}).status_code == 200
    late = mine.post(f"/api/v1/tasks/{task['id']}/snooze", json={"until": "2026-11-24T04:00:00Z"})
    assert late.status_code == 409


def test_hand_over_records_from_and_to_and_keeps_the_owner_unless_asked(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    me, mine = signed_in(tenant, "顾问")
    colleague, theirs = signed_in(tenant, "同事")
    gone = add_staff(tenant, "离职")
    assert tenant.client.patch(f"/api/v1/staff/{gone}", json={"is_active": False}).status_code == 200
    who = add_contact(tenant, "客户", me)
    task = manual(mine, "回访", contact_id=who)
    url = f"/api/v1/tasks/{task['id']}/hand-over"
    for body, field in [
        ({"to_staff_id": 999_999}, "to_staff_id"),
        ({"to_staff_id": gone}, "to_staff_id"),
        ({"to_staff_id": me}, "to_staff_id"),
    ]:
        bad = mine.post(url, json=body)
        assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == field, bad.text
    # a consultant cannot move their customer to someone else
    assert mine.post(url, json={"to_staff_id": colleague, "change_owner": True}).status_code == 403
    moved = mine.post(url, json={"to_staff_id": colleague, "note": "她更懂这个课程"})
    assert moved.status_code == 200, moved.text
    body = moved.json()
    assert body["staff_id"] == colleague and body["handed_over_from_id"] == me
    last = body["history"][-1]
    assert (last["action"], last["from_staff_id"], last["to_staff_id"], last["note"]) == (
        "handed_over",
        me,
        colleague,
        "她更懂这个课程",
    )
    assert tenant.client.get(f"/api/v1/contacts/{who}").json()["owner_id"] == me
    # the task left my inbox for theirs; I no longer see it
    assert inbox(mine)["tasks"] == [] and [t["id"] for t in inbox(theirs)["tasks"]] == [task["id"]]
    assert mine.get(f"/api/v1/tasks/{task['id']}").status_code == 404
    # an operator hands it back with the customer
    back = tenant.client.post(url, json={"to_staff_id": me, "change_owner": True})
    assert back.status_code == 200, back.text
    assert tenant.client.get(f"/api/v1/contacts/{who}").json()["owner_id"] == me
    loose = manual(mine, "没有客户的待办")
    no_contact = tenant.client.post(
        f"/api/v1/tasks/{loose['id']}/hand-over", json={"to_staff_id": colleague, "change_owner": True}
    )
    assert no_contact.status_code == 422 and "change_owner" in no_contact.text


def test_consultants_see_only_their_own_tasks(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    me, mine = signed_in(tenant, "顾问")
    other, theirs = signed_in(tenant, "别人")
    operator, ops = signed_in(tenant, "运营", role=Role.operator)
    my_contact = add_contact(tenant, "我的客户", me)
    their_contact = add_contact(tenant, "别人的客户", other)
    mine_task = manual(mine, "我的", contact_id=my_contact)
    their_task = manual(theirs, "别人的", contact_id=their_contact)
    assert [t["id"] for t in tasks(mine)] == [mine_task["id"]]
    assert mine.get(f"/api/v1/tasks/{their_task['id']}").status_code == 404
    assert mine.post(f"/api/v1/tasks/{their_task['id']}/complete", json={}).status_code == 404
    assert (
        mine.post(f"/api/v1/tasks/{their_task['id']}/snooze", json={"until": "2026-11-24T00:00:00Z"}).status_code == 404
    )
    assert mine.get("/api/v1/tasks/inbox", params={"staff_id": other}).status_code == 403
    assert mine.get("/api/v1/tasks", params={"staff_id": other}).status_code == 403
    # a consultant creates tasks for themselves, about their own contacts
    assert mine.post("/api/v1/tasks", json={"title": "x", "staff_id": other}).status_code == 403
    bad = mine.post("/api/v1/tasks", json={"title": "x", "contact_id": their_contact})
    assert bad.status_code == 422 and "contact_id" in bad.text
    assert mine.put("/api/v1/tasks/settings", json={}).status_code == 403
    # operators and admins see everyone's and pick whose inbox
    assert {t["id"] for t in tasks(ops)} == {mine_task["id"], their_task["id"]}
    assert [t["id"] for t in tasks(ops, staff_id=other)] == [their_task["id"]]
    assert [t["id"] for t in inbox(ops, staff_id=other)["tasks"]] == [their_task["id"]]
    assert inbox(ops)["staff_id"] == operator
    assigned = manual(ops, "给顾问的", staff_id=me, contact_id=my_contact)
    assert assigned["staff_id"] == me


def test_api_errors_name_the_field(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    c = tenant.client  # an API key: no staff member of its own
    me = add_staff(tenant, "顾问")

    def field(response) -> str:  # type: ignore[no-untyped-def]
        assert response.status_code == 422, response.text
        return str(response.json()["error"]["details"][0]["field"])

    assert field(c.get("/api/v1/tasks/inbox")) == "staff_id"
    assert field(c.get("/api/v1/tasks/inbox", params={"staff_id": 999_999})) == "staff_id"
    assert field(c.post("/api/v1/tasks", json={"title": "x"})) == "staff_id"
    assert field(c.post("/api/v1/tasks", json={"title": "x", "staff_id": 999_999})) == "staff_id"
    assert field(c.post("/api/v1/tasks", json={"title": "x", "staff_id": me, "contact_id": 999_999})) == "contact_id"
    assert "title" in c.post("/api/v1/tasks", json={"title": "", "staff_id": me}).text
    assert c.get("/api/v1/tasks/999999").status_code == 404
    assert c.post("/api/v1/tasks/999999/complete", json={}).status_code == 404
    assert field(c.get("/api/v1/tasks", params={"cursor": "nonsense"})) == "cursor"
    assert field(c.put("/api/v1/tasks/settings", json={"follow_up_segment_id": 999_999})) == "follow_up_segment_id"
    assert "sla_minutes" in c.put("/api/v1/tasks/settings", json={"sla_minutes": 0}).text
    assert c.put("/api/v1/tasks/settings", json={"follow_up_due_time": "25:00"}).status_code == 422
    task = manual(c, "x", staff_id=me)
    assert "until" in c.post(f"/api/v1/tasks/{task['id']}/snooze", json={}).text


def test_settings_defaults_and_paging(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    c = tenant.client
    defaults = c.get("/api/v1/tasks/settings").json()
    assert defaults["sla_minutes"] == 30 and defaults["escalation_grace_minutes"] == 120
    assert defaults["follow_up_segment_id"] is None and defaults["follow_up_due_time"] == "18:00:00"
    assert defaults["generators"] == {"follow_up": True, "birthday": True, "unanswered": True, "escalation": True}
    me = add_staff(tenant, "顾问")
    made = [manual(c, f"t{i}", staff_id=me, due_at=f"2026-11-23T0{i}:00:00Z")["id"] for i in range(5)]
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = c.get("/api/v1/tasks", params=params).json()
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made
    assert [t["id"] for t in tasks(c, overdue=True)] == made[:2]
