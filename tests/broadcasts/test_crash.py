"""A worker killed with SIGKILL at random moments during a 100,000-contact sandbox broadcast, restarted
until the broadcast is sent: every eligible contact has exactly one sandbox record, nobody else has one.

The worker is a real process (tests/broadcasts/crash_worker.py running the broadcasts poller); the kill
can land anywhere: inside send_many, between a batch's writes, in the commit. Counting the sandbox's
records is the proof, as ADR 0008 asks. SIYU_CRASH_CONTACTS changes the size (e.g. 10000 while working).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select
from tests.broadcasts.bulk import seed

from siyu.auth.principal import Principal
from siyu.auth.scopes import ALL_SCOPES
from siyu.broadcasts import service
from siyu.broadcasts.models import Broadcast, BroadcastStatus
from siyu.broadcasts.schemas import AudienceIn, BroadcastCreate
from siyu.db import Base
from siyu.delivery import service as delivery
from siyu.delivery.models import Channel, Delivery, SandboxMessage

CONTACTS = int(os.environ.get("SIYU_CRASH_CONTACTS", "100000"))
OPT_OUT_EVERY = 97  # some contacts are excluded, so "eligible" is not "everyone"
MAX_KILLS = 8
ROOT = Path(__file__).resolve().parents[2]


def _status(db, broadcast_id: int) -> tuple[BroadcastStatus, int]:  # type: ignore[no-untyped-def]
    with db.transaction(write=False) as session:
        broadcast = session.get(Broadcast, broadcast_id)
        assert broadcast is not None
        return broadcast.status, broadcast.processed


@pytest.fixture
def emptied_after(db):  # type: ignore[no-untyped-def]
    """Empties the tables after the test with foreign keys off on SQLite: the next test's DELETE FROM contact
    would otherwise check contact.merged_into_id (not indexed) for each of 100,000 rows, a quadratic wait."""
    yield db
    if db.sqlite:
        raw = db.engine.raw_connection()  # autocommit (siyu.db emits BEGIN itself): PRAGMAs apply here
        try:
            cursor = raw.cursor()
            cursor.execute("PRAGMA foreign_keys=OFF")
            cursor.execute("BEGIN IMMEDIATE")
            for table in reversed(Base.metadata.sorted_tables):
                cursor.execute(f'DELETE FROM "{table.name}"')
            cursor.execute("COMMIT")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            raw.close()


def test_a_killed_worker_loses_nothing_and_sends_nothing_twice(emptied_after, settings, clock) -> None:  # type: ignore[no-untyped-def]
    db = emptied_after
    workspace_id, tag_id = seed(db, CONTACTS, opt_out_every=OPT_OUT_EVERY, now=clock.now)
    principal = Principal(workspace_id=workspace_id, scopes=ALL_SCOPES)
    data = BroadcastCreate(name="十万人群发", audience=AudienceIn(tag_ids=[tag_id]), text="双十一全场五折")
    with db.transaction() as session:
        broadcast = service.create(session, principal, data, now=clock.now)
        audience = service.audience_query(session, broadcast, now=clock.now)
        eligible = set(
            session.scalars(
                delivery.eligible_contacts(
                    session, workspace_id, audience, channel=Channel.sandbox, welfare=False, at=clock.now
                )
            )
        )
        broadcast_id = broadcast.id
        assert broadcast.total == CONTACTS and broadcast.status is BroadcastStatus.sending
    assert 0 < len(eligible) < CONTACTS

    seed_value = int(os.environ.get("SIYU_CRASH_SEED", str(random.SystemRandom().randrange(1 << 30))))
    rng = random.Random(seed_value)
    command = [
        sys.executable,
        "-m",
        "tests.broadcasts.crash_worker",
        settings.database_url,
        clock.now.isoformat(),
        str(broadcast_id),
    ]
    kills: list[int] = []  # recipients processed when each kill landed
    runs = 0
    while True:
        runs += 1
        assert runs <= MAX_KILLS + 3, f"the broadcast did not finish (seed {seed_value}, kills at {kills})"
        worker = subprocess.Popen(command, cwd=ROOT)
        if len(kills) < MAX_KILLS:
            try:
                # a random moment: during start-up, or anywhere in the sending
                worker.wait(timeout=rng.uniform(0.8, 4.0))
            except subprocess.TimeoutExpired:
                worker.send_signal(signal.SIGKILL)
                worker.wait()
                kills.append(_status(db, broadcast_id)[1])
                continue
        else:
            worker.wait(timeout=600)
        assert worker.returncode == 0, f"the worker failed (seed {seed_value})"
        assert _status(db, broadcast_id)[0] is BroadcastStatus.sent  # it exits once the broadcast is done
        break

    with db.transaction(write=False) as session:
        per_contact = dict(
            session.execute(
                select(SandboxMessage.contact_id, func.count())
                .where(SandboxMessage.workspace_id == workspace_id)
                .group_by(SandboxMessage.contact_id)
            ).all()
        )
        deliveries = session.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.source == service.source_of(broadcast_id))
        )
        broadcast = session.get(Broadcast, broadcast_id)
        assert broadcast is not None
        progress = service.progress_read(broadcast)
    twice = [c for c, n in per_contact.items() if n != 1]
    assert not twice, f"{len(twice)} contacts got more than one message (seed {seed_value})"
    assert set(per_contact) == eligible, (
        f"lost {len(eligible - set(per_contact))}, unexpected {len(set(per_contact) - eligible)} (seed {seed_value})"
    )
    assert deliveries == CONTACTS  # one delivery row per recipient: sent or skipped with its reason
    assert progress.processed == CONTACTS and progress.sent == len(eligible)
    assert progress.skipped == CONTACTS - len(eligible) and progress.reasons == {"opted_out": CONTACTS - len(eligible)}
    # the kills landed while sending, not only before or after it
    assert any(0 < k < CONTACTS for k in kills), f"no kill landed mid-broadcast: {kills} (seed {seed_value})"
    print(f"\ncrash test: {CONTACTS} contacts, {len(kills)} kills at {kills}, seed {seed_value}")
