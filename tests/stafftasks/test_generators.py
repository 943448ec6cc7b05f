"""The daily generators (follow-ups of non-converted precise users, birthdays), the unanswered-message
SLA from the event stream, and escalation to the owner's lead. Time moves with the clock fixture."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from tests.stafftasks.helpers import (
    add_contact,
    add_staff,
    event,
    inbox,
    manual,
    run_daily,
    run_escalation,
    send,
    signed_in,
    tasks,
)

from siyu.stafftasks.generators import birthday_codes
from siyu.stafftasks.models import StaffTask, TaskKind


def _kinds(db, workspace_id: int, kind: TaskKind) -> list[StaffTask]:  # type: ignore[no-untyped-def]
    with db.transaction(write=False) as session:
        return list(
            session.scalars(
                select(StaffTask)
                .where(StaffTask.workspace_id == workspace_id, StaffTask.kind == kind)
                .order_by(StaffTask.id)
            )
        )


def test_follow_ups_daily_for_non_converted_precise_users_once_a_day(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    me = add_staff(tenant, "顾问")
    gone = add_staff(tenant, "离职")
    asked = add_contact(tenant, "问过价", me, consult_question="多少钱？")
    wrote = add_contact(tenant, "发过消息", me)
    paid = add_contact(tenant, "已付款", me, consult_question="报名")
    add_contact(tenant, "没咨询", me)
    add_contact(tenant, "没负责人", None, consult_question="在吗")
    add_contact(tenant, "负责人离职", gone, consult_question="在吗")
    assert tenant.client.patch(f"/api/v1/staff/{gone}", json={"is_active": False}).status_code == 200
    send(
        tenant,
        db,
        event("message.received", wrote, text="你好", staff_id=me),
        event("message.sent", wrote, text="您好", staff_id=me),
        event("order.paid", paid, order_id="o1", amount=3980),
    )
    result = run_daily(db, tenant.workspace_id)
    assert result.day == dt.date(2026, 11, 23) and result.follow_ups == 2
    made = _kinds(db, tenant.workspace_id, TaskKind.follow_up)
    assert {t.contact_id for t in made} == {asked, wrote}
    assert {t.staff_id for t in made} == {me}
    assert made[0].source_key == f"follow_up:{asked}:2026-11-23"
    # due at 18:00 Shanghai time
    assert made[0].due_at == dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
    assert made[0].title == "问过价"
    # the same day again: nothing more (the marker), and a forced second run adds nothing (the keys)
    assert run_daily(db, tenant.workspace_id).follow_ups is None
    with db.transaction() as session:
        from siyu.stafftasks.models import StaffTaskSettings

        session.get(StaffTaskSettings, tenant.workspace_id).follow_up_done_on = None  # type: ignore[union-attr]
    assert run_daily(db, tenant.workspace_id).follow_ups == 0
    # the next local day: one still open stands for today's; a completed one makes room for a new one
    done = next(t for t in made if t.contact_id == asked)
    assert tenant.client.post(f"/api/v1/tasks/{done.id}/complete", json={}).status_code == 200
    clock.advance(hours=24)
    assert run_daily(db, tenant.workspace_id).follow_ups == 1
    latest = _kinds(db, tenant.workspace_id, TaskKind.follow_up)[-1]
    assert latest.contact_id == asked and latest.source_key == f"follow_up:{asked}:2026-11-24"


def test_follow_up_definition_by_segment_and_generators_off(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    me = add_staff(tenant, "顾问")
    c = tenant.client
    group = c.post("/api/v1/tag-groups", json={"name": "意向"}).json()
    hot = c.post("/api/v1/tags", json={"group_id": group["id"], "name": "高意向"}).json()
    tagged = add_contact(tenant, "高意向客户", me)
    add_contact(tenant, "咨询过", me, consult_question="多少钱")
    assert c.post(f"/api/v1/contacts/{tagged}/tags", json={"add": [hot["id"]]}).status_code == 200
    segment = c.post("/api/v1/segments", json={"name": "精准用户", "rule": {"tags": [hot["id"]]}}).json()
    from siyu.segments.service import refresh_workspace

    with db.transaction() as session:
        refresh_workspace(session, tenant.workspace_id)
    saved = c.put(
        "/api/v1/tasks/settings",
        json={"follow_up_segment_id": segment["id"], "follow_up_due_time": "20:30", "generators": {"birthday": False}},
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["generators"] == {"follow_up": True, "birthday": False, "unanswered": True, "escalation": True}
    result = run_daily(db, tenant.workspace_id)
    assert result.follow_ups == 1 and result.birthdays is None
    (task,) = _kinds(db, tenant.workspace_id, TaskKind.follow_up)
    assert task.contact_id == tagged and task.due_at == dt.datetime(2026, 11, 23, 12, 30, tzinfo=dt.UTC)
    assert c.get("/api/v1/tasks/settings").json()["follow_up_done_on"] == "2026-11-23"


def test_birthdays_today_in_the_workspace_time_zone(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    me = add_staff(tenant, "顾问")
    today = add_contact(tenant, "今天生日", me, birthday="1990-11-23")
    tomorrow = add_contact(tenant, "明天生日", me, birthday="1992-11-24")
    add_contact(tenant, "没负责人", None, birthday="1990-11-23")
    assert tenant.client.put("/api/v1/tasks/settings", json={"generators": {"follow_up": False}}).status_code == 200
    assert run_daily(db, tenant.workspace_id).birthdays == 1
    (first,) = _kinds(db, tenant.workspace_id, TaskKind.birthday)
    assert first.contact_id == today and first.due_at == dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)
    # 17:00 UTC is already 01:00 on the 24th in Shanghai: the next birthday is today there
    clock.now = dt.datetime(2026, 11, 23, 17, 0, tzinfo=dt.UTC)
    assert run_daily(db, tenant.workspace_id).birthdays == 1
    assert _kinds(db, tenant.workspace_id, TaskKind.birthday)[-1].contact_id == tomorrow


def test_birthday_of_29_february_falls_on_28_february_in_other_years() -> None:
    assert birthday_codes(dt.date(2027, 2, 28)) == [228, 229]
    assert birthday_codes(dt.date(2028, 2, 28)) == [228]
    assert birthday_codes(dt.date(2028, 2, 29)) == [229]


def test_unanswered_message_becomes_a_task_after_the_sla_and_a_reply_closes_it(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    me, mine = signed_in(tenant, "顾问")
    waiting = add_contact(tenant, "等回复", me)
    quick = add_contact(tenant, "秒回", me)
    in_group = add_contact(tenant, "群里说话", me)
    send(
        tenant,
        db,
        event("message.received", waiting, text="课程还有名额吗？"),
        event("message.received", quick, text="在吗"),
        event("message.received", in_group, text="大家好", group_id="wr1"),
        event("message.received", waiting, "2026-11-20T02:00:00+00:00", text="三天前的历史消息"),
    )
    clock.advance(minutes=10)
    send(tenant, db, event("message.sent", quick, text="在的"))
    clock.advance(minutes=19)
    send(tenant, db)  # 29 minutes: still within the SLA
    assert tasks(mine, kind="unanswered") == []
    clock.advance(minutes=2)
    send(tenant, db)
    (task,) = tasks(mine, kind="unanswered")
    assert task["contact"]["id"] == waiting and task["staff_id"] == me
    assert task["detail"] == "课程还有名额吗？" and task["due_at"] == clock.now.isoformat().replace("+00:00", "Z")
    assert "no reply" in task["why"]
    assert [t["id"] for t in inbox(mine)["tasks"]] == [task["id"]]
    # running the stream again (a restart) makes nothing twice; a second message while the task is open adds none
    send(tenant, db, event("message.received", waiting, text="？？"))
    clock.advance(minutes=40)
    send(tenant, db)
    assert len(tasks(mine, kind="unanswered", all=True)) == 1
    # the reply closes it
    send(tenant, db, event("message.sent", waiting, text="还有名额"))
    assert tasks(mine, kind="unanswered") == []
    (closed,) = tasks(mine, kind="unanswered", all=True)
    assert closed["status"] == "done" and closed["outcome"] == "answered"
    detail = mine.get(f"/api/v1/tasks/{closed['id']}").json()
    assert [h["action"] for h in detail["history"]] == ["answered"]


def test_sla_is_configurable_and_generator_can_be_off(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    me, mine = signed_in(tenant, "顾问")
    who = add_contact(tenant, "客户", me)
    assert tenant.client.put("/api/v1/tasks/settings", json={"sla_minutes": 5}).status_code == 200
    send(tenant, db, event("message.received", who, text="你好"))
    clock.advance(minutes=6)
    send(tenant, db)
    assert len(tasks(mine, kind="unanswered")) == 1
    other = add_contact(tenant, "另一个", me)
    assert tenant.client.put("/api/v1/tasks/settings", json={"generators": {"unanswered": False}}).status_code == 200
    send(tenant, db, event("message.received", other, text="你好"))
    clock.advance(minutes=60)
    send(tenant, db)
    assert len(tasks(mine, kind="unanswered")) == 1


def test_overdue_tasks_escalate_to_the_owners_lead(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    lead, lead_client = signed_in(tenant, "组长")
    me, mine = signed_in(tenant, "顾问", lead_id=lead)
    loner, loner_client = signed_in(tenant, "没有组长")
    due = clock.now.isoformat()
    task = manual(mine, "回访", due_at=due)
    lonely = manual(loner_client, "回访", due_at=due)
    clock.advance(hours=2)
    assert run_escalation(db, tenant.workspace_id) == (0, 0)  # exactly at the grace: not yet
    clock.advance(minutes=1)
    assert run_escalation(db, tenant.workspace_id) == (1, 1)
    assert run_escalation(db, tenant.workspace_id) == (0, 0)
    escalated = mine.get(f"/api/v1/tasks/{task['id']}").json()
    assert escalated["escalation"] == "escalated" and escalated["escalated_to_id"] == lead
    assert escalated["staff_id"] == me and escalated["overdue"]
    assert escalated["history"][-1]["action"] == "escalated" and escalated["history"][-1]["to_staff_id"] == lead
    # the lead's inbox reads it; the lead (a consultant) may open it
    box = inbox(lead_client)
    assert [t["id"] for t in box["escalated"]] == [task["id"]] and box["tasks"] == []
    assert lead_client.get(f"/api/v1/tasks/{task['id']}").status_code == 200
    stuck = loner_client.get(f"/api/v1/tasks/{lonely['id']}").json()
    assert stuck["escalation"] == "unescalatable" and stuck["escalated_to_id"] is None
    # a lead set later: the next run escalates it
    assert tenant.client.patch(f"/api/v1/staff/{loner}", json={"lead_id": lead}).status_code == 200
    assert run_escalation(db, tenant.workspace_id) == (1, 0)
    assert len(inbox(lead_client)["escalated"]) == 2
    # completing it takes it out of the lead's inbox
    assert mine.post(f"/api/v1/tasks/{task['id']}/complete", json={}).status_code == 200
    assert [t["id"] for t in inbox(lead_client)["escalated"]] == [lonely["id"]]


def test_unanswered_tasks_escalate_after_the_sla(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    lead = add_staff(tenant, "组长")
    me, mine = signed_in(tenant, "顾问", lead_id=lead)
    who = add_contact(tenant, "客户", me)
    send(tenant, db, event("message.received", who, text="在吗"))
    clock.advance(minutes=31)
    send(tenant, db)
    assert len(tasks(mine, kind="unanswered")) == 1
    clock.advance(minutes=29)
    assert run_escalation(db, tenant.workspace_id) == (0, 0)
    clock.advance(minutes=2)
    assert run_escalation(db, tenant.workspace_id) == (1, 0)
    assert tasks(tenant.client, escalated=True)[0]["escalated_to_id"] == lead
