"""Issue 7's "done when": the onboarding template runs on the demo workspace end to end — welcome,
interest-matched content, a consultant task on day 3, an offer on day 7, exit on purchase — with every
delivery on the contact's timeline and the default budgets respected, moving the clock by hand."""

from __future__ import annotations

from collections import Counter

from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.journeys.journey_helpers import at, enrolment, event, work

from siyu.auth.scopes import Scope
from siyu.auth.service import create_api_key
from siyu.channels.attribution import record_add
from siyu.channels.models import ChannelCode
from siyu.contacts.models import Contact
from siyu.delivery.models import Delivery, DeliveryStatus
from siyu.demo.build import DemoOptions, build_demo
from siyu.journeys.models import EnrolmentStatus
from siyu.stafftasks.models import StaffTask, TaskKind
from siyu.usermodel import pipeline


def _local_day(moment) -> str:  # type: ignore[no-untyped-def]
    from zoneinfo import ZoneInfo

    return moment.astimezone(ZoneInfo("Asia/Shanghai")).date().isoformat()


def test_the_onboarding_template_runs_on_the_demo_workspace(db, app, clock) -> None:  # type: ignore[no-untyped-def]
    demo = build_demo(db, DemoOptions(contacts=150, weeks=1, seed=7, end=clock.now, bulk=False))
    ws = demo.workspace_id
    with db.transaction() as session:
        _, key = create_api_key(session, workspace_id=ws, name="test", scopes=frozenset(Scope))
        code_id = session.scalars(
            select(ChannelCode.id).where(ChannelCode.workspace_id == ws).order_by(ChannelCode.id)
        ).first()
    api = TestClient(app, headers={"Authorization": f"Bearer {key}"})
    pipeline.catch_up(db)  # the user model reads the simulated weeks

    # the content library: published articles on two topics
    topics = api.post("/api/v1/content/tag-groups", json={"name": "主题"}).json()
    exam = api.post(f"/api/v1/content/tag-groups/{topics['id']}/tags", json={"name": "考研"}).json()
    abroad = api.post(f"/api/v1/content/tag-groups/{topics['id']}/tags", json={"name": "留学"}).json()
    read_item, exam_item = (
        api.post(
            "/api/v1/content",
            json={"kind": "article", "title": title, "body": "…", "status": "published", "tag_ids": [exam["id"]]},
        ).json()
        for title in ("考研复习计划", "考研真题精讲")
    )
    abroad_item = api.post(
        "/api/v1/content",
        json={
            "kind": "article",
            "title": "留学申请指南",
            "body": "…",
            "status": "published",
            "tag_ids": [abroad["id"]],
        },
    ).json()

    # the operator instantiates the onboarding template (sandbox channel), publishes and starts it
    created = api.post("/api/v1/journeys/from-template", json={"template": "onboarding", "name": "新客户欢迎"})
    assert created.status_code == 201, created.text
    journey_id = created.json()["id"]
    assert api.post(f"/api/v1/journeys/{journey_id}/publish").status_code == 200
    assert api.post(f"/api/v1/journeys/{journey_id}/activate").status_code == 200

    # day 0, 10:00: two people scan the demo's channel code; one of them reads about 考研 at once
    with db.transaction() as session:
        a = record_add(session, ws, int(code_id), {"phone": "13912340001"}, occurred_at=clock.now).contact_id  # type: ignore[arg-type]
        b = record_add(session, ws, int(code_id), {"phone": "13912340002"}, occurred_at=clock.now).contact_id
    reads = [event(f"read-{n}", "content.viewed", a, content_id=str(read_item["id"])) for n in range(3)]
    assert api.post("/api/v1/events?wait=true", json={"events": reads}).status_code in (200, 201, 202)
    pipeline.catch_up(db)
    work(db)
    with db.transaction(write=False) as session:
        owners = dict(session.execute(select(Contact.id, Contact.owner_id).where(Contact.id.in_([a, b]))).all())
    assert owners[a] and owners[b], "the channel code gave both an owner (the consultant)"

    # day 1, 09:00: b gets a message from elsewhere: the default budget is one message a day
    at(clock, "2026-11-24 09:00")
    other = api.post(
        "/api/v1/delivery/deliveries", json={"contact_id": b, "step": "promo", "channel": "sandbox", "text": "活动"}
    )
    assert other.status_code == 201, other.text
    # day 1, 10:00: interest-matched content
    at(clock, "2026-11-24 10:00")
    pipeline.catch_up(db)
    work(db)
    # day 3, 10:00: the consultant's task
    at(clock, "2026-11-26 10:00")
    work(db)
    with db.transaction(write=False) as session:
        tasks = {t.contact_id: t for t in session.scalars(select(StaffTask).where(StaffTask.workspace_id == ws))}
    assert set(tasks) >= {a, b}
    assert tasks[a].kind is TaskKind.journey and tasks[a].staff_id == owners[a] and tasks[b].staff_id == owners[b]
    # day 5: b buys and leaves the journey at once, while waiting for day 7
    at(clock, "2026-11-28 15:00")
    paid = api.post(
        "/api/v1/events?wait=true", json={"events": [event("pay-b", "order.paid", b, order_id="B1", amount=399)]}
    )
    assert paid.status_code in (200, 201, 202)
    work(db)
    row = enrolment(db, journey_id, b)
    assert (row.status, row.exit_reason, row.step) == (EnrolmentStatus.exited, "goal", "day7")
    # day 7, 10:00: the offer, to a only
    at(clock, "2026-11-30 10:00")
    work(db)
    assert enrolment(db, journey_id, a).status is EnrolmentStatus.completed

    with db.transaction(write=False) as session:
        sent = session.execute(
            select(
                Delivery.contact_id,
                Delivery.step,
                Delivery.status,
                Delivery.reason,
                Delivery.content_id,
                Delivery.created_at,
            )
            .where(Delivery.workspace_id == ws, Delivery.contact_id.in_([a, b]))
            .order_by(Delivery.id)
        ).all()
    journey_rows = [(c, s, st) for c, s, st, _, _, _ in sent if s != "promo"]
    assert [(s, st) for c, s, st in journey_rows if c == a] == [
        ("welcome", DeliveryStatus.sent),
        ("interest", DeliveryStatus.sent),
        ("offer", DeliveryStatus.sent),
    ]
    interest = next(r for r in sent if r[0] == a and r[1] == "interest")
    # matched to what a reads (考研), and not the article a has read already
    assert interest[4] == exam_item["id"] and abroad_item["id"] != exam_item["id"]
    # b: welcome; day 1's content held back by the daily cap (reason recorded); no offer after buying
    b_rows = [(s, st, reason) for c, s, st, reason, _, _ in sent if c == b and s != "promo"]
    assert b_rows[0][:2] == ("welcome", DeliveryStatus.sent)
    assert b_rows[1][0] == "interest" and b_rows[1][1] is DeliveryStatus.skipped and b_rows[1][2] == "cap_day"
    assert [r[0] for r in b_rows] == ["welcome", "interest"]
    # budgets: nobody got more than one accepted message on a local day
    accepted = Counter((c, _local_day(at_)) for c, _, st, _, _, at_ in sent if st is DeliveryStatus.sent)
    assert max(accepted.values()) == 1

    # every delivery and the journey's entry and exit are on the contact's timeline
    for person, steps in ((a, {"welcome", "interest", "offer"}), (b, {"welcome", "interest"})):
        entries = api.get(f"/api/v1/contacts/{person}/timeline", params={"limit": 100}).json()["items"]
        kinds = Counter(e["kind"] for e in entries)
        assert kinds["delivery"] >= len(steps)
        shown = {(e["data"]["source"], e["data"]["step"]) for e in entries if e["kind"] == "delivery"}
        assert {(f"journey:{journey_id}", s) for s in steps} <= shown
        types = [e["data"].get("type") for e in entries if e["kind"] == "event"]
        assert "journey.entered" in types and "journey.exited" in types

    numbers = api.get(f"/api/v1/journeys/{journey_id}/numbers").json()
    steps = {s["step"]: s for s in numbers["steps"]}
    assert steps["welcome"]["sent"] == 2 and steps["interest"]["skipped"] == 1 and steps["offer"]["sent"] == 1
    assert steps["consultant"]["sent"] == 2 and steps["day7"]["goal"] == 1
    assert numbers["conversion"]["overall"] == {**numbers["conversion"]["overall"], "n": 2, "converted": 1}
