"""Journey runner: steps per second per worker, on SQLite and on PostgreSQL with 1 and 2 workers.

    python -m bench.journeys              # 50,000 contacts
    python -m bench.journeys --quick      # 10,000 contacts
    python -m bench.journeys --contacts 20000 --no-postgres

A journey of the usual kinds of steps (send through the sandbox, split, wait, branch on a profile field,
exit) runs for N contacts in two passes: everyone up to the wait, then - the clock moved an hour - on to
the end. Steps per second is every step run divided by the runner's time (batches of 500, one
transaction each, commit included); enrolling is timed apart. Beside it, in the same run, the ceiling:
the same rows written by bare executemany in the same number of transactions (the enrolment updates, the
deliveries and sandbox messages, the journey.exited events).

PostgreSQL: a database is created (and dropped) on the server of SIYU_BENCH_POSTGRES_URL, or the local
one (postgresql+psycopg://postgres@127.0.0.1:5432/postgres); skipped if none answers. Two workers are
two processes claiming with FOR UPDATE SKIP LOCKED. Target: >= 5,000 steps/s per worker on SQLite.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import create_engine, text, update
from sqlalchemy.engine import make_url

from bench.common import Verdict, banner, cpu_note, migrated_engine, print_verdicts, section, temp_dir

FULL_CONTACTS = 50_000
QUICK_CONTACTS = 10_000
TARGET_STEPS = 5_000.0
NOW = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)  # 10:00 in Shanghai
LATER = NOW + dt.timedelta(hours=1, minutes=1)
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEFINITION: dict[str, Any] = {
    "trigger": {"manual": True},
    "steps": [
        {"id": "hello", "type": "send", "channel": "sandbox", "text": "欢迎 {name}"},
        {"id": "pick", "type": "split", "branches": [{"weight": 1, "next": "now"}, {"weight": 1, "next": "later"}]},
        {"id": "now", "type": "send", "channel": "sandbox", "text": "A", "next": "where"},
        {"id": "later", "type": "wait", "for": {"hours": 1}, "next": "where"},
        {
            "id": "where",
            "type": "branch",
            "condition": {"attribute": "region", "op": "eq", "value": "上海"},
            "then": "bye",
            "else": "stop",
        },
        {"id": "bye", "type": "send", "channel": "sandbox", "text": "再见", "next": None},
        {"id": "stop", "type": "exit"},
    ],
}


def _setup(database: Any, contacts: int, journeys: int = 1) -> tuple[int, list[int], list[int]]:
    """A workspace without budgets, `contacts` contacts (half in 上海) and `journeys` active journeys."""
    from siyu.auth.principal import Principal
    from siyu.auth.scopes import ALL_SCOPES
    from siyu.contacts import repository as contacts_repo
    from siyu.contacts.models import Contact
    from siyu.delivery.models import DeliverySettings
    from siyu.journeys import service
    from siyu.workspaces.service import create_workspace

    with database.transaction() as session:
        ws = create_workspace(session, "bench").id
        session.add(
            DeliverySettings(
                workspace_id=ws,
                config={"caps": {"day": None, "week": None, "month": None}, "quiet_hours": None},
                updated_at=NOW,
            )
        )
        ids = contacts_repo.insert_contacts(
            session, [{"workspace_id": ws, "source_channel": None, "created_at": NOW} for _ in range(contacts)]
        )
        session.execute(update(Contact).where(Contact.id.in_(ids[::2])).values(region="上海"))
        principal = Principal(workspace_id=ws, scopes=ALL_SCOPES)
        journey_ids = []
        for n in range(journeys):
            journey = service.create_journey(session, principal, name=f"bench {n}", definition=DEFINITION)
            service.publish(session, principal, journey.id)
            service.activate(session, principal, journey.id)
            journey_ids.append(journey.id)
    return ws, ids, journey_ids


def _enrol(database: Any, ws: int, journey_id: int, ids: list[int]) -> float:
    from siyu.journeys import service
    from siyu.journeys.state import Candidate, enrol

    started = time.perf_counter()
    for n in range(0, len(ids), 10_000):
        with database.transaction() as session:
            ref = service.ref(session, service.get_journey(session, ws, journey_id))
            enrol(session, ref, [Candidate(c, 0, "bench") for c in ids[n : n + 10_000]], now=NOW)
    return time.perf_counter() - started


def _run_passes(database: Any, limit: int = 500) -> tuple[int, int, float, int]:
    """Both passes to the end: (steps, batches, seconds, enrolments claimed)."""
    from siyu.journeys import runner

    steps = batches = claims = 0
    started = time.perf_counter()
    for now in (NOW, LATER):
        while True:
            with database.transaction() as session:
                result = runner.run_batch(session, now=now, limit=limit)
            if result.enrolments == 0:
                break
            steps += result.steps
            batches += 1
            claims += result.enrolments
    return steps, batches, time.perf_counter() - started, claims


def _written(database: Any, journey_ids: list[int]) -> tuple[int, int, list[int]]:
    """(sends, exits, enrolment ids) of the journeys: what the ceiling writes again."""
    from sqlalchemy import func, select

    from siyu.delivery.models import Delivery
    from siyu.journeys.models import JourneyEnrolment

    with database.transaction(write=False) as session:
        sends = session.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.source.in_([f"journey:{j}" for j in journey_ids]))
        )
        enrolments = list(
            session.scalars(select(JourneyEnrolment.id).where(JourneyEnrolment.journey_id.in_(journey_ids)))
        )
    return int(sends or 0), len(enrolments), enrolments


def _ceiling(
    execute_many: Callable[[str, list[tuple[Any, ...]]], None],
    begin: Callable[[], None],
    commit: Callable[[], None],
    marker: str,
    ws: int,
    ids: list[int],
    enrolments: list[int],
    batches: int,
    sends: int,
    exits: int,
    claims: int,
) -> float:
    """The runner's writes by bare executemany: per batch the enrolment updates, the deliveries with their
    sandbox messages and the exit events, spread evenly over the same number of transactions."""
    m = marker
    stamp = "2026-11-23 02:00:00"
    per = max(1, batches)
    started = time.perf_counter()
    delivery_id = 10_000_000
    seq = 10_000_000
    for b in range(per):
        begin()
        chunk = [enrolments[(b * 500 + k) % len(enrolments)] for k in range(min(500, claims // per + 1))]
        execute_many(
            f"UPDATE journey_enrolment SET step = {m}, waiting = {m}, due_at = {m} WHERE id = {m}",
            [("where", False, None, e) for e in chunk],
        )
        n_sends = sends // per + (1 if b < sends % per else 0)
        rows = [(delivery_id + k, ws, ids[k % len(ids)], delivery_id + k, stamp) for k in range(n_sends)]
        delivery_id += n_sends
        execute_many(
            "INSERT INTO delivery (id, workspace_id, source, step, contact_id, entry, channel, status, text, welfare, "
            f"quiet_hours, created_at, updated_at, attempts) VALUES ({m}, {m}, 'bench', 'x', {m}, {m}, 'sandbox', "
            f"'sent', 'x', false, 'hold', {m}, {m}, 0)",
            [(i, w, c, e, s, s) for i, w, c, e, s in rows],
        )
        execute_many(
            "INSERT INTO sandbox_message (id, workspace_id, contact_id, text, created_at) "
            f"VALUES ({m}, {m}, {m}, 'x', {m})",
            [(i, w, c, s) for i, w, c, _, s in rows],
        )
        n_exits = exits // per + (1 if b < exits % per else 0)
        execute_many(
            "INSERT INTO event (workspace_id, seq, event_id, type, contact_id, occurred_at, received_at, properties) "
            f"VALUES ({m}, {m}, {m}, 'journey.exited', {m}, {m}, {m}, '{{}}')",
            [(ws, seq + k, f"bench:{seq + k}", ids[k % len(ids)], stamp, stamp) for k in range(n_exits)],
        )
        seq += n_exits
        commit()
    return time.perf_counter() - started


# --------------------------------------------------------------------------- SQLite


def _sqlite(contacts: int) -> float:
    from bench.common import bare_connect
    from siyu.db import Database
    from siyu.kit import time as siyu_time

    section(f"SQLite, 1 worker: {contacts:,} contacts through send / split / wait / branch / exit")
    siyu_time.set_clock(lambda: NOW)
    try:
        with temp_dir() as directory:
            path = directory / "journeys.db"
            database = Database(migrated_engine(path))
            ws, ids, (journey_id,) = _setup(database, contacts)
            enrol_s = _enrol(database, ws, journey_id, ids)
            print(f"  enrol                 {contacts / enrol_s:10,.0f} entries/s   ({enrol_s:.2f}s)")
            steps, batches, seconds, claims = _run_passes(database)
            per_second = steps / seconds
            print(
                f"  siyu runner           {per_second:10,.0f} steps/s     ({steps:,} steps, {batches} batches, "
                f"{seconds:.2f}s)"
            )
            sends, exits, enrolments = _written(database, [journey_id])
            database.dispose()
            conn = bare_connect(path)
            bare = _ceiling(
                conn.executemany,
                lambda: conn.execute("BEGIN IMMEDIATE"),
                lambda: conn.execute("COMMIT"),
                "?",
                ws,
                ids,
                enrolments,
                batches,
                sends,
                exits,
                claims,
            )
            conn.close()
            print(
                f"  bare executemany      {steps / bare:10,.0f} steps/s     ({bare:.2f}s: the same updates, "
                f"{sends:,} deliveries + messages, {exits:,} events)  ceiling"
            )
            print(f"  siyu / ceiling = {seconds / bare:.1f}x the time")
            return per_second
    finally:
        siyu_time.set_clock(None)


# --------------------------------------------------------------------------- PostgreSQL


def _postgres_admin(url: str | None) -> str | None:
    candidate = url or os.environ.get("SIYU_BENCH_POSTGRES_URL") or DEFAULT_POSTGRES
    try:
        engine = create_engine(candidate, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return candidate
    except Exception as exc:  # any failure means: no server to measure on
        print(f"  PostgreSQL not reachable ({type(exc).__name__}); skipped")
        return None


def _worker(url: str, start: Any, out: Any) -> None:
    from siyu.config import Settings
    from siyu.db import Database, create_db_engine
    from siyu.kit import time as siyu_time

    siyu_time.set_clock(lambda: NOW)
    database = Database(create_db_engine(url, Settings(database_url=url, _env_file=None)))  # type: ignore[call-arg]
    start.wait()
    out.put(_run_passes(database))
    database.dispose()


def _postgres(contacts: int, admin_url: str) -> tuple[float, float, float] | None:
    from siyu.config import Settings
    from siyu.db import Database, create_db_engine
    from siyu.kit import time as siyu_time
    from siyu.migrations.runner import upgrade

    name = f"siyu_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    siyu_time.set_clock(lambda: NOW)
    try:
        database = Database(create_db_engine(url, Settings(database_url=url, _env_file=None)))  # type: ignore[call-arg]
        upgrade(database.engine)
        ws, ids, (one, two) = _setup(database, contacts, journeys=2)

        section(f"PostgreSQL, 1 worker: {contacts:,} contacts")
        _enrol(database, ws, one, ids)
        steps, batches, seconds, claims = _run_passes(database)
        single = steps / seconds
        print(
            f"  siyu runner           {single:10,.0f} steps/s     ({steps:,} steps, {batches} batches, {seconds:.2f}s)"
        )
        sends, exits, enrolments = _written(database, [one])

        section(f"PostgreSQL, 2 workers (processes, SKIP LOCKED): {contacts:,} contacts")
        _enrol(database, ws, two, ids)
        database.dispose()
        context = multiprocessing.get_context("fork")
        start, out = context.Event(), context.Queue()
        procs = [context.Process(target=_worker, args=(url, start, out)) for _ in range(2)]
        for proc in procs:
            proc.start()
        started = time.perf_counter()
        start.set()
        results = [out.get(timeout=600) for _ in procs]
        wall = time.perf_counter() - started
        for proc in procs:
            proc.join()
        total_steps = sum(r[0] for r in results)
        together = total_steps / wall
        print(
            f"  siyu runner           {together:10,.0f} steps/s together, {together / 2:,.0f} per worker  "
            f"({total_steps:,} steps, {wall:.2f}s; worker shares {[r[0] for r in results]})"
        )

        import psycopg

        raw = make_url(url)
        conn = psycopg.connect(
            host=raw.host, port=raw.port, user=raw.username, password=raw.password, dbname=raw.database
        )
        cur = conn.cursor()
        bare = _ceiling(
            cur.executemany,
            lambda: None,
            conn.commit,
            "%s",
            ws,
            ids,
            enrolments,
            batches,
            sends,
            exits,
            claims,
        )
        conn.close()
        print(f"  bare executemany      {steps / bare:10,.0f} steps/s     ({bare:.2f}s, 1 connection)  ceiling")
        print(
            f"  siyu 1 worker / ceiling = {seconds / bare:.1f}x the time; 2 workers: {together / single:.2f}x 1 worker"
        )
        return single, together, steps / bare
    finally:
        siyu_time.set_clock(None)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run(
    *, quick: bool = False, contacts: int | None = None, postgres: bool = True, postgres_url: str | None = None
) -> list[Verdict]:
    n = contacts or (QUICK_CONTACTS if quick else FULL_CONTACTS)
    banner(f"journeys: steps per second per worker ({cpu_note()})")
    sqlite_rate = _sqlite(n)
    verdicts = [
        Verdict(
            "journeys",
            f"SQLite: >= {TARGET_STEPS:,.0f} journey steps/s per worker",
            f"{sqlite_rate:,.0f} steps/s",
            sqlite_rate >= TARGET_STEPS,
        )
    ]
    if postgres:
        section("PostgreSQL")
        admin = _postgres_admin(postgres_url)
        if admin is not None:
            found = _postgres(n, admin)
            if found is not None:
                single, together, _ceiling_rate = found
                verdicts.append(
                    Verdict(
                        "journeys",
                        "PostgreSQL: 2 workers move more steps/s than 1",
                        f"1 worker {single:,.0f}/s, 2 workers {together:,.0f}/s",
                        together > single,
                    )
                )
    return verdicts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.journeys", description=__doc__)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_CONTACTS:,} contacts")
    parser.add_argument("--contacts", type=int, default=None)
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--postgres-url", default=None, help="admin URL (default SIYU_BENCH_POSTGRES_URL or local)")
    args = parser.parse_args(argv)
    verdicts = run(
        quick=args.quick, contacts=args.contacts, postgres=not args.no_postgres, postgres_url=args.postgres_url
    )
    print_verdicts(verdicts)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
