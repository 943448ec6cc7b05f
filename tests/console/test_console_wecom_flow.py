"""Issue 4's whole path: a code made in the console, scanned in WeCom (the fake server's signed
callback), gives an attributed, tagged, assigned contact with its welcome sent, and the dashboard shows it."""

from __future__ import annotations

import base64
import os
import re
import time

import pytest
from sqlalchemy import select, update

from siyu.adapters.wecom import WeComCrypto
from siyu.adapters.wecom.fake_server import FakeWeCom, add_external_contact_xml, signed_callback
from siyu.app import create_app
from siyu.channels.models import ChannelCode
from siyu.contacts.models import Contact, Identity
from siyu.jobs.worker import run_worker
from siyu.staff.models import Staff
from siyu.tags.models import ContactTag


@pytest.fixture
def fake():  # type: ignore[no-untyped-def]
    with FakeWeCom() as server:
        yield server


@pytest.fixture
def app(db, settings, fake):  # type: ignore[no-untyped-def]
    return create_app(settings=settings.model_copy(update={"wecom_base_url": fake.url}), database=db)


def test_console_code_then_wecom_scan_then_dashboard(app, db, tenant, console_staff, fake, anonymous) -> None:  # type: ignore[no-untyped-def]
    key = base64.b64encode(os.urandom(32)).decode()[:43]
    settings = {"corp_id": fake.corp_id, "secret": fake.secret, "token": "tok", "encoding_aes_key": key}
    assert tenant.client.put("/api/v1/wecom/config", json=settings).status_code == 200
    crypto = WeComCrypto("tok", key, fake.corp_id)
    staff = tenant.client.post("/api/v1/staff", json={"email": "zs@x.cn", "name": "张三", "role": "consultant"}).json()
    with db.transaction() as session:
        session.execute(update(Staff).where(Staff.id == staff["id"]).values(wecom_userid="zhangsan"))
    group = tenant.client.post("/api/v1/tag-groups", json={"name": "来源"}).json()
    tag = tenant.client.post("/api/v1/tags", json={"group_id": group["id"], "name": "抖音客户"}).json()

    op = console_staff()
    made = op.post("/console/channels", {"kind": "douyin", "name": "抖音直播间"}, page="/console/channels")
    channel_path = made.headers["location"]
    channel_id = int(channel_path.rsplit("/", 1)[1])
    code_form = {
        "name": "直播福利码",
        "channel_id": str(channel_id),
        "rotation": "round_robin",
        "pool-0-staff_id": str(staff["id"]),
        "tag_ids": str(tag["id"]),
        "welcome_text": "你好，欢迎来到直播间！",
    }
    created = op.post(f"/console/channels/{channel_id}/codes", code_form, page=channel_path)
    assert created.status_code == 303, created.text
    code_id = int(re.findall(r"\d+", created.headers["location"])[-1])

    # The worker creates the code's 「联系我」 QR in WeCom.
    run_worker(db, once=True, settings=app.state.settings)
    with db.transaction(write=False) as session:
        code = session.get(ChannelCode, code_id)
        assert code is not None and code.wecom_config_id and code.wecom_state
        state = code.wecom_state

    # Someone scans it: WeCom calls back, signed and encrypted.
    xml = add_external_contact_xml(
        fake.corp_id, "zhangsan", "wmScan1", state=state, welcome_code="W-1", create_time=int(time.time())
    )
    signed = signed_callback(crypto, xml)
    answer = anonymous.post(f"/callbacks/wecom/{tenant.workspace_id}", params=signed.query, content=signed.body)
    assert answer.status_code == 200 and answer.text == "success"
    run_worker(db, once=True, settings=app.state.settings)
    assert [w["welcome_code"] for w in fake.welcomes] == ["W-1"]
    assert fake.welcomes[0]["text"]["content"] == "你好，欢迎来到直播间！"

    with db.transaction(write=False) as session:
        identity = session.scalar(select(Identity).where(Identity.value == "wmScan1"))
        assert identity is not None
        contact = session.get(Contact, identity.contact_id)
        assert contact is not None and contact.owner_id == staff["id"] and contact.source_channel == "douyin"
        assert set(session.scalars(select(ContactTag.tag_id).where(ContactTag.contact_id == contact.id))) == {tag["id"]}

    dashboard = op.client.get("/console").text
    assert re.search(rf'data-code="{code_id}">.*?data-adds>1<', dashboard, re.S)
    assert re.search(rf'data-staff="{staff["id"]}"><td>[^<]+</td><td class="num" data-adds>1<', dashboard)
    assert re.search(r'data-source="wecom">.*?data-adds>1<', dashboard, re.S)
    assert re.search(r'data-welcome="sent">.*?data-count>1<', dashboard, re.S)
