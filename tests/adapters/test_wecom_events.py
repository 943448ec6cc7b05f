"""Callback XML → typed callbacks → siyu events."""

from __future__ import annotations

import pytest

from siyu.adapters.wecom.errors import MalformedCallback
from siyu.adapters.wecom.events import (
    ExternalChatChanged,
    ExternalContactAdded,
    ExternalContactDeletedByStaff,
    ExternalContactEdited,
    StaffDeletedByContact,
    TransferFailed,
    UnknownCallback,
    parse_callback,
    to_siyu_events,
)
from siyu.adapters.wecom.fake_server import add_external_contact_xml, external_chat_xml, external_contact_xml
from siyu.events.schemas import EventIn

CORP = "wwcorp"

# The documented example of the add_external_contact event (企业微信 客户联系 事件, path 92130), verbatim shape.
DOC_ADD = """<xml>
<ToUserName><![CDATA[toUser]]></ToUserName>
<FromUserName><![CDATA[sys]]></FromUserName>
<CreateTime>1403610513</CreateTime>
<MsgType><![CDATA[event]]></MsgType>
<Event><![CDATA[change_external_contact]]></Event>
<ChangeType><![CDATA[add_external_contact]]></ChangeType>
<UserID><![CDATA[zhangsan]]></UserID>
<ExternalUserID><![CDATA[woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA]]></ExternalUserID>
<State><![CDATA[teststate]]></State>
<WelcomeCode><![CDATA[WELCOMECODE]]></WelcomeCode>
</xml>"""


def test_documented_add_external_contact() -> None:
    cb = parse_callback(DOC_ADD)
    assert cb == ExternalContactAdded(
        "toUser", 1403610513, "zhangsan", "woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA", "teststate", "WELCOMECODE"
    )
    assert cb.occurred_at.isoformat() == "2014-06-24T11:48:33+00:00"


@pytest.mark.parametrize(
    ("change", "cls"),
    [
        ("edit_external_contact", ExternalContactEdited),
        ("del_external_contact", ExternalContactDeletedByStaff),
        ("del_follow_user", StaffDeletedByContact),
        ("transfer_fail", TransferFailed),
    ],
)
def test_contact_changes(change: str, cls: type) -> None:
    cb = parse_callback(external_contact_xml(CORP, change, "lisi", "wmEXT1", extra={"FailReason": "customer_refused"}))
    assert isinstance(cb, cls)
    assert cb.user_id == "lisi" and cb.external_user_id == "wmEXT1"  # type: ignore[attr-defined]


def test_half_added_and_missing_fields() -> None:
    cb = parse_callback(external_contact_xml(CORP, "add_half_external_contact", "lisi", "wmEXT1"))
    assert isinstance(cb, ExternalContactAdded) and cb.half and cb.state is None and cb.welcome_code is None
    with pytest.raises(MalformedCallback, match="ExternalUserID"):
        parse_callback(external_contact_xml(CORP, "add_external_contact", "lisi", ""))


def test_group_member_changes() -> None:
    cb = parse_callback(
        external_chat_xml(
            CORP, "wrChat1", "update", update_detail="add_member", members=["wmA", "zhangsan", "woB"], join_scene=3
        )
    )
    assert cb == ExternalChatChanged(
        CORP, 1700000000, "wrChat1", "update", "add_member", 3, None, 3, ("wmA", "zhangsan", "woB")
    )
    dismissed = parse_callback(external_chat_xml(CORP, "wrChat1", "dismiss"))
    assert isinstance(dismissed, ExternalChatChanged) and dismissed.change_type == "dismiss"


def test_unknown_events_are_kept() -> None:
    cb = parse_callback(
        "<xml><ToUserName>wwcorp</ToUserName><CreateTime>1</CreateTime><MsgType>event</MsgType>"
        "<Event>change_external_tag</Event><ChangeType>create</ChangeType><Id>tag1</Id></xml>"
    )
    assert isinstance(cb, UnknownCallback)
    assert cb.event == "change_external_tag" and cb.fields["Id"] == "tag1"
    assert to_siyu_events(cb) == []


@pytest.mark.parametrize(
    "xml",
    [
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><xml>&lol2;</xml>',
        '<!DOCTYPE xml SYSTEM "http://evil.example/x.dtd"><xml/>',
        "<!doctype xml><xml/>",
        "<xml><a>unclosed</xml>",
        b"\xff\xfe<\x00x\x00m\x00l\x00/\x00>\x00",  # UTF-16: refused, WeCom sends UTF-8
    ],
)
def test_unsafe_or_malformed_xml_refused(xml: str | bytes) -> None:
    with pytest.raises(MalformedCallback):
        parse_callback(xml)


def test_add_maps_to_contact_added_with_attribution() -> None:
    cb = parse_callback(add_external_contact_xml(CORP, "zhangsan", "wmEXT1", state="c_spring", welcome_code="W1"))
    [event] = to_siyu_events(
        cb,
        channel_code_for_state=lambda s: s.removeprefix("c_"),
        staff_id_for_userid=lambda u: 7 if u == "zhangsan" else None,
    )
    assert event["type"] == "contact.added"
    assert event["contact"] == {"wecom_external_userid": "wmEXT1"}
    assert event["properties"] == {
        "channel_code": "spring",
        "staff_id": 7,
        "wecom_userid": "zhangsan",
        "wecom_state": "c_spring",
    }
    assert event["timestamp"] == "2023-11-14T22:13:20+00:00"
    EventIn.model_validate(event)  # exactly what POST /api/v1/events takes


def test_default_mapping_takes_the_state_as_the_channel_code() -> None:
    [event] = to_siyu_events(parse_callback(add_external_contact_xml(CORP, "zhangsan", "wmEXT1", state="spring")))
    assert event["properties"]["channel_code"] == "spring"
    assert "staff_id" not in event["properties"]


def test_deletions_map_to_their_event_types() -> None:
    by_staff = to_siyu_events(parse_callback(external_contact_xml(CORP, "del_external_contact", "lisi", "wmX")))
    by_customer = to_siyu_events(parse_callback(external_contact_xml(CORP, "del_follow_user", "lisi", "wmX")))
    assert [e["type"] for e in by_staff] == ["contact.deleted_by_staff"]
    assert [e["type"] for e in by_customer] == ["contact.deleted_staff"]
    assert by_staff[0]["id"] != by_customer[0]["id"]
    edited = to_siyu_events(parse_callback(external_contact_xml(CORP, "edit_external_contact", "lisi", "wmX")))
    assert edited == []


def test_group_joins_and_leaves_only_for_external_members() -> None:
    joined = to_siyu_events(
        parse_callback(
            external_chat_xml(CORP, "wrChat1", "update", update_detail="add_member", members=["wmA", "zhangsan", "woB"])
        )
    )
    assert [(e["type"], e["contact"]["wecom_external_userid"]) for e in joined] == [
        ("group.joined", "wmA"),
        ("group.joined", "woB"),
    ]
    assert all(e["properties"]["group_id"] == "wrChat1" for e in joined)
    left = to_siyu_events(
        parse_callback(
            external_chat_xml(CORP, "wrChat1", "update", update_detail="del_member", members=["wmA"], quit_scene=0)
        )
    )
    assert [e["type"] for e in left] == ["group.left"]
    for e in joined + left:
        EventIn.model_validate(e)


def test_event_ids_are_deterministic_so_redelivery_is_idempotent() -> None:
    xml = add_external_contact_xml(CORP, "zhangsan", "wmEXT1", state="spring", welcome_code="W1")
    first, again = to_siyu_events(parse_callback(xml)), to_siyu_events(parse_callback(xml))
    assert first[0]["id"] == again[0]["id"]
    assert 1 <= len(first[0]["id"]) <= 128
    later = to_siyu_events(parse_callback(add_external_contact_xml(CORP, "zhangsan", "wmEXT1", create_time=1700000100)))
    assert later[0]["id"] != first[0]["id"]  # added again later: a new event
