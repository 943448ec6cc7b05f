"""Staff reminders as WeCom app messages (应用消息), end to end against the local fake WeCom server: tasks
that need someone now, hand-overs, escalations to the lead, the morning digest; the outbox after a crash
(WeCom's duplicate check makes the re-send land once), retries, refusals, the hourly cap and the off
switches. Time moves with the clock fixture."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select
from tests.stafftasks.helpers import add_contact, add_staff, manual, run_daily, run_escalation, send, signed_in

from siyu.adapters.wecom.fake_server import FakeWeCom
from siyu.app import create_app
from siyu.jobs import claim, run_job
from siyu.jobs.models import Job, JobStatus
from siyu.wecom import app_messages
from siyu.wecom import service as wecom_service
from siyu.wecom.models import AppMessageStatus, WeComAppMessage

BASE = "https://siyu.brand.cn"


@pytest.fixture
def fake() -> Iterator[FakeWeCom]:
    with FakeWeCom() as server:
        yield server


@pytest.fixture
def app(db, settings, fake):  # type: ignore[no-untyped-def]
    configured = settings.model_copy(update={"wecom_base_url": fake.url, "delivery_link_base_url": BASE})
    return create_app(settings=configured, database=db)


@pytest.fixture(autouse=True)
def _clock(clock):  # type: ignore[no-untyped-def]
    return clock


def configure(tenant: Any, fake: FakeWeCom, *, agent_id: int | None) -> None:
    body = {
        "corp_id": fake.corp_id,
        "secret": fake.secret,
        "token": "tok",
        "encoding_aes_key": "a" * 43,
        "agent_id": agent_id,
    }
    response = tenant.client.put("/api/v1/wecom/config", json=body)
    assert response.status_code == 200, response.text


def with_userid(tenant: Any, staff_id: int, userid: str) -> None:
    response = tenant.client.patch(f"/api/v1/staff/{staff_id}", json={"wecom_userid": userid})
    assert response.status_code == 200, response.text


def work(db: Any, *, lease: float = 60.0) -> int:
    ran = 0
    while jobs := claim(db, "test-worker", 10, lease, names=[app_messages.APP_MESSAGE_JOB]):
        for job in jobs:
            run_job(db, job, worker_id="test-worker", lease_seconds=lease)
            ran += 1
    return ran


def rows(db: Any) -> list[WeComAppMessage]:
    with db.transaction(write=False) as session:
        return list(session.scalars(select(WeComAppMessage).order_by(WeComAppMessage.id)))


def listed(tenant: Any, **params: Any) -> list[dict[str, Any]]:
    response = tenant.client.get("/api/v1/wecom/app-messages", params=params)
    assert response.status_code == 200, response.text
    return list(response.json())


def test_a_task_given_to_a_staff_member_reaches_their_wecom_as_a_card(tenant, db, fake) -> None:
    configure(tenant, fake, agent_id=fake.agent_id)
    me = add_staff(tenant, "张三")
    with_userid(tenant, me, "zhangsan")
    who = add_contact(tenant, "王女士", me)
    task = manual(tenant.client, "回访：确认试听时间", staff_id=me, contact_id=who, detail="她周三下午有空\n其他")
    assert work(db) == 1
    (message,) = fake.app_messages
    assert message["touser"] == "zhangsan" and message["agentid"] == fake.agent_id
    assert message["msgtype"] == "textcard" and message["enable_duplicate_check"] == 1
    card = message["textcard"]
    assert card["title"] == "新待办：回访：确认试听时间"
    assert card["description"] == "其他 · 截止 10:00\n客户：王女士\n她周三下午有空"
    assert card["url"] == f"{BASE}/console/tasks"
    (row,) = listed(tenant)
    assert (row["status"], row["kind"], row["staff_id"], row["msgid"]) == ("sent", "task", me, message["msgid"])
    assert row["attempts"] == 1 and row["sent_at"] is not None
    # the same task again (a journey step run twice) is one task and one message
    with db.transaction() as session:
        app_messages.notify_staff(
            session, tenant.workspace_id, staff_id=me, kind="task", key=f"task:{task['id']}", title="x", description="y"
        )
    assert work(db) == 0 and len(rows(db)) == 1


def test_no_message_for_a_task_one_writes_oneself_nor_without_a_wecom_app(tenant, db, fake) -> None:
    configure(tenant, fake, agent_id=None)
    me, mine = signed_in(tenant, "顾问")
    with_userid(tenant, me, "guwen")
    manual(tenant.client, "管理员派的", staff_id=me)  # WeCom has no app (agent_id): app messages are off
    assert rows(db) == []
    configure(tenant, fake, agent_id=fake.agent_id)
    manual(mine, "我自己记的")
    assert rows(db) == []
    manual(tenant.client, "管理员派的", staff_id=me)
    assert [r.kind for r in rows(db)] == ["task"]
    assert tenant.client.put("/api/v1/tasks/settings", json={"wecom_notify": False}).status_code == 200
    manual(tenant.client, "关掉以后", staff_id=me)
    assert len(rows(db)) == 1


def test_a_staff_member_without_a_wecom_userid_is_skipped_with_the_reason(tenant, db, fake) -> None:
    configure(tenant, fake, agent_id=fake.agent_id)
    nobody = add_staff(tenant, "没绑企微")
    manual(tenant.client, "回访", staff_id=nobody)
    (row,) = listed(tenant)
    assert (row["status"], row["reason"]) == ("skipped", app_messages.NO_WECOM_USERID)
    assert work(db) == 0 and fake.app_messages == []


def reminder_sent_then_worker_died(tenant: Any, db: Any, fake: FakeWeCom) -> None:
    """A task's reminder reaches WeCom, and the worker dies before recording it."""
    configure(tenant, fake, agent_id=fake.agent_id)
    me = add_staff(tenant, "张三")
    with_userid(tenant, me, "zhangsan")
    manual(tenant.client, "回访", staff_id=me)
    (job,) = claim(db, "doomed", 1, 60, names=[app_messages.APP_MESSAGE_JOB])
    session = db.session()
    app_messages.send_job(session, job)
    session.rollback()
    session.close()


def test_a_crash_after_wecom_accepted_sends_again_and_wecom_drops_the_repeat(tenant, db, fake, clock) -> None:
    reminder_sent_then_worker_died(tenant, db, fake)
    (row,) = rows(db)
    assert row.status is AppMessageStatus.queued and row.call_started_at is not None
    clock.advance(seconds=61)
    assert work(db) == 1
    assert fake.app_message_calls == 2 and len(fake.app_messages) == 1  # the staff member sees it once
    (row,) = rows(db)
    assert (row.status, row.attempts) == (AppMessageStatus.sent, 2)


def test_an_attempt_older_than_the_duplicate_check_is_not_repeated(tenant, db, fake, clock) -> None:
    reminder_sent_then_worker_died(tenant, db, fake)
    clock.advance(hours=4)  # the worker was gone for hours: WeCom would no longer drop a repeat
    assert work(db) == 1
    assert fake.app_message_calls == 1
    (row,) = listed(tenant)
    assert (row["status"], row["reason"]) == ("failed", app_messages.OUTCOME_UNKNOWN)


def test_wecom_unreachable_is_retried_with_backoff_then_sent(tenant, db, fake, clock, settings) -> None:
    configure(tenant, fake, agent_id=fake.agent_id)
    me = add_staff(tenant, "张三")
    with_userid(tenant, me, "zhangsan")
    manual(tenant.client, "回访", staff_id=me)
    fake.stop()
    assert work(db) == 1
    (row,) = rows(db)
    assert row.status is AppMessageStatus.queued and "could not be reached" in (row.detail or "")
    assert row.call_started_at is not None  # the first attempt's time: the duplicate check window runs from it
    with db.transaction(write=False) as session:
        job = session.scalars(select(Job).where(Job.name == app_messages.APP_MESSAGE_JOB)).one()
        assert job.status is JobStatus.queued and job.run_at > clock.now
    fake.start()  # back, on a new port
    wecom_service.use_settings(settings.model_copy(update={"wecom_base_url": fake.url, "delivery_link_base_url": BASE}))
    assert work(db) == 0  # not before its backoff
    clock.advance(minutes=1)
    assert work(db) == 1
    (row,) = rows(db)
    assert row.status is AppMessageStatus.sent and len(fake.app_messages) == 1


def test_a_userid_outside_the_apps_range_fails_with_the_reason(tenant, db, fake) -> None:
    configure(tenant, fake, agent_id=fake.agent_id)
    fake.staff_userids = {"someone_else"}
    me = add_staff(tenant, "张三")
    with_userid(tenant, me, "zhangsan")
    manual(tenant.client, "回访", staff_id=me)
    work(db)
    (row,) = listed(tenant, status="failed")
    assert row["reason"] == app_messages.NOT_IN_APP_RANGE and "81013" in row["detail"]
    assert listed(tenant, status="sent") == []


def test_at_most_the_hourly_cap_per_staff_member(tenant, db, fake, clock) -> None:
    configure(tenant, fake, agent_id=fake.agent_id)
    me = add_staff(tenant, "张三")
    with_userid(tenant, me, "zhangsan")
    for n in range(app_messages.HOURLY_CAP + 1):
        manual(tenant.client, f"回访 {n}", staff_id=me)
    statuses = [r.status for r in rows(db)]
    assert statuses.count(AppMessageStatus.queued) == app_messages.HOURLY_CAP
    assert statuses[-1] is AppMessageStatus.skipped and rows(db)[-1].reason == app_messages.HOURLY_CAP_REACHED
    clock.advance(minutes=61)
    manual(tenant.client, "一小时以后", staff_id=me)
    assert rows(db)[-1].status is AppMessageStatus.queued


def test_a_hand_over_tells_the_new_owner_who_gave_it(tenant, db, fake) -> None:
    configure(tenant, fake, agent_id=fake.agent_id)
    _giver, giver_client = signed_in(tenant, "李四")
    taker = add_staff(tenant, "王五")
    with_userid(tenant, taker, "wangwu")
    task = manual(giver_client, "回访")
    response = giver_client.post(f"/api/v1/tasks/{task['id']}/hand-over", json={"to_staff_id": taker})
    assert response.status_code == 200, response.text
    work(db)
    (message,) = fake.app_messages
    assert message["touser"] == "wangwu" and message["textcard"]["title"] == "李四转给你一项待办：回访"


def test_overdue_tasks_reach_the_lead_in_one_message(tenant, db, fake, clock) -> None:
    configure(tenant, fake, agent_id=fake.agent_id)
    lead, _ = signed_in(tenant, "组长")
    with_userid(tenant, lead, "zuzhang")
    _me, mine = signed_in(tenant, "顾问", lead_id=lead)
    for title in ("回访 A", "回访 B"):
        manual(mine, title, due_at=clock.now.isoformat())
    clock.advance(hours=2, minutes=1)
    assert run_escalation(db, tenant.workspace_id) == (2, 0)
    assert run_escalation(db, tenant.workspace_id) == (0, 0)
    work(db)
    (message,) = fake.app_messages
    assert message["touser"] == "zuzhang"
    assert message["textcard"]["title"] == "团队有 2 项待办已逾期，转给你跟进"
    assert message["textcard"]["description"] == "顾问：回访 A\n顾问：回访 B"


def test_the_morning_digest_counts_todays_tasks_once_a_day(tenant, db, fake, clock) -> None:
    configure(tenant, fake, agent_id=fake.agent_id)
    me = add_staff(tenant, "张三")
    with_userid(tenant, me, "zhangsan")
    quiet = add_staff(tenant, "没任务")
    with_userid(tenant, quiet, "quiet")
    for name in ("问过价", "问过课"):
        add_contact(tenant, name, me, consult_question="多少钱？")
    send(tenant, db)
    # 10:00 in Shanghai: today's follow-ups are made, and the digest (due from 09:00) goes with them
    assert run_daily(db, tenant.workspace_id).follow_ups == 2
    assert run_daily(db, tenant.workspace_id).follow_ups is None
    work(db)
    (digest,) = fake.app_messages
    assert digest["touser"] == "zhangsan"
    assert digest["textcard"]["title"] == "今日待办 2 项"
    assert digest["textcard"]["description"] == "跟进 2"
    settings = tenant.client.get("/api/v1/tasks/settings").json()
    assert settings["digest_done_on"] == "2026-11-23" and settings["wecom_digest_time"] == "09:00:00"
    # the next day at 08:00 (00:00 UTC): the follow-ups are new, the digest waits for 09:00
    clock.advance(hours=22)
    run_daily(db, tenant.workspace_id)
    assert work(db) == 0
    clock.advance(hours=1)
    run_daily(db, tenant.workspace_id)
    work(db)
    assert len(fake.app_messages) == 2
    # yesterday's two follow-ups are still open: they stand for today's, overdue since 18:00
    assert fake.app_messages[-1]["textcard"]["title"] == "今日待办 2 项"
    assert fake.app_messages[-1]["textcard"]["description"] == "跟进 2\n其中已逾期 2 项"
    with db.transaction(write=False) as session:
        by_staff = dict(
            session.execute(select(WeComAppMessage.staff_id, func.count()).group_by(WeComAppMessage.staff_id)).all()
        )
    assert by_staff == {me: 2}


def test_the_digest_can_be_turned_off(tenant, db, fake) -> None:
    configure(tenant, fake, agent_id=fake.agent_id)
    me = add_staff(tenant, "张三")
    with_userid(tenant, me, "zhangsan")
    add_contact(tenant, "问过价", me, consult_question="多少钱？")
    assert tenant.client.put("/api/v1/tasks/settings", json={"wecom_digest_time": None}).status_code == 200
    assert run_daily(db, tenant.workspace_id).follow_ups == 1
    assert rows(db) == []


def test_the_task_page_shows_each_reminder_and_why_one_was_not_sent(app, tenant, db, fake) -> None:
    from tests.console.console_helpers import PASSWORD, sign_in_client

    def staff(email: str, name: str) -> int:
        body = {"email": email, "name": name, "role": "consultant", "password": PASSWORD}
        created = tenant.client.post("/api/v1/staff", json=body)
        assert created.status_code == 201, created.text
        return int(created.json()["id"])

    linked, unlinked = staff("a@brand.cn", "张三"), staff("b@brand.cn", "李四")
    with_userid(tenant, linked, "zhangsan")
    browser = sign_in_client(app, "b@brand.cn")
    assert 'id="reminders"' not in browser.get("/console/tasks").text  # no WeCom app: no such section
    configure(tenant, fake, agent_id=fake.agent_id)
    assert "还没有通过企业微信发出的提醒" in browser.get("/console/tasks").text
    manual(tenant.client, "回访李", staff_id=unlinked)
    manual(tenant.client, "回访张", staff_id=linked)
    work(db)
    page = browser.get("/console/tasks").text
    assert 'data-status="skipped"' in page and "新待办：回访李" in page
    assert "该员工未绑定企业微信账号（wecom_userid）" in page
    assert "回访张" not in page  # another staff member's reminders are theirs
    mine = sign_in_client(app, "a@brand.cn").get("/console/tasks").text
    assert 'data-status="sent"' in mine and "新待办：回访张" in mine
