"""The sandbox channel: content deliveries carry the contact's tracked link (a content push per source and
step), and the demo's simulated opens and clicks are decided by a seed and recorded when due, the clicks
as content.viewed through the tracked-link path."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from tests.delivery.delivery_helpers import T0, configure, contacts, req, workspace

from siyu.content.models import ContentItem, ContentKind, ContentPush, ContentPushRecipient, ContentStatus
from siyu.content.service import parse_token
from siyu.delivery import stream
from siyu.delivery.models import SandboxMessage
from siyu.delivery.service import link_secret, send_many
from siyu.events.models import Event


def _item(db, ws: int) -> int:  # type: ignore[no-untyped-def]
    with db.transaction() as session:
        item = ContentItem(
            workspace_id=ws,
            kind=ContentKind.article,
            title="备考指南",
            body="正文",
            status=ContentStatus.published,
            version=1,
        )
        session.add(item)
        session.flush()
        return item.id


def test_content_deliveries_get_tracked_links_of_one_push_per_step(db) -> None:
    ws = workspace(db)
    configure(db, ws, caps={"day": None, "week": None, "month": None})
    ids = contacts(db, ws, 3)
    item = _item(db, ws)
    with db.transaction() as session:
        first = send_many(session, ws, [req(c, step="s1", content_id=item) for c in ids], now=T0)
        again = send_many(session, ws, [req(c, step="s1", entry=1, content_id=item) for c in ids[:1]], now=T0)
        other = send_many(session, ws, [req(c, step="s2", content_id=item) for c in ids[:2]], now=T0)
    with db.transaction(write=False) as session:
        pushes = list(session.scalars(select(ContentPush).order_by(ContentPush.id)))
        assert [(p.source, p.channel, p.recipient_count) for p in pushes] == [
            ("journey:1/s1", "sandbox", 3),
            ("journey:1/s2", "sandbox", 2),
        ]
        assert session.scalar(select(func.count()).select_from(ContentPushRecipient)) == 5
        links = dict(session.execute(select(SandboxMessage.id, SandboxMessage.link)).all())
    assert len({o.delivery_id for o in first + again + other}) == 6
    token = links[first[1].delivery_id].removeprefix("/r/")
    assert parse_token(link_secret(), token) == (pushes[0].id, ids[1])


def test_simulated_engagement_is_deterministic_and_recorded_when_due(db, clock) -> None:
    ws = workspace(db)
    configure(
        db,
        ws,
        caps={"day": None, "week": None, "month": None},
        sandbox={"open_rate": 0.6, "click_rate": 0.5, "seed": 7, "delay_minutes": 10},
    )
    ids = contacts(db, ws, 40)
    item = _item(db, ws)
    with db.transaction() as session:
        send_many(session, ws, [req(c, content_id=item) for c in ids], now=clock.now)
    with db.transaction(write=False) as session:
        plan = session.execute(select(SandboxMessage.opens_at, SandboxMessage.clicks_at)).all()
    opened = sum(1 for o, _ in plan if o is not None)
    clicked = sum(1 for _, c in plan if c is not None)
    assert 10 < opened < 35 and 0 < clicked < opened
    assert stream.record_engagement(db) == 0  # nothing due yet
    clock.advance(minutes=30)
    stream.record_engagement(db)
    with db.transaction(write=False) as session:
        assert session.scalar(select(func.count()).where(SandboxMessage.pending_at.is_not(None))) == 0
        assert session.scalar(select(func.count()).where(SandboxMessage.opened_at.is_not(None))) == opened
        views = session.scalar(select(func.count()).select_from(Event).where(Event.type == "content.viewed"))
    assert views == clicked
    # the same seed decides the same way in another workspace's rerun of the same delivery ids
    from siyu.adapters.sandbox import simulate
    from siyu.delivery.policy import SandboxSimulation

    sim = SandboxSimulation(open_rate=0.6, click_rate=0.5, seed=7, delay_minutes=10)
    assert simulate(sim, 12345, T0, has_link=True) == simulate(sim, 12345, T0, has_link=True)
    assert simulate(SandboxSimulation(), 12345, T0, has_link=True) == (None, None)
    assert dt.timedelta(0) <= (simulate(sim, 1, T0, has_link=False)[0] or T0) - T0 <= dt.timedelta(minutes=20)
