"""WeCom wired into siyu: settings, the callback endpoint, the contact-way and welcome jobs, end to end
against the local fake WeCom server."""

from __future__ import annotations

import base64
import itertools
import os
from typing import Any

import pytest
from sqlalchemy import func, select, update

from siyu.adapters.wecom import WeComCrypto
from siyu.adapters.wecom.fake_server import (
    FakeWeCom,
    add_external_contact_xml,
    external_contact_xml,
    signed_callback,
    url_verification,
)
from siyu.app import create_app
from siyu.auth.scopes import DEFAULT_API_KEY_SCOPES
from siyu.channels.models import ChannelCode, ChannelTouch, TouchSource
from siyu.contacts.models import Contact, Identity
from siyu.events.models import Event
from siyu.jobs.models import Job, JobStatus
from siyu.jobs.worker import run_worker
from siyu.staff.models import Staff
from siyu.tags.models import ContactTag
from siyu.wecom.models import WeComCallbackLog, WeComSettings

_n = itertools.count(1)


def aes_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()[:43]


@pytest.fixture
def fake():  # type: ignore[no-untyped-def]
    with FakeWeCom() as server:
        yield server


@pytest.fixture
def app(db, settings, fake):  # type: ignore[no-untyped-def]
    return create_app(settings=settings.model_copy(update={"wecom_base_url": fake.url}), database=db)


def work(app: Any, db: Any) -> int:
    return run_worker(db, once=True, settings=app.state.settings)


def configure(tenant: Any, fake: FakeWeCom, token: str | None = None) -> WeComCrypto:
    token = token or f"token{next(_n)}"
    key = aes_key()
    body = {
        "corp_id": fake.corp_id,
        "secret": fake.secret,
        "token": token,
        "encoding_aes_key": key,
        "agent_id": 1000002,
    }
    response = tenant.client.put("/api/v1/wecom/config", json=body)
    assert response.status_code == 200, response.text
    return WeComCrypto(token, key, fake.corp_id)


def wecom_staff(tenant: Any, db: Any, userid: str) -> int:
    response = tenant.client.post(
        "/api/v1/staff", json={"email": f"{userid}{next(_n)}@x.cn", "name": userid, "role": "consultant"}
    )
    assert response.status_code == 201, response.text
    staff_id = int(response.json()["id"])
    with db.transaction() as session:
        session.execute(update(Staff).where(Staff.id == staff_id).values(wecom_userid=userid))
    return staff_id


def setup_code(tenant: Any, db: Any, **extra: Any) -> dict[str, Any]:
    staff_id = wecom_staff(tenant, db, "zhangsan")
    channel = tenant.client.post("/api/v1/channels", json={"kind": "douyin", "name": "抖音直播"}).json()
    group = tenant.client.post("/api/v1/tag-groups", json={"name": "来源"}).json()
    tag = tenant.client.post("/api/v1/tags", json={"group_id": group["id"], "name": "抖音"}).json()
    body = {
        "channel_id": channel["id"],
        "name": "直播间活码",
        "pool": [{"staff_id": staff_id}],
        "tag_ids": [tag["id"]],
        "welcome_text": "你好，欢迎来到直播间！",
        **extra,
    }
    response = tenant.client.post("/api/v1/channel-codes", json=body)
    assert response.status_code == 201, response.text
    return {"code_id": response.json()["id"], "staff_id": staff_id, "tag_id": tag["id"]}


def state_of(db: Any, code_id: int) -> str:
    with db.transaction(write=False) as session:
        code = session.get(ChannelCode, code_id)
        assert code is not None and code.wecom_state is not None
        return code.wecom_state


def post(client: Any, workspace_id: int, crypto: WeComCrypto, xml: str) -> Any:
    signed = signed_callback(crypto, xml)
    return client.post(f"/callbacks/wecom/{workspace_id}", params=signed.query, content=signed.body)


def count(db: Any, model: Any, *where: Any) -> int:
    with db.transaction(write=False) as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def logs(db: Any, workspace_id: int) -> list[WeComCallbackLog]:
    with db.transaction(write=False) as session:
        rows = session.scalars(
            select(WeComCallbackLog).where(WeComCallbackLog.workspace_id == workspace_id).order_by(WeComCallbackLog.id)
        )
        return list(rows)


# --- settings ----------------------------------------------------------------------------------------------


def test_settings_are_stored_encrypted_and_never_returned(tenant, db, fake) -> None:  # type: ignore[no-untyped-def]
    configure(tenant, fake)
    got = tenant.client.get("/api/v1/wecom/config")
    assert got.status_code == 200
    body = got.json()
    assert body["corp_id"] == fake.corp_id and body["agent_id"] == 1000002
    assert fake.secret not in got.text and body["secret_hint"].endswith(fake.secret[-4:])
    assert body["callback_path"] == f"/callbacks/wecom/{tenant.workspace_id}"
    with db.transaction(write=False) as session:
        row = session.scalar(select(WeComSettings))
        assert row is not None and fake.secret not in row.secret_encrypted
    # later saves may leave the secrets out; a bad EncodingAESKey is refused
    kept = tenant.client.put("/api/v1/wecom/config", json={"corp_id": fake.corp_id})
    assert kept.status_code == 200, kept.text
    bad = tenant.client.put("/api/v1/wecom/config", json={"corp_id": "x", "encoding_aes_key": "!" * 43})
    assert bad.status_code == 422


def test_settings_need_wecom_write(make_tenant, fake) -> None:  # type: ignore[no-untyped-def]
    integrator = make_tenant("集成方", scopes=DEFAULT_API_KEY_SCOPES)
    assert integrator.client.get("/api/v1/wecom/config").status_code == 403
    first = integrator.client.put("/api/v1/wecom/config", json={"corp_id": "x", "secret": "s", "token": "t"})
    assert first.status_code in (403, 422)


def test_url_verification_echoes_the_decrypted_echostr(tenant, fake, anonymous) -> None:  # type: ignore[no-untyped-def]
    crypto = configure(tenant, fake)
    query = url_verification(crypto, "echo-4711")
    response = anonymous.get(f"/callbacks/wecom/{tenant.workspace_id}", params=query)
    assert response.status_code == 200 and response.text == "echo-4711"
    assert response.headers["content-type"].startswith("text/plain")
    forged = anonymous.get(f"/callbacks/wecom/{tenant.workspace_id}", params={**query, "msg_signature": "0" * 40})
    assert forged.status_code == 403


# --- end to end -----------------------------------------------------------------------------------------------
# Tests that count the jobs a worker run did take the frozen clock: a minute turning between two runs
# would fire the every-minute cron job in the second.


def test_code_to_contact_way_to_attributed_contact_to_welcome(app, tenant, db, fake, anonymous, clock) -> None:  # type: ignore[no-untyped-def]
    crypto = configure(tenant, fake)
    made = setup_code(tenant, db)
    assert work(app, db) >= 1
    (way,) = fake.contact_ways.values()
    state = state_of(db, made["code_id"])
    assert way["state"] == state and way["user"] == ["zhangsan"] and len(state) <= 30
    with db.transaction(write=False) as session:
        code = session.get(ChannelCode, made["code_id"])
        assert code is not None and code.wecom_config_id == way["config_id"] and code.wecom_qr_code

    xml = add_external_contact_xml(fake.corp_id, "zhangsan", "wmCustomer1", state=state, welcome_code="WELCOME-1")
    response = post(anonymous, tenant.workspace_id, crypto, xml)
    assert response.status_code == 200 and response.text == "success"

    with db.transaction(write=False) as session:
        identity = session.scalar(select(Identity).where(Identity.type == "wecom_external_userid"))
        assert identity is not None and identity.value == "wmCustomer1"
        contact = session.get(Contact, identity.contact_id)
        assert contact is not None and contact.owner_id == made["staff_id"] and contact.source_channel == "douyin"
        tags = set(session.scalars(select(ContactTag.tag_id).where(ContactTag.contact_id == contact.id)))
        assert tags == {made["tag_id"]}
        (touch,) = session.scalars(select(ChannelTouch))
        assert touch.source is TouchSource.wecom and touch.staff_id == made["staff_id"]
        (event,) = session.scalars(select(Event).where(Event.type == "contact.added"))
        assert event.contact_id == contact.id and event.event_id.startswith("wecom-")

    assert work(app, db) == 1
    (welcome,) = fake.welcomes
    assert welcome["welcome_code"] == "WELCOME-1" and welcome["text"]["content"] == "你好，欢迎来到直播间！"
    (log,) = logs(db, tenant.workspace_id)
    assert log.outcome == "processed" and log.welcome == "sent" and log.code_id == made["code_id"]


def test_redelivery_adds_nothing(app, tenant, db, fake, anonymous) -> None:  # type: ignore[no-untyped-def]
    crypto = configure(tenant, fake)
    made = setup_code(tenant, db)
    work(app, db)
    xml = add_external_contact_xml(
        fake.corp_id, "zhangsan", "wmAgain", state=state_of(db, made["code_id"]), welcome_code="W2"
    )
    for _ in range(3):
        assert post(anonymous, tenant.workspace_id, crypto, xml).text == "success"
    assert count(db, Event) == 1 and count(db, ChannelTouch) == 1 and count(db, Contact) == 1
    assert count(db, Job, Job.name == "wecom.welcome") == 1
    assert len(logs(db, tenant.workspace_id)) == 1


def test_bad_signature_or_tampered_body_processes_nothing(app, tenant, db, fake, anonymous) -> None:  # type: ignore[no-untyped-def]
    crypto = configure(tenant, fake)
    made = setup_code(tenant, db)
    xml = add_external_contact_xml(fake.corp_id, "zhangsan", "wmForged", state=state_of(db, made["code_id"]))
    signed = signed_callback(crypto, xml)
    url = f"/callbacks/wecom/{tenant.workspace_id}"
    forged = anonymous.post(url, params={**signed.query, "msg_signature": "f" * 40}, content=signed.body)
    assert forged.status_code == 403
    tampered = anonymous.post(
        url, params=signed.query, content=signed.body.replace("<Encrypt><![CDATA[", "<Encrypt><![CDATA[AAAA")
    )
    assert tampered.status_code in (400, 403)
    unknown = anonymous.post("/callbacks/wecom/999999", params=signed.query, content=signed.body)
    assert unknown.status_code == 404
    assert count(db, Contact) == 0 and count(db, Event) == 0
    assert [log.outcome for log in logs(db, tenant.workspace_id)] == ["rejected", "rejected"]


def test_a_callback_signed_for_a_is_refused_at_b(app, make_tenant, db, fake, anonymous) -> None:  # type: ignore[no-untyped-def]
    a, b = make_tenant("A"), make_tenant("B")
    crypto_a = configure(a, fake)
    configure(b, fake)
    made = setup_code(a, db)
    xml = add_external_contact_xml(fake.corp_id, "zhangsan", "wmCross", state=state_of(db, made["code_id"]))
    assert post(anonymous, b.workspace_id, crypto_a, xml).status_code == 403
    assert count(db, Event) == 0 and count(db, Contact) == 0


def test_welcome_already_sent_is_done_not_retried(app, tenant, db, fake, anonymous, clock) -> None:  # type: ignore[no-untyped-def]
    crypto = configure(tenant, fake)
    made = setup_code(tenant, db)
    work(app, db)
    fake.fail("externalcontact/send_welcome_msg", 41051)
    xml = add_external_contact_xml(
        fake.corp_id, "zhangsan", "wmChatty", state=state_of(db, made["code_id"]), welcome_code="W3"
    )
    post(anonymous, tenant.workspace_id, crypto, xml)
    assert work(app, db) == 1
    assert work(app, db) == 0
    assert fake.welcomes == [] and len(fake.calls_to("externalcontact/send_welcome_msg")) == 1
    with db.transaction(write=False) as session:
        (job,) = session.scalars(select(Job).where(Job.name == "wecom.welcome"))
        assert job.status is JobStatus.succeeded and job.attempts == 1
    (log,) = logs(db, tenant.workspace_id)
    assert log.welcome == "already_sent" and "41051" in (log.welcome_detail or "")


def test_welcome_after_20_seconds_is_recorded_expired(app, tenant, db, fake, anonymous, clock) -> None:  # type: ignore[no-untyped-def]
    crypto = configure(tenant, fake)
    made = setup_code(tenant, db)
    work(app, db)
    xml = add_external_contact_xml(
        fake.corp_id, "zhangsan", "wmLate", state=state_of(db, made["code_id"]), welcome_code="W4"
    )
    post(anonymous, tenant.workspace_id, crypto, xml)
    clock.advance(seconds=21)
    assert work(app, db) == 1
    assert fake.calls_to("externalcontact/send_welcome_msg") == []
    (log,) = logs(db, tenant.workspace_id)
    assert log.welcome == "expired"


def test_deletions_become_events(app, tenant, db, fake, anonymous) -> None:  # type: ignore[no-untyped-def]
    crypto = configure(tenant, fake)
    staff_id = wecom_staff(tenant, db, "lisi")
    gone = external_contact_xml(fake.corp_id, "del_follow_user", "lisi", "wmLeaver", create_time=1700000100)
    assert post(anonymous, tenant.workspace_id, crypto, gone).text == "success"
    dropped = external_contact_xml(fake.corp_id, "del_external_contact", "lisi", "wmDropped", create_time=1700000200)
    assert post(anonymous, tenant.workspace_id, crypto, dropped).text == "success"
    with db.transaction(write=False) as session:
        types = {e.type: e.properties for e in session.scalars(select(Event))}
    assert set(types) == {"contact.deleted_staff", "contact.deleted_by_staff"}
    assert types["contact.deleted_staff"]["staff_id"] == staff_id
    edited = external_contact_xml(fake.corp_id, "edit_external_contact", "lisi", "wmLeaver")
    assert post(anonymous, tenant.workspace_id, crypto, edited).text == "success"
    assert [log.outcome for log in logs(db, tenant.workspace_id)] == ["processed", "processed", "ignored"]


def test_contact_way_failures_retry_with_the_wecom_error_kept(app, tenant, db, fake) -> None:  # type: ignore[no-untyped-def]
    configure(tenant, fake)
    fake.fail("externalcontact/add_contact_way", 40058, "invalid parameter")
    made = setup_code(tenant, db)
    work(app, db)
    with db.transaction(write=False) as session:
        (job,) = session.scalars(select(Job).where(Job.name == "wecom.contact_way"))
        assert job.status is JobStatus.queued and job.attempts == 1 and "40058" in (job.last_error or "")
        code = session.get(ChannelCode, made["code_id"])
        assert code is not None and code.wecom_config_id is None


def test_editing_and_pausing_update_the_contact_way(app, tenant, db, fake) -> None:  # type: ignore[no-untyped-def]
    configure(tenant, fake)
    made = setup_code(tenant, db)
    work(app, db)
    other = wecom_staff(tenant, db, "wangwu")
    edited = tenant.client.patch(
        f"/api/v1/channel-codes/{made['code_id']}", json={"pool": [{"staff_id": made["staff_id"]}, {"staff_id": other}]}
    )
    assert edited.status_code == 200, edited.text
    work(app, db)
    (way,) = fake.contact_ways.values()
    assert way["user"] == ["zhangsan", "wangwu"]
    paused = tenant.client.post(f"/api/v1/channel-codes/{made['code_id']}/pause")
    assert paused.status_code == 200, paused.text
    work(app, db)
    assert way["skip_verify"] is False
    assert len(fake.calls_to("externalcontact/add_contact_way")) == 1


def test_codes_made_before_wecom_was_configured_get_their_contact_way(app, tenant, db, fake) -> None:  # type: ignore[no-untyped-def]
    made = setup_code(tenant, db)
    assert count(db, Job, Job.name == "wecom.contact_way") == 0
    configure(tenant, fake)
    work(app, db)
    with db.transaction(write=False) as session:
        code = session.get(ChannelCode, made["code_id"])
        assert code is not None and code.wecom_config_id is not None
