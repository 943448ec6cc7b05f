"""`siyu demo`: a living workspace built through the real services, deterministic for a seed."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select, text

from siyu.app import create_app
from siyu.channels.models import ChannelCode, ChannelCodeStaff, ChannelCodeStaffDay, ChannelCost, ChannelTouch
from siyu.contacts.models import Contact
from siyu.db import Database
from siyu.demo.build import DemoOptions, DemoResult, _Setup, _Simulator, build_demo
from siyu.demo.catalog import INDUSTRIES
from siyu.events.models import Event
from siyu.staff.models import Staff
from siyu.tags.models import ContactTag, Tag, TagGroup

END = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)
KINDS = {
    "contact.added",
    "message.received",
    "message.sent",
    "content.viewed",
    "content.favorited",
    "content.shared",
    "group.joined",
    "live.attended",
    "order.paid",
    "coupon.redeemed",
    "referral.invited",
}


def small(db: Database, name: str = "演示", *, bulk: bool = False, seed: int = 7) -> DemoResult:
    options = DemoOptions(contacts=200, weeks=2, seed=seed, workspace_name=name, end=END, bulk=bulk)
    return build_demo(db, options)


def fingerprint(db: Database, workspace_id: int) -> dict[str, object]:
    """What a run produced, without ids or random slugs."""
    with db.transaction(write=False) as session:
        people = session.execute(
            select(Contact.name, Contact.region, Contact.source_channel, Staff.email, Contact.consult_question)
            .join(Staff, Staff.id == Contact.owner_id)
            .where(Contact.workspace_id == workspace_id)
            .order_by(Contact.id)
        ).all()
        tags = session.execute(
            select(Tag.name, func.count())
            .join(ContactTag, ContactTag.tag_id == Tag.id)
            .where(Tag.workspace_id == workspace_id)
            .group_by(Tag.name)
            .order_by(Tag.name)
        ).all()
        amounts = sorted(
            float(p["amount"])
            for p in session.scalars(
                select(Event.properties).where(Event.workspace_id == workspace_id, Event.type == "order.paid")
            )
        )
    return {"people": [tuple(p) for p in people], "tags": [tuple(t) for t in tags], "amounts": amounts}


def check_workspace(db: Database, result: DemoResult) -> None:
    ws = result.workspace_id
    assert result.contacts == 200
    assert set(result.events) == KINDS, set(result.events) ^ KINDS
    assert result.events["contact.added"] == 200
    with db.transaction(write=False) as session:
        contacts = session.scalars(select(Contact).where(Contact.workspace_id == ws)).all()
        assert len(contacts) == 200
        assert all(c.source_channel and c.owner_id and c.name and c.region and c.birthday for c in contacts)
        assert all(c.attributes.get("business_line") for c in contacts)
        assert sum(1 for c in contacts if c.consult_question) > 50  # first consults come from message.received
        firsts = Counter(
            session.scalars(select(ChannelTouch.contact_id).where(ChannelTouch.workspace_id == ws, ChannelTouch.first))
        )
        assert set(firsts) == {c.id for c in contacts} and set(firsts.values()) == {1}

        # Caps: no pool member ever took more adds in a day than its cap on that code.
        over = session.execute(
            select(ChannelCodeStaffDay.code_id, ChannelCodeStaffDay.day, ChannelCodeStaffDay.adds)
            .join(
                ChannelCodeStaff,
                (ChannelCodeStaff.code_id == ChannelCodeStaffDay.code_id)
                & (ChannelCodeStaff.staff_id == ChannelCodeStaffDay.staff_id),
            )
            .where(ChannelCodeStaffDay.workspace_id == ws, ChannelCodeStaffDay.adds > ChannelCodeStaff.daily_cap)
        ).all()
        assert over == []
        # Day counters agree with the touches, and online hours send night arrivals to the backup lead.
        staff_day = session.scalar(
            select(func.sum(ChannelCodeStaffDay.adds)).where(ChannelCodeStaffDay.workspace_id == ws)
        )
        assert staff_day == 200
        backups = session.scalar(
            select(func.count())
            .select_from(ChannelTouch)
            .join(ChannelCode, ChannelCode.id == ChannelTouch.code_id)
            .where(ChannelTouch.workspace_id == ws, ChannelTouch.staff_id == ChannelCode.backup_staff_id)
        )
        assert backups and backups > 0

        consultants = session.scalars(select(Staff).where(Staff.workspace_id == ws, Staff.wecom_userid.is_not(None)))
        assert len(list(consultants)) == 4 * len(INDUSTRIES)
        codes = session.scalar(select(func.count()).select_from(ChannelCode).where(ChannelCode.workspace_id == ws))
        assert codes == sum(len(i.channels) for i in INDUSTRIES)
        assert session.scalar(select(func.count()).select_from(ChannelCost).where(ChannelCost.workspace_id == ws))
        # Exclusive groups hold one tag per contact: every contact has exactly one intention level.
        intention = session.execute(
            select(ContactTag.contact_id, func.count())
            .join(Tag, Tag.id == ContactTag.tag_id)
            .join(TagGroup, TagGroup.id == Tag.group_id)
            .where(Tag.workspace_id == ws, TagGroup.name == "意向等级")
            .group_by(ContactTag.contact_id)
        ).all()
        assert len(intention) == 200 and {n for _, n in intention} == {1}


def test_a_small_demo_is_a_real_workspace(db: Database, settings) -> None:  # type: ignore[no-untyped-def]
    result = small(db)
    check_workspace(db, result)
    client = TestClient(create_app(settings=settings, database=db))
    signed = client.post("/api/v1/auth/sessions", json={"email": result.admin_email, "password": result.admin_password})
    assert signed.status_code == 201, signed.text
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {signed.json()['token']}"})
    assert me.json()["workspace_id"] == result.workspace_id


def test_the_same_seed_builds_the_same_workspace(db: Database) -> None:
    first = small(db, "演示一")
    second = small(db, "演示二")
    other = small(db, "演示三", seed=8, bulk=True)
    assert first.events == second.events
    assert fingerprint(db, first.workspace_id) == fingerprint(db, second.workspace_id)
    assert fingerprint(db, first.workspace_id) != fingerprint(db, other.workspace_id)


def test_bulk_arrivals_keep_the_meaning(db: Database) -> None:
    one_by_one = small(db, "逐个")
    bulk = small(db, "批量", bulk=True)
    assert bulk.bulk and not one_by_one.bulk
    check_workspace(db, bulk)
    assert bulk.events == one_by_one.events
    # The same rotation rules pick the same staff, so the two workspaces are alike person by person.
    assert fingerprint(db, bulk.workspace_id) == fingerprint(db, one_by_one.workspace_id)


def test_high_frequency_lines_buy_again_more_often() -> None:
    setup = _Setup(workspace_id=0, admin_id=0, tz=ZoneInfo("Asia/Shanghai"), lines=[], intention={}, tiers={})
    start = END - dt.timedelta(weeks=6)
    sim = _Simulator(DemoOptions(contacts=4000, weeks=6, seed=1), setup, start, END)
    sim.arrivals()
    repeat: dict[str, list[int]] = {"high": [0, 0], "low": [0, 0]}
    for person in sim.world.people:
        if person.orders:
            counts = repeat[INDUSTRIES[person.line].frequency]
            counts[0] += 1
            counts[1] += person.orders > 1
        assert start <= person.at < END
    high, low = (repeat[f][1] / repeat[f][0] for f in ("high", "low"))
    assert high > 2 * low and high > 0.3
    invites = [p for week in sim.world.pending.values() for p in week if p[3] == "invite"]
    assert invites and all(sim.world.people[p[1]].at.timestamp() < p[0] for p in invites)


def siyu(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SIYU_DATABASE_URL": database_url, "SIYU_SQLITE_SYNCHRONOUS": "NORMAL"}
    return subprocess.run(
        [sys.executable, "-m", "siyu.cli", *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


@pytest.mark.skipif(os.environ.get("SIYU_TEST_BACKEND") == "postgresql", reason="runs on its own SQLite file")
def test_the_command_builds_once_and_refuses_twice(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    assert siyu(url, "migrate").returncode == 0
    # A build that was interrupted left a half-built workspace under its building name: it is replaced.
    assert siyu(url, "workspace", "create", "siyu 演示 Demo（搭建中）").returncode == 0
    built = siyu(
        url,
        "demo",
        "--if-missing",
        "--contacts",
        "80",
        "--weeks",
        "1",
        "--seed",
        "3",
        "--admin-password",
        "a-demo-password",
    )
    assert built.returncode == 0, built.stderr
    assert "interrupted build" in built.stderr
    assert "demo@siyu.local" in built.stdout and "a-demo-password" in built.stdout
    assert "order.paid" in built.stdout and "80 contacts" in built.stdout
    assert "新客户欢迎 SOP" in built.stderr  # the onboarding SOP is live for people added from now on
    engine = create_engine(url)
    with engine.connect() as conn:
        status = conn.execute(text("SELECT status FROM journey WHERE name = '新客户欢迎 SOP'")).scalar_one()
        config = conn.execute(text("SELECT config FROM delivery_settings")).scalar_one()
    engine.dispose()
    assert status == "active" and json.loads(config)["sandbox"]["open_rate"] == 0.4

    again = siyu(url, "demo", "--contacts", "80", "--weeks", "1")
    assert again.returncode == 1 and "--reset" in again.stderr
    skipped = siyu(url, "demo", "--if-missing")
    assert skipped.returncode == 0 and "nothing to do" in skipped.stdout
    rebuilt = siyu(url, "demo", "--contacts", "50", "--weeks", "1", "--reset")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "50 contacts" in rebuilt.stdout
    listed = siyu(url, "workspace", "list")
    assert listed.stdout.count("演示") == 1
