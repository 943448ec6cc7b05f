"""WeCom broadcasts against the local fake WeCom server: one add_msg_template task per sending staff
member, at most once; confirmations and per-customer results read back (staff confirm in the fake);
each customer's delivery counted against their budgets and settled by WeCom's result; reminders; group
messages."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update
from tests.broadcasts.broadcast_helpers import contact, published, tag, work

from siyu.adapters.wecom.fake_server import FakeWeCom
from siyu.app import create_app
from siyu.broadcasts import wecom
from siyu.broadcasts.models import BroadcastWeComTarget, BroadcastWeComTask, WeComTaskStatus
from siyu.delivery.models import ContactSendDay, Delivery, DeliveryStatus, StaffSendDay
from siyu.staff.models import Staff
from siyu.stafftasks.models import StaffTask

_n = itertools.count(1)


@pytest.fixture
def fake():  # type: ignore[no-untyped-def]
    with FakeWeCom() as server:
        yield server


@pytest.fixture
def app(db, settings, fake):  # type: ignore[no-untyped-def]
    return create_app(settings=settings.model_copy(update={"wecom_base_url": fake.url}), database=db)


@pytest.fixture(autouse=True)
def _clock(clock):  # type: ignore[no-untyped-def]
    return clock


def configure(tenant: Any, fake: FakeWeCom) -> None:
    body = {"corp_id": fake.corp_id, "secret": fake.secret, "token": "tok", "encoding_aes_key": "a" * 43}
    response = tenant.client.put("/api/v1/wecom/config", json=body)
    assert response.status_code == 200, response.text


def staff(tenant: Any, db: Any, userid: str | None) -> int:
    made = tenant.client.post(
        "/api/v1/staff", json={"email": f"s{next(_n)}@brand.cn", "name": userid or "无企微", "role": "consultant"}
    )
    assert made.status_code == 201, made.text
    staff_id = int(made.json()["id"])
    with db.transaction() as session:
        session.execute(update(Staff).where(Staff.id == staff_id).values(wecom_userid=userid))
    return staff_id


def customer(tenant: Any, name: str, owner: int, tags: list[int], external: str | None) -> int:
    identities = [{"type": "wecom_external_userid", "value": external}] if external else []
    return contact(tenant, name, tags=tags, owner_id=owner, identities=identities)


def run_wecom(db: Any) -> None:
    work(db)
    wecom.create_pending(db)
    wecom.check_results(db)


def deliveries_of(db: Any, broadcast_id: int) -> dict[int, tuple[str, str | None]]:
    """contact id -> (status, reason) of the broadcast's deliveries."""
    with db.transaction(write=False) as session:
        rows = session.execute(
            select(Delivery.contact_id, Delivery.status, Delivery.reason).where(
                Delivery.source == f"broadcast:{broadcast_id}"
            )
        ).all()
    return {int(c): (DeliveryStatus(s).value, r) for c, s, r in rows}


def sends_counted(db: Any, contact_id: int) -> int:
    """Messages counted against the contact's budget (all days)."""
    with db.transaction(write=False) as session:
        total = session.scalar(
            select(func.coalesce(func.sum(ContactSendDay.sends), 0)).where(ContactSendDay.contact_id == contact_id)
        )
    return int(total or 0)


def tasks_of(db: Any, broadcast_id: int) -> list[BroadcastWeComTask]:
    with db.transaction(write=False) as session:
        return list(
            session.scalars(
                select(BroadcastWeComTask)
                .where(BroadcastWeComTask.broadcast_id == broadcast_id)
                .order_by(BroadcastWeComTask.staff_id)
            )
        )


@pytest.fixture
def world(tenant, db, fake) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    configure(tenant, fake)
    exam = tag(tenant)
    zhang, li = staff(tenant, db, "zhangsan"), staff(tenant, db, "lisi")
    nobody = staff(tenant, db, None)  # no WeCom account: cannot send
    people = {
        "a1": customer(tenant, "甲1", zhang, [exam], "wmA1"),
        "a2": customer(tenant, "甲2", zhang, [exam], "wmA2"),
        "b1": customer(tenant, "乙1", li, [exam], "wmB1"),
        "no_id": customer(tenant, "没有企微", li, [exam], None),
        "no_sender": customer(tenant, "负责人无企微", nobody, [exam], "wmX"),
        "opted": customer(tenant, "退订", li, [exam], "wmO"),
    }
    tenant.client.post("/api/v1/delivery/opt-outs", json={"contact_id": people["opted"]})
    return {"tag": exam, "zhang": zhang, "li": li, "people": people}


def _create(tenant: Any, **extra: Any) -> dict[str, Any]:
    body = {"name": "双十一", "text": "双十一全场五折", "channel": "wecom", **extra}
    response = tenant.client.post("/api/v1/broadcasts", json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def test_one_task_per_staff_member_with_their_customers(tenant, db, fake, world) -> None:  # type: ignore[no-untyped-def]
    b = _create(tenant, audience={"tag_ids": [world["tag"]]})
    assert b["plan"] | {"at": None} == {
        "unit": "contacts",
        "total": 6,
        "eligible": 3,
        "excluded": {"opted_out": 1, "no_address": 2},
        "at": None,
    }
    assert b["status"] == "sending"  # the frozen audience goes through delivery's checks in batches
    work(db)
    b = tenant.client.get(f"/api/v1/broadcasts/{b['id']}").json()
    assert b["status"] == "sent"  # handed to staff: nothing more for siyu to send
    assert b["progress"]["queued"] == 3 and b["progress"]["skipped"] == 3
    assert b["progress"]["reasons"] == {"opted_out": 1, "no_address": 2}
    assert b["wecom"] == {"tasks": 2, "confirmed": 0, "waiting": 0, "failed": 0}
    run_wecom(db)
    calls = sorted(fake.msg_templates, key=lambda t: t["sender"])
    assert [(t["sender"], t["chat_type"], t["external_userid"]) for t in calls] == [
        ("lisi", "single", ["wmB1"]),
        ("zhangsan", "single", ["wmA1", "wmA2"]),
    ]
    assert all(t["text"] == {"content": "双十一全场五折"} for t in calls)
    # nothing repeats on later turns
    run_wecom(db)
    work(db)
    assert len(fake.calls_to("externalcontact/add_msg_template")) == 2
    staff_list = tenant.client.get(f"/api/v1/broadcasts/{b['id']}/staff").json()
    assert {(s["staff_id"], s["status"], s["target_count"]) for s in staff_list} == {
        (world["zhang"], "created", 2),
        (world["li"], "created", 1),
    }
    assert all(s["msgid"] for s in staff_list)


def test_confirmations_are_read_back_and_the_unconfirmed_reminded(tenant, db, fake, world, clock) -> None:  # type: ignore[no-untyped-def]
    b = _create(tenant, audience={"tag_ids": [world["tag"]]})
    run_wecom(db)
    waiting = tenant.client.get(f"/api/v1/broadcasts/{b['id']}/staff", params={"unconfirmed": True}).json()
    assert {s["staff_id"] for s in waiting} == {world["zhang"], world["li"]}

    fake.remove_customer("wmA2", "zhangsan")  # deleted the staff member after the task was made
    assert len(fake.confirm_msg_template("zhangsan", send_time=int(clock.now.timestamp()))) == 1
    run_wecom(db)  # checked less than CHECK_EVERY ago: nothing is read yet
    assert {s["status"] for s in tenant.client.get(f"/api/v1/broadcasts/{b['id']}/staff").json()} == {"created"}
    clock.advance(minutes=6)
    run_wecom(db)
    rows = {s["staff_id"]: s for s in tenant.client.get(f"/api/v1/broadcasts/{b['id']}/staff").json()}
    assert rows[world["zhang"]]["status"] == "confirmed"
    assert (rows[world["zhang"]]["sent_count"], rows[world["zhang"]]["failed_count"]) == (1, 1)
    assert rows[world["li"]]["status"] == "created"
    unconfirmed = tenant.client.get(f"/api/v1/broadcasts/{b['id']}/staff", params={"unconfirmed": True}).json()
    assert [s["staff_id"] for s in unconfirmed] == [world["li"]]
    got = tenant.client.get(f"/api/v1/broadcasts/{b['id']}").json()
    assert got["wecom"] == {"tasks": 2, "confirmed": 1, "waiting": 1, "failed": 0}
    with db.transaction(write=False) as session:
        results = dict(session.execute(select(BroadcastWeComTarget.external_userid, BroadcastWeComTarget.result)).all())
    assert results == {"wmA1": 1, "wmA2": 2, "wmB1": None}

    reminded = tenant.client.post(f"/api/v1/broadcasts/{b['id']}/staff/{world['li']}/remind")
    assert reminded.status_code == 201, reminded.text
    again = tenant.client.post(f"/api/v1/broadcasts/{b['id']}/staff/{world['li']}/remind")
    assert again.json()["task_id"] == reminded.json()["task_id"]  # one reminder a day
    with db.transaction(write=False) as session:
        task = session.get(StaffTask, reminded.json()["task_id"])
        assert task is not None and task.staff_id == world["li"] and "双十一" in task.title
    assert tenant.client.post(f"/api/v1/broadcasts/{b['id']}/staff/{world['zhang']}/remind").status_code == 409
    assert tenant.client.post(f"/api/v1/broadcasts/{b['id']}/staff/987654/remind").status_code == 404

    # a refresh reads again on the next turn, without waiting CHECK_EVERY
    fake.confirm_msg_template("lisi", send_time=int(clock.now.timestamp()))
    assert tenant.client.post(f"/api/v1/broadcasts/{b['id']}/refresh").status_code == 200
    run_wecom(db)
    assert tenant.client.get(f"/api/v1/broadcasts/{b['id']}").json()["wecom"]["confirmed"] == 2


def test_task_creation_is_at_most_once(tenant, db, fake, world, clock) -> None:  # type: ignore[no-untyped-def]
    b = _create(tenant, audience={"tag_ids": [world["tag"]]})
    work(db)
    # the worker dies after marking a task `creating` and before recording WeCom's answer
    first = tasks_of(db, b["id"])[0]
    assert wecom._claim(db, first.id, clock.now) is not None
    clock.advance(minutes=11)
    wecom.create_pending(db)
    states = {t.id: t.status for t in tasks_of(db, b["id"])}
    assert states[first.id] is WeComTaskStatus.unknown  # never repeated
    other = "zhangsan" if first.staff_id == world["li"] else "lisi"
    assert [t["sender"] for t in fake.msg_templates] == [other]  # only the other task was created
    assert tenant.client.get(f"/api/v1/broadcasts/{b['id']}").json()["wecom"]["failed"] == 1


def test_busy_waits_and_refusals_fail(tenant, db, fake, world, clock) -> None:  # type: ignore[no-untyped-def]
    def no_sleep(config: Any) -> Any:
        return config.client(base_url=fake.url, sleep=lambda _seconds: None)

    fake.fail("externalcontact/add_msg_template", -1, times=4)  # busy: the client retries 3 times, then gives up
    b = _create(tenant, audience={"tag_ids": [world["tag"]]})
    work(db)
    first, second = (t.id for t in tasks_of(db, b["id"]))
    wecom.create_pending(db, make_client=no_sleep)  # busy: stops this turn, the other task waits too
    assert {t.status for t in tasks_of(db, b["id"])} == {WeComTaskStatus.pending}
    assert len(fake.calls_to("externalcontact/add_msg_template")) == 4
    wecom.create_pending(db, make_client=no_sleep)  # the busy one waits RETRY_AFTER; the other goes
    states = {t.id: t.status for t in tasks_of(db, b["id"])}
    assert states == {first: WeComTaskStatus.pending, second: WeComTaskStatus.created}
    clock.advance(minutes=2)
    fake.fail("externalcontact/add_msg_template", 41048)  # refused for good
    wecom.create_pending(db, make_client=no_sleep)
    statuses = sorted(t.status.value for t in tasks_of(db, b["id"]))
    assert statuses == ["created", "failed"]
    failed = next(t for t in tasks_of(db, b["id"]) if t.status is WeComTaskStatus.failed)
    assert failed.error and "41048" in failed.error


def test_cancel_stops_tasks_not_yet_created(tenant, db, fake, world) -> None:  # type: ignore[no-untyped-def]
    people = world["people"]
    before_batches = _create(tenant, audience={"tag_ids": [world["tag"]]})
    cancelled = tenant.client.post(f"/api/v1/broadcasts/{before_batches['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    run_wecom(db)
    assert tasks_of(db, before_batches["id"]) == [] and deliveries_of(db, before_batches["id"]) == {}

    b = _create(tenant, name="任务未建", audience={"tag_ids": [world["tag"]]})
    work(db)  # every batch done: the tasks wait to be created in WeCom
    assert sends_counted(db, people["a1"]) == 1
    assert tenant.client.post(f"/api/v1/broadcasts/{b['id']}/cancel").status_code == 200
    run_wecom(db)
    assert fake.msg_templates == []
    assert {t.status for t in tasks_of(db, b["id"])} == {WeComTaskStatus.cancelled}
    settled = deliveries_of(db, b["id"])
    assert {settled[people[k]] for k in ("a1", "a2", "b1")} == {("failed", "send_failed")}
    assert sends_counted(db, people["a1"]) == 0  # the budget came back: the customer can be reached today

    other = _create(tenant, name="已交给员工", audience={"tag_ids": [world["tag"]]})
    run_wecom(db)
    assert len(fake.msg_templates) == 2
    assert tenant.client.post(f"/api/v1/broadcasts/{other['id']}/cancel").status_code == 409


def test_a_wecom_broadcast_counts_toward_the_contacts_budgets(tenant, db, fake, world) -> None:  # type: ignore[no-untyped-def]
    people = world["people"]
    first = _create(tenant, audience={"tag_ids": [world["tag"]]})
    run_wecom(db)
    outcomes = deliveries_of(db, first["id"])
    assert {outcomes[people[k]] for k in ("a1", "a2", "b1")} == {("queued", "sent_by_caller")}
    assert outcomes[people["opted"]] == ("skipped", "opted_out")
    assert outcomes[people["no_id"]] == outcomes[people["no_sender"]] == ("skipped", "no_address")
    assert sends_counted(db, people["a1"]) == 1
    with db.transaction(write=False) as session:  # the sending staff accounts' days too
        assert session.scalar(select(StaffSendDay.sends).where(StaffSendDay.staff_id == world["zhang"])) == 2

    # on the contact's timeline and in the deliveries log
    timeline = tenant.client.get(f"/api/v1/contacts/{people['a1']}/timeline").json()["items"]
    (entry,) = [e for e in timeline if e["kind"] == "delivery"]
    assert entry["data"]["source"] == f"broadcast:{first['id']}" and entry["data"]["channel"] == "wecom"
    assert entry["data"]["status"] == "queued" and entry["data"]["reason"] == "sent_by_caller"
    log = tenant.client.get("/api/v1/delivery/deliveries", params={"source": f"broadcast:{first['id']}"}).json()
    assert {d["contact_id"] for d in log["items"] if d["status"] == "queued"} == {
        people["a1"],
        people["a2"],
        people["b1"],
    }

    # a second broadcast the same day: the customers already had today's message (default cap: 1 a day)
    second = _create(tenant, name="第二次", audience={"tag_ids": [world["tag"]]})
    assert second["plan"]["eligible"] == 0 and second["plan"]["excluded"]["cap_day"] == 3
    run_wecom(db)
    got = tenant.client.get(f"/api/v1/broadcasts/{second['id']}").json()
    assert got["progress"]["queued"] == 0 and got["progress"]["reasons"]["cap_day"] == 3
    assert got["wecom"]["tasks"] == 0 and len(fake.msg_templates) == 2
    assert deliveries_of(db, second["id"])[people["a1"]] == ("skipped", "cap_day")
    # and across channels: no sandbox message to them today either
    sandbox = tenant.client.post(
        "/api/v1/delivery/deliveries", json={"contact_id": people["a1"], "step": "x", "channel": "sandbox", "text": "t"}
    ).json()
    assert (sandbox["status"], sandbox["reason"]) == ("skipped", "cap_day")


def test_per_customer_results_settle_the_deliveries(tenant, db, fake, world, clock) -> None:  # type: ignore[no-untyped-def]
    people = world["people"]
    fake.remove_customer("wmB1")  # deleted li before the task was made: WeCom leaves them out (fail_list)
    b = _create(tenant, audience={"tag_ids": [world["tag"]]})
    run_wecom(db)
    assert deliveries_of(db, b["id"])[people["b1"]] == ("failed", "send_failed")
    assert sends_counted(db, people["b1"]) == 0

    fake.remove_customer("wmA2", "zhangsan")  # deleted zhangsan after the task was made
    confirmed_at = int(clock.now.timestamp()) + 60
    fake.confirm_msg_template("zhangsan", send_time=confirmed_at)
    clock.advance(minutes=6)
    run_wecom(db)
    with db.transaction(write=False) as session:
        rows = {
            d.contact_id: d for d in session.scalars(select(Delivery).where(Delivery.source == f"broadcast:{b['id']}"))
        }
        msgid = next(t.msgid for t in tasks_of(db, b["id"]) if t.staff_id == world["zhang"])
    sent, gone = rows[people["a1"]], rows[people["a2"]]
    assert (sent.status, sent.reason, sent.external_id) == (DeliveryStatus.sent, None, msgid)
    assert sent.sent_at is not None and int(sent.sent_at.timestamp()) == confirmed_at
    assert (gone.status, gone.reason) == (DeliveryStatus.failed, "send_failed")
    assert "status 2" in (gone.detail or "")
    assert sends_counted(db, people["a1"]) == 1 and sends_counted(db, people["a2"]) == 0
    with db.transaction(write=False) as session:
        assert session.scalar(select(StaffSendDay.sends).where(StaffSendDay.staff_id == world["zhang"])) == 1

    # repeated reads change nothing; the last read after the results settled changes nothing more here
    clock.advance(hours=2)
    run_wecom(db)
    assert deliveries_of(db, b["id"])[people["a1"]] == ("sent", None)


def test_a_refused_or_lost_task_settles_its_customers(tenant, db, fake, world, clock) -> None:  # type: ignore[no-untyped-def]
    people = world["people"]
    b = _create(tenant, audience={"tag_ids": [world["tag"]]})
    work(db)
    zhang_task, li_task = sorted(tasks_of(db, b["id"]), key=lambda t: t.staff_id != world["zhang"])
    # the worker dies while creating zhangsan's task: WeCom may have it, so the customers' outcome is unknown
    assert wecom._claim(db, zhang_task.id, clock.now) is not None
    fake.fail("externalcontact/add_msg_template", 41048)  # and WeCom refuses lisi's
    clock.advance(minutes=11)
    wecom.create_pending(db)
    outcomes = deliveries_of(db, b["id"])
    assert outcomes[people["a1"]] == outcomes[people["a2"]] == ("unknown", "outcome_unknown")
    assert sends_counted(db, people["a1"]) == 1  # it may have gone out: the budget stays spent
    assert outcomes[people["b1"]] == ("failed", "send_failed")
    assert sends_counted(db, people["b1"]) == 0
    assert {t.id: t.status for t in tasks_of(db, b["id"])} == {
        zhang_task.id: WeComTaskStatus.unknown,
        li_task.id: WeComTaskStatus.failed,
    }


def test_content_goes_as_a_link_or_as_text(tenant, db, fake, world) -> None:  # type: ignore[no-untyped-def]
    no_caps = {"caps": {"day": None, "week": None, "month": None}}  # two broadcasts today to the same customers
    assert tenant.client.put("/api/v1/delivery/settings", json=no_caps).status_code == 200
    video = tenant.client.post(
        "/api/v1/content",
        json={"kind": "video", "title": "直播回放", "data": {"url": "https://v.example.cn/1"}, "status": "published"},
    )
    assert video.status_code == 201, video.text
    _create(tenant, audience={"tag_ids": [world["tag"]]}, content_id=video.json()["id"], text="回放来了")
    article = published(tenant, "备考指南")
    _create(tenant, name="文章", audience={"tag_ids": [world["tag"]]}, content_id=article, text=None)
    run_wecom(db)
    by_text = {t["text"]["content"]: t for t in fake.msg_templates}
    assert by_text["回放来了"]["attachments"] == [
        {"msgtype": "link", "link": {"title": "直播回放", "url": "https://v.example.cn/1"}}
    ]
    assert "备考指南\n\n全场五折" in by_text


def test_a_group_broadcast_is_a_group_message_through_each_owner(tenant, db, fake, world) -> None:  # type: ignore[no-untyped-def]
    def group(name: str, owner: int | None, chat_id: str | None) -> int:
        body: dict[str, Any] = {"name": name, "purpose": "broadcast", "owner_staff_id": owner, "wecom_chat_id": chat_id}
        made = tenant.client.post("/api/v1/groups", json=body)
        assert made.status_code == 201, made.text
        return int(made.json()["id"])

    g1 = group("考研1群", world["zhang"], "wrG1")
    g2 = group("考研2群", world["zhang"], "wrG2")
    g3 = group("考研3群", world["li"], "wrG3")
    g4 = group("未建群", world["li"], None)
    preview = tenant.client.post(
        "/api/v1/broadcasts/preview",
        json={"text": "今晚八点直播", "channel": "wecom", "audience": {"group_ids": [g1, g2, g3, g4]}},
    ).json()
    assert preview | {"at": None} == {
        "unit": "groups",
        "total": 4,
        "eligible": 3,
        "excluded": {"group_not_in_wecom": 1},
        "at": None,
    }
    b = _create(tenant, text="今晚八点直播", audience={"group_ids": [g1, g2, g3, g4]})
    run_wecom(db)
    assert sorted((t["sender"], t["chat_type"], "external_userid" in t) for t in fake.msg_templates) == [
        ("lisi", "group", False),
        ("zhangsan", "group", False),
    ]
    rows = {s["staff_id"]: s for s in tenant.client.get(f"/api/v1/broadcasts/{b['id']}/staff").json()}
    assert rows[world["zhang"]]["target_count"] == 2 and rows[world["zhang"]]["chat_type"] == "group"
    # the same groups through the sandbox: a message to each current member instead
    sandbox = tenant.client.post(
        "/api/v1/broadcasts/preview",
        json={"text": "x", "channel": "sandbox", "audience": {"group_ids": [g1]}},
    ).json()
    assert sandbox["unit"] == "contacts" and sandbox["total"] == 0


def test_the_wecom_plan_respects_the_staff_daily_limit(tenant, db, fake, world) -> None:  # type: ignore[no-untyped-def]
    limited = tenant.client.put(
        f"/api/v1/delivery/staff-accounts/{world['zhang']}", json={"send_limit": 1, "warmup_days": 0}
    )
    assert limited.status_code == 200, limited.text
    b = _create(tenant, audience={"tag_ids": [world["tag"]]})
    assert b["plan"]["excluded"].get("staff_limit") == 1
    run_wecom(db)
    zhang = next(t for t in fake.msg_templates if t["sender"] == "zhangsan")
    assert len(zhang["external_userid"]) == 1


def test_wecom_needs_its_settings_when_the_broadcast_starts(tenant, db, fake, world, clock) -> None:  # type: ignore[no-untyped-def]
    later = (clock.now + dt.timedelta(hours=1)).isoformat()
    b = _create(tenant, audience={"tag_ids": [world["tag"]]}, run_at=later)
    from siyu.wecom.models import WeComSettings

    with db.transaction() as session:
        session.execute(delete(WeComSettings))
    clock.advance(hours=1)
    work(db)
    got = tenant.client.get(f"/api/v1/broadcasts/{b['id']}").json()
    assert got["status"] == "failed" and "WeCom" in got["error"]
