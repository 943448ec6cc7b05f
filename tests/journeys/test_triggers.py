"""What brings contacts in (events with filters, segment entries, tags added, birthdays, schedules) and what
takes them out (goal events, at any step and while waiting), on a frozen clock."""

from __future__ import annotations

from tests.journeys.journey_helpers import (
    at,
    contact,
    enrolment,
    event,
    events,
    fire,
    journey,
    lift_budgets,
    phone,
    sandbox,
    work,
)

from siyu.journeys.models import EnrolmentStatus
from siyu.usermodel import pipeline

WAIT_THEN_SEND = [
    {"id": "hello", "type": "send", "text": "欢迎"},
    {"id": "wait", "type": "wait", "for": {"days": 7}},
    {"id": "offer", "type": "send", "text": "优惠"},
]


def test_an_event_with_property_filters_enrols_and_a_goal_exits_a_waiting_contact_at_once(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    lift_budgets(tenant)
    a, b = contact(tenant, "甲", phone(1)), contact(tenant, "乙", phone(2))
    journey_id = journey(
        tenant,
        {
            "trigger": {"event": "form.submitted", "where": [{"property": "form", "op": "eq", "value": "trial"}]},
            "goal": {"event": "order.paid", "where": [{"property": "amount", "op": "gte", "value": 100}]},
            "steps": WAIT_THEN_SEND,
        },
    )
    events(tenant, event("e1", "form.submitted", a, form="trial"), event("e2", "form.submitted", b, form="other"))
    work(db)
    assert [(s[0], s[1]) for s in sandbox(db, journey_id)] == [("hello", a)]
    row = enrolment(db, journey_id, a)
    assert row.waiting and row.step == "wait"
    clock.advance(hours=1)
    events(tenant, event("e3", "order.paid", a, order_id="o1", amount=50))  # below the goal's filter
    work(db)
    assert enrolment(db, journey_id, a).status is EnrolmentStatus.active
    events(tenant, event("e4", "order.paid", a, order_id="o2", amount=300))
    work(db)  # no clock movement: the goal takes them out at once, not when the 7-day timer fires
    row = enrolment(db, journey_id, a)
    assert (row.status, row.exit_reason, row.step) == (EnrolmentStatus.exited, "goal", "wait")
    assert row.goal_at is not None
    clock.advance(days=8)
    work(db)
    assert [s[0] for s in sandbox(db, journey_id)] == ["hello"]  # no offer after they bought
    numbers = tenant.client.get(f"/api/v1/journeys/{journey_id}/numbers").json()
    assert numbers["conversion"]["overall"]["converted"] == 1
    assert {s["step"]: s["goal"] for s in numbers["steps"]}["wait"] == 1


def test_events_before_activation_trigger_nothing(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    lift_budgets(tenant)
    a = contact(tenant, "甲", phone(1))
    events(tenant, event("old", "form.submitted", a))
    journey_id = journey(tenant, {"trigger": {"event": "form.submitted"}, "steps": WAIT_THEN_SEND})
    work(db)
    assert sandbox(db, journey_id) == []


def test_a_goal_event_already_in_the_stream_stops_the_next_step(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    """Even when the runner gets there before the trigger poller has read the goal event."""
    lift_budgets(tenant)
    from siyu.journeys import runner

    a = contact(tenant, "甲", phone(1))
    journey_id = journey(
        tenant, {"trigger": {"manual": True}, "goal": {"event": "order.paid"}, "steps": WAIT_THEN_SEND}
    )
    tenant.client.post(f"/api/v1/journeys/{journey_id}/enrolments", json={"contact_ids": [a]})
    runner.run_until_idle(db)
    events(tenant, event("p", "order.paid", a, order_id="1", amount=10))
    clock.advance(days=7, minutes=1)
    runner.run_until_idle(db)  # the runner alone, no trigger poll
    row = enrolment(db, journey_id, a)
    assert (row.status, row.exit_reason) == (EnrolmentStatus.exited, "goal")
    assert [s[0] for s in sandbox(db, journey_id)] == ["hello"]


def test_wait_for_an_event_takes_the_event_branch_at_once_or_the_timeout_branch(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    lift_budgets(tenant)
    a, b = contact(tenant, "甲", phone(1)), contact(tenant, "乙", phone(2))
    journey_id = journey(
        tenant,
        {
            "trigger": {"manual": True},
            "steps": [
                {
                    "id": "read",
                    "type": "wait_event",
                    "event": "content.viewed",
                    "where": [{"property": "content_id", "op": "eq", "value": "c1"}],
                    "timeout": {"days": 2},
                    "on_event": "thanks",
                    "on_timeout": "nudge",
                },
                {"id": "thanks", "type": "send", "text": "谢谢阅读", "next": None},
                {"id": "nudge", "type": "send", "text": "还没看？"},
            ],
        },
    )
    tenant.client.post(f"/api/v1/journeys/{journey_id}/enrolments", json={"contact_ids": [a, b]})
    work(db)
    clock.advance(hours=3)
    events(tenant, event("v1", "content.viewed", a, content_id="c1"), event("v2", "content.viewed", b, content_id="c9"))
    work(db)
    assert [(s[0], s[1]) for s in sandbox(db, journey_id)] == [("thanks", a)]  # at once, before the timeout
    clock.advance(days=2)
    work(db)
    assert sorted((s[0], s[1]) for s in sandbox(db, journey_id)) == sorted([("thanks", a), ("nudge", b)])


def test_segment_entries_and_tags_added_enrol(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    lift_budgets(tenant)
    c = tenant.client
    group = c.post("/api/v1/tag-groups", json={"name": "兴趣"}).json()
    tag = c.post("/api/v1/tags", json={"group_id": group["id"], "name": "考研"}).json()
    a, b = contact(tenant, "甲", phone(1)), contact(tenant, "乙", phone(2))
    segment = c.post(
        "/api/v1/segments", json={"name": "上海", "rule": {"attribute": "region", "op": "eq", "value": "上海"}}
    )
    assert segment.status_code == 201, segment.text
    by_segment = journey(
        tenant,
        {
            "trigger": {"segment": segment.json()["id"], "on": "entered"},
            "steps": [{"id": "s", "type": "send", "text": "沪"}],
        },
        "segment",
    )
    by_tag = journey(
        tenant, {"trigger": {"tag": [tag["id"]]}, "steps": [{"id": "t", "type": "send", "text": "考研资料"}]}, "tag"
    )
    c.patch(f"/api/v1/contacts/{a}", json={"region": "上海"})
    c.post(f"/api/v1/contacts/{b}/tags", json={"add": [tag["id"]]})
    pipeline.catch_up(db)  # the user model moves a into the segment: a segment.entered event
    clock.advance(seconds=10)  # PostgreSQL: tag changes are read once a few seconds old (triggers.TAG_LAG)
    work(db)
    assert [(s[0], s[1]) for s in sandbox(db, by_segment)] == [("s", a)]
    assert [(s[0], s[1]) for s in sandbox(db, by_tag)] == [("t", b)]


def test_birthdays_fire_at_ten_local_days_before(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    lift_budgets(tenant)
    a = contact(tenant, "寿星", phone(1), birthday="1990-11-26")
    contact(tenant, "别人", phone(2), birthday="1990-12-26")
    journey_id = journey(
        tenant,
        {
            "trigger": {"date": "birthday", "days_before": 2, "at": "10:00"},
            "entry": {"mode": "every_n_days", "days": 300},
            "steps": [{"id": "greet", "type": "send", "text": "生日快乐"}],
        },
    )
    # activated at 2026-11-23 10:00: the first look is tomorrow at 10:00 (two days before the 26th)
    fire(db)
    assert sandbox(db, journey_id) == []
    at(clock, "2026-11-24 09:59")
    fire(db)
    assert sandbox(db, journey_id) == []
    at(clock, "2026-11-24 10:00")
    fire(db)
    work(db)
    assert [(s[0], s[1]) for s in sandbox(db, journey_id)] == [("greet", a)]
    at(clock, "2026-11-25 10:00")
    assert fire(db) == 0  # once a year, not every day


def test_a_schedule_enrols_its_audience_on_the_cron_and_once_after_downtime(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    lift_budgets(tenant)
    a = contact(tenant, "甲", phone(1), region="上海")
    contact(tenant, "乙", phone(2), region="北京")
    journey_id = journey(
        tenant,
        {
            "trigger": {"schedule": "0 8,19 * * *", "audience": {"attribute": "region", "op": "eq", "value": "上海"}},
            "entry": {"mode": "again_after_exit"},
            "steps": [{"id": "remind", "type": "send", "text": "直播提醒"}],
        },
    )
    got = tenant.client.get(f"/api/v1/journeys/{journey_id}").json()
    assert got["next_fire_at"] == "2026-11-23T11:00:00Z"  # 19:00 Shanghai today
    at(clock, "2026-11-23 19:00")
    assert fire(db) == 1
    work(db)
    at(clock, "2026-11-25 09:30")  # the worker was down through three firings
    assert fire(db) == 1
    work(db)
    assert [(s[0], s[1]) for s in sandbox(db, journey_id)] == [("remind", a), ("remind", a)]
    assert tenant.client.get(f"/api/v1/journeys/{journey_id}").json()["next_fire_at"] == "2026-11-25T11:00:00Z"


def test_conversion_of_the_treated_against_the_holdout(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    lift_budgets(tenant)
    people = [contact(tenant, f"客户{n}", phone(n)) for n in range(120)]
    journey_id = journey(
        tenant,
        {
            "trigger": {"manual": True},
            "goal": {"event": "order.paid"},
            "steps": [
                {"id": "hold", "type": "holdout", "percent": 50},
                {"id": "offer", "type": "send", "text": "优惠"},
                {"id": "window", "type": "wait", "for": {"days": 7}},
            ],
        },
    )
    enrolled = {
        e["contact_id"]: e["enrolment_id"]
        for e in tenant.client.post(f"/api/v1/journeys/{journey_id}/enrolments", json={"contact_ids": people}).json()[
            "enrolled"
        ]
    }
    work(db)
    arms = {
        e["contact_id"]: e["arm"]
        for e in tenant.client.get(f"/api/v1/journeys/{journey_id}/enrolments", params={"limit": 500}).json()["items"]
    }
    treated = [c for c, arm in arms.items() if arm == "treated"]
    held = [c for c, arm in arms.items() if arm == "holdout"]
    assert len(treated) + len(held) == len(enrolled) and treated and held
    # most of the treated buy, few of the holdout: a lift whose interval excludes 0
    buyers = treated[: int(len(treated) * 0.8)] + held[: int(len(held) * 0.1)]
    events(tenant, *(event(f"pay{c}", "order.paid", c, order_id=str(c), amount=10) for c in buyers))
    work(db)
    conversion = tenant.client.get(f"/api/v1/journeys/{journey_id}/numbers").json()["conversion"]
    assert conversion["treated"]["n"] == len(treated) and conversion["holdout"]["n"] == len(held)
    assert conversion["treated"]["converted"] == int(len(treated) * 0.8)
    assert conversion["holdout"]["converted"] == int(len(held) * 0.1)
    lift = conversion["lift"]
    assert lift["significant"] and 0 < lift["low"] < lift["difference"] < lift["high"]
    assert conversion["treated"]["low"] < conversion["treated"]["rate"] < conversion["treated"]["high"]
    # the holdout received nothing
    assert {s[1] for s in sandbox(db, journey_id)} == set(treated)


def test_live_reminders_at_8_and_19_both_arrive_under_the_default_one_a_day_cap(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    made = tenant.client.post("/api/v1/journeys/from-template", json={"template": "live_reminders", "name": "直播"})
    journey_id = made.json()["id"]
    assert tenant.client.post(f"/api/v1/journeys/{journey_id}/publish").status_code == 200
    assert tenant.client.post(f"/api/v1/journeys/{journey_id}/activate").status_code == 200
    who = contact(tenant, "小明", phone(1))
    assert tenant.client.get("/api/v1/delivery/settings").json()["config"]["caps"]["day"] == 1  # the default
    events(tenant, event("signup", "form.submitted", who, form="live"))  # 10:00 in Shanghai
    work(db)
    clock.advance(hours=22)  # 08:00 the next day
    work(db)
    clock.advance(hours=11)  # 19:00
    work(db)
    assert [(s[0], s[3]) for s in sandbox(db, journey_id)] == [
        ("remind_am", "小明，今晚 20:00 直播，记得来看！"),
        ("remind_pm", "还有 1 小时开播，点这里进直播间。"),
    ]
    sent = tenant.client.get("/api/v1/delivery/deliveries", params={"contact_id": who}).json()["items"]
    assert {d["step"]: d["service"] for d in sent} == {"remind_am": True, "remind_pm": True}
