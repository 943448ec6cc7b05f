"""WeComClient against a local fake WeCom server: tokens, retries, back-off, typed errors, request shapes."""

from __future__ import annotations

import threading

import httpx
import pytest
from wecom_helpers import FakeClock, fake_wecom

from siyu.adapters.wecom.callbacks import WeComConfig, Welcome, open_callback, send_welcome, verify_url
from siyu.adapters.wecom.client import TokenCache, WeComClient
from siyu.adapters.wecom.errors import (
    AccessTokenRejected,
    InvalidCredentials,
    InvalidSignature,
    RateLimited,
    WeComBusy,
    WeComError,
    WeComNetworkError,
    WelcomeAlreadySent,
)
from siyu.adapters.wecom.events import ExternalContactAdded, to_siyu_events
from siyu.adapters.wecom.fake_server import FakeWeCom, add_external_contact_xml, signed_callback, url_verification
from siyu.errors import ValidationFailed

GETTOKEN = "gettoken"
ADD_WAY = "externalcontact/add_contact_way"
WELCOME = "externalcontact/send_welcome_msg"


# --- access token ---------------------------------------------------------------------------------------------


def test_token_is_cached_and_refreshed_five_minutes_early() -> None:
    with fake_wecom() as (fake, client, clock):
        first = client.get_access_token()
        assert client.get_access_token() == first
        clock.advance(7200 - 301)
        assert client.get_access_token() == first
        clock.advance(2)  # now inside the last 5 minutes: refreshed before WeCom would refuse it
        second = client.get_access_token()
        assert second != first
        assert len(fake.calls_to(GETTOKEN)) == 2
        assert fake.calls_to(GETTOKEN)[0].query == {"corpid": fake.corp_id, "corpsecret": fake.secret}


def test_token_shared_between_clients_of_the_same_app_and_fetched_once_under_concurrency() -> None:
    clock = FakeClock()
    cache = TokenCache()
    with FakeWeCom(clock=clock) as fake:
        clients = [
            WeComClient(fake.corp_id, fake.secret, base_url=fake.url, clock=clock, token_cache=cache) for _ in range(8)
        ]
        tokens: list[str] = []
        threads = [threading.Thread(target=lambda c=c: tokens.append(c.get_access_token())) for c in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(set(tokens)) == 1 and len(fake.calls_to(GETTOKEN)) == 1
        other_app = WeComClient(fake.corp_id, "another-secret", base_url=fake.url, clock=clock, token_cache=cache)
        with pytest.raises(InvalidCredentials) as err:
            other_app.get_access_token()
        assert err.value.errcode == 40001
        for c in [*clients, other_app]:
            c.close()


def test_wrong_corp_id_is_invalid_credentials_not_retried() -> None:
    clock = FakeClock()
    with FakeWeCom(clock=clock) as fake:
        client = WeComClient(
            "wwWRONG", fake.secret, base_url=fake.url, clock=clock, sleep=clock.sleep, token_cache=TokenCache()
        )
        with pytest.raises(InvalidCredentials) as err:
            client.get_access_token()
        assert err.value.errcode == 40013 and "40013" in err.value.message
        assert len(fake.calls) == 1 and clock.sleeps == []


@pytest.mark.parametrize("code", [42001, 40014, 40001])
def test_token_errors_refresh_and_retry_exactly_once(code: int) -> None:
    with fake_wecom() as (fake, client, _clock):
        old = client.get_access_token()
        fake.fail(ADD_WAY, code)
        way = client.add_contact_way(users=["zhangsan"], state="spring")
        assert way.config_id
        calls = [c.path for c in fake.calls]
        assert calls == [GETTOKEN, ADD_WAY, GETTOKEN, ADD_WAY]
        assert fake.calls[-1].query["access_token"] != old


def test_really_expired_token_is_refreshed() -> None:
    with fake_wecom() as (fake, client, _clock):
        client.get_access_token()
        fake.expire_tokens()  # WeCom expired it early (e.g. the secret was reset)
        client.add_contact_way(users=["zhangsan"])
        assert [c.reply["errcode"] for c in fake.calls] == [0, 42001, 0, 0]


def test_token_rejected_twice_raises_without_a_third_try() -> None:
    with fake_wecom() as (fake, client, _clock):
        fake.fail(ADD_WAY, 40014, times=2)
        with pytest.raises(AccessTokenRejected) as err:
            client.add_contact_way(users=["zhangsan"])
        assert err.value.errcode == 40014
        assert [c.path for c in fake.calls] == [GETTOKEN, ADD_WAY, GETTOKEN, ADD_WAY]


# --- back-off -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [-1, 45009, 45033])
def test_busy_and_rate_limits_back_off_then_succeed(code: int) -> None:
    with fake_wecom() as (fake, client, clock):
        fake.fail(ADD_WAY, code, times=2)
        client.add_contact_way(users=["zhangsan"])
        assert clock.sleeps == [0.5, 1.0]
        assert len(fake.calls_to(ADD_WAY)) == 3


@pytest.mark.parametrize(("code", "error"), [(-1, WeComBusy), (45009, RateLimited), (45033, RateLimited)])
def test_back_off_is_bounded(code: int, error: type[WeComError]) -> None:
    with fake_wecom() as (fake, client, clock):
        fake.fail(ADD_WAY, code, times=10)
        with pytest.raises(error) as err:
            client.add_contact_way(users=["zhangsan"])
        assert err.value.errcode == code
        assert clock.sleeps == [0.5, 1.0, 2.0]  # max_retries=3
        assert len(fake.calls_to(ADD_WAY)) == 4


def test_busy_gettoken_is_retried_too() -> None:
    with fake_wecom() as (fake, client, clock):
        fake.fail(GETTOKEN, -1)
        assert client.get_access_token()
        assert clock.sleeps == [0.5]


def test_other_errcodes_raise_typed_errors_with_code_and_message() -> None:
    with fake_wecom() as (fake, client, clock):
        fake.fail(ADD_WAY, 84061, "not external contact")
        with pytest.raises(WeComError) as err:
            client.add_contact_way(users=["zhangsan"])
        assert (err.value.errcode, err.value.errmsg, err.value.api) == (84061, "not external contact", ADD_WAY)
        assert "84061" in err.value.message and err.value.status_code == 502
        assert clock.sleeps == [] and len(fake.calls_to(ADD_WAY)) == 1


def test_network_errors_are_wrapped() -> None:
    client = WeComClient(
        "wwcorp", "s", base_url="http://127.0.0.1:9", token_cache=TokenCache(), http=httpx.Client(timeout=1)
    )
    with pytest.raises(WeComNetworkError) as err:
        client.get_access_token()
    assert err.value.errcode is None and "could not be reached" in err.value.message


# --- 「联系我」 and welcome -----------------------------------------------------------------------------------------


def test_add_contact_way_request_shape() -> None:
    with fake_wecom() as (fake, client, _clock):
        way = client.add_contact_way(users=["zhangsan"], state="spring-2026", remark="春季投放")
        assert way.qr_code and way.qr_code.startswith("https://")
        body = fake.calls_to(ADD_WAY)[0].body
        assert body == {
            "type": 1,
            "scene": 2,
            "user": ["zhangsan"],
            "state": "spring-2026",
            "remark": "春季投放",
            "skip_verify": True,
        }
        multi = client.add_contact_way(users=["zhangsan", "lisi"], parties=[2], skip_verify=False)
        assert fake.calls_to(ADD_WAY)[1].body == {
            "type": 2,
            "scene": 2,
            "user": ["zhangsan", "lisi"],
            "party": [2],
            "skip_verify": False,
        }
        client.update_contact_way(way.config_id, state="summer")
        assert client.get_contact_way(way.config_id)["state"] == "summer"
        client.del_contact_way(multi.config_id)
        assert multi.config_id not in fake.contact_ways
        with pytest.raises(WeComError) as err:
            client.del_contact_way("cfg-unknown")
        assert err.value.errcode == 41044


def test_add_contact_way_validates_before_calling() -> None:
    with fake_wecom() as (fake, client, _clock):
        with pytest.raises(ValidationFailed, match="state"):
            client.add_contact_way(users=["zhangsan"], state="x" * 31)
        with pytest.raises(ValidationFailed, match="users"):
            client.add_contact_way(users=[])
        with pytest.raises(ValidationFailed, match="type 1"):
            client.add_contact_way(users=["a", "b"], contact_type=1)
        assert fake.calls == []


def test_send_welcome_msg_shape_and_41051_not_retried() -> None:
    with fake_wecom() as (fake, client, clock):
        link = {"msgtype": "link", "link": {"title": "课程表", "url": "https://example.com/c"}}
        client.send_welcome_msg("WC1", text="你好，欢迎！", attachments=[link])
        assert fake.calls_to(WELCOME)[0].body == {
            "welcome_code": "WC1",
            "text": {"content": "你好，欢迎！"},
            "attachments": [link],
        }
        with pytest.raises(WelcomeAlreadySent) as err:
            client.send_welcome_msg("WC1", text="again")
        assert err.value.errcode == 41051
        assert len(fake.calls_to(WELCOME)) == 2 and clock.sleeps == []
        with pytest.raises(ValidationFailed):
            client.send_welcome_msg("WC2")
        with pytest.raises(ValidationFailed):
            client.send_welcome_msg("WC2", attachments=[{"msgtype": "image"}])


def test_get_external_contact_and_add_msg_template() -> None:
    with fake_wecom() as (fake, client, _clock):
        fake.add_external_contact("wmEXT1", "小王")
        assert client.get_external_contact("wmEXT1")["external_contact"]["name"] == "小王"
        with pytest.raises(WeComError):
            client.get_external_contact("wmNOPE")
        result = client.add_msg_template(sender="zhangsan", external_userids=["wmEXT1"], text="双十一")
        assert result.msgid and result.fail_list == []
        assert fake.msg_templates[0]["external_userid"] == ["wmEXT1"]


def test_a_broadcast_is_read_back_per_staff_member_and_per_customer_a_page_at_a_time() -> None:
    with fake_wecom() as (fake, client, _clock):
        customers = [f"wmC{n:03d}" for n in range(5)]
        fake.remove_customer("wmC004", "zhangsan")  # deleted the staff member before the task was made
        made = client.add_msg_template(sender="zhangsan", external_userids=customers, text="双十一")
        assert made.fail_list == ["wmC004"]
        (waiting,) = client.groupmsg_tasks(made.msgid)
        assert (waiting.userid, waiting.status, waiting.send_time, waiting.sent) == ("zhangsan", 0, None, False)
        assert {r.status for r in client.groupmsg_send_results(made.msgid, "zhangsan")} == {0}

        fake.remove_customer("wmC003")  # deleted every staff member after the task was made
        assert fake.confirm_msg_template("zhangsan", send_time=1795406400) == [made.msgid]
        (sent,) = client.groupmsg_tasks(made.msgid)
        assert (sent.status, sent.send_time, sent.sent) == (2, 1795406400, True)
        first = client.get_groupmsg_send_result(made.msgid, "zhangsan", limit=2)
        assert len(first.items) == 2 and first.next_cursor
        results = client.groupmsg_send_results(made.msgid, "zhangsan")
        assert [(r.external_userid, r.status, r.send_time) for r in results] == [
            ("wmC000", 1, 1795406400),
            ("wmC001", 1, 1795406400),
            ("wmC002", 1, 1795406400),
            ("wmC003", 2, None),
        ]
        assert client.groupmsg_send_results(made.msgid, "lisi") == []  # not their task
        with pytest.raises(WeComError) as unknown:
            client.groupmsg_tasks("msgNOPE")
        assert unknown.value.errcode == 40058
        with pytest.raises(ValidationFailed):
            client.get_groupmsg_task(made.msgid, limit=1001)


def test_wecom_keeps_a_customer_to_four_broadcasts_a_month() -> None:
    with fake_wecom() as (fake, client, _clock):
        november, december = 1795406400, 1795406400 + 31 * 86400
        statuses = []
        for send_time in (november,) * 5 + (december,):
            made = client.add_msg_template(sender="zhangsan", external_userids=["wmC1"], text="hi")
            fake.confirm_msg_template("zhangsan", msgid=made.msgid, send_time=send_time)
            (result,) = client.groupmsg_send_results(made.msgid, "zhangsan")
            statuses.append(result.status)
        assert statuses == [1, 1, 1, 1, 3, 1]


def test_a_group_broadcast_reports_per_group() -> None:
    with fake_wecom() as (fake, client, _clock):
        fake.add_group_chat("wrG1", "zhangsan")
        fake.add_group_chat("wrG2", "zhangsan")
        made = client.add_msg_template(sender="zhangsan", chat_type="group", text="今晚直播")
        fake.confirm_msg_template("zhangsan")
        results = client.groupmsg_send_results(made.msgid, "zhangsan")
        assert [(r.chat_id, r.status, r.external_userid) for r in results] == [("wrG1", 1, None), ("wrG2", 1, None)]


# --- end to end: a customer scans a code ---------------------------------------------------------------------------


TOKEN, AES_KEY = "callbacktoken", "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"


def test_scan_attributes_the_contact_and_sends_the_codes_welcome() -> None:
    with fake_wecom() as (fake, client, clock):
        config = WeComConfig(fake.corp_id, fake.secret, TOKEN, AES_KEY)
        way = client.add_contact_way(users=["zhangsan"], state="spring")
        assert fake.contact_ways[way.config_id]["state"] == "spring"
        # the admin console verifies the URL, then WeCom posts the add event
        q = url_verification(config.crypto(), "echo-123")
        assert verify_url(config, q["msg_signature"], q["timestamp"], q["nonce"], q["echostr"]) == "echo-123"
        xml = add_external_contact_xml(fake.corp_id, "zhangsan", "wmEXT1", state="spring", welcome_code="WC9")
        cb_req = signed_callback(config.crypto(), xml)
        received_at = clock()
        cb = open_callback(config, cb_req.body, **cb_req.query)
        assert isinstance(cb, ExternalContactAdded)
        [event] = to_siyu_events(cb)
        assert event["properties"]["channel_code"] == "spring"
        outcome = send_welcome(client, cb, Welcome(text="欢迎来到春季班"), received_at=received_at)
        assert outcome.status == "sent"
        assert fake.welcomes == [{"welcome_code": "WC9", "text": {"content": "欢迎来到春季班"}}]
        # WeCom redelivers the callback: the event id repeats, and the welcome is not sent twice
        assert to_siyu_events(open_callback(config, cb_req.body, **cb_req.query))[0]["id"] == event["id"]
        again = send_welcome(client, cb, Welcome(text="欢迎来到春季班"), received_at=clock())
        assert again.status == "already_sent" and len(fake.calls_to(WELCOME)) == 2


def test_tampered_callback_is_rejected_and_nothing_is_sent() -> None:
    with fake_wecom() as (fake, _client, _clock):
        config = WeComConfig(fake.corp_id, fake.secret, TOKEN, AES_KEY)
        xml = add_external_contact_xml(fake.corp_id, "zhangsan", "wmEXT1", state="spring", welcome_code="WC9")
        cb_req = signed_callback(config.crypto(), xml)
        forged = WeComConfig(fake.corp_id, fake.secret, "attacker-token", AES_KEY)
        with pytest.raises(InvalidSignature):
            open_callback(forged, cb_req.body, **cb_req.query)
        with pytest.raises(InvalidSignature):
            open_callback(config, cb_req.body.replace("<Encrypt><![CDATA[", "<Encrypt><![CDATA[AAAA"), **cb_req.query)
        assert fake.calls == []


def test_welcome_respects_the_20_second_window() -> None:
    with fake_wecom() as (fake, client, clock):
        cb = ExternalContactAdded(fake.corp_id, 1700000000, "zhangsan", "wmEXT1", "spring", "WC1")
        received_at = clock()
        clock.advance(21)
        assert send_welcome(client, cb, Welcome(text="hi"), received_at=received_at).status == "expired"
        # busy WeCom: back-off stops before the window closes instead of sending late
        fake.fail(WELCOME, -1, times=10)
        received_at = clock()
        clock.advance(18)
        outcome = send_welcome(client, cb, Welcome(text="hi"), received_at=received_at)
        assert outcome.status == "failed" and isinstance(outcome.error, WeComBusy)
        assert sum(clock.sleeps) <= 2.0
        assert send_welcome(client, cb, None).status == "skipped"
        no_code = ExternalContactAdded(fake.corp_id, 1700000000, "zhangsan", "wmEXT1", "spring", None)
        assert send_welcome(client, no_code, Welcome(text="hi")).status == "skipped"
        assert fake.welcomes == []


def test_config_repr_hides_secrets() -> None:
    config = WeComConfig("wwcorp", "s3cret", TOKEN, AES_KEY)
    assert "s3cret" not in repr(config) and AES_KEY not in repr(config) and TOKEN not in repr(config)


# --- app messages (应用消息, message/send) ----------------------------------------------------------------


def test_app_message_text_card_and_plain_text_are_shaped_as_wecom_asks() -> None:
    with fake_wecom() as (fake, client, _clock):
        card = {
            "title": "新待办：回访",
            "description": "跟进 · 截止 18:00",
            "url": "https://siyu.brand.cn/console/tasks",
        }
        result = client.send_app_message(
            agent_id=fake.agent_id, userids=["zhangsan", "lisi"], card=card, duplicate_check_seconds=600
        )
        (call,) = fake.calls_to("message/send")
        assert call.body == {
            "touser": "zhangsan|lisi",
            "agentid": fake.agent_id,
            "msgtype": "textcard",
            "textcard": card,
            "enable_duplicate_check": 1,
            "duplicate_check_interval": 600,
        }
        assert result.msgid and result.invalid_users == [] and result.unlicensed_users == []
        client.send_app_message(agent_id=fake.agent_id, userids=["zhangsan"], text="今日待办 3 项")
        assert fake.app_messages[-1]["text"] == {"content": "今日待办 3 项"}
        assert "enable_duplicate_check" not in fake.app_messages[-1]


def test_app_message_recipients_outside_the_app_are_listed_and_none_left_is_81013() -> None:
    with fake_wecom() as (fake, client, _clock):
        fake.staff_userids = {"zhangsan"}
        result = client.send_app_message(agent_id=fake.agent_id, userids=["zhangsan", "WangWu"], text="hi")
        assert result.invalid_users == ["wangwu"]  # WeCom lower-cases them
        assert fake.app_messages[-1]["to"] == ["zhangsan"]
        with pytest.raises(WeComError) as refused:
            client.send_app_message(agent_id=fake.agent_id, userids=["wangwu"], text="hi")
        assert refused.value.errcode == 81013
        with pytest.raises(WeComError) as wrong_app:
            client.send_app_message(agent_id=1, userids=["zhangsan"], text="hi")
        assert wrong_app.value.errcode == 40056


def test_app_message_duplicate_check_drops_the_same_body_within_its_interval() -> None:
    with fake_wecom() as (fake, client, clock):
        for _ in range(2):
            client.send_app_message(
                agent_id=fake.agent_id, userids=["zhangsan"], text="同一条", duplicate_check_seconds=60
            )
        assert fake.app_message_calls == 2 and len(fake.app_messages) == 1
        clock.advance(61)
        client.send_app_message(agent_id=fake.agent_id, userids=["zhangsan"], text="同一条", duplicate_check_seconds=60)
        assert len(fake.app_messages) == 2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"userids": [], "text": "x"}, "userids"),
        ({"userids": ["u"] * 1001, "text": "x"}, "userids"),
        ({"userids": ["u"]}, "text"),
        ({"userids": ["u"], "text": "x", "card": {"title": "t", "description": "d", "url": "u"}}, "text"),
        ({"userids": ["u"], "text": "字" * 683}, "text"),  # 2,049 bytes of UTF-8
        ({"userids": ["u"], "card": {"title": "字" * 43, "description": "d", "url": "https://x"}}, "card.title"),
        ({"userids": ["u"], "card": {"title": "t", "description": "", "url": "https://x"}}, "card.description"),
        ({"userids": ["u"], "text": "x", "duplicate_check_seconds": 4 * 3600 + 1}, "duplicate_check_seconds"),
    ],
)
def test_app_message_bad_input_is_refused_before_any_call(kwargs: dict, field: str) -> None:  # type: ignore[type-arg]
    with fake_wecom() as (fake, client, _clock):
        with pytest.raises(ValidationFailed) as refused:
            client.send_app_message(agent_id=fake.agent_id, **kwargs)
        assert refused.value.details[0]["field"] == field
        assert fake.calls_to("message/send") == []
