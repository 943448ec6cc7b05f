"""record_add: staff picking with caps, backup and hours; first/last touch; tags; owner; repeats."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from channel_helpers import add_staff, make_channel, make_code, phone
from sqlalchemy import select

from siyu.channels.attribution import CodePaused, NoStaffAvailable, record_add
from siyu.contacts.models import Contact, OwnerChange
from siyu.events.models import Event
from siyu.tags.models import TagChange


def add(db, tenant, code_id: int, n: int, at: dt.datetime, **kw):  # type: ignore[no-untyped-def]
    with db.transaction() as session:
        return record_add(session, tenant.workspace_id, code_id, {"phone": phone(n)}, occurred_at=at, **kw)


def test_round_robin_cap_and_backup(tenant, db, clock) -> None:
    a, b, backup = add_staff(tenant, "甲"), add_staff(tenant, "乙"), add_staff(tenant, "备")
    code = make_code(
        tenant,
        make_channel(tenant),
        [{"staff_id": a, "daily_cap": 2}, {"staff_id": b, "daily_cap": 1}],
        backup_staff_id=backup,
    )
    picks = [add(db, tenant, code["id"], n, clock.now) for n in range(5)]
    assert [r.staff_id for r in picks] == [a, b, a, backup, backup]
    assert [r.used_backup for r in picks] == [False, False, False, True, True]
    # The next local day the caps start again (the workspace is in Asia/Shanghai: 16:00 UTC is midnight).
    clock.now = dt.datetime(2026, 11, 23, 16, 0, tzinfo=dt.UTC)
    assert add(db, tenant, code["id"], 10, clock.now).staff_id in (a, b)


def test_no_backup_and_everyone_capped_is_a_clear_refusal(tenant, db, clock) -> None:
    a = add_staff(tenant, "甲")
    code = make_code(tenant, make_channel(tenant), [{"staff_id": a, "daily_cap": 1}])
    add(db, tenant, code["id"], 1, clock.now)
    with pytest.raises(NoStaffAvailable, match="daily cap"):
        add(db, tenant, code["id"], 2, clock.now)
    with db.transaction(write=False) as session:
        assert len(list(session.scalars(select(Contact.id)))) == 1  # the refused add wrote nothing
        assert len(list(session.scalars(select(Event.id)))) == 1


def test_online_hours_follow_the_workspace_time_zone(tenant, db, clock) -> None:
    day, night = add_staff(tenant, "白班"), add_staff(tenant, "夜班")
    code = make_code(
        tenant,
        make_channel(tenant),
        [
            {"staff_id": day, "hours": {"start": "09:00", "end": "18:00"}},
            {"staff_id": night, "hours": {"start": "18:00", "end": "09:00"}},
        ],
    )
    # 02:00 UTC is 10:00 in Shanghai: only the day shift is online, whatever the round robin turn.
    assert [add(db, tenant, code["id"], n, clock.now).staff_id for n in range(3)] == [day, day, day]
    clock.now = dt.datetime(2026, 11, 23, 12, 30, tzinfo=dt.UTC)  # 20:30 local
    assert [add(db, tenant, code["id"], n, clock.now).staff_id for n in range(3, 5)] == [night, night]


def test_weighted_and_least_loaded_through_the_database(tenant, db, clock) -> None:
    a, b = add_staff(tenant, "甲"), add_staff(tenant, "乙")
    weighted = make_code(
        tenant, make_channel(tenant), [{"staff_id": a, "weight": 3}, {"staff_id": b, "weight": 1}], rotation="weighted"
    )
    counts = Counter(add(db, tenant, weighted["id"], n, clock.now).staff_id for n in range(40))
    assert counts == {a: 30, b: 10}
    least = make_code(
        tenant,
        make_channel(tenant, "传单", "offline_flyer"),
        [{"staff_id": a}, {"staff_id": b}],
        rotation="least_loaded",
    )
    # a has 30 adds today, b 10 (through the other code): b takes the next 20, then they alternate.
    picks = [add(db, tenant, least["id"], n, clock.now).staff_id for n in range(100, 122)]
    assert picks[:20] == [b] * 20 and picks[20:] == [a, b]


def test_first_and_last_touch_tags_owner_and_event(tenant, db, clock) -> None:
    c = tenant.client
    a, b = add_staff(tenant, "甲"), add_staff(tenant, "乙")
    group = c.post("/api/v1/tag-groups", json={"name": "来源"}).json()
    live = c.post("/api/v1/tags", json={"group_id": group["id"], "name": "直播间"}).json()
    flyer = c.post("/api/v1/tags", json={"group_id": group["id"], "name": "传单"}).json()
    douyin = make_channel(tenant, "抖音", "douyin")
    first = make_code(tenant, douyin, [{"staff_id": a}], tag_ids=[live["id"]], welcome_text="欢迎！")
    second = make_code(tenant, make_channel(tenant, "传单", "offline_flyer"), [{"staff_id": b}], tag_ids=[flyer["id"]])

    one = add(db, tenant, first["id"], 1, clock.now)
    assert one.created and one.first_touch and not one.repeat and one.staff_id == a and one.welcome_text == "欢迎！"
    clock.advance(hours=1)
    two = add(db, tenant, second["id"], 1, clock.now)
    assert two.contact_id == one.contact_id and not two.created and not two.first_touch and two.staff_id == b

    contact = c.get(f"/api/v1/contacts/{one.contact_id}").json()
    assert contact["source_channel"] == "douyin"  # the first source is kept
    assert contact["owner_id"] == a  # owned since the first add; the second does not take it away
    assert {t["name"] for t in contact["tags"]} == {"直播间", "传单"}
    touches = c.get(f"/api/v1/contacts/{one.contact_id}/channel-touches").json()
    assert touches["first_touch"]["code_id"] == first["id"] and touches["first_touch"]["first"] is True
    assert touches["last_touch"]["code_id"] == second["id"] and touches["last_touch"]["first"] is False
    assert len(touches["touches"]) == 2
    with db.transaction(write=False) as session:
        changes = list(session.scalars(select(TagChange).where(TagChange.contact_id == one.contact_id)))
        assert {(ch.tag_name, ch.source.value, ch.action.value) for ch in changes} == {
            ("直播间", "channel", "added"),
            ("传单", "channel", "added"),
        }
        owner = session.scalars(select(OwnerChange).where(OwnerChange.contact_id == one.contact_id)).one()
        assert owner.to_staff_id == a and owner.from_staff_id is None
        events = list(session.scalars(select(Event).where(Event.contact_id == one.contact_id).order_by(Event.seq)))
        assert [e.type for e in events] == ["contact.added", "contact.added"]
        assert events[0].properties["channel"] == "douyin" and events[0].properties["staff_id"] == a
        assert events[0].properties["channel_code"] == str(first["id"])


def test_a_repeat_through_the_same_code_counts_nothing_twice(tenant, db, clock) -> None:
    a, b = add_staff(tenant, "甲"), add_staff(tenant, "乙")
    code = make_code(tenant, make_channel(tenant), [{"staff_id": a}, {"staff_id": b}])
    first = add(db, tenant, code["id"], 1, clock.now)
    again = add(db, tenant, code["id"], 1, clock.now)
    assert again.repeat and again.staff_id == first.staff_id and again.contact_id == first.contact_id
    stats = tenant.client.get(f"/api/v1/channel-codes/{code['id']}/stats").json()
    assert stats["adds"] == 1
    assert add(db, tenant, code["id"], 2, clock.now).staff_id == b  # the repeat did not move the turn


def test_existing_contact_with_an_owner_keeps_it_and_a_known_one_gets_the_source(tenant, db, clock) -> None:
    c = tenant.client
    a, owner = add_staff(tenant, "甲"), add_staff(tenant, "老顾问")
    known = c.post(
        "/api/v1/contacts",
        json={"name": "老客户", "owner_id": owner, "identities": [{"type": "phone", "value": phone(7)}]},
    ).json()
    code = make_code(tenant, make_channel(tenant, "知乎", "zhihu"), [{"staff_id": a}])
    result = add(db, tenant, code["id"], 7, clock.now)
    assert result.contact_id == known["id"] and not result.created and result.first_touch
    after = c.get(f"/api/v1/contacts/{known['id']}").json()
    assert after["owner_id"] == owner and after["source_channel"] == "zhihu"


def test_staff_hint_and_paused_code(tenant, db, clock) -> None:
    a, b = add_staff(tenant, "甲"), add_staff(tenant, "乙")
    code = make_code(tenant, make_channel(tenant), [{"staff_id": a, "daily_cap": 0}])
    assert add(db, tenant, code["id"], 1, clock.now, source="wecom", staff_hint=b).staff_id == b
    tenant.client.post(f"/api/v1/channel-codes/{code['id']}/pause")
    with pytest.raises(CodePaused, match="paused"):
        add(db, tenant, code["id"], 2, clock.now)


def test_merging_two_people_who_each_came_through_a_code_keeps_one_first_touch(tenant, db, clock) -> None:
    a = add_staff(tenant, "甲")
    early = make_code(tenant, make_channel(tenant, "小红书笔记", "xiaohongshu"), [{"staff_id": a}])
    late = make_code(tenant, make_channel(tenant), [{"staff_id": a}])
    first = add(db, tenant, early["id"], 1, clock.now)
    clock.advance(hours=2)
    second = add(db, tenant, late["id"], 2, clock.now)
    c = tenant.client
    merged = c.post(f"/api/v1/contacts/{second.contact_id}/merge", json={"other_contact_id": first.contact_id})
    assert merged.json()["details"]["moved"]["channel_touches"] == 1
    touches = c.get(f"/api/v1/contacts/{second.contact_id}/channel-touches").json()
    assert len(touches["touches"]) == 2
    assert [t["first"] for t in touches["touches"]].count(True) == 1
    assert touches["first_touch"]["code_id"] == early["id"]  # the earliest arrival is the source


def test_a_staff_account_over_its_daily_add_limit_is_skipped(tenant, db, clock) -> None:
    a, b = add_staff(tenant, "新号"), add_staff(tenant, "老号")
    limited = tenant.client.put(f"/api/v1/delivery/staff-accounts/{a}", json={"add_limit": 1, "warmup_days": 0})
    assert limited.status_code == 200, limited.text
    code = make_code(tenant, make_channel(tenant), [{"staff_id": a}, {"staff_id": b}])
    # Round robin would alternate; the young account's one add a day is spent on the first scan.
    assert [add(db, tenant, code["id"], n, clock.now).staff_id for n in range(4)] == [a, b, b, b]
    clock.now = dt.datetime(2026, 11, 23, 16, 0, tzinfo=dt.UTC)  # the next local day: a new allowance
    assert a in [add(db, tenant, code["id"], n, clock.now).staff_id for n in range(10, 12)]
