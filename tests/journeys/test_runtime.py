"""The runner on a frozen clock: waits, branches, splits, holdouts, sends through delivery, tags, attributes,
staff tasks, owners, group invitations, webhooks and exits; versions; every entry and exit on the timeline."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select
from tests.journeys.journey_helpers import (
    at,
    contact,
    deliveries,
    enrol,
    enrolment,
    journey,
    journey_events,
    lift_budgets,
    phone,
    sandbox,
    work,
)

from siyu.contacts.models import Contact, OwnerChange
from siyu.delivery.models import Delivery
from siyu.journeys.models import EnrolmentStatus, JourneyStepStat
from siyu.stafftasks.models import StaffTask, TaskKind
from siyu.tags.models import ContactTag, TagChange

LINEAR = {
    "trigger": {"manual": True},
    "steps": [
        {"id": "hello", "type": "send", "channel": "sandbox", "text": "你好 {name}"},
        {"id": "later", "type": "wait", "for": {"days": 2}, "until": "10:00"},
        {"id": "again", "type": "send", "channel": "sandbox", "text": "第三天"},
    ],
}


def test_a_linear_journey_sends_waits_and_completes_on_the_clock(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    lift_budgets(tenant)  # the clock starts at 2026-11-23 10:00 Shanghai
    a = contact(tenant, "小明", phone(1))
    journey_id = journey(tenant, LINEAR)
    result = enrol(tenant, journey_id, [a])
    assert [r["contact_id"] for r in result["enrolled"]] == [a]
    work(db)
    assert sandbox(db, journey_id) == [("hello", a, result["enrolled"][0]["enrolment_id"], "你好 小明")]
    row = enrolment(db, journey_id, a)
    assert row.status is EnrolmentStatus.active and row.step == "later" and row.waiting
    # two days then 10:00 local: 2026-11-25 10:00 Shanghai
    assert row.due_at is not None and row.due_at.isoformat() == "2026-11-25T02:00:00+00:00"
    at(clock, "2026-11-25 09:59")
    work(db)
    assert len(sandbox(db, journey_id)) == 1
    at(clock, "2026-11-25 10:00")
    work(db)
    assert [s[0] for s in sandbox(db, journey_id)] == ["hello", "again"]
    row = enrolment(db, journey_id, a)
    assert row.status is EnrolmentStatus.completed and row.exit_reason == "completed" and row.due_at is None
    assert [t for t, _ in journey_events(db, a)] == ["journey.entered", "journey.exited"]
    numbers = tenant.client.get(f"/api/v1/journeys/{journey_id}/numbers").json()
    by_step = {s["step"]: s for s in numbers["steps"]}
    assert by_step["hello"]["arrived"] == 1 and by_step["hello"]["passed"] == 1 and by_step["hello"]["sent"] == 1
    assert by_step["again"]["passed"] == 1 and numbers["completed"] == 1
    # the deliveries show on the contact's timeline as well
    assert {d[0] for d in deliveries(db, journey_id)} == {"hello", "again"}


def test_entry_rules_once_again_after_exit_and_every_n_days(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    lift_budgets(tenant)
    a = contact(tenant, "甲", phone(1))
    short = {"trigger": {"manual": True}, "steps": [{"id": "hi", "type": "send", "text": "hi"}]}
    once = journey(tenant, {**short, "entry": {"mode": "once"}}, "once")
    again = journey(tenant, {**short, "entry": {"mode": "again_after_exit"}}, "again")
    every = journey(tenant, {**short, "entry": {"mode": "every_n_days", "days": 3}}, "every")
    waits = journey(
        tenant,
        {
            "trigger": {"manual": True},
            "entry": {"mode": "again_after_exit"},
            "steps": [{"id": "w", "type": "wait", "for": {"hours": 1}}],
        },
        "waits",
    )
    for j in (once, again, every, waits):
        assert len(enrol(tenant, j, [a])["enrolled"]) == 1
    # still in it: nobody enters twice at once
    assert enrol(tenant, waits, [a])["refused"] == [{"contact_id": a, "reason": "already in this journey"}]
    work(db)
    assert enrol(tenant, once, [a])["refused"][0]["reason"].startswith("entered before")
    assert len(enrol(tenant, again, [a])["enrolled"]) == 1
    assert "3 days" in enrol(tenant, every, [a])["refused"][0]["reason"]
    clock.advance(days=3)
    work(db)
    assert len(enrol(tenant, every, [a])["enrolled"]) == 1
    assert len(enrol(tenant, waits, [a])["enrolled"]) == 1  # the wait ended: they left, so may come again


def test_branch_split_holdout_and_exit(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    lift_budgets(tenant)
    people = [contact(tenant, f"客户{n}", phone(n), region="上海" if n % 2 else "北京") for n in range(200)]
    definition = {
        "trigger": {"manual": True},
        "steps": [
            {"id": "hold", "type": "holdout", "percent": 20},
            {
                "id": "where",
                "type": "branch",
                "condition": {"attribute": "region", "op": "eq", "value": "上海"},
                "then": "sh",
                "else": "ab",
            },
            {"id": "sh", "type": "send", "text": "上海", "next": "stop"},
            {"id": "ab", "type": "split", "branches": [{"weight": 1, "next": "a"}, {"weight": 1, "next": "b"}]},
            {"id": "a", "type": "send", "text": "A", "next": None},
            {"id": "b", "type": "send", "text": "B", "next": None},
            {"id": "stop", "type": "exit"},
        ],
    }
    journey_id = journey(tenant, definition)
    enrol(tenant, journey_id, people)
    work(db)
    numbers = tenant.client.get(f"/api/v1/journeys/{journey_id}/numbers").json()
    steps = {s["step"]: s for s in numbers["steps"]}
    assert steps["where"]["passed"] == 200
    assert steps["sh"]["arrived"] == 100 and steps["stop"]["exited"] == 100
    assert steps["a"]["arrived"] + steps["b"]["arrived"] == 100
    assert 30 <= steps["a"]["arrived"] <= 70  # an even split, give or take chance
    held = steps["sh"]["withheld"] + steps["a"]["withheld"] + steps["b"]["withheld"]
    assert 20 <= held <= 60  # about 20 % of 200 held out ...
    assert len(sandbox(db, journey_id)) == 200 - held  # ... and they received nothing
    assert numbers["exited"] == 100 and numbers["completed"] == 100
    assert numbers["conversion"]["has_holdout"]
    assert numbers["conversion"]["treated"]["n"] + numbers["conversion"]["holdout"]["n"] == 200


def test_tags_attributes_tasks_owner_invite_and_webhook(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    lift_budgets(tenant)
    c = tenant.client
    group = c.post("/api/v1/tag-groups", json={"name": "阶段"}).json()
    tag = c.post("/api/v1/tags", json={"group_id": group["id"], "name": "已培育"}).json()
    old_tag = c.post("/api/v1/tags", json={"group_id": group["id"], "name": "新客"}).json()
    c.post("/api/v1/attributes", json={"key": "stage", "label": "阶段", "type": "text"})
    owner_id, _ = tenant.as_staff("owner@a.cn", name="顾问甲")
    other_id, _ = tenant.as_staff("other@a.cn", name="顾问乙")
    chat = c.post("/api/v1/groups", json={"name": "福利群", "purpose": "welfare"}).json()
    code = c.post("/api/v1/group-codes", json={"name": "福利码", "group_ids": [chat["id"]]}).json()
    a = contact(tenant, "小红", phone(1), owner_id=owner_id)
    c.post(f"/api/v1/contacts/{a}/tags", json={"add": [old_tag["id"]]})
    definition = {
        "trigger": {"manual": True},
        "steps": [
            {"id": "tag", "type": "tag", "add": [tag["id"]], "remove": [old_tag["id"]]},
            {"id": "attr", "type": "set_attribute", "attribute": "stage", "value": "nurtured"},
            {"id": "task", "type": "task", "title": "回访 {name}", "due_in": {"hours": 4}},
            {"id": "owner", "type": "owner", "staff_ids": [other_id]},
            {
                "id": "invite",
                "type": "invite_group",
                "group_code_id": code["id"],
                "text": "进群领福利 {link}",
                "base_url": "https://scrm.example.com",
            },
            {"id": "hook", "type": "webhook", "url": "https://crm.example.com/hook", "payload": {"k": 1}},
        ],
    }
    journey_id = journey(tenant, definition)
    enrolment_id = enrol(tenant, journey_id, [a])["enrolled"][0]["enrolment_id"]
    work(db)
    with db.transaction(write=False) as session:
        held = set(session.scalars(select(ContactTag.tag_id).where(ContactTag.contact_id == a)))
        assert held == {tag["id"]}
        sources = {(t.tag_name, t.action.value, t.source.value) for t in session.scalars(select(TagChange))}
        assert ("已培育", "added", "journey") in sources and ("新客", "removed", "journey") in sources
        person = session.get(Contact, a)
        assert person is not None and person.attributes == {"stage": "nurtured"} and person.owner_id == other_id
        task = session.scalars(select(StaffTask)).one()
        assert (task.staff_id, task.kind, task.title) == (owner_id, TaskKind.journey, "回访 小红")
        assert task.source_key == f"journey:{journey_id}:task:{enrolment_id}"
        assert session.scalars(select(OwnerChange)).one().to_staff_id == other_id
        hooks = session.scalars(select(Delivery).where(Delivery.step == "hook")).one()
        assert hooks.webhook_url == "https://crm.example.com/hook" and hooks.payload is not None
        assert hooks.payload["k"] == 1 and hooks.payload["enrolment_id"] == enrolment_id
    (invite,) = sandbox(db, journey_id)
    assert invite[0] == "invite" and invite[3] == f"进群领福利 https://scrm.example.com/g/{code['slug']}"


def test_a_new_version_leaves_current_enrolments_where_they_are(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    lift_budgets(tenant)
    a, b = contact(tenant, "甲", phone(1)), contact(tenant, "乙", phone(2))
    first = {
        "trigger": {"manual": True},
        "steps": [
            {"id": "wait", "type": "wait", "for": {"days": 1}},
            {"id": "old", "type": "send", "text": "v1"},
        ],
    }
    journey_id = journey(tenant, first)
    enrol(tenant, journey_id, [a])
    work(db)
    second = {
        "trigger": {"manual": True},
        "steps": [{"id": "wait", "type": "wait", "for": {"days": 1}}, {"id": "new", "type": "send", "text": "v2"}],
    }
    assert tenant.client.patch(f"/api/v1/journeys/{journey_id}", json={"definition": second}).status_code == 200
    assert tenant.client.post(f"/api/v1/journeys/{journey_id}/publish").json()["version"] == 2
    enrol(tenant, journey_id, [b])
    work(db)
    clock.advance(days=1, minutes=1)
    work(db)
    assert sorted((s[0], s[1], s[3]) for s in sandbox(db, journey_id)) == sorted([("old", a, "v1"), ("new", b, "v2")])
    versions = tenant.client.get(f"/api/v1/journeys/{journey_id}/versions").json()
    assert [v["version"] for v in versions] == [2, 1] and versions[1]["definition"] == first


def test_paused_journeys_hold_everyone_and_archive_takes_them_out(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    lift_budgets(tenant)
    a = contact(tenant, "甲", phone(1))
    journey_id = journey(
        tenant,
        {
            "trigger": {"manual": True},
            "steps": [{"id": "w", "type": "wait", "for": {"hours": 1}}, {"id": "s", "type": "send", "text": "x"}],
        },
    )
    enrol(tenant, journey_id, [a])
    work(db)
    assert tenant.client.post(f"/api/v1/journeys/{journey_id}/pause").json()["status"] == "paused"
    clock.advance(hours=2)
    work(db)
    assert sandbox(db, journey_id) == []
    assert tenant.client.post(f"/api/v1/journeys/{journey_id}/activate").json()["status"] == "active"
    work(db)
    assert len(sandbox(db, journey_id)) == 1
    b = contact(tenant, "乙", phone(2))
    enrol(tenant, journey_id, [b])
    archived = tenant.client.post(f"/api/v1/journeys/{journey_id}/archive").json()
    assert archived["status"] == "archived"
    row = enrolment(db, journey_id, b)
    assert (row.status, row.exit_reason) == (EnrolmentStatus.exited, "archived")
    with db.transaction(write=False) as session:
        stats = {s.step: s for s in session.scalars(select(JourneyStepStat))}
    assert stats["w"].exited == 1 and stats["s"].passed == 1
    assert Counter(t for t, _ in journey_events(db, b)) == Counter({"journey.entered": 1, "journey.exited": 1})
