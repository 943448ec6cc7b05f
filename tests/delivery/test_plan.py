"""plan / eligible_contacts: set-based, and the same answer send_many gives contact by contact."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from tests.delivery.delivery_helpers import T0, Channel, configure, contacts, req, staff, workspace

from siyu.contacts.models import Contact
from siyu.delivery import reasons
from siyu.delivery.models import ContactSendDay, DeliveryStatus, OptOut, StaffSendDay
from siyu.delivery.service import eligible_contacts, plan, send_many
from siyu.wecom.models import WeComSettings


def _audience(ws: int):  # type: ignore[no-untyped-def]
    return select(Contact.id).where(Contact.workspace_id == ws)


def test_plan_counts_each_reason_once_in_check_order(db) -> None:
    ws = workspace(db)
    configure(db, ws, caps={"day": 1, "week": 2, "month": 3})
    ids = contacts(db, ws, 6)
    with db.transaction() as session:
        session.add(OptOut(workspace_id=ws, contact_id=ids[0], source="api", created_at=T0))
        today = dt.date(2026, 11, 23)
        session.add(ContactSendDay(workspace_id=ws, contact_id=ids[1], day=today, sends=1, welfare=0))
        session.add(ContactSendDay(workspace_id=ws, contact_id=ids[2], day=today - dt.timedelta(days=30), sends=5))
        session.add(ContactSendDay(workspace_id=ws, contact_id=ids[3], day=dt.date(2026, 11, 2), sends=3, welfare=0))
    with db.transaction() as session:
        result = plan(session, ws, _audience(ws), channel=Channel.sandbox, welfare=False, at=T0)
        eligible = set(
            session.scalars(
                eligible_contacts(session, ws, _audience(ws), channel=Channel.sandbox, welfare=False, at=T0)
            )
        )
    assert result.total == 6
    assert result.excluded == {reasons.OPTED_OUT: 1, reasons.CAP_DAY: 1, reasons.CAP_MONTH: 1}
    assert result.eligible == 3
    assert eligible == {ids[2], ids[4], ids[5]}


ZONES = [None, None, "Europe/London", "America/New_York", "Asia/Tokyo"]


@st.composite
def worlds(draw):  # type: ignore[no-untyped-def]
    n = draw(st.integers(1, 12))
    people = [
        {
            "zone": draw(st.sampled_from(ZONES)),
            "opted": draw(st.booleans()) and draw(st.booleans()),
            "email": draw(st.booleans()),
            "wecom": draw(st.booleans()),
            "owner": draw(st.sampled_from([None, 0, 1, 2])),
            "merged": draw(st.integers(0, 9)) == 0,
            "history": draw(
                st.lists(
                    st.tuples(st.integers(0, 40), st.integers(1, 3), st.integers(0, 1)),
                    max_size=5,
                    unique_by=lambda t: t[0],
                )
            ),
        }
        for _ in range(n)
    ]
    config = {
        "caps": {
            "day": draw(st.sampled_from([None, 0, 1, 2])),
            "week": draw(st.sampled_from([None, 2, 4])),
            "month": draw(st.sampled_from([None, 3, 6])),
        },
        "quiet_hours": draw(
            st.sampled_from([None, {"start": "21:00", "end": "08:00"}, {"start": "09:00", "end": "12:00"}])
        ),
        "welfare_days_per_month": draw(st.sampled_from([None, 0, 1, 3])),
        "staff": {"send_limit": draw(st.sampled_from([None, 0, 1, 3])), "warmup_days": draw(st.sampled_from([0, 15]))},
        "webhook_url": draw(st.sampled_from([None, "https://hooks.example.com/siyu"])),
    }
    staff_sent = [draw(st.integers(0, 3)) for _ in range(3)]
    return {
        "people": people,
        "config": config,
        "staff_sent": staff_sent,
        "channel": draw(st.sampled_from(list(Channel))),
        "welfare": draw(st.booleans()),
        "hour": draw(st.integers(0, 23)),
        "wecom_configured": draw(st.booleans()),
        "given_staff": draw(st.sampled_from([None, 0])),
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(world=worlds())
def test_plan_and_eligible_contacts_agree_with_send_many(db, world) -> None:  # type: ignore[no-untyped-def]
    """The differential test: plan's counts and eligible_contacts' ids equal what send_many decides for one
    request per contact, in contact id order, at the same moment."""
    ws = workspace(db)
    configure(db, ws, **world["config"])
    at = dt.datetime(2026, 11, 23, world["hour"], 30, tzinfo=dt.UTC)
    staff_ids = [
        staff(db, ws, wecom_userid="u0", created_at=dt.datetime(2026, 11, 10, tzinfo=dt.UTC)),
        staff(db, ws, wecom_userid=None),
        staff(db, ws, wecom_userid="u2", created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)),
    ]
    ids: list[int] = []
    for person in world["people"]:
        owner = staff_ids[person["owner"]] if person["owner"] is not None else None
        (cid,) = contacts(
            db, ws, 1, owner_id=owner, timezone=person["zone"], email=person["email"], wecom=person["wecom"]
        )
        ids.append(cid)
    with db.transaction() as session:
        if world["wecom_configured"]:
            session.add(
                WeComSettings(
                    workspace_id=ws,
                    corp_id="ww1",
                    secret_encrypted="x",
                    token_encrypted="x",
                    aes_key_encrypted="x",
                    secret_hint="x",
                )
            )
        for sid, n in zip(staff_ids, world["staff_sent"], strict=True):
            if n:
                session.add(StaffSendDay(workspace_id=ws, staff_id=sid, day=dt.date(2026, 11, 23), sends=n))
        for cid, person in zip(ids, world["people"], strict=True):
            if person["opted"]:
                session.add(OptOut(workspace_id=ws, contact_id=cid, source="api", created_at=T0))
            for days_ago, sends, welfare in person["history"]:
                day = dt.date(2026, 11, 24) - dt.timedelta(days=days_ago)
                session.add(ContactSendDay(workspace_id=ws, contact_id=cid, day=day, sends=sends, welfare=welfare))
        session.flush()
        for cid, person in zip(ids, world["people"], strict=True):
            if person["merged"] and cid != ids[0]:
                session.get(Contact, cid).merged_into_id = ids[0]  # type: ignore[union-attr]
    channel, welfare = world["channel"], world["welfare"]
    given_staff = staff_ids[0] if world["given_staff"] == 0 else None
    audience = _audience(ws)
    with db.transaction(write=False) as session:
        planned = plan(session, ws, audience, channel=channel, welfare=welfare, at=at, staff_id=given_staff)
        eligible = set(
            session.scalars(eligible_contacts(session, ws, audience, channel=channel, welfare=welfare, at=at))
        )
    with db.transaction() as session:
        outcomes = send_many(
            session,
            ws,
            [req(cid, channel=channel, welfare=welfare, staff_id=given_staff) for cid in sorted(ids)],
            now=at,
        )
        session.rollback()
    accepted = {
        cid
        for cid, o in zip(sorted(ids), outcomes, strict=True)
        if o.status in (DeliveryStatus.sent, DeliveryStatus.queued)
    }
    excluded: dict[str, int] = {}
    for o in outcomes:
        if o.reason is not None:
            excluded[o.reason] = excluded.get(o.reason, 0) + 1
    assert (planned.total, planned.eligible, planned.excluded) == (len(ids), len(accepted), excluded)
    if given_staff is None:
        assert eligible == accepted
