"""A journey worker killed at random loses nothing and sends nothing twice; concurrent workers and racing
triggers never double-enrol (PostgreSQL, where they really run at once)."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import threading
import time
from collections import Counter
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import pytest
from sqlalchemy import func, select, update
from tests.journeys.journey_helpers import journey, lift_budgets, sandbox_per_key

from siyu.config import Settings
from siyu.contacts import repository as contacts_repo
from siyu.contacts.models import Contact
from siyu.db import Database, create_db_engine
from siyu.events.models import Event
from siyu.journeys import runner, service
from siyu.journeys.models import EnrolmentStatus, JourneyContact, JourneyEnrolment, JourneyStepStat
from siyu.journeys.state import Candidate, enrol
from siyu.kit.time import utcnow
from siyu.tags.models import ContactTag

CONTACTS = 10_000


def _contacts(db: Database, workspace_id: int, n: int) -> list[int]:
    with db.transaction() as session:
        now = utcnow()
        ids = contacts_repo.insert_contacts(
            session, [{"workspace_id": workspace_id, "source_channel": None, "created_at": now} for _ in range(n)]
        )
        session.execute(update(Contact).where(Contact.id.in_(ids[::2])).values(region="上海"))
    return ids


def _enrol_all(db: Database, workspace_id: int, journey_id: int, contact_ids: list[int]) -> None:
    with db.transaction() as session:
        journey_row = service.get_journey(session, workspace_id, journey_id)
        ref = service.ref(session, journey_row)
        result = enrol(session, ref, [Candidate(c, 0, "test") for c in contact_ids], now=utcnow())
        assert len(result.enrolled) == len(contact_ids)


def _crash_definition(tag_id: int) -> dict[str, Any]:
    return {
        "trigger": {"manual": True},
        "steps": [
            {"id": "hello", "type": "send", "text": "你好"},
            {"id": "pick", "type": "split", "branches": [{"weight": 1, "next": "a"}, {"weight": 1, "next": "b"}]},
            {"id": "a", "type": "send", "text": "A", "next": "where"},
            {"id": "b", "type": "tag", "add": [tag_id], "next": "where"},
            {
                "id": "where",
                "type": "branch",
                "condition": {"attribute": "region", "op": "eq", "value": "上海"},
                "then": "bye",
                "else": "stop",
            },
            {"id": "bye", "type": "send", "text": "再见", "next": None},
            {"id": "stop", "type": "exit"},
        ],
    }


def _worker(database_url: str, batch: int, ready: Connection) -> None:
    """The forked worker process: its own engine (never the parent's connections), the inherited frozen
    clock, batches until nothing is due."""
    settings = Settings(database_url=database_url, sqlite_synchronous="NORMAL", _env_file=None)  # type: ignore[call-arg]
    worker_db = Database(create_db_engine(database_url, settings))
    ready.send("ready")
    while True:
        with worker_db.transaction() as session:
            result = runner.run_batch(session, limit=batch)
        if result.enrolments == 0:
            break
    ready.send("done")


def _spawn(database_url: str) -> tuple[BaseProcess, Connection]:
    """A worker process forked from this one: started in milliseconds (no imports), so the test can kill it
    many times in a few seconds."""
    context = multiprocessing.get_context("fork")
    parent, child = context.Pipe(duplex=False)
    proc = context.Process(target=_worker, args=(database_url, 250, child), daemon=True)
    proc.start()
    child.close()
    return proc, parent


def test_a_worker_killed_at_random_loses_nothing_and_sends_nothing_twice(tenant, db, settings, clock) -> None:  # type: ignore[no-untyped-def]
    lift_budgets(tenant)
    c = tenant.client
    group = c.post("/api/v1/tag-groups", json={"name": "分组"}).json()
    tag = c.post("/api/v1/tags", json={"group_id": group["id"], "name": "B 组"}).json()
    ids = _contacts(db, tenant.workspace_id, CONTACTS)
    journey_id = journey(tenant, _crash_definition(tag["id"]), "crash")
    _enrol_all(db, tenant.workspace_id, journey_id, ids)

    seed = int(os.environ.get("JOURNEY_CRASH_SEED", random.randrange(1_000_000)))
    rng = random.Random(seed)
    kills, planned = 0, rng.randint(6, 10)
    started = time.monotonic()
    while True:
        proc, messages = _spawn(settings.database_url)
        assert messages.poll(30) and messages.recv() == "ready", f"the worker did not start (seed {seed})"
        # SIGKILL at a random moment while it works, a few times, then let it finish
        proc.join(timeout=rng.uniform(0.02, 0.5) if kills < planned else 120)
        if proc.is_alive():
            os.kill(proc.pid, signal.SIGKILL)
            proc.join()
            kills += 1
            continue
        assert proc.exitcode == 0 and messages.poll(1) and messages.recv() == "done", f"worker failed (seed {seed})"
        break
    assert time.monotonic() - started < 60, "the crash test is meant to be quick"
    print(f"journey crash test: {kills} kills, seed {seed}")
    assert kills >= 3, f"only {kills} kills (seed {seed}): the worker finished too fast to test crashes"

    with db.transaction(write=False) as session:
        statuses = dict(
            session.execute(
                select(JourneyEnrolment.status, func.count())
                .where(JourneyEnrolment.journey_id == journey_id)
                .group_by(JourneyEnrolment.status)
            ).all()
        )
        stats = {
            s.step: s for s in session.scalars(select(JourneyStepStat).where(JourneyStepStat.journey_id == journey_id))
        }
        tagged = session.scalar(select(func.count()).select_from(ContactTag).where(ContactTag.tag_id == tag["id"]))
        journey_events = dict(
            session.execute(
                select(Event.type, func.count())
                .where(Event.workspace_id == tenant.workspace_id, Event.type.like("journey.%"))
                .group_by(Event.type)
            ).all()
        )
        live = session.scalar(
            select(func.count()).select_from(JourneyContact).where(JourneyContact.active_enrolment_id.is_not(None))
        )
    # nothing lost: everyone went all the way through
    assert statuses == {EnrolmentStatus.completed: CONTACTS // 2, EnrolmentStatus.exited: CONTACTS // 2}, seed
    assert live == 0
    # nothing twice: exactly one sandbox message per (step, contact, enrolment)
    per_key = sandbox_per_key(db, journey_id)
    assert set(per_key.values()) == {1}, f"seed {seed}: some message was sent twice"
    assert stats["hello"].arrived == CONTACTS and stats["bye"].arrived == CONTACTS // 2
    expected = stats["hello"].arrived + stats["a"].arrived + stats["bye"].arrived
    assert sum(per_key.values()) == expected == stats["hello"].sent + stats["a"].sent + stats["bye"].sent
    assert tagged == stats["b"].arrived and stats["a"].arrived + stats["b"].arrived == CONTACTS
    assert journey_events == {"journey.entered": CONTACTS, "journey.exited": CONTACTS}
    assert stats["stop"].exited == CONTACTS // 2 and stats["bye"].passed == CONTACTS // 2


# --------------------------------------------------------------------------- PostgreSQL: real concurrency


def _postgres_only(db: Database) -> None:
    if db.sqlite:
        pytest.skip("concurrent writers need PostgreSQL; SQLite has one writer at a time")


def test_two_workers_at_once_move_every_enrolment_once(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    _postgres_only(db)
    lift_budgets(tenant)
    definition = {
        "trigger": {"manual": True},
        "steps": [
            {"id": "one", "type": "send", "text": "1"},
            {"id": "two", "type": "send", "text": "2"},
        ],
    }
    ids = _contacts(db, tenant.workspace_id, 3000)
    journey_id = journey(tenant, definition, "two workers")
    _enrol_all(db, tenant.workspace_id, journey_id, ids)
    done: dict[str, int] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def work(name: str) -> None:
        try:
            barrier.wait(10)
            total = 0
            while True:
                with db.transaction() as session:
                    result = runner.run_batch(session, limit=100)
                total += result.enrolments
                if result.enrolments == 0:
                    break
            done[name] = total
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert sum(done.values()) == 3000 and min(done.values()) > 0, done  # both worked, nobody twice
    per_key = sandbox_per_key(db, journey_id)
    assert len(per_key) == 6000 and set(per_key.values()) == {1}


def test_racing_triggers_never_enrol_a_contact_twice(tenant, db, clock) -> None:  # type: ignore[no-untyped-def]
    _postgres_only(db)
    lift_budgets(tenant)
    definition = {
        "trigger": {"manual": True},
        "entry": {"mode": "again_after_exit"},
        "steps": [{"id": "stay", "type": "wait", "for": {"days": 30}}],
    }
    ids = _contacts(db, tenant.workspace_id, 300)
    journey_id = journey(tenant, definition, "race")
    errors: list[BaseException] = []
    enrolled: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(6)

    def trigger(seed: int) -> None:
        order = ids[:]
        random.Random(seed).shuffle(order)  # each in its own order: the lock order inside must still hold
        try:
            barrier.wait(10)
            for start in range(0, len(order), 50):
                with db.transaction() as session:
                    ref = service.ref(session, service.get_journey(session, tenant.workspace_id, journey_id))
                    result = enrol(
                        session, ref, [Candidate(c, 0, f"t{seed}") for c in order[start : start + 50]], now=utcnow()
                    )
                with lock:
                    enrolled.extend(c for c, _ in result.enrolled)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=trigger, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert sorted(enrolled) == sorted(ids)  # each contact entered once, whichever trigger won
    with db.transaction(write=False) as session:
        per_contact = Counter(
            session.scalars(select(JourneyEnrolment.contact_id).where(JourneyEnrolment.journey_id == journey_id))
        )
        rows = session.scalars(select(JourneyContact).where(JourneyContact.journey_id == journey_id)).all()
    assert set(per_contact.values()) == {1} and len(per_contact) == len(ids)
    assert {r.enrolments for r in rows} == {1}
