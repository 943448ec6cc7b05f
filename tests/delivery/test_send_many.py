"""send_many: idempotent on its key, every check with its reason, sandbox messages exactly once."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from tests.delivery.delivery_helpers import (
    T0,
    Channel,
    QuietHoursPolicy,
    configure,
    contacts,
    deliveries,
    req,
    workspace,
)

from siyu.delivery import reasons
from siyu.delivery.models import ContactSendDay, DeliveryStatus, SandboxMessage
from siyu.delivery.service import opt_out, send_many


def _send(db, ws, requests, now=T0):  # type: ignore[no-untyped-def]
    with db.transaction() as session:
        return send_many(session, ws, requests, now=now)


def test_a_key_sends_once_and_a_repeat_returns_the_recorded_outcome(db) -> None:
    ws = workspace(db)
    (c,) = contacts(db, ws, 1)
    first = _send(db, ws, [req(c)])
    again = _send(db, ws, [req(c), req(c)])
    assert first[0].status is DeliveryStatus.sent and first[0].reason is None
    assert again == [first[0], first[0]]
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(SandboxMessage)) == 1
        assert session.scalar(select(ContactSendDay.sends)) == 1
        (row,) = deliveries(session, ws)
        assert (row.source, row.step, row.contact_id, row.entry) == ("journey:1", "s1", c, 0)


def test_another_entry_or_step_is_another_delivery(db) -> None:
    ws = workspace(db)
    configure(db, ws, caps={"day": None, "week": None, "month": None})
    (c,) = contacts(db, ws, 1)
    out = _send(db, ws, [req(c, entry=1), req(c, entry=2), req(c, step="s2", entry=1)])
    assert len({o.delivery_id for o in out}) == 3
    assert all(o.status is DeliveryStatus.sent for o in out)


def test_each_check_says_why(db) -> None:
    ws = workspace(db)
    configure(db, ws, caps={"day": 1, "week": 5, "month": 10})
    a, b, gone = contacts(db, ws, 3)
    with db.transaction() as session:
        opt_out(session, ws, b, source="api", detail=None, now=T0)
        from siyu.contacts.models import Contact

        session.get(Contact, gone).merged_into_id = a
    out = _send(
        db,
        ws,
        [
            req(a),
            req(a, step="s2"),  # second today: daily cap
            req(b),
            req(gone),
            req(a, step="s3", channel=Channel.email),
            req(a, step="s4", channel=Channel.webhook),
            req(a, step="s5", content_id=999_999),
        ],
    )
    assert [(o.status, o.reason) for o in out] == [
        (DeliveryStatus.sent, None),
        (DeliveryStatus.skipped, reasons.CAP_DAY),
        (DeliveryStatus.skipped, reasons.OPTED_OUT),
        (DeliveryStatus.skipped, reasons.NO_CONTACT),
        (DeliveryStatus.skipped, reasons.NO_ADDRESS),
        (DeliveryStatus.skipped, reasons.NO_ADDRESS),
        (DeliveryStatus.skipped, reasons.CONTENT_UNAVAILABLE),
    ]
    with db.transaction() as session:
        rows = deliveries(session, ws)
        assert "1 of 1" in (rows[1].detail or "")
        assert rows[4].detail  # no SMTP server configured, or no email identity


def test_quiet_hours_hold_or_skip_in_the_contacts_zone(db) -> None:
    ws = workspace(db)
    (shanghai,) = contacts(db, ws, 1)
    (london,) = contacts(db, ws, 1, timezone="Europe/London")
    at = dt.datetime(2026, 11, 23, 14, 0, tzinfo=dt.UTC)  # 22:00 in Shanghai, 14:00 in London
    out = _send(
        db,
        ws,
        [req(shanghai), req(shanghai, step="s2", quiet_hours=QuietHoursPolicy.skip), req(london)],
        now=at,
    )
    assert (out[0].status, out[0].reason) == (DeliveryStatus.held, reasons.QUIET_HOURS)
    assert out[0].retry_at == dt.datetime(2026, 11, 24, 0, 0, tzinfo=dt.UTC)  # 08:00 Shanghai
    assert (out[1].status, out[1].reason) == (DeliveryStatus.skipped, reasons.QUIET_HOURS)
    assert out[2].status is DeliveryStatus.sent


def test_a_contact_of_another_workspace_is_not_recorded(db) -> None:
    ws, other = workspace(db), workspace(db, "B")
    (theirs,) = contacts(db, other, 1)
    (out,) = _send(db, ws, [req(theirs)])
    assert (out.delivery_id, out.status, out.reason) == (0, DeliveryStatus.skipped, reasons.NO_CONTACT)
    with db.transaction() as session:
        assert deliveries(session, ws) == [] and deliveries(session, other) == []


def test_two_transactions_sending_one_key_record_one_delivery(db) -> None:
    """Two workers racing on the same key: on PostgreSQL the second waits for the first's commit and returns
    its outcome; on SQLite the second writer waits for the lock and then finds the row."""
    import threading

    ws = workspace(db)
    (c,) = contacts(db, ws, 1)
    first = db.session()
    (mine,) = send_many(first, ws, [req(c)], now=T0)
    results: list[object] = []

    def other() -> None:
        with db.transaction() as session:
            results.extend(send_many(session, ws, [req(c)], now=T0))

    thread = threading.Thread(target=other)
    thread.start()
    thread.join(0.3)
    assert thread.is_alive()  # blocked behind the first transaction
    first.commit()
    first.close()
    thread.join(10)
    assert results == [mine]
    with db.transaction(write=False) as session:
        assert session.scalar(select(func.count()).select_from(SandboxMessage)) == 1
        assert session.scalar(select(ContactSendDay.sends)) == 1


def test_an_opt_out_follows_a_merge(db) -> None:
    from siyu.contacts.merge import merge_contacts
    from siyu.contacts.models import Contact
    from siyu.delivery import stream

    ws = workspace(db)
    survivor, merged = contacts(db, ws, 2)
    with db.transaction() as session:
        stream.record_opt_out(session, ws, merged, source="message", detail="TD", now=T0)
    with db.transaction() as session:
        merge_contacts(
            session, survivor=session.get(Contact, survivor), merged=session.get(Contact, merged), reason="test"
        )
    stream.run_opt_outs(db)
    (out,) = _send(db, ws, [req(survivor)])
    assert (out.status, out.reason) == (DeliveryStatus.skipped, reasons.OPTED_OUT)
