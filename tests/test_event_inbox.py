"""Received batches: kept in the inbox (202), stored by the drain / the worker, looked up by batch id.

Everything runs against the real database (SQLite file + its inbox file, or PostgreSQL): no mocks,
except a monkeypatched inbox delete that simulates a drain dying after its main commit.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import orjson
import pytest
from sqlalchemy import delete, event, func, select

from siyu.auth.scopes import Scope
from siyu.config import Settings
from siyu.contacts.models import Contact
from siyu.db import Database, create_db_engine
from siyu.events import inbox, service, tasks
from siyu.events.models import Event, EventInbox, IngestBatch
from siyu.jobs.models import Job
from siyu.jobs.registry import registry as default_registry
from siyu.jobs.worker import load_job_modules, run_worker
from siyu.kit.time import utcnow
from siyu.usermodel import pipeline
from siyu.workspaces.service import create_workspace


def _event(name: str, i: int = 0, **overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": f"{name}-{i}",
        "type": "content.viewed",
        "contact": {"phone": f"1380013{i:04d}"},
        "timestamp": "2026-11-20T10:00:00+08:00",
        "properties": {"content_id": "article-1"},
    }
    event.update(overrides)
    return event


def _batch(name: str, size: int, first_phone: int = 0) -> list[dict[str, Any]]:
    return [_event(name, first_phone + i) for i in range(size)]


def _send(tenant: Any, events: list[dict[str, Any]]) -> dict[str, Any]:
    """POST /events without wait: must be received (202, pending)."""
    response = tenant.client.post("/api/v1/events", json={"events": events})
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == "pending" and body["event_count"] == len(events)
    return body


def _batch_state(tenant: Any, batch_id: str) -> dict[str, Any]:
    response = tenant.client.get(f"/api/v1/events/batches/{batch_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _count(db: Database, model: Any) -> int:
    with db.transaction(write=False) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _inbox_rows(db: Database) -> int:
    """Rows waiting in the inbox, wherever it lives (its own SQLite file; the main PostgreSQL DB)."""
    with inbox.inbox_engine(db).connect() as conn:
        return int(conn.execute(select(func.count()).select_from(EventInbox.__table__)).scalar_one())


def _event_ids_in_seq_order(db: Database, workspace_id: int) -> list[tuple[int, str]]:
    with db.transaction(write=False) as session:
        rows = session.execute(
            select(Event.seq, Event.event_id).where(Event.workspace_id == workspace_id).order_by(Event.seq)
        )
        return [(seq, event_id) for seq, event_id in rows]


def _outcomes(db: Database) -> dict[str, IngestBatch]:
    with db.transaction(write=False) as session:
        return {b.batch_id: b for b in session.scalars(select(IngestBatch))}


def _stored(**counts: Any) -> dict[str, Any]:
    return {"status": "stored", "error": None, "contacts_merged": 0, **counts}


def _subset(body: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    return {key: body[key] for key in expected}


# --------------------------------------------------------------------------- receive, then store


def test_a_sent_batch_waits_in_the_inbox_until_the_drain_stores_it(tenant, db) -> None:  # type: ignore[no-untyped-def]
    sent = _send(tenant, _batch("first", 4))
    assert sent["accepted"] is None and sent["first_seq"] is None and sent["stored_at"] is None
    # Received, not stored: no events, no contacts, one inbox row.
    assert _count(db, Event) == 0 and _count(db, Contact) == 0 and _count(db, IngestBatch) == 0
    assert _inbox_rows(db) == 1
    if db.sqlite:  # the inbox is a file of its own; the main file's copy of the table stays empty
        assert inbox.inbox_engine(db) is not db.engine
        with db.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(EventInbox.__table__)).scalar_one() == 0
    assert tenant.client.get("/api/v1/events").json() == []

    pending = _batch_state(tenant, sent["batch_id"])
    assert pending["status"] == "pending" and pending["event_count"] == 4
    assert pending["received_at"] == sent["received_at"] and pending["accepted"] is None

    assert inbox.drain(db) == 4
    assert _inbox_rows(db) == 0
    events = tenant.client.get("/api/v1/events").json()
    assert [(e["seq"], e["id"]) for e in events] == [(1, "first-0"), (2, "first-1"), (3, "first-2"), (4, "first-3")]
    assert {e["received_at"] for e in events} == {sent["received_at"]}  # stamped when received, not when stored
    assert events[0]["occurred_at"].startswith("2026-11-20T02:00:00")  # +08:00 read as UTC, as with wait=true
    assert _count(db, Contact) == 4

    stored = _batch_state(tenant, sent["batch_id"])
    assert stored["stored_at"] is not None and stored["received_at"] == sent["received_at"]
    expected = _stored(event_count=4, accepted=4, duplicates=0, contacts_created=4, first_seq=1, last_seq=4)
    assert _subset(stored, expected) == expected
    assert inbox.drain(db) == 0  # nothing left


def test_checked_events_come_back_from_the_inbox_exactly() -> None:
    events = [
        _event("kept", 1, properties={"content_id": "a", "big": 2**70, "nested": {"x": [1.5, None, "文"]}}),
        _event("kept", 2, contact={"id": 7, "wecom_external_userid": "wm1"}, timestamp=1763600000),
    ]
    items = service.prepare(events, tz=dt.UTC, region="CN", now=utcnow())
    payload = inbox.encode_payload(items)
    assert payload.startswith(b"[[")  # one array per event
    assert inbox.read_payload(payload) == items
    assert inbox.read_payload(payload)[0].occurred_at.utcoffset() == dt.timedelta(0)


def test_a_batch_kept_in_the_earlier_format_is_still_stored(tenant, db) -> None:  # type: ignore[no-untyped-def]
    """Batches waiting in the inbox when siyu is upgraded were kept one JSON object per event."""
    items = service.prepare(_batch("earlier", 2), tz=dt.UTC, region="CN", now=utcnow())
    earlier = orjson.dumps(
        [
            {
                "event_id": i.event_id,
                "type": i.type,
                "occurred_at": i.occurred_at.isoformat(),
                "properties": i.properties,
                "pairs": i.pairs,
                "contact_id": i.contact_id,
            }
            for i in items
        ]
    )
    assert inbox.read_payload(earlier) == items
    with inbox.inbox_engine(db).begin() as conn:
        conn.execute(
            EventInbox.__table__.insert().values(
                batch_id="earlier-format",
                workspace_id=tenant.workspace_id,
                received_at=utcnow(),
                event_count=2,
                payload=earlier,
            )
        )
    assert inbox.drain(db) == 2
    assert [e["id"] for e in tenant.client.get("/api/v1/events").json()] == ["earlier-0", "earlier-1"]
    assert _batch_state(tenant, "earlier-format")["status"] == "stored"


def test_a_replayed_batch_is_stored_as_duplicates(tenant, db) -> None:  # type: ignore[no-untyped-def]
    events = _batch("again", 5)
    first = _send(tenant, events)
    second = _send(tenant, events)  # both wait in the inbox: one drain transaction stores both
    assert first["batch_id"] != second["batch_id"]
    assert inbox.drain(db) == 10
    third = _send(tenant, events)  # and once more after the first ones are stored
    inbox.drain(db)

    assert _subset(
        _batch_state(tenant, first["batch_id"]), {"accepted": 5, "duplicates": 0, "contacts_created": 5}
    ) == {
        "accepted": 5,
        "duplicates": 0,
        "contacts_created": 5,
    }
    for replay in (second, third):
        state = _batch_state(tenant, replay["batch_id"])
        expected = _stored(event_count=5, accepted=0, duplicates=5, contacts_created=0, first_seq=None, last_seq=None)
        assert _subset(state, expected) == expected
    assert _count(db, Event) == 5 and _count(db, Contact) == 5
    assert [seq for seq, _ in _event_ids_in_seq_order(db, tenant.workspace_id)] == [1, 2, 3, 4, 5]


def test_a_refused_batch_keeps_nothing_in_the_inbox(tenant, db) -> None:  # type: ignore[no-untyped-def]
    bad = tenant.client.post(
        "/api/v1/events", json={"events": [_event("bad", 0), _event("bad", 1, type="Not A Type"), _event("bad", 2)]}
    )
    assert bad.status_code == 422, bad.text
    assert bad.json()["error"]["code"] == "validation_failed"
    assert {(d["index"], d["field"]) for d in bad.json()["error"]["details"]} == {(1, "type")}

    missing = tenant.client.post("/api/v1/events", json={"events": [_event("who", 0, contact={"id": 987654})]})
    assert missing.status_code == 404, missing.text
    assert "987654" in missing.json()["error"]["message"]

    assert _inbox_rows(db) == 0
    assert inbox.drain(db) == 0
    assert _count(db, Event) == 0 and _count(db, Contact) == 0 and _count(db, IngestBatch) == 0


def test_a_contact_deleted_after_receipt_fails_its_batch_only(tenant, db) -> None:  # type: ignore[no-untyped-def]
    contact_id = tenant.client.post("/api/v1/contacts", json={"name": "老客户"}).json()["id"]
    doomed = _send(
        tenant,
        [
            _event("doomed", 1),  # would create a contact: must be undone with the rest of the batch
            _event(
                "doomed", 2, type="order.paid", contact={"id": contact_id}, properties={"order_id": "A1", "amount": 9}
            ),
        ],
    )
    fine = _send(tenant, _batch("fine", 2, first_phone=10))
    with db.transaction() as session:  # there is no delete route: the row goes, as an operator would remove it
        session.execute(delete(Contact).where(Contact.id == contact_id))

    assert inbox.drain_step(db) == 4  # both batches taken in one transaction
    assert _inbox_rows(db) == 0

    failed = _batch_state(tenant, doomed["batch_id"])
    assert failed["status"] == "failed", failed
    assert str(contact_id) in (failed["error"] or "")
    assert failed["event_count"] == 2
    assert (failed["first_seq"], failed["last_seq"]) == (None, None)
    assert (failed["accepted"], failed["duplicates"], failed["contacts_created"]) == (0, 0, 0)  # stored nothing

    stored = _batch_state(tenant, fine["batch_id"])
    expected = _stored(event_count=2, accepted=2, duplicates=0, contacts_created=2, first_seq=1, last_seq=2)
    assert _subset(stored, expected) == expected  # the failed batch's savepoint gave its numbers back
    assert [event_id for _, event_id in _event_ids_in_seq_order(db, tenant.workspace_id)] == ["fine-10", "fine-11"]
    assert _count(db, Contact) == 2  # the doomed batch's new person was rolled back with it


def _savepoints_while(db: Any, run: Any) -> int:
    """How many savepoints the database was asked for while `run()` ran."""
    taken: list[str] = []

    def note(conn: Any, name: Any) -> None:
        taken.append(str(name))

    engine = db._writer_engine or db.engine
    event.listen(engine, "savepoint", note)
    try:
        run()
    finally:
        event.remove(engine, "savepoint", note)
    return len(taken)


def test_batches_are_stored_without_savepoints_unless_one_fails(tenant, db) -> None:  # type: ignore[no-untyped-def]
    """A savepoint makes SQLite copy pages written before it into a statement journal: batches go in
    together, and only when one fails are they all stored again, each on its own savepoint."""
    good = [_send(tenant, _batch(f"good{n}", 3, first_phone=10 * n)) for n in range(3)]
    assert _savepoints_while(db, lambda: inbox.drain_step(db)) == 0
    assert all(_batch_state(tenant, sent["batch_id"])["status"] == "stored" for sent in good)

    contact_id = tenant.client.post("/api/v1/contacts", json={"name": "老客户"}).json()["id"]
    paid = {"order_id": "A1", "amount": 9}
    doomed = _send(tenant, [_event("doomed", 1, type="order.paid", contact={"id": contact_id}, properties=paid)])
    after = _send(tenant, _batch("after", 2, first_phone=50))
    with db.transaction() as session:
        session.execute(delete(Contact).where(Contact.id == contact_id))
    assert _savepoints_while(db, lambda: inbox.drain_step(db)) >= 2  # the second time round, one a batch
    assert _batch_state(tenant, doomed["batch_id"])["status"] == "failed"
    assert _batch_state(tenant, after["batch_id"])["status"] == "stored"
    assert _count(db, Event) == 9 + 2


def test_a_drain_dying_after_its_commit_does_not_store_twice(tenant, db, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    sent = _send(tenant, _batch("crash", 3))

    def killed(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("drain killed between the main commit and the inbox delete")

    monkeypatch.setattr(inbox, "delete", killed)
    with pytest.raises(RuntimeError, match="drain killed"):
        inbox.drain(db)
    monkeypatch.undo()

    # The events and the outcome committed; the inbox row is still there.
    assert _count(db, Event) == 3 and _inbox_rows(db) == 1
    assert list(_outcomes(db)) == [sent["batch_id"]]
    later = _send(tenant, _batch("later", 2, first_phone=20))  # a batch arriving before the next drain

    inbox.drain(db)
    assert _inbox_rows(db) == 0
    outcomes = _outcomes(db)
    assert sorted(outcomes) == sorted([sent["batch_id"], later["batch_id"]])  # one outcome per batch
    crashed = outcomes[sent["batch_id"]]
    assert (crashed.status, crashed.accepted, crashed.duplicates, crashed.first_seq, crashed.last_seq) == (
        "stored",
        3,
        0,
        1,
        3,
    )
    assert _subset(_batch_state(tenant, later["batch_id"]), {"accepted": 2, "first_seq": 4, "last_seq": 5}) == {
        "accepted": 2,
        "first_seq": 4,
        "last_seq": 5,
    }
    assert [seq for seq, _ in _event_ids_in_seq_order(db, tenant.workspace_id)] == [1, 2, 3, 4, 5]
    assert _count(db, Event) == 5


# --------------------------------------------------------------------------- order and workspaces


def test_batches_are_stored_in_order_per_workspace(make_tenant, db) -> None:  # type: ignore[no-untyped-def]
    a, b = make_tenant("品牌A"), make_tenant("品牌B")
    sent = {
        "a1": _send(a, _batch("a1", 3)),
        "b1": _send(b, _batch("b1", 2)),
        "a2": _send(a, _batch("a2", 2, first_phone=3)),
        "b2": _send(b, _batch("b2", 1)),  # same phone as b1-0: the same person in B
        "a3": _send(a, _batch("a3", 4, first_phone=2)),  # three people a1/a2 created, one new
    }
    assert inbox.drain(db) == 12

    a_events = _event_ids_in_seq_order(db, a.workspace_id)
    assert [event_id for _, event_id in a_events] == [
        "a1-0", "a1-1", "a1-2", "a2-3", "a2-4", "a3-2", "a3-3", "a3-4", "a3-5",
    ]  # fmt: skip
    assert [seq for seq, _ in a_events] == list(range(1, 10))
    assert _event_ids_in_seq_order(db, b.workspace_id) == [(1, "b1-0"), (2, "b1-1"), (3, "b2-0")]
    assert [e["id"] for e in b.client.get("/api/v1/events").json()] == ["b1-0", "b1-1", "b2-0"]

    spans = {name: _batch_state(a if name[0] == "a" else b, s["batch_id"]) for name, s in sent.items()}
    assert {name: (s["first_seq"], s["last_seq"], s["contacts_created"]) for name, s in spans.items()} == {
        "a1": (1, 3, 3),
        "a2": (4, 5, 2),
        "a3": (6, 9, 1),
        "b1": (1, 2, 2),
        "b2": (3, 3, 0),
    }


def test_a_batch_too_big_for_the_transaction_does_not_let_a_later_batch_jump_ahead(make_tenant, db) -> None:  # type: ignore[no-untyped-def]
    """Batches are stored oldest first (`id` order): a batch that does not fit the current drain
    transaction must not be overtaken by a smaller, later batch that does."""
    tenant = make_tenant()
    _send(tenant, _batch("one", 3))
    _send(tenant, _batch("two", 3, first_phone=3))
    _send(tenant, _batch("three", 1, first_phone=6))
    while inbox.drain_step(db, max_events=5):
        pass
    assert _inbox_rows(db) == 0
    order = [event_id.split("-")[0] for _, event_id in _event_ids_in_seq_order(db, tenant.workspace_id)]
    assert order == ["one"] * 3 + ["two"] * 3 + ["three"]


def test_a_workspace_sees_only_its_own_batches(make_tenant, db) -> None:  # type: ignore[no-untyped-def]
    a, b = make_tenant("品牌A"), make_tenant("品牌B")
    sent = _send(a, _batch("mine", 2))
    url = f"/api/v1/events/batches/{sent['batch_id']}"
    assert b.client.get(url).status_code == 404  # pending in A's inbox
    inbox.drain(db)
    assert a.client.get(url).json()["status"] == "stored"
    assert b.client.get(url).status_code == 404  # stored in A
    assert a.client.get("/api/v1/events/batches/0123456789abcdef0123456789abcdef").status_code == 404
    reader = make_tenant("只读", scopes=frozenset({Scope.events_read}))
    assert reader.client.get(url).status_code == 403  # looking batches up needs events:write
    assert b.client.get("/api/v1/events").json() == []


def test_a_batch_the_database_refuses_does_not_block_the_inbox(make_tenant, db) -> None:  # type: ignore[no-untyped-def]
    """A NUL character is refused at the door (PostgreSQL text cannot hold it). Should a batch the
    database refuses reach the inbox anyway, it is recorded failed and does not hold back the batches
    received after it, in its own workspace or anyone else's."""
    a, b = make_tenant("品牌A"), make_tenant("品牌B")
    refused_at_door = a.client.post("/api/v1/events", json={"events": [_event("nul\x00id", 1)]})
    assert refused_at_door.status_code == 422, refused_at_door.text
    assert refused_at_door.json()["error"]["details"] == [
        {"index": 0, "field": "id", "reason": "must not contain a NUL character (\\u0000)"}
    ]
    phone = a.client.post("/api/v1/events", json={"events": [_event("ok", 1, contact={"phone": "1380013\x000"})]})
    assert phone.status_code == 422 and phone.json()["error"]["details"][0]["field"] == "contact.phone"
    text = _event("ok", 1, type="message.received", properties={"text": "a\x00b", "items": [{"k\x00": 1}]})
    nested = a.client.post("/api/v1/events", json={"events": [_event("fine", 0), text]})
    assert nested.status_code == 422, nested.text
    assert [(d["index"], d["field"]) for d in nested.json()["error"]["details"]] == [
        (1, "properties.text"),
        (1, "properties.items[0].k\x00"),
    ]

    # Past the checks (as a bug in them would let it): straight into the inbox.
    now = utcnow()
    poisoned = service.prepare([_event("fine", 1)], tz=dt.UTC, region="CN", now=now)
    poisoned[0].event_id = "nul\x00id"
    refused = inbox.accept(db, a.workspace_id, poisoned, received_at=now)
    after_in_a = _send(a, _batch("a-after", 1, first_phone=2))
    other = _send(b, _batch("b-after", 2))

    inbox.drain(db)
    assert _batch_state(b, other["batch_id"])["status"] == "stored"
    assert _batch_state(a, after_in_a["batch_id"])["status"] == "stored"
    state = _batch_state(a, refused.batch_id)
    if db.sqlite:  # SQLite text holds a NUL
        assert state["status"] == "stored", state
    else:
        assert state["status"] == "failed" and "could not be stored" in state["error"], state
        with db.transaction(write=False) as session:
            kept = session.scalar(select(IngestBatch.payload).where(IngestBatch.batch_id == refused.batch_id))
        assert kept is not None and inbox.read_payload(kept)[0].event_id == "nul\x00id"  # kept to send again
    assert _inbox_rows(db) == 0


# --------------------------------------------------------------------------- the worker


def test_the_worker_stores_received_batches(tenant, db, app) -> None:  # type: ignore[no-untyped-def]
    settings: Settings = app.state.settings
    load_job_modules(settings)
    pollers = [name for name, _ in default_registry.pollers()]
    assert dict(default_registry.pollers())["events.inbox"] is tasks.store_received_batches
    assert pollers.index("events.inbox") < pollers.index("usermodel.pipeline")  # events first, then the model
    assert "events.prune_batches" in {s.name for s in default_registry.schedules()}

    sent = _send(tenant, _batch("worker", 3))
    run_worker(db, once=True, settings=settings)
    assert _inbox_rows(db) == 0
    assert _subset(_batch_state(tenant, sent["batch_id"]), {"status": "stored", "accepted": 3}) == {
        "status": "stored",
        "accepted": 3,
    }
    assert _count(db, Event) == 3

    later = _send(tenant, _batch("catchup", 2, first_phone=3))
    pipeline.catch_up(db)  # tests and the CLI: drains the inbox before running the model's steps
    assert _batch_state(tenant, later["batch_id"])["status"] == "stored"
    assert _count(db, Event) == 5


def test_old_outcomes_are_pruned_and_their_events_stay(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    old = tenant.client.post("/api/v1/events?wait=true", json={"events": _batch("old", 2)}).json()
    clock.advance(days=20)
    middle = _send(tenant, _batch("middle", 2, first_phone=2))
    inbox.drain(db)
    clock.advance(days=11)  # old: 31 days, middle: 11 days
    recent = tenant.client.post("/api/v1/events?wait=true", json={"events": _batch("recent", 1, first_phone=4)})
    assert recent.status_code == 200, recent.text

    with db.transaction() as session:
        assert dt.timedelta(days=30) == tasks.KEEP_OUTCOMES
        tasks.prune_batch_outcomes(session, Job(name="events.prune_batches", payload={}))  # the cron handler
    assert tenant.client.get(f"/api/v1/events/batches/{old['batch_id']}").status_code == 404
    assert _batch_state(tenant, middle["batch_id"])["status"] == "stored"
    assert _batch_state(tenant, recent.json()["batch_id"])["status"] == "stored"
    assert _count(db, IngestBatch) == 2 and _count(db, Event) == 5  # outcomes go, events stay

    clock.advance(days=19)  # middle is now exactly 30 days old: kept (strictly older goes)
    with db.transaction() as session:
        assert inbox.prune_outcomes(session, older_than=dt.timedelta(days=30)) == 0
    clock.advance(seconds=1)
    with db.transaction() as session:
        assert inbox.prune_outcomes(session, older_than=dt.timedelta(days=30)) == 1
    assert list(_outcomes(db)) == [recent.json()["batch_id"]]


# --------------------------------------------------------------------------- PostgreSQL: two drainers


def _accept(db: Database, workspace_id: int, events: list[dict[str, Any]]) -> str:
    """What POST /events does without wait, minus HTTP (the concurrency test sends a hundred batches)."""
    raw = service.parse_batch(orjson.dumps({"events": events}), max_events=1000)
    with db.transaction(write=False) as session:
        tz = service.workspace_timezone(session, workspace_id)
    now = utcnow()
    items = service.prepare(raw, tz=tz, region="CN", now=now)
    return inbox.accept(db, workspace_id, items, received_at=now).batch_id


def test_two_drainers_at_once_store_every_batch_once(db, settings) -> None:  # type: ignore[no-untyped-def]
    if db.sqlite:
        pytest.skip("concurrent drainers need PostgreSQL (SKIP LOCKED); SQLite has one writer at a time")
    workspaces: list[int] = []
    with db.transaction() as session:
        for n in range(4):
            workspaces.append(create_workspace(session, f"并发{n}").id)
    batches: dict[int, list[str]] = {w: [] for w in workspaces}
    sizes: dict[str, int] = {}
    for round_ in range(25):
        for w in workspaces:
            # One size for all: batches of mixed sizes trip the skip-ahead of drain_step (tested above).
            size = 3
            batch_id = _accept(db, w, _batch(f"r{round_:02d}", size, first_phone=round_ % 7))
            batches[w].append(batch_id)
            sizes[batch_id] = size
    total = sum(sizes.values())

    done: dict[str, int] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def drainer(name: str) -> None:
        own = Database(create_db_engine(settings.database_url, settings), settings)  # its own connections
        try:
            barrier.wait(10)
            steps = 0
            while inbox.drain_step(own, max_events=8):  # small transactions: many turns, much contention
                steps += 1
            done[name] = steps
        except BaseException as exc:
            errors.append(exc)
        finally:
            own.dispose()

    threads = [threading.Thread(target=drainer, args=(f"d{n}",)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert len(done) == 2 and min(done.values()) > 0, done  # both drained: the test exercised contention

    assert _inbox_rows(db) == 0
    assert _count(db, Event) == total
    assert _count(db, Contact) == 4 * 9  # phones 0-8 in each workspace: nobody created twice
    outcomes = _outcomes(db)
    assert sorted(outcomes) == sorted(sizes) and _count(db, IngestBatch) == len(sizes)  # one outcome per batch
    assert all((o.status, o.accepted, o.duplicates) == ("stored", sizes[b], 0) for b, o in outcomes.items())
    for w in workspaces:
        events = _event_ids_in_seq_order(db, w)
        assert [seq for seq, _ in events] == list(range(1, len(events) + 1))
        # Within a workspace, batches were stored in the order received (round by round), whoever drained them.
        assert [event_id.split("-")[0] for _, event_id in events] == [
            f"r{round_:02d}" for round_, b in enumerate(batches[w]) for _ in range(sizes[b])
        ]
        spans = [(outcomes[b].first_seq, outcomes[b].last_seq) for b in batches[w]]
        assert spans == [(1 + 3 * i, 3 + 3 * i) for i in range(len(batches[w]))]


# --------------------------------------------------------------------------- watching the backlog


def test_the_backlog_is_reported_and_the_console_warns_when_it_waits_too_long(  # type: ignore[no-untyped-def]
    app, make_tenant, db, clock
) -> None:
    import re

    from fastapi.testclient import TestClient

    a, b = make_tenant("品牌A"), make_tenant("品牌B")
    first = _send(a, _batch("wait-1", 3))
    clock.advance(seconds=5)
    _send(a, _batch("wait-2", 2, first_phone=3))
    assert a.client.get("/api/v1/events/inbox").json() == {
        "batches": 2,
        "events": 5,
        "oldest_received_at": first["received_at"],
    }
    assert b.client.get("/api/v1/events/inbox").json() == {"batches": 0, "events": 0, "oldest_received_at": None}

    password = "correct horse battery"
    created = a.client.post(
        "/api/v1/staff", json={"email": "ops@a.cn", "name": "运营", "role": "operator", "password": password}
    )
    assert created.status_code == 201, created.text
    console = TestClient(app, follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', console.get("/console/sign-in").text)
    assert token
    signed = {"email": "ops@a.cn", "password": password, "csrf_token": token.group(1), "next": "/console"}
    assert console.post("/console/sign-in", data=signed).status_code == 303

    assert 'id="inbox-waiting"' not in console.get("/console").text  # seconds old: the worker's normal pace
    clock.advance(minutes=3)
    page = console.get("/console", headers={"Accept-Language": "en"}).text
    warning = re.search(r'<div class="notice warning" role="alert" id="inbox-waiting">([^<]*)</div>', page)
    assert warning, page
    assert "5 received events are waiting to be stored, the oldest for 3 minutes" in warning.group(1)

    inbox.drain(db)
    assert 'id="inbox-waiting"' not in console.get("/console").text
    assert a.client.get("/api/v1/events/inbox").json()["batches"] == 0


def test_a_batch_that_breaks_the_drain_is_recorded_and_the_rest_go_on(make_tenant, db, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A bug (here: store raising for one workspace) fails that batch, kept to send again, instead of
    stopping the inbox for everyone; a lost connection would instead retry the whole step."""
    a, b = make_tenant("品牌A"), make_tenant("品牌B")
    broken = _send(a, _batch("bug", 2))
    fine = _send(b, _batch("fine", 2))
    real_store = inbox.store

    def store(session, workspace_id, items, *, now):  # type: ignore[no-untyped-def]
        if workspace_id == a.workspace_id:
            raise ValueError("a bug")
        return real_store(session, workspace_id, items, now=now)

    monkeypatch.setattr(inbox, "store", store)
    inbox.drain(db)
    state = _batch_state(a, broken["batch_id"])
    assert state["status"] == "failed" and "a bug" in state["error"], state
    assert _batch_state(b, fine["batch_id"])["status"] == "stored"
    assert _inbox_rows(db) == 0


def test_a_transaction_writing_the_workspace_does_not_make_the_drain_skip_it(tenant, db) -> None:  # type: ignore[no-untyped-def]
    """An open transaction inserting a contact holds FOR KEY SHARE on the workspace row (its foreign-key
    check); the drain's FOR NO KEY UPDATE SKIP LOCKED must not take that for another drainer."""
    if db.sqlite:
        pytest.skip("row locks need PostgreSQL; SQLite has one writer at a time")
    sent = _send(tenant, _batch("busy", 2))
    other = db.session()
    try:
        other.add(Contact(workspace_id=tenant.workspace_id, name="写入中"))
        other.flush()  # the INSERT ran; its transaction stays open
        assert inbox.drain_step(db) == 2
    finally:
        other.rollback()
        other.close()
    assert _batch_state(tenant, sent["batch_id"])["status"] == "stored"


def test_a_wait_batch_stores_what_was_received_before_it_first(make_tenant, db) -> None:  # type: ignore[no-untyped-def]
    """Read-your-writes: a sender answered 202 earlier, then sending with wait=true, finds both stored,
    the earlier batch's events numbered first; another workspace's waiting batches are left to the worker."""
    a, b = make_tenant("品牌A"), make_tenant("品牌B")
    earlier = _send(a, _batch("early", 2))
    others = _send(b, _batch("other", 1))
    now = a.client.post("/api/v1/events?wait=true", json={"events": _batch("now", 2, first_phone=5)})
    assert now.status_code == 200, now.text
    assert now.json()["first_seq"] == 3 and now.json()["last_seq"] == 4
    assert _batch_state(a, earlier["batch_id"])["first_seq"] == 1
    assert [event_id for _, event_id in _event_ids_in_seq_order(db, a.workspace_id)][:2] == [
        _event("early", 0)["id"],
        _event("early", 1)["id"],
    ]
    assert _batch_state(b, others["batch_id"])["status"] == "pending"
