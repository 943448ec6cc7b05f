"""Event ingestion: all-or-nothing batches, limits, idempotent replays, identity resolution, merges."""

from __future__ import annotations

import orjson
from sqlalchemy import func, select

from siyu.contacts.models import Contact, ContactMerge, Identity
from siyu.events.models import Event


def _event(i: int, **overrides):  # type: ignore[no-untyped-def]
    event = {
        "id": f"evt-{i}",
        "type": "content.viewed",
        "contact": {"phone": f"1380013{i:04d}"},
        "timestamp": "2026-11-20T10:00:00+08:00",
        "properties": {"content_id": "article-1"},
    }
    event.update(overrides)
    return event


def _count(db, model) -> int:  # type: ignore[no-untyped-def]
    with db.transaction(write=False) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_batch_is_stored_numbered_and_creates_unknown_contacts(tenant, db) -> None:
    response = tenant.client.post("/api/v1/events?wait=true", json={"events": [_event(i) for i in range(10)]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body.pop("batch_id") and body.pop("received_at") and body.pop("stored_at")
    assert body == {
        "status": "stored",
        "event_count": 10,
        "accepted": 10,
        "duplicates": 0,
        "contacts_created": 10,
        "contacts_merged": 0,
        "first_seq": 1,
        "last_seq": 10,
        "error": None,
    }
    events = tenant.client.get("/api/v1/events", params={"after_seq": 4, "limit": 3}).json()
    assert [e["seq"] for e in events] == [5, 6, 7]
    assert events[0]["occurred_at"].startswith("2026-11-20T02:00:00")  # +08:00 stored as UTC
    second = tenant.client.post("/api/v1/events?wait=true", json={"events": [_event(100 + i) for i in range(3)]}).json()
    assert (second["first_seq"], second["last_seq"]) == (11, 13)
    assert _count(db, Contact) == 13


def test_replaying_a_batch_adds_nothing(tenant, db) -> None:
    batch = {"events": [_event(i) for i in range(5)]}
    assert tenant.client.post("/api/v1/events?wait=true", json=batch).json()["accepted"] == 5
    again = tenant.client.post("/api/v1/events?wait=true", json=batch).json()
    assert again["accepted"] == 0 and again["duplicates"] == 5 and again["contacts_created"] == 0
    mixed = tenant.client.post("/api/v1/events?wait=true", json={"events": [_event(4), _event(5)]}).json()
    assert (mixed["accepted"], mixed["duplicates"]) == (1, 1)
    assert _count(db, Event) == 6 and _count(db, Contact) == 6


def test_a_bad_batch_names_every_bad_event_and_stores_nothing(tenant, db) -> None:
    events = [
        _event(0),
        _event(1, type="Order Paid"),
        _event(2, contact={}),
        _event(3, contact={"phone": "not a phone"}),
        _event(4, type="order.paid", properties={"order_id": "o1", "amount": "lots"}),
        _event(5, timestamp="2099-01-01T00:00:00Z"),
        _event(0),
        {"id": "evt-7", "contact": {"email": "x@y.cn"}},
        _event(8, type="contact.merged"),
    ]
    response = tenant.client.post("/api/v1/events?wait=true", json={"events": events})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_failed"
    problems = {(d["index"], d["field"]) for d in error["details"]}
    assert {(7, "type")} <= problems  # missing field, caught by the schema
    # Shape errors are reported first; fix them and the semantic checks name the rest.
    events[7]["type"] = "form.submitted"
    response = tenant.client.post("/api/v1/events?wait=true", json={"events": events})
    problems = {(d["index"], d["field"]) for d in response.json()["error"]["details"]}
    assert problems == {
        (1, "type"),
        (2, "contact"),
        (3, "contact.phone"),
        (4, "properties.amount"),
        (5, "timestamp"),
        (6, "id"),
        (8, "type"),
    }
    assert "nothing was stored" in response.json()["error"]["message"]
    assert _count(db, Event) == 0 and _count(db, Contact) == 0 and _count(db, Identity) == 0


def test_limits_are_stated(tenant, app) -> None:
    too_many = tenant.client.post("/api/v1/events?wait=true", json={"events": [_event(i) for i in range(1001)]})
    assert too_many.status_code == 422
    assert "limit is 1000" in too_many.json()["error"]["message"]
    huge = orjson.dumps({"events": [_event(0, properties={"content_id": "a", "blob": "x" * (6 * 1024 * 1024)})]})
    too_large = tenant.client.post(
        "/api/v1/events?wait=true", content=huge, headers={"content-type": "application/json"}
    )
    assert too_large.status_code == 413
    assert "limit of" in too_large.json()["error"]["message"] or "the limit is" in too_large.json()["error"]["message"]
    not_json = tenant.client.post(
        "/api/v1/events?wait=true", content=b"{oops", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 422 and "not valid JSON" in not_json.json()["error"]["message"]
    empty = tenant.client.post("/api/v1/events?wait=true", json={"events": []})
    assert empty.status_code == 422


def test_naive_timestamps_are_read_in_the_workspace_time_zone(tenant) -> None:
    tenant.client.post("/api/v1/events?wait=true", json={"events": [_event(0, timestamp="2026-11-20 10:00:00")]})
    (event,) = tenant.client.get("/api/v1/events").json()
    assert event["occurred_at"].startswith("2026-11-20T02:00:00")  # Asia/Shanghai is UTC+8


def test_events_linking_two_profiles_merge_them_and_lose_nothing(tenant, db) -> None:
    c = tenant.client
    group = c.post("/api/v1/tag-groups", json={"name": "来源"}).json()
    tag = c.post("/api/v1/tags", json={"group_id": group["id"], "name": "抖音线索"}).json()
    by_phone = c.post(
        "/api/v1/contacts",
        json={"name": "王芳", "identities": [{"type": "phone", "value": "13900139000"}]},
    ).json()
    by_wecom = c.post(
        "/api/v1/contacts",
        json={"region": "苏州", "identities": [{"type": "wecom_external_userid", "value": "wmXYZ"}]},
    ).json()
    c.post(f"/api/v1/contacts/{by_wecom['id']}/tags", json={"add": [tag["id"]]})
    c.post(f"/api/v1/contacts/{by_wecom['id']}/notes", json={"body": "企微里问过价格"})
    c.post("/api/v1/events?wait=true", json={"events": [_event(1, contact={"wecom_external_userid": "wmXYZ"})]})

    linking = _event(2, type="message.received", contact={"phone": "13900139000", "wecom_external_userid": "wmXYZ"})
    linking["properties"] = {"text": "你好,学费多少钱?"}
    result = c.post("/api/v1/events?wait=true", json={"events": [linking]}).json()
    assert result["contacts_merged"] == 1 and result["contacts_created"] == 0

    survivor = c.get(f"/api/v1/contacts/{by_phone['id']}").json()
    assert survivor["name"] == "王芳" and survivor["region"] == "苏州"  # gap filled from the merged profile
    assert {i["type"] for i in survivor["identities"]} == {"phone", "wecom_external_userid"}
    assert [t["name"] for t in survivor["tags"]] == ["抖音线索"]
    assert survivor["consult_question"] == "你好,学费多少钱?"
    # The merged id still resolves, to the survivor.
    assert c.get(f"/api/v1/contacts/{by_wecom['id']}").json()["id"] == by_phone["id"]
    assert [x["id"] for x in c.get("/api/v1/contacts").json()["items"]] == [by_phone["id"]]
    timeline = c.get(f"/api/v1/contacts/{by_phone['id']}/timeline").json()["items"]
    kinds = [entry["kind"] for entry in timeline]
    assert kinds.count("event") == 3  # content.viewed, message.received, contact.merged
    assert "merge" in kinds and "note" in kinds and "tag_change" in kinds
    merge = next(e for e in timeline if e["kind"] == "merge")
    assert merge["data"]["moved"] == {
        "identities": 1,
        "events": 1,
        "notes": 1,
        "tag_changes": 1,
        "owner_changes": 0,
        "channel_touches": 0,
        "script_uses": 0,
        "tags": 1,
    }
    assert merge["data"]["merged_profile"]["region"] == "苏州"
    assert _count(db, ContactMerge) == 1


def test_one_batch_can_introduce_and_link_a_person(tenant) -> None:
    events = [
        _event(1, contact={"douyin_open_id": "dy-1"}),
        _event(2, contact={"douyin_open_id": "dy-1", "phone": "13700137000"}),
        _event(3, contact={"phone": "13700137000"}),
    ]
    result = tenant.client.post("/api/v1/events?wait=true", json={"events": events}).json()
    assert result["contacts_created"] == 1
    (contact,) = tenant.client.get("/api/v1/contacts").json()["items"]
    assert len(tenant.client.get("/api/v1/events", params={"contact_id": contact["id"]}).json()) == 3


def test_events_may_name_a_contact_by_id(tenant) -> None:
    contact = tenant.client.post("/api/v1/contacts", json={"name": "老客户"}).json()
    ok = tenant.client.post(
        "/api/v1/events?wait=true",
        json={
            "events": [
                _event(
                    1, type="order.paid", contact={"id": contact["id"]}, properties={"order_id": "A1", "amount": 99.5}
                )
            ]
        },
    )
    assert ok.status_code == 200
    (event,) = tenant.client.get("/api/v1/events", params={"contact_id": contact["id"]}).json()
    assert event["properties"] == {"order_id": "A1", "amount": 99.5}
    missing = tenant.client.post("/api/v1/events?wait=true", json={"events": [_event(2, contact={"id": 987654})]})
    assert missing.status_code == 404


def test_custom_event_types_keep_their_properties(tenant) -> None:
    custom = _event(1, type="shop.cart_added", properties={"sku": "X1", "qty": 2, "nested": {"a": [1, 2]}})
    assert tenant.client.post("/api/v1/events?wait=true", json={"events": [custom]}).status_code == 200
    (event,) = tenant.client.get("/api/v1/events", params={"type": "shop.cart_added"}).json()
    assert event["properties"] == {"sku": "X1", "qty": 2, "nested": {"a": [1, 2]}}


def test_sequence_is_per_workspace(make_tenant) -> None:
    a, b = make_tenant("A"), make_tenant("B")
    assert a.client.post("/api/v1/events?wait=true", json={"events": [_event(1), _event(2)]}).json()["last_seq"] == 2
    assert b.client.post("/api/v1/events?wait=true", json={"events": [_event(1)]}).json()["first_seq"] == 1


def test_an_event_for_a_profile_merged_later_in_the_same_batch_lands_on_the_survivor(tenant, db) -> None:
    c = tenant.client
    older = c.post("/api/v1/contacts", json={"identities": [{"type": "phone", "value": "13800138001"}]}).json()
    newer = c.post("/api/v1/contacts", json={"identities": [{"type": "wecom_external_userid", "value": "wmN"}]}).json()
    events = [
        _event(1, contact={"wecom_external_userid": "wmN"}),
        _event(2, contact={"phone": "13800138001", "wecom_external_userid": "wmN"}),
    ]
    assert c.post("/api/v1/events?wait=true", json={"events": events}).json()["contacts_merged"] == 1
    with db.transaction(write=False) as session:
        owners = set(session.scalars(select(Event.contact_id).where(Event.type == "content.viewed")))
    assert owners == {older["id"]} and newer["id"] != older["id"]


def test_the_earliest_message_is_the_first_consult(tenant) -> None:
    def message(n: int, at: str, text: str) -> dict[str, object]:
        return _event(
            n, type="message.received", contact={"phone": "13800138009"}, timestamp=at, properties={"text": text}
        )

    c = tenant.client
    c.post("/api/v1/events?wait=true", json={"events": [message(1, "2026-11-20T10:00:00+08:00", "第二个问题")]})
    c.post("/api/v1/events?wait=true", json={"events": [message(2, "2026-11-19T10:00:00+08:00", "最早的问题")]})
    c.post("/api/v1/events?wait=true", json={"events": [message(3, "2026-11-21T10:00:00+08:00", "后来的问题")]})
    (contact,) = c.get("/api/v1/contacts").json()["items"]
    assert contact["consult_question"] == "最早的问题"
    assert contact["first_consult_at"].startswith("2026-11-19T02:00:00")


def test_known_identities_of_one_person_settle_on_them_and_add_nothing(tenant, db) -> None:
    both = {"phone": "13800138000", "wecom_external_userid": "wm-one"}
    first = tenant.client.post("/api/v1/events?wait=true", json={"events": [_event(1, contact=both)]}).json()
    assert first["contacts_created"] == 1
    again = [_event(2, contact=both), _event(3, contact={"wecom_external_userid": "wm-one"})]
    second = tenant.client.post("/api/v1/events?wait=true", json={"events": again}).json()
    assert (second["accepted"], second["contacts_created"], second["contacts_merged"]) == (2, 0, 0)
    with db.transaction(write=False) as session:
        owners = set(session.scalars(select(Event.contact_id)))
    assert len(owners) == 1 and _count(db, Contact) == 1 and _count(db, Identity) == 2


def test_properties_nested_too_deep_are_refused_at_the_door(tenant, db) -> None:
    """Deeper than stored JSON can be written: refused with a 422, never answered 202 and lost later."""
    deep = '{"down": ' * 299 + '{"leaf": 1}' + "}" * 299  # beyond what orjson writes, not what it reads
    sent = orjson.dumps({"events": [_event(1, type="shop.noted", properties={})]})  # a custom type: any properties
    body = sent.replace(b'"properties":{}', b'"properties":' + deep.encode())
    for path in ("/api/v1/events", "/api/v1/events?wait=true"):
        response = tenant.client.post(path, content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 422, response.text
        assert response.json()["error"]["details"][0]["field"] == "properties"
    assert _count(db, Event) == 0
