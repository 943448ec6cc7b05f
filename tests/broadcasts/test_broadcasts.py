"""Broadcasts through the API: validation with path errors, the plan after budgets, now and scheduled,
the frozen audience, batches, cancel, and who may broadcast. The clock is frozen (10:00 in Shanghai)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from tests.broadcasts.broadcast_helpers import contact, published, sandbox_counts, segment, tag, work

from siyu.staff.models import Role


@pytest.fixture(autouse=True)
def _clock(clock):  # type: ignore[no-untyped-def]
    return clock


def _body(**extra: Any) -> dict[str, Any]:
    return {"name": "双十一", "text": "双十一全场五折", "channel": "sandbox", **extra}


def _error(response: Any) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    return response.json()["error"]["details"][0]  # type: ignore[no-any-return]


def test_a_broadcast_to_a_segment_now_sends_each_member_once(tenant, db) -> None:  # type: ignore[no-untyped-def]
    exam = tag(tenant)
    members = [contact(tenant, f"客户{n}", tags=[exam]) for n in range(5)]
    contact(tenant, "不在分群里")
    seg = segment(tenant, exam)
    created = tenant.client.post("/api/v1/broadcasts", json=_body(audience={"segment_id": seg}))
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "sending"
    assert body["plan"]["total"] == 5 and body["plan"]["eligible"] == 5 and body["plan"]["excluded"] == {}
    assert body["progress"]["total"] == 5 and body["progress"]["processed"] == 0
    work(db)
    got = tenant.client.get(f"/api/v1/broadcasts/{body['id']}").json()
    assert got["status"] == "sent" and got["finished_at"]
    assert got["progress"] | {"reasons": {}} == {
        "total": 5,
        "processed": 5,
        "sent": 5,
        "queued": 0,
        "held": 0,
        "skipped": 0,
        "failed": 0,
        "reasons": {},
    }
    assert sandbox_counts(db, tenant.workspace_id) == dict.fromkeys(members, 1)
    # the deliveries carry the broadcast as their source
    log = tenant.client.get("/api/v1/delivery/deliveries").json()["items"]
    assert {d["source"] for d in log} == {f"broadcast:{body['id']}"}
    # running the worker again sends nothing more
    work(db)
    assert sandbox_counts(db, tenant.workspace_id) == dict.fromkeys(members, 1)


def test_budgets_are_applied_in_the_plan_and_in_the_send(tenant, db) -> None:  # type: ignore[no-untyped-def]
    exam = tag(tenant)
    ids = [contact(tenant, f"客户{n}", tags=[exam]) for n in range(4)]
    opted = tenant.client.post("/api/v1/delivery/opt-outs", json={"contact_id": ids[0]})
    assert opted.status_code == 201, opted.text
    # ids[1] already got today's one message (the default cap is 1 a day)
    earlier = tenant.client.post(
        "/api/v1/delivery/deliveries",
        json={"contact_id": ids[1], "step": "welcome", "channel": "sandbox", "text": "hi"},
    )
    assert earlier.status_code in (200, 201), earlier.text
    audience = {"tag_ids": [exam], "match": "any"}
    preview = tenant.client.post("/api/v1/broadcasts/preview", json=_body(audience=audience))
    assert preview.status_code == 200, preview.text
    assert preview.json() | {"at": None} == {
        "unit": "contacts",
        "total": 4,
        "eligible": 2,
        "excluded": {"opted_out": 1, "cap_day": 1},
        "at": None,
    }
    created = tenant.client.post("/api/v1/broadcasts", json=_body(audience=audience)).json()
    assert created["plan"]["excluded"] == {"opted_out": 1, "cap_day": 1}
    work(db)
    progress = tenant.client.get(f"/api/v1/broadcasts/{created['id']}").json()["progress"]
    assert progress["sent"] == 2 and progress["skipped"] == 2
    assert progress["reasons"] == {"opted_out": 1, "cap_day": 1}
    assert sandbox_counts(db, tenant.workspace_id) == {ids[1]: 1, ids[2]: 1, ids[3]: 1}  # ids[1]: the earlier one


def test_quiet_hours_hold_or_skip(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    clock.now = dt.datetime(2026, 11, 23, 14, 0, tzinfo=dt.UTC)  # 22:00 in Shanghai: quiet
    exam = tag(tenant)
    contact(tenant, "甲", tags=[exam])
    held = tenant.client.post("/api/v1/broadcasts", json=_body(audience={"tag_ids": [exam]})).json()
    skipped = tenant.client.post(
        "/api/v1/broadcasts", json=_body(name="跳过", audience={"tag_ids": [exam]}, quiet_hours="skip")
    ).json()
    assert held["plan"]["excluded"] == {"quiet_hours": 1}
    work(db)
    assert tenant.client.get(f"/api/v1/broadcasts/{held['id']}").json()["progress"]["held"] == 1
    s = tenant.client.get(f"/api/v1/broadcasts/{skipped['id']}").json()["progress"]
    assert s["skipped"] == 1 and s["reasons"] == {"quiet_hours": 1}


def test_every_bad_input_names_its_field(tenant, make_tenant) -> None:  # type: ignore[no-untyped-def]
    exam = tag(tenant)
    contact(tenant, "甲", tags=[exam])
    other = make_tenant("别的品牌")
    their_tag = tag(other)
    draft = tenant.client.post("/api/v1/content", json={"kind": "article", "title": "草稿", "body": "x"}).json()
    post = tenant.client.post
    cases = [
        ({"audience": {"segment_id": 999999}}, "audience.segment_id"),
        ({"audience": {"tag_ids": [exam, their_tag]}}, "audience.tag_ids[1]"),
        ({"audience": {"group_ids": [424242]}}, "audience.group_ids[0]"),
        ({"audience": {"tag_ids": [exam]}, "content_id": 999999}, "content_id"),
        ({"audience": {"tag_ids": [exam]}, "content_id": draft["id"]}, "content_id"),
        ({"audience": {"tag_ids": [exam]}, "run_at": "2026-11-22T00:00:00Z"}, "run_at"),
        ({"audience": {"tag_ids": [exam]}, "channel": "wecom"}, "channel"),
    ]
    for extra, field in cases:
        detail = _error(post("/api/v1/broadcasts", json=_body(**extra)))
        assert detail["field"] == field, (extra, detail)
        assert _error(post("/api/v1/broadcasts/preview", json=_body(**extra)))["field"] == field
    assert (
        "publish it"
        in _error(post("/api/v1/broadcasts", json=_body(audience={"tag_ids": [exam]}, content_id=draft["id"])))[
            "reason"
        ]
    )
    nobody = tag(tenant, "没人有")
    assert _error(post("/api/v1/broadcasts", json=_body(audience={"tag_ids": [nobody]})))["field"] == "audience"
    assert _error(post("/api/v1/broadcasts", json=_body(audience={})))["field"] == "audience"
    both = {"segment_id": 1, "tag_ids": [exam]}
    assert _error(post("/api/v1/broadcasts", json=_body(audience=both)))["field"] == "audience"
    assert _error(post("/api/v1/broadcasts", json={"name": "x", "audience": {"tag_ids": [exam]}}))["field"] == "text"
    assert (
        _error(post("/api/v1/broadcasts", json=_body(audience={"tag_ids": [exam, exam]})))["field"]
        == "audience.tag_ids"
    )


def test_tag_filters_any_all_none(tenant) -> None:  # type: ignore[no-untyped-def]
    a, b = tag(tenant, "甲"), tag(tenant, "乙")
    contact(tenant, "只有甲", tags=[a])
    contact(tenant, "甲乙", tags=[a, b])
    contact(tenant, "没有")

    def total(match: str) -> int:
        response = tenant.client.post(
            "/api/v1/broadcasts/preview", json=_body(audience={"tag_ids": [a, b], "match": match})
        )
        assert response.status_code == 200, response.text
        return int(response.json()["total"])

    assert (total("any"), total("all"), total("none")) == (2, 1, 1)


def test_scheduled_broadcast_starts_when_due_and_freezes_its_audience(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    exam = tag(tenant)
    first = contact(tenant, "早到", tags=[exam])
    seg = segment(tenant, exam)
    run_at = (clock.now + dt.timedelta(hours=2)).isoformat()
    created = tenant.client.post("/api/v1/broadcasts", json=_body(audience={"segment_id": seg}, run_at=run_at))
    assert created.status_code == 201, created.text
    b = created.json()
    assert b["status"] == "scheduled" and b["plan"]["total"] == 1
    work(db)
    assert sandbox_counts(db, tenant.workspace_id) == {}
    clock.advance(hours=2)
    work(db)
    assert tenant.client.get(f"/api/v1/broadcasts/{b['id']}").json()["status"] == "sent"
    assert sandbox_counts(db, tenant.workspace_id) == {first: 1}


def test_the_audience_is_frozen_at_the_start(tenant, db) -> None:  # type: ignore[no-untyped-def]
    exam = tag(tenant)
    early = [contact(tenant, f"早{n}", tags=[exam]) for n in range(3)]
    b = tenant.client.post("/api/v1/broadcasts", json=_body(audience={"tag_ids": [exam]})).json()
    late = contact(tenant, "晚到", tags=[exam])  # tagged after the start: not in this broadcast
    work(db)
    counts = sandbox_counts(db, tenant.workspace_id)
    assert counts == dict.fromkeys(early, 1) and late not in counts
    assert tenant.client.get(f"/api/v1/broadcasts/{b['id']}").json()["progress"]["total"] == 3


def test_start_now_and_cancel(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    exam = tag(tenant)
    people = [contact(tenant, f"客户{n}", tags=[exam]) for n in range(5)]
    later = (clock.now + dt.timedelta(days=1)).isoformat()
    scheduled = tenant.client.post("/api/v1/broadcasts", json=_body(audience={"tag_ids": [exam]}, run_at=later)).json()
    cancelled = tenant.client.post(f"/api/v1/broadcasts/{scheduled['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert tenant.client.post(f"/api/v1/broadcasts/{scheduled['id']}/cancel").status_code == 409
    assert tenant.client.post(f"/api/v1/broadcasts/{scheduled['id']}/start").status_code == 409
    clock.advance(days=2)
    work(db)
    assert sandbox_counts(db, tenant.workspace_id) == {}

    # cancel while sending: two batches of 2 go out, the rest never does
    other = tenant.client.post(
        "/api/v1/broadcasts",
        json=_body(name="分批", audience={"tag_ids": [exam]}, run_at=(clock.now + dt.timedelta(hours=1)).isoformat()),
    ).json()
    started = tenant.client.post(f"/api/v1/broadcasts/{other['id']}/start")
    assert started.status_code == 200 and started.json()["status"] == "sending"
    from siyu.broadcasts import service

    for _ in range(2):
        with db.transaction() as session:
            broadcast = service.lock(session, other["id"])
            assert broadcast is not None
            service.send_batch(session, broadcast, now=clock.now, size=2)
    stopped = tenant.client.post(f"/api/v1/broadcasts/{other['id']}/cancel").json()
    assert stopped["status"] == "cancelled" and stopped["progress"]["sent"] == 4
    work(db)
    assert sandbox_counts(db, tenant.workspace_id) == dict.fromkeys(people[:4], 1)


def test_list_and_get(tenant, db) -> None:  # type: ignore[no-untyped-def]
    exam = tag(tenant)
    contact(tenant, "甲", tags=[exam])
    item = published(tenant)
    made = tenant.client.post(
        "/api/v1/broadcasts", json=_body(audience={"tag_ids": [exam], "match": "all"}, content_id=item, welfare=True)
    ).json()
    listed = tenant.client.get("/api/v1/broadcasts").json()
    assert [b["id"] for b in listed] == [made["id"]]
    assert listed[0]["audience"] == {
        "kind": "tags",
        "segment_id": None,
        "tag_ids": [exam],
        "match": "all",
        "group_ids": None,
    }
    assert listed[0]["content_id"] == item and listed[0]["welfare"] is True and listed[0]["wecom"] is None
    assert tenant.client.get("/api/v1/broadcasts", params={"status": "sent"}).json() == []
    assert tenant.client.get("/api/v1/broadcasts/987654").status_code == 404


def test_only_operators_broadcast(tenant) -> None:  # type: ignore[no-untyped-def]
    exam = tag(tenant)
    mine = contact(tenant, "我的客户", tags=[exam])
    consultant_id, consultant = tenant.as_staff("cs@brand.cn", Role.consultant)
    tenant.client.patch(f"/api/v1/contacts/{mine}", json={"owner_id": consultant_id})
    for method, path, body in [
        ("POST", "/api/v1/broadcasts", _body(audience={"tag_ids": [exam]})),
        ("POST", "/api/v1/broadcasts/preview", _body(audience={"tag_ids": [exam]})),
        ("GET", "/api/v1/broadcasts", None),
    ]:
        response = consultant.request(method, path, json=body)
        assert response.status_code == 403, response.text
        assert "broadcasts:" in response.json()["error"]["message"]
    _, operator = tenant.as_staff("op@brand.cn", Role.operator)
    made = operator.post("/api/v1/broadcasts", json=_body(audience={"tag_ids": [exam]}))
    assert made.status_code == 201, made.text
