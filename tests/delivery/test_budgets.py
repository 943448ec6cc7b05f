"""Budgets: caps per local day / week / month across channels, welfare days, staff limits with warm-up,
held deliveries released by the poller when the clock moves on."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from tests.delivery.delivery_helpers import T0, Channel, QuietHoursPolicy, configure, contacts, req, staff, workspace

from siyu.delivery import reasons, stream
from siyu.delivery.models import ContactSendDay, Delivery, DeliveryStatus, SandboxMessage, StaffAccount
from siyu.delivery.service import release_held, send_many, staff_add_allowance, staff_send_allowance
from siyu.wecom.models import WeComSettings


def _send(db, ws, requests, now):  # type: ignore[no-untyped-def]
    with db.transaction() as session:
        return send_many(session, ws, requests, now=now)


def _statuses(outcomes):  # type: ignore[no-untyped-def]
    return [(o.status.value, o.reason) for o in outcomes]


def test_a_service_message_passes_the_caps_and_counts_in_them(db) -> None:
    ws = workspace(db)
    configure(db, ws, caps={"day": 1, "week": 2, "month": 3}, welfare_days_per_month=1, quiet_hours=None)
    (who,) = contacts(db, ws, 1)
    mon = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)
    live_reminders = [req(who, step="am", service=True), req(who, step="pm", service=True, welfare=True)]
    assert _statuses(_send(db, ws, [req(who, step="a"), *live_reminders, req(who, step="b")], mon)) == [
        ("sent", None),
        ("sent", None),  # the day's cap is used up, but the contact asked for this reminder
        ("sent", None),
        ("skipped", reasons.CAP_DAY),  # and it was counted: marketing waits
    ]
    tue = mon + dt.timedelta(days=1)
    assert _statuses(_send(db, ws, [req(who, step="c", welfare=True)], tue)) == [("skipped", reasons.CAP_WEEK)]
    with db.transaction(write=False) as session:
        rows = dict(session.execute(select(Delivery.step, Delivery.service).where(Delivery.contact_id == who)).all())
        assert rows == {"a": False, "am": True, "pm": True, "b": False, "c": False}
        assert session.scalar(select(ContactSendDay.sends).where(ContactSendDay.contact_id == who)) == 3


def test_caps_count_local_days_weeks_and_months_across_channels(db) -> None:
    ws = workspace(db)
    configure(db, ws, caps={"day": 1, "week": 2, "month": 3}, quiet_hours=None)
    # Tokyo is an hour ahead of Shanghai: 23:30 Shanghai on Sunday 29th is already Monday 30th in Tokyo
    (sh,) = contacts(db, ws, 1)
    (tokyo,) = contacts(db, ws, 1, timezone="Asia/Tokyo")
    mon = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)
    assert _statuses(_send(db, ws, [req(sh, step="a"), req(sh, step="b")], mon)) == [
        ("sent", None),
        ("skipped", reasons.CAP_DAY),
    ]
    tue = mon + dt.timedelta(days=1)
    assert _statuses(_send(db, ws, [req(sh, step="c", channel=Channel.sandbox)], tue)) == [("sent", None)]
    wed = tue + dt.timedelta(days=1)
    assert _statuses(_send(db, ws, [req(sh, step="d")], wed)) == [("skipped", reasons.CAP_WEEK)]
    sunday_late = dt.datetime(2026, 11, 29, 15, 30, tzinfo=dt.UTC)  # 23:30 Sun Shanghai, 00:30 Mon Tokyo
    assert _statuses(_send(db, ws, [req(tokyo, step="a"), req(tokyo, step="b")], sunday_late)) == [
        ("sent", None),
        ("skipped", reasons.CAP_DAY),
    ]
    next_week = dt.datetime(2026, 11, 30, 2, 0, tzinfo=dt.UTC)
    assert _statuses(_send(db, ws, [req(sh, step="e")], next_week)) == [("sent", None)]
    with db.transaction() as session:
        days = dict(
            session.execute(
                select(ContactSendDay.day, ContactSendDay.sends).where(ContactSendDay.contact_id == tokyo)
            ).all()
        )
    assert days == {dt.date(2026, 11, 30): 1}  # the Tokyo contact's own day
    later_that_day = dt.datetime(2026, 11, 30, 3, 0, tzinfo=dt.UTC)
    assert _statuses(_send(db, ws, [req(sh, step="f")], later_that_day)) == [("skipped", reasons.CAP_DAY)]
    tuesday = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)  # a new month, the same week: 1 of 2 so far
    assert _statuses(_send(db, ws, [req(sh, step="g")], tuesday)) == [("sent", None)]


def test_the_month_cap(db) -> None:
    ws = workspace(db)
    configure(db, ws, caps={"day": None, "week": None, "month": 2}, quiet_hours=None)
    (c,) = contacts(db, ws, 1)
    out = _send(db, ws, [req(c, step=s) for s in "abc"], T0)
    assert _statuses(out) == [("sent", None), ("sent", None), ("skipped", reasons.CAP_MONTH)]
    out = _send(db, ws, [req(c, step="d")], dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC))
    assert _statuses(out) == [("sent", None)]


def test_welfare_content_goes_out_on_at_most_n_days_a_month(db) -> None:
    ws = workspace(db)
    configure(db, ws, caps={"day": None, "week": None, "month": None}, welfare_days_per_month=2, quiet_hours=None)
    (c,) = contacts(db, ws, 1)
    day = lambda n: dt.datetime(2026, 11, n, 2, 0, tzinfo=dt.UTC)  # noqa: E731
    assert _statuses(_send(db, ws, [req(c, step="w1", welfare=True), req(c, step="w2", welfare=True)], day(2))) == [
        ("sent", None),
        ("sent", None),  # the same day is still one welfare day
    ]
    assert _statuses(_send(db, ws, [req(c, step="w3", welfare=True)], day(5))) == [("sent", None)]
    assert _statuses(_send(db, ws, [req(c, step="w4", welfare=True), req(c, step="n1")], day(9))) == [
        ("skipped", reasons.WELFARE_DAYS),
        ("sent", None),  # ordinary content is not welfare
    ]
    assert _statuses(_send(db, ws, [req(c, step="w5", welfare=True)], day(5) + dt.timedelta(hours=3))) == [
        ("sent", None)  # the 5th already was a welfare day
    ]


def test_quiet_hours_hold_then_the_poller_sends_when_they_end(db, clock) -> None:
    ws = workspace(db)
    (c,) = contacts(db, ws, 1)
    clock.now = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)  # 23:00 in Shanghai
    (held,) = _send(db, ws, [req(c)], clock.now)
    assert (held.status, held.reason) == (DeliveryStatus.held, reasons.QUIET_HOURS)
    assert stream.release_due(db) == 0  # not yet
    clock.now = held.retry_at  # 08:00
    assert stream.release_due(db) == 1
    with db.transaction() as session:
        (again,) = send_many(session, ws, [req(c)], now=clock.now)
        assert again.delivery_id == held.delivery_id
        assert (again.status, again.reason, again.retry_at) == (DeliveryStatus.sent, None, None)
        assert session.scalar(select(SandboxMessage.id)) == held.delivery_id
        assert session.scalar(select(ContactSendDay.day)) == dt.date(2026, 11, 24)


def test_a_held_delivery_is_skipped_at_release_if_the_contact_opted_out_meanwhile(db, clock) -> None:
    ws = workspace(db)
    (c,) = contacts(db, ws, 1)
    clock.now = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)
    (held,) = _send(db, ws, [req(c)], clock.now)
    with db.transaction() as session:
        stream.record_opt_out(session, ws, c, source="api", detail=None, now=clock.now)
    clock.now = held.retry_at
    stream.release_due(db)
    with db.transaction() as session:
        (after,) = send_many(session, ws, [req(c)], now=clock.now)
    assert (after.status, after.reason) == (DeliveryStatus.skipped, reasons.OPTED_OUT)


def _wecom(db, ws):  # type: ignore[no-untyped-def]
    with db.transaction() as session:
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


def test_staff_daily_limit_ramps_up_while_a_new_account_warms_up(db) -> None:
    ws = workspace(db)
    configure(
        db,
        ws,
        caps={"day": None, "week": None, "month": None},
        quiet_hours=None,
        staff={"send_limit": 10, "add_limit": 50, "warmup_days": 10, "start_ratio": 0.2},
    )
    _wecom(db, ws)
    new = staff(db, ws, created_at=dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC))
    ids = contacts(db, ws, 12, owner_id=new, wecom=True)
    first_day = _send(db, ws, [req(c, channel=Channel.wecom) for c in ids], T0)
    assert [o.status for o in first_day].count(DeliveryStatus.queued) == 2  # 20% of 10 on day 0
    assert first_day[2].reason == reasons.STAFF_LIMIT and first_day[2].status is DeliveryStatus.held
    assert first_day[2].retry_at == dt.datetime(2026, 11, 23, 16, 0, tzinfo=dt.UTC)  # next midnight in Shanghai
    with db.transaction() as session:
        assert staff_send_allowance(session, new, dt.date(2026, 11, 23)) == 0
        assert staff_send_allowance(session, new, dt.date(2026, 11, 28)) == 6  # 20% + 80% * 5/10
        assert staff_send_allowance(session, new, dt.date(2026, 12, 3)) == 10
        assert staff_add_allowance(session, new, dt.date(2026, 11, 23)) == 10
        assert staff_add_allowance(session, new, dt.date(2026, 12, 10)) == 50
        session.add(StaffAccount(workspace_id=ws, staff_id=new, started_on=dt.date(2026, 1, 1), updated_at=T0))
    with db.transaction() as session:
        assert staff_send_allowance(session, new, dt.date(2026, 11, 23)) == 8  # an old account: the full 10
    skip = _send(db, ws, [req(ids[0], step="x", channel=Channel.wecom, quiet_hours=QuietHoursPolicy.skip)], T0)
    assert skip[0].status is DeliveryStatus.queued


def test_a_staff_limit_hold_is_released_by_the_poller_on_the_accounts_next_day(db, clock) -> None:
    from siyu.jobs.models import Job

    ws = workspace(db)
    configure(db, ws, quiet_hours=None, staff={"send_limit": 1, "warmup_days": 0})
    _wecom(db, ws)
    sender = staff(db, ws, created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    first, second = contacts(db, ws, 2, owner_id=sender, wecom=True)
    clock.now = T0
    sent, held = _send(db, ws, [req(first, channel=Channel.wecom), req(second, channel=Channel.wecom)], T0)
    assert sent.status is DeliveryStatus.queued
    assert (held.status, held.reason) == (DeliveryStatus.held, reasons.STAFF_LIMIT)
    clock.now = held.retry_at - dt.timedelta(seconds=1)
    assert stream.release_due(db) == 0
    clock.now = held.retry_at  # midnight in Shanghai: the account has a new day's allowance
    assert stream.release_due(db) == 1
    with db.transaction(write=False) as session:
        (again,) = send_many(session, ws, [req(second, channel=Channel.wecom)], now=clock.now)
        assert (again.delivery_id, again.status, again.reason) == (held.delivery_id, DeliveryStatus.queued, None)
        keys = set(session.scalars(select(Job.dedupe_key)))
    assert keys == {f"delivery:{sent.delivery_id}", f"delivery:{held.delivery_id}"}  # its outbox job, now


def test_a_held_delivery_of_a_contact_merged_meanwhile_is_skipped_at_release(db, clock) -> None:
    from siyu.contacts.models import Contact

    ws = workspace(db)
    survivor, merged = contacts(db, ws, 2)
    clock.now = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)  # quiet hours
    (held,) = _send(db, ws, [req(merged)], clock.now)
    with db.transaction() as session:
        session.get(Contact, merged).merged_into_id = survivor  # type: ignore[union-attr]
    clock.now = held.retry_at
    assert stream.release_due(db) == 1
    with db.transaction(write=False) as session:
        (after,) = send_many(session, ws, [req(merged)], now=clock.now)
        assert session.scalar(select(SandboxMessage.id)) is None
    assert (after.status, after.reason) == (DeliveryStatus.skipped, reasons.NO_CONTACT)


def test_two_pollers_releasing_the_same_held_deliveries_send_each_once(db, clock) -> None:
    """PostgreSQL: the second skips the rows the first has locked; SQLite: it waits for the one writer
    and then finds them no longer held."""
    import threading

    ws = workspace(db)
    ids = contacts(db, ws, 3)
    clock.now = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)
    held = _send(db, ws, [req(c) for c in ids], clock.now)
    due = [o.delivery_id for o in held]
    at = held[0].retry_at
    first = db.session()
    assert release_held(first, ws, due, now=at) == 3
    looked: list[int] = []

    def other() -> None:
        with db.transaction() as session:
            looked.append(release_held(session, ws, due, now=at))

    thread = threading.Thread(target=other)
    thread.start()
    thread.join(0.3)
    first.commit()
    first.close()
    thread.join(10)
    assert looked == [0]
    with db.transaction(write=False) as session:
        assert session.scalar(select(func.count()).select_from(SandboxMessage)) == 3
        assert session.scalar(select(func.sum(ContactSendDay.sends))) == 3


def test_housekeeping_prunes_counters_older_than_the_longest_window(db, clock) -> None:
    ws = workspace(db)
    configure(db, ws, quiet_hours=None)
    (c,) = contacts(db, ws, 1)
    _send(db, ws, [req(c)], T0)
    clock.now = T0 + dt.timedelta(days=69)
    with db.transaction() as session:
        stream.housekeeping(session)
        assert session.scalar(select(func.count()).select_from(ContactSendDay)) == 1
    clock.now = T0 + dt.timedelta(days=71)
    with db.transaction() as session:
        stream.housekeeping(session)
        assert session.scalar(select(func.count()).select_from(ContactSendDay)) == 0
