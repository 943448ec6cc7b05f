"""Concurrent batches of one workspace: no duplicate people, no lost or doubled events, no sequence clash."""

from __future__ import annotations

import threading

import orjson
from sqlalchemy import func, select

from siyu.contacts.models import Contact, Identity
from siyu.events import service
from siyu.events.models import Event
from siyu.workspaces.service import create_workspace


def test_overlapping_batches_from_many_threads(db) -> None:
    with db.transaction() as session:
        workspace_id = create_workspace(session, "并发").id
    phones = [f"1390013{i:04d}" for i in range(40)]
    errors: list[BaseException] = []

    def send(worker: int) -> None:
        try:
            for round_ in range(5):
                # Every thread names the same people, and half the event ids repeat across threads.
                events = [
                    {
                        "id": f"evt-{round_}-{i}" if i % 2 else f"evt-{worker}-{round_}-{i}",
                        "type": "content.viewed",
                        "contact": {"phone": phone},
                        "properties": {"content_id": "c1"},
                    }
                    for i, phone in enumerate(phones)
                ]
                batch = service.parse_batch(orjson.dumps({"events": events}), max_events=1000)
                with db.transaction() as session:
                    service.ingest(session, workspace_id, batch, region="CN")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    with db.transaction(write=False) as session:
        assert session.scalar(select(func.count()).select_from(Contact)) == len(phones)
        assert session.scalar(select(func.count()).select_from(Identity)) == len(phones)
        # Shared ids (odd i): 20 per round x 5 rounds, once; own ids (even i): 20 x 5 rounds x 4 threads.
        expected = 20 * 5 + 20 * 5 * 4
        seqs = list(session.scalars(select(Event.seq).order_by(Event.seq)))
        assert len(seqs) == expected
        assert seqs == list(range(1, expected + 1))
