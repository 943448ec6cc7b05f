"""External channels against real local servers: webhook (signature, retries with backoff, dead letter),
e-mail (aiosmtpd), WeCom (the fake server); and the outbox after a crash: a job run twice sends once
(sandbox exactly once; the webhook repeats with the same idempotency key; WeCom is not repeated)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select, update
from tests.delivery.channel_helpers import SmtpServer, WebhookReceiver, work
from tests.delivery.delivery_helpers import req

from siyu.adapters import webhook
from siyu.adapters.wecom.fake_server import FakeWeCom
from siyu.app import create_app
from siyu.delivery import channels, reasons
from siyu.delivery.models import ContactSendDay, Delivery, DeliveryStatus, SandboxMessage, StaffSendDay
from siyu.delivery.service import Channel, send_many
from siyu.jobs import claim
from siyu.jobs.models import Job, JobStatus
from siyu.staff.models import Staff


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def fake() -> Iterator[FakeWeCom]:
    with FakeWeCom() as server:
        yield server


@pytest.fixture
def app(db, settings, fake, smtp):  # type: ignore[no-untyped-def]
    configured = settings.model_copy(
        update={
            "wecom_base_url": fake.url,
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "smtp_starttls": False,
            "smtp_from": "品牌 <noreply@brand.cn>",
            "delivery_link_base_url": "https://siyu.brand.cn",
            "delivery_webhook_timeout_seconds": 5.0,
        }
    )
    return create_app(settings=configured, database=db)


def _contact(tenant: Any, **extra: Any) -> int:
    response = tenant.client.post("/api/v1/contacts", json={"name": "客户", **extra})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _send(tenant: Any, contact: int, channel: str, step: str = "a", **extra: Any) -> dict[str, Any]:
    response = tenant.client.post(
        "/api/v1/delivery/deliveries",
        json={"contact_id": contact, "step": step, "channel": channel, "text": "双十一福利来了", **extra},
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def _delivery(db: Any, delivery_id: int) -> Delivery:
    with db.transaction(write=False) as session:
        row = session.get(Delivery, delivery_id)
        assert row is not None
        return row


def _sends_counted(db: Any, contact: int) -> int:
    with db.transaction(write=False) as session:
        return int(
            session.scalar(
                select(func.coalesce(func.sum(ContactSendDay.sends), 0)).where(ContactSendDay.contact_id == contact)
            )
            or 0
        )


# --- webhook ---------------------------------------------------------------------------------------------


def _webhook_settings(tenant: Any, receiver: WebhookReceiver, **extra: Any) -> str:
    response = tenant.client.put("/api/v1/delivery/settings", json={"webhook_url": receiver.url, **extra})
    assert response.status_code == 200, response.text
    return str(response.json()["webhook_secret"])


def test_a_webhook_is_signed_and_carries_the_delivery_id(tenant, db, receiver, clock) -> None:
    secret = _webhook_settings(tenant, receiver)
    contact = _contact(tenant, identities=[{"type": "email", "value": "li@x.cn"}])
    queued = _send(tenant, contact, "webhook", payload={"order_id": "A1"})
    assert queued["status"] == "queued"
    assert work(db) == 1
    (hit,) = receiver.hits
    assert hit.headers[webhook.DELIVERY_HEADER] == str(queued["id"])
    assert webhook.verify(
        secret, hit.headers[webhook.TIMESTAMP_HEADER], hit.body, hit.headers[webhook.SIGNATURE_HEADER]
    )
    assert not webhook.verify(
        "whsec_other", hit.headers[webhook.TIMESTAMP_HEADER], hit.body, hit.headers[webhook.SIGNATURE_HEADER]
    )
    body = orjson.loads(hit.body)
    assert body["id"] == queued["id"] and body["contact"]["id"] == contact and body["payload"] == {"order_id": "A1"}
    assert body["contact"]["identities"]["email"] == "li@x.cn"
    row = _delivery(db, queued["id"])
    assert (row.status, row.external_id, row.attempts) == (DeliveryStatus.sent, "HTTP 200", 1)
    assert work(db) == 0


def test_webhook_retries_with_backoff_then_succeeds(tenant, db, receiver, clock) -> None:
    _webhook_settings(tenant, receiver)
    receiver.statuses = [500, 503]
    contact = _contact(tenant)
    queued = _send(tenant, contact, "webhook")
    assert work(db) == 1
    row = _delivery(db, queued["id"])
    assert row.status is DeliveryStatus.queued and "attempt 1 of 8 failed: HTTP 500" in (row.detail or "")
    assert work(db) == 0  # waiting for the backoff
    clock.advance(seconds=31)
    assert work(db) == 1
    clock.advance(seconds=61)
    assert work(db) == 1
    assert _delivery(db, queued["id"]).status is DeliveryStatus.sent
    assert {h.headers[webhook.DELIVERY_HEADER] for h in receiver.hits} == {str(queued["id"])}
    assert len(receiver.hits) == 3


def test_webhook_dead_letter_after_max_attempts_gives_the_budget_back(tenant, db, receiver, clock) -> None:
    _webhook_settings(tenant, receiver, webhook_max_attempts=2)
    receiver.statuses = [500] * 10
    contact = _contact(tenant)
    queued = _send(tenant, contact, "webhook")
    assert _sends_counted(db, contact) == 1
    work(db)
    clock.advance(minutes=5)
    work(db)
    row = _delivery(db, queued["id"])
    assert (row.status, row.reason) == (DeliveryStatus.failed, reasons.DEAD_LETTER)
    assert _sends_counted(db, contact) == 0
    assert len(receiver.hits) == 2
    # the budget given back: another message may go out today
    assert _send(tenant, contact, "sandbox", step="b")["status"] == "sent"


def test_a_permanent_refusal_fails_at_once(tenant, db, receiver, clock) -> None:
    _webhook_settings(tenant, receiver)
    receiver.statuses = [410]
    contact = _contact(tenant)
    queued = _send(tenant, contact, "webhook")
    work(db)
    row = _delivery(db, queued["id"])
    assert (row.status, row.reason) == (DeliveryStatus.failed, reasons.SEND_FAILED) and "HTTP 410" in (row.detail or "")
    assert _sends_counted(db, contact) == 0


def test_a_webhook_run_twice_after_a_crash_repeats_the_same_idempotency_key(tenant, db, receiver, clock) -> None:
    _webhook_settings(tenant, receiver)
    contact = _contact(tenant)
    queued = _send(tenant, contact, "webhook")
    (job,) = claim(db, "doomed", 1, 60)
    session = db.session()
    channels.send_job(session, job)  # the call is made ...
    session.rollback()  # ... and the worker dies before its outcome commits
    session.close()
    assert _delivery(db, queued["id"]).status is DeliveryStatus.queued
    clock.advance(seconds=61)  # the lease runs out; another worker takes the job
    assert work(db) == 1
    assert [h.headers[webhook.DELIVERY_HEADER] for h in receiver.hits] == [str(queued["id"])] * 2
    row = _delivery(db, queued["id"])
    assert (row.status, row.attempts) == (DeliveryStatus.sent, 2)
    assert _sends_counted(db, contact) == 1


# --- e-mail ----------------------------------------------------------------------------------------------


def test_email_goes_through_smtp_with_the_delivery_in_its_message_id(tenant, db, smtp, clock) -> None:
    item = tenant.client.post(
        "/api/v1/content", json={"kind": "article", "title": "备考指南", "body": "正文", "status": "published"}
    ).json()
    contact = _contact(tenant, identities=[{"type": "email", "value": "Wang@X.cn"}])
    queued = _send(tenant, contact, "email", content_id=item["id"])
    assert queued["link"].startswith("/r/")
    assert work(db) == 1
    (message,) = smtp.messages
    assert message["To"] == "wang@x.cn"
    assert message["Message-ID"] == f"<delivery-{queued['id']}.siyu@brand.cn>"
    assert message["Subject"] == "备考指南"
    text = message.get_content()
    assert "双十一福利来了" in text and f"https://siyu.brand.cn{queued['link']}" in text
    row = _delivery(db, queued["id"])
    assert (row.status, row.external_id) == (DeliveryStatus.sent, message["Message-ID"])
    no_email = _contact(tenant)
    skipped = _send(tenant, no_email, "email")
    assert (skipped["status"], skipped["reason"]) == ("skipped", "no_address")


# --- WeCom -----------------------------------------------------------------------------------------------


def _wecom_setup(tenant: Any, db: Any, fake: FakeWeCom) -> tuple[int, int]:
    body = {"corp_id": fake.corp_id, "secret": fake.secret, "token": "tok", "encoding_aes_key": "a" * 43}
    assert tenant.client.put("/api/v1/wecom/config", json=body).status_code == 200
    staff = tenant.client.post("/api/v1/staff", json={"email": "z@x.cn", "name": "张三", "role": "consultant"}).json()
    with db.transaction() as session:
        session.execute(update(Staff).where(Staff.id == staff["id"]).values(wecom_userid="zhangsan"))
    contact = _contact(
        tenant, owner_id=staff["id"], identities=[{"type": "wecom_external_userid", "value": "wmEXT001"}]
    )
    return staff["id"], contact


def test_wecom_sends_one_to_one_through_the_owner(tenant, db, fake, clock) -> None:
    staff_id, contact = _wecom_setup(tenant, db, fake)
    queued = _send(tenant, contact, "wecom")
    assert queued["staff_id"] == staff_id
    assert work(db) == 1
    (call,) = fake.msg_templates
    assert (call["sender"], call["external_userid"], call["text"]) == (
        "zhangsan",
        ["wmEXT001"],
        {"content": "双十一福利来了"},
    )
    row = _delivery(db, queued["id"])
    assert (row.status, row.external_id) == (DeliveryStatus.sent, call["msgid"])
    with db.transaction(write=False) as session:
        assert session.scalar(select(StaffSendDay.sends).where(StaffSendDay.staff_id == staff_id)) == 1


def test_a_wecom_refusal_fails_and_gives_the_budget_back(tenant, db, fake, clock) -> None:
    staff_id, contact = _wecom_setup(tenant, db, fake)
    fake.fail("externalcontact/add_msg_template", 41048, "no external contact")
    queued = _send(tenant, contact, "wecom")
    work(db)
    row = _delivery(db, queued["id"])
    assert (row.status, row.reason) == (DeliveryStatus.failed, reasons.SEND_FAILED) and "41048" in (row.detail or "")
    assert _sends_counted(db, contact) == 0
    with db.transaction(write=False) as session:
        assert session.scalar(select(StaffSendDay.sends).where(StaffSendDay.staff_id == staff_id)) == 0


def test_a_wecom_call_is_not_repeated_after_a_crash(tenant, db, fake, clock) -> None:
    _, contact = _wecom_setup(tenant, db, fake)
    queued = _send(tenant, contact, "wecom")
    (job,) = claim(db, "doomed", 1, 60)
    session = db.session()
    channels.send_job(session, job)
    session.rollback()  # the worker dies after WeCom accepted the task
    session.close()
    clock.advance(seconds=61)
    assert work(db) == 1
    assert len(fake.msg_templates) == 1  # at most once
    row = _delivery(db, queued["id"])
    assert (row.status, row.reason) == (DeliveryStatus.unknown, reasons.OUTCOME_UNKNOWN)
    assert _sends_counted(db, contact) == 1  # it may have gone out: the budget stays spent


# --- the sandbox after a crash ---------------------------------------------------------------------------


def test_a_sandbox_batch_rolled_back_and_run_again_sends_once(tenant, db, clock) -> None:
    contacts = [_contact(tenant) for _ in range(5)]
    requests = [req(c) for c in contacts]
    session = db.session()
    send_many(session, tenant.workspace_id, requests, now=clock.now)
    session.rollback()  # the worker died before commit: the batch is gone, messages and all
    session.close()
    for _ in range(2):  # and a rerun of the whole batch after the crash
        with db.transaction() as session:
            outcomes = send_many(session, tenant.workspace_id, requests, now=clock.now)
        assert all(o.status is DeliveryStatus.sent for o in outcomes)
    with db.transaction(write=False) as session:
        assert session.scalar(select(func.count()).select_from(SandboxMessage)) == 5
        assert session.scalar(select(func.sum(ContactSendDay.sends))) == 5


def test_a_stranded_queued_delivery_is_settled_by_housekeeping(tenant, db, receiver, clock) -> None:
    from siyu.delivery import stream

    _webhook_settings(tenant, receiver)
    contact = _contact(tenant)
    queued = _send(tenant, contact, "webhook")
    with db.transaction() as session:  # the job was given up without running (a lease lost on its last attempt)
        session.execute(update(Job).where(Job.dedupe_key == f"delivery:{queued['id']}").values(status=JobStatus.failed))
    clock.advance(hours=2)
    with db.transaction() as session:
        stream.housekeeping(session)
    row = _delivery(db, queued["id"])
    assert (row.status, row.reason) == (DeliveryStatus.failed, reasons.DEAD_LETTER)
    assert _sends_counted(db, contact) == 0


_ = dt


# --- what ADR 0008 promises about the outbox -------------------------------------------------------------


def test_an_external_send_and_its_job_commit_or_roll_back_together(tenant, db, receiver, clock) -> None:
    _webhook_settings(tenant, receiver)
    contact = _contact(tenant)
    request = req(contact, channel=Channel.webhook)
    session = db.session()
    (lost,) = send_many(session, tenant.workspace_id, [request], now=clock.now)
    assert lost.status is DeliveryStatus.queued
    session.rollback()  # the caller's transaction fails: neither the delivery nor its job remains
    session.close()
    with db.transaction(write=False) as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 0
        assert session.scalar(select(func.count()).select_from(Job).where(Job.name == "delivery.send")) == 0
    assert _sends_counted(db, contact) == 0
    with db.transaction() as session:
        (kept,) = send_many(session, tenant.workspace_id, [request, request], now=clock.now)[:1]
    with db.transaction(write=False) as session:
        (job,) = session.scalars(select(Job).where(Job.name == "delivery.send"))
        assert (job.dedupe_key, job.payload) == (f"delivery:{kept.delivery_id}", {"delivery_id": kept.delivery_id})
    assert work(db) == 1 and work(db) == 0
    assert [h.headers[webhook.DELIVERY_HEADER] for h in receiver.hits] == [str(kept.delivery_id)]


def test_every_webhook_retry_carries_the_same_signed_idempotency_key(tenant, db, receiver, clock) -> None:
    secret = _webhook_settings(tenant, receiver)
    receiver.statuses = [503, 429]
    queued = _send(tenant, _contact(tenant), "webhook")
    for wait in (0, 31, 61):  # exponential backoff: 30 s, then 60 s
        clock.advance(seconds=wait)
        assert work(db) == 1
    assert [h.headers[webhook.DELIVERY_HEADER] for h in receiver.hits] == [str(queued["id"])] * 3
    assert len({h.body for h in receiver.hits}) == 1  # the same body each time
    for hit in receiver.hits:
        assert webhook.verify(
            secret, hit.headers[webhook.TIMESTAMP_HEADER], hit.body, hit.headers[webhook.SIGNATURE_HEADER]
        )
    assert _delivery(db, queued["id"]).status is DeliveryStatus.sent


def test_an_email_sent_again_after_a_crash_keeps_its_message_id(tenant, db, smtp, clock) -> None:
    contact = _contact(tenant, identities=[{"type": "email", "value": "li@x.cn"}])
    queued = _send(tenant, contact, "email")
    (job,) = claim(db, "doomed", 1, 60)
    session = db.session()
    channels.send_job(session, job)  # SMTP accepted it ...
    session.rollback()  # ... and the worker died before recording it
    session.close()
    clock.advance(seconds=61)
    assert work(db) == 1
    ids = [m["Message-ID"] for m in smtp.messages]
    assert ids == [f"<delivery-{queued['id']}.siyu@brand.cn>"] * 2  # the receiver's MTA drops the repeat
    assert _delivery(db, queued["id"]).status is DeliveryStatus.sent


def test_a_wecom_delivery_whose_job_died_after_calling_is_unknown_not_repeated(tenant, db, fake, clock) -> None:
    from siyu.delivery import stream

    _, contact = _wecom_setup(tenant, db, fake)
    queued = _send(tenant, contact, "wecom")
    (job,) = claim(db, "doomed", 1, 60)
    session = db.session()
    channels.send_job(session, job)  # the call went out; the outcome is lost with the worker
    session.rollback()
    session.close()
    with db.transaction() as session:  # and the job was then given up without running again
        session.execute(update(Job).where(Job.id == job.id).values(status=JobStatus.failed))
    clock.advance(hours=2)
    with db.transaction() as session:
        stream.housekeeping(session)
    row = _delivery(db, queued["id"])
    assert (row.status, row.reason) == (DeliveryStatus.unknown, reasons.OUTCOME_UNKNOWN)
    assert len(fake.msg_templates) == 1
    assert _sends_counted(db, contact) == 1  # it may have reached the customer: the budget stays spent
