"""A caller that sends by itself (a WeCom broadcast's add_msg_template task) records its deliveries with
SendRequest(sent_by_caller=True): every check and budget applies, the delivery is queued with no job and
never held, and record_outcomes settles it once the channel reports (a failure gives the budget back)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from tests.delivery.delivery_helpers import T0, Channel, configure, contacts, req, staff, workspace

from siyu.delivery import reasons, stream
from siyu.delivery.models import ContactSendDay, Delivery, DeliveryStatus, StaffSendDay
from siyu.delivery.service import record_outcomes, send_many
from siyu.errors import ValidationFailed
from siyu.jobs.models import Job
from siyu.wecom.models import WeComSettings


def _wecom_world(db, *, n: int = 3, **config):  # type: ignore[no-untyped-def]
    ws = workspace(db)
    configure(db, ws, **config)
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
    sender = staff(db, ws, created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    return ws, sender, contacts(db, ws, n, owner_id=sender, wecom=True)


def _mine(contact_id: int, **extra):  # type: ignore[no-untyped-def]
    return req(contact_id, source="broadcast:7", step="send", channel=Channel.wecom, sent_by_caller=True, **extra)


def _send(db, ws, requests, now=T0):  # type: ignore[no-untyped-def]
    with db.transaction() as session:
        return send_many(session, ws, requests, now=now)


def _counted(db, contact_id: int) -> int:  # type: ignore[no-untyped-def]
    with db.transaction(write=False) as session:
        return int(
            session.scalar(
                select(func.coalesce(func.sum(ContactSendDay.sends), 0)).where(ContactSendDay.contact_id == contact_id)
            )
            or 0
        )


def _staff_sends(db, staff_id: int) -> int:  # type: ignore[no-untyped-def]
    with db.transaction(write=False) as session:
        return int(session.scalar(select(StaffSendDay.sends).where(StaffSendDay.staff_id == staff_id)) or 0)


def test_checked_counted_and_queued_without_a_job(db, clock) -> None:  # type: ignore[no-untyped-def]
    ws, sender, (a, b, _c) = _wecom_world(db)
    out = _send(db, ws, [_mine(a), _mine(b), req(a, step="later", channel=Channel.sandbox)])
    assert [(o.status, o.reason) for o in out] == [
        (DeliveryStatus.queued, reasons.SENT_BY_CALLER),
        (DeliveryStatus.queued, reasons.SENT_BY_CALLER),
        (DeliveryStatus.skipped, reasons.CAP_DAY),  # the broadcast's message is today's one
    ]
    assert _send(db, ws, [_mine(a)]) == [out[0]]  # idempotent on its key like any delivery
    with db.transaction(write=False) as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 0
        row = session.get(Delivery, out[0].delivery_id)
        assert row is not None and row.staff_id == sender and row.link is None
        assert "broadcast:7 sends it itself" in (row.detail or "")
    assert _counted(db, a) == 1 and _staff_sends(db, sender) == 2
    # housekeeping does not take it for a delivery whose job died
    clock.now = T0 + dt.timedelta(hours=3)
    with db.transaction() as session:
        stream.housekeeping(session)
    with db.transaction(write=False) as session:
        assert session.get(Delivery, out[0].delivery_id).status is DeliveryStatus.queued  # type: ignore[union-attr]


def test_a_hold_is_a_skip_since_the_caller_sends_now(db) -> None:  # type: ignore[no-untyped-def]
    ws, _, (a, b, c) = _wecom_world(db, staff={"send_limit": 1, "warmup_days": 0})
    night = dt.datetime(2026, 11, 23, 14, 0, tzinfo=dt.UTC)  # 22:00 in Shanghai
    (quiet,) = _send(db, ws, [_mine(a)], now=night)
    assert (quiet.status, quiet.reason, quiet.retry_at) == (DeliveryStatus.skipped, reasons.QUIET_HOURS, None)
    first, limited = _send(db, ws, [_mine(b), _mine(c)])
    assert first.status is DeliveryStatus.queued
    assert (limited.status, limited.reason, limited.retry_at) == (DeliveryStatus.skipped, reasons.STAFF_LIMIT, None)
    with db.transaction(write=False) as session:
        assert "not held" in (session.get(Delivery, limited.delivery_id).detail or "")  # type: ignore[union-attr]


def test_only_external_channels(db) -> None:  # type: ignore[no-untyped-def]
    ws, _, (a, _b, _c) = _wecom_world(db)
    with pytest.raises(ValidationFailed) as refused, db.transaction() as session:
        send_many(session, ws, [_mine(a), req(a, sent_by_caller=True)], now=T0)
    assert refused.value.details == [
        {
            "field": "requests[1].sent_by_caller",
            "reason": "only for external channels: a sandbox send is its own record",
        }
    ]


def test_outcomes_settle_once_and_a_failure_gives_the_budget_back(db) -> None:  # type: ignore[no-untyped-def]
    ws, sender, (a, b, c) = _wecom_world(db)
    sent, failed, lost = (o.delivery_id for o in _send(db, ws, [_mine(a), _mine(b), _mine(c)]))
    other_ws, _, (theirs,) = _wecom_world(db, n=1)
    (other,) = _send(db, other_ws, [_mine(theirs)])
    at = T0 + dt.timedelta(hours=1)
    with db.transaction() as session:
        assert record_outcomes(session, ws, [sent], DeliveryStatus.sent, now=at, external_id="msgA", sent_at=at) == 1
        assert record_outcomes(session, ws, [failed], DeliveryStatus.failed, detail="not a friend", now=at) == 1
        assert record_outcomes(session, ws, [lost], DeliveryStatus.unknown, now=at) == 1
        # settled rows, and another workspace's, do not change
        assert record_outcomes(session, ws, [sent, failed, other.delivery_id], DeliveryStatus.failed, now=at) == 0
        with pytest.raises(ValidationFailed):
            record_outcomes(session, ws, [sent], DeliveryStatus.queued, now=at)
    with db.transaction(write=False) as session:
        rows = {d.id: d for d in session.scalars(select(Delivery).where(Delivery.workspace_id == ws))}
    assert (rows[sent].status, rows[sent].reason, rows[sent].external_id) == (DeliveryStatus.sent, None, "msgA")
    assert rows[sent].sent_at == at
    assert (rows[failed].status, rows[failed].reason, rows[failed].detail) == (
        DeliveryStatus.failed,
        reasons.SEND_FAILED,
        "not a friend",
    )
    assert (rows[lost].status, rows[lost].reason) == (DeliveryStatus.unknown, reasons.OUTCOME_UNKNOWN)
    assert (_counted(db, a), _counted(db, b), _counted(db, c)) == (1, 0, 1)  # only the failure gave it back
    assert _staff_sends(db, sender) == 2
    assert _send(db, ws, [req(b, step="again", channel=Channel.sandbox)])[0].status is DeliveryStatus.sent


def test_an_outbox_delivery_is_not_the_callers_to_settle(db) -> None:  # type: ignore[no-untyped-def]
    ws, _, (a,) = _wecom_world(db, n=1)
    (queued,) = _send(db, ws, [req(a, channel=Channel.wecom)])  # sent by a delivery.send job
    with db.transaction() as session:
        assert record_outcomes(session, ws, [queued.delivery_id], DeliveryStatus.sent, now=T0) == 0
        assert session.get(Delivery, queued.delivery_id).status is DeliveryStatus.queued  # type: ignore[union-attr]
