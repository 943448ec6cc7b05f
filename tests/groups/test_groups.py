"""Groups, membership from events and WeCom callbacks, group codes rotating and opening new groups."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from group_helpers import add_staff, event, make_code, make_group, mount, phone, send

from siyu.adapters.wecom.events import ExternalChatChanged
from siyu.groups import wecom as groups_wecom
from siyu.groups.models import ChatGroup, GroupStatus
from siyu.wecom.service import process_callback


@pytest.fixture(autouse=True)
def _mounted(app) -> None:  # type: ignore[no-untyped-def]
    mount(app)


def test_create_read_update_and_clear_422s(tenant) -> None:  # type: ignore[no-untyped-def]
    owner, helper = add_staff(tenant, "群主小王"), add_staff(tenant, "助理小张")
    g = make_group(tenant, purpose="training", owner_staff_id=owner, helper_staff_ids=[helper], capacity=500)
    assert g["helper_staff_ids"] == [helper] and g["capacity"] == 500 and g["member_count"] == 0
    c = tenant.client
    bad = c.post("/api/v1/groups", json={"name": "x", "purpose": "custom"})
    assert bad.status_code == 422 and "purpose_label" in bad.text
    assert c.post("/api/v1/groups", json={"name": "x", "purpose": "welfare", "capacity": 501}).status_code == 422
    bad = c.post("/api/v1/groups", json={"name": "x", "purpose": "welfare", "owner_staff_id": 999999})
    assert bad.status_code == 422 and "owner_staff_id" in bad.text
    make_group(tenant, name="A", wecom_chat_id="wrAAA")
    dup = c.post("/api/v1/groups", json={"name": "B", "purpose": "welfare", "wecom_chat_id": "wrAAA"})
    assert dup.status_code == 422 and "wecom_chat_id" in dup.text
    changed = c.patch(f"/api/v1/groups/{g['id']}", json={"purpose": "custom", "purpose_label": "读书会"})
    assert changed.status_code == 200 and changed.json()["purpose_label"] == "读书会"
    assert c.patch(f"/api/v1/groups/{g['id']}", json={"capacity": None}).status_code == 422
    assert [x["id"] for x in c.get("/api/v1/groups?purpose=custom").json()] == [g["id"]]


def test_membership_from_events_with_rejoin_and_unknown_groups(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    g = make_group(tenant, wecom_chat_id="wrCHAT1")
    send(
        tenant,
        db,
        event("group.joined", phone(1), "2026-11-20T01:00:00Z", group_id="wrCHAT1"),
        event("group.joined", phone(2), "2026-11-20T02:00:00Z", group_id=str(g["id"])),
        event("group.left", phone(2), "2026-11-21T02:00:00Z", group_id="wrCHAT1"),
        event("group.joined", phone(3), "2026-11-20T02:00:00Z", group_id="wrNEW", group_name="外部群"),
    )
    c = tenant.client
    assert c.get(f"/api/v1/groups/{g['id']}").json()["member_count"] == 1
    members = c.get(f"/api/v1/groups/{g['id']}/members").json()
    assert {m["left_at"] is None for m in members} == {True, False}
    send(tenant, db, event("group.joined", phone(2), "2026-11-22T02:00:00Z", group_id="wrCHAT1"))
    assert c.get(f"/api/v1/groups/{g['id']}").json()["member_count"] == 2
    assert len(c.get(f"/api/v1/groups/{g['id']}/members?current=true").json()) == 2
    # an unknown group id is registered (custom, to be classified) so no member is lost
    other = [x for x in c.get("/api/v1/groups").json() if x["wecom_chat_id"] == "wrNEW"]
    assert other and other[0]["name"] == "外部群" and other[0]["member_count"] == 1


def test_membership_from_wecom_callbacks(tenant, db) -> None:  # type: ignore[no-untyped-def]
    from siyu.groups import stream

    g = make_group(tenant, wecom_chat_id="wrWECOM")
    add = ExternalChatChanged(
        "corp",
        1_795_000_000,
        chat_id="wrWECOM",
        change_type="update",
        update_detail="add_member",
        members=("wmAAA", "wmBBB", "staffuser"),
    )
    drop = ExternalChatChanged(
        "corp", 1_795_000_100, chat_id="wrWECOM", change_type="update", update_detail="del_member", members=("wmAAA",)
    )
    with db.transaction() as session:
        process_callback(session, tenant.workspace_id, add)
        process_callback(session, tenant.workspace_id, drop)
        # the create callback goes through the same door as every WeCom callback
        log = process_callback(
            session, tenant.workspace_id, ExternalChatChanged("corp", 1_795_000_050, "wrCREATED", "create")
        )
        assert log.outcome == "processed" and log.detail.startswith("group ")
    stream.catch_up(db)
    assert tenant.client.get(f"/api/v1/groups/{g['id']}").json()["member_count"] == 1
    created = [x for x in tenant.client.get("/api/v1/groups").json() if x["wecom_chat_id"] == "wrCREATED"]
    assert len(created) == 1
    with db.transaction() as session:
        groups_wecom.on_external_chat(
            session, tenant.workspace_id, ExternalChatChanged("corp", 1_795_000_200, "wrWECOM", "dismiss")
        )
    after = tenant.client.get(f"/api/v1/groups/{g['id']}").json()
    assert after["status"] == "dismissed" and after["member_count"] == 0


def test_code_rotates_when_full_or_at_threshold_and_opens_from_template(tenant, db, anonymous) -> None:  # type: ignore[no-untyped-def]
    owner = add_staff(tenant, "群主")
    g1 = make_group(
        tenant, name="冲刺 1 群", capacity=2, wecom_chat_id="wr1", join_url="https://work.weixin.qq.com/g/1"
    )
    g2 = make_group(
        tenant, name="冲刺 2 群", capacity=5, wecom_chat_id="wr2", join_url="https://work.weixin.qq.com/g/2"
    )
    code = make_code(
        tenant,
        [g1["id"], g2["id"]],
        threshold=3,
        template={"name_pattern": "考试冲刺 {n} 群", "purpose": "activity", "owner_staff_id": owner},
    )
    assert code["current_group_id"] == g1["id"] and code["template"]["next_number"] == 3
    page = anonymous.get(code["link_path"])
    assert page.status_code == 200 and f'data-group="{g1["id"]}"' in page.text and "/g/1" in page.text
    send(tenant, db, *(event("group.joined", phone(n), "2026-11-20T01:00:00Z", group_id="wr1") for n in (1, 2)))
    page = anonymous.get(code["link_path"])
    assert f'data-group="{g2["id"]}"' in page.text  # g1 reached its capacity (2)
    send(tenant, db, *(event("group.joined", phone(n), "2026-11-20T01:00:00Z", group_id="wr2") for n in (3, 4, 5)))
    # g2 reached the code's threshold (3 < capacity 5): the stream opened 考试冲刺 3 群 at once
    read = tenant.client.get(f"/api/v1/group-codes/{code['id']}").json()
    assert len(read["groups"]) == 3 and read["pending_group_ids"] == [read["groups"][2]["id"]]
    new = tenant.client.get(f"/api/v1/groups/{read['groups'][2]['id']}").json()
    assert new["name"] == "考试冲刺 3 群" and new["status"] == "pending" and new["owner_staff_id"] == owner
    assert new["purpose"] == "activity" and new["from_template"]
    page = anonymous.get(code["link_path"])
    assert "preparing" in page.text and "考试冲刺 3 群" in page.text
    # staff created it in WeCom: filling in the join link makes it active and shown
    tenant.client.patch(f"/api/v1/groups/{new['id']}", json={"join_url": "https://work.weixin.qq.com/g/3"})
    assert tenant.client.get(f"/api/v1/groups/{new['id']}").json()["status"] == "active"
    assert f'data-group="{new["id"]}"' in anonymous.get(code["link_path"]).text
    stats = tenant.client.get(f"/api/v1/group-codes/{code['id']}/stats?from=2026-11-01&to=2026-11-30").json()
    assert stats["joins"] == 5 and [g["full"] for g in stats["groups"]] == [True, True, False]


def test_scan_opens_a_group_when_all_full_and_no_template_says_full(tenant, db, anonymous) -> None:  # type: ignore[no-untyped-def]
    g = make_group(tenant, capacity=1, wecom_chat_id="wrX", join_url="https://work.weixin.qq.com/g/x")
    plain = make_code(tenant, [g["id"]])
    send(tenant, db, event("group.joined", phone(1), "2026-11-20T01:00:00Z", group_id="wrX"))
    assert 'id="full"' in anonymous.get(plain["link_path"]).text
    templated = make_code(tenant, [], template={"name_pattern": "福利 {n} 群", "purpose": "welfare"})
    assert templated["groups"] == []
    first = anonymous.get(templated["link_path"])
    assert "福利 1 群" in first.text
    anonymous.get(templated["link_path"])  # a second scan does not open a second group
    read = tenant.client.get(f"/api/v1/group-codes/{templated['id']}").json()
    assert [x["name"] for x in read["groups"]] == ["福利 1 群"]
    manual = tenant.client.post(f"/api/v1/group-codes/{templated['id']}/open-group")
    assert manual.status_code == 201 and manual.json()["name"] == "福利 2 群"
    assert tenant.client.post(f"/api/v1/group-codes/{plain['id']}/open-group").status_code == 422
    tenant.client.post(f"/api/v1/group-codes/{plain['id']}/pause")
    assert anonymous.get(plain["link_path"]).status_code == 409
    assert anonymous.get("/g/nope").status_code == 404
    assert tenant.client.get(f"/api/v1/group-codes/{plain['id']}/qr.svg").status_code == 200


def test_code_422s(tenant) -> None:  # type: ignore[no-untyped-def]
    c = tenant.client
    g = make_group(tenant)
    assert c.post("/api/v1/group-codes", json={"name": "x", "group_ids": []}).status_code == 422
    bad = c.post("/api/v1/group-codes", json={"name": "x", "group_ids": [g["id"], g["id"]]})
    assert bad.status_code == 422 and "repeats" in bad.text
    bad = c.post("/api/v1/group-codes", json={"name": "x", "group_ids": [99999]})
    assert bad.status_code == 422 and "group_ids[0]" in bad.text
    bad = c.post(
        "/api/v1/group-codes", json={"name": "x", "template": {"name_pattern": "no number", "purpose": "welfare"}}
    )
    assert bad.status_code == 422 and "{n}" in bad.text
    make_code(tenant, [g["id"]])
    taken = c.post("/api/v1/group-codes", json={"name": "y", "group_ids": [g["id"]]})
    assert taken.status_code == 422 and "already belongs" in taken.text


def test_other_workspace_sees_nothing(tenant, make_tenant) -> None:  # type: ignore[no-untyped-def]
    g = make_group(tenant)
    code = make_code(tenant, [g["id"]])
    other = make_tenant("品牌B")
    assert other.client.get(f"/api/v1/groups/{g['id']}").status_code == 404
    assert other.client.get(f"/api/v1/group-codes/{code['id']}").status_code == 404
    assert other.client.get("/api/v1/groups").json() == []
    assert other.client.post("/api/v1/group-codes", json={"name": "z", "group_ids": [g["id"]]}).status_code == 422


def test_group_rows_are_workspace_scoped_in_the_model() -> None:
    assert "workspace_id" in ChatGroup.__table__.c and GroupStatus.pending.value == "pending"
