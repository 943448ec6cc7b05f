"""Delivery engine: send_many through the sandbox channel (SQLite and PostgreSQL), and plan() over a large
audience (SQLite).

    python -m bench.delivery            # send_many: 100,000 sends in batches of 1,000; plan: 1,000,000 contacts
    python -m bench.delivery --quick    # 20,000 sends; plan: 100,000 contacts
    python -m bench.delivery --contacts 300000 --sends 50000 --batch 500
    python -m bench.delivery --no-postgres

send_many: µs per sandbox send and sends/s, each batch one transaction (as a journey worker commits
once per batch), beside the ceiling: a bare sqlite3 executemany of the same rows (deliveries, sandbox
messages, counter upserts) in the same number of transactions. Journeys target 5,000 steps/s per
worker, so a send must stay well under 200 µs.

send_many on PostgreSQL: the same sends, beside a bare psycopg executemany of the same rows (pipelined, as
psycopg 3 does) in the same transactions, and beside the rows written the way send_many wrote them before
(SQLAlchemy Core insert of dicts with RETURNING, its multi-row VALUES converted by psycopg). A database is
created (and dropped) on the server of SIYU_BENCH_POSTGRES_URL, or the local one
(postgresql+psycopg://postgres@127.0.0.1:5432/postgres); skipped if none answers.

plan: one set-based query for N contacts with budgets applied (opt-outs, caps from a month of counters,
quiet hours), beside the bare count of the same audience. Target: 1,000,000 contacts in <= 60 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.common import Verdict, banner, bare_connect, cpu_note, migrated_engine, print_verdicts, section, temp_dir

FULL_CONTACTS = 1_000_000
QUICK_CONTACTS = 100_000
FULL_SENDS = 100_000
QUICK_SENDS = 20_000
BATCH = 1_000
TARGET_SEND_US = 200.0  # 5,000 journey steps/s
TARGET_PLAN_S = 60.0
TARGET_POSTGRES_SENDS = 3_000.0  # journeys: thousands of steps/s on PostgreSQL
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
NOW = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)  # 10:00 in Shanghai
SEED = 20261123


def _bulk_contacts(path: Path, workspace_id: int, n: int, start_id: int = 1) -> list[int]:
    conn = bare_connect(path)
    conn.execute("BEGIN IMMEDIATE")
    stamp = "2026-11-01 00:00:00.000000"
    rows = [(start_id + i, workspace_id, f"c{i}", stamp, stamp) for i in range(n)]
    conn.executemany(
        "INSERT INTO contact (id, workspace_id, name, attributes, created_at, updated_at) VALUES (?, ?, ?, '{}', ?, ?)",
        rows,
    )
    conn.execute("COMMIT")
    conn.close()
    return [r[0] for r in rows]


def _send_many(sends: int, batch: int) -> tuple[float, float]:
    from siyu.db import Database
    from siyu.delivery.models import DeliverySettings
    from siyu.delivery.service import Channel, SendRequest, send_many
    from siyu.workspaces.service import create_workspace

    section(f"send_many: {sends:,} sandbox sends in batches of {batch:,} (one transaction per batch)")
    with temp_dir() as directory:
        path = directory / "send.db"
        database = Database(migrated_engine(path))
        with database.transaction() as session:
            ws = create_workspace(session, "bench").id
            session.add(
                DeliverySettings(
                    workspace_id=ws, config={"caps": {"day": None, "week": None, "month": None}}, updated_at=NOW
                )
            )
        contact_ids = _bulk_contacts(path, ws, sends)
        requests = [
            SendRequest(
                source="journey:1", step="welcome", contact_id=c, entry=c, channel=Channel.sandbox, text="欢迎加入"
            )
            for c in contact_ids
        ]
        started = time.perf_counter()
        for n in range(0, len(requests), batch):
            with database.transaction() as session:
                outcomes = send_many(session, ws, requests[n : n + batch], now=NOW)
        elapsed = time.perf_counter() - started
        assert outcomes[-1].status.value == "sent", outcomes[-1]
        database.dispose()
        siyu_us = elapsed / sends * 1e6
        print(f"  siyu send_many        {siyu_us:8.1f} µs/send   {sends / elapsed:10,.0f} sends/s   ({elapsed:.2f}s)")

        # the ceiling: the same rows written by bare executemany, same transactions
        conn = bare_connect(path)
        conn.execute("DELETE FROM sandbox_message")
        conn.execute("DELETE FROM delivery")
        conn.execute("DELETE FROM contact_send_day")
        stamp = "2026-11-23 02:00:00.000000"
        started = time.perf_counter()
        next_id = 1
        for n in range(0, len(contact_ids), batch):
            chunk = contact_ids[n : n + batch]
            conn.execute("BEGIN IMMEDIATE")
            ids = list(range(next_id, next_id + len(chunk)))
            next_id += len(chunk)
            conn.executemany(
                "INSERT INTO delivery (id, workspace_id, source, step, contact_id, entry, channel, status, text, "
                "welfare, quiet_hours, budget_day, created_at, updated_at, sent_at, attempts) "
                "VALUES (?, ?, 'journey:1', 'welcome', ?, ?, 'sandbox', 'sent', '欢迎加入', 0, 'hold', '2026-11-23', "
                "?, ?, ?, 0)",
                [(i, ws, c, c, stamp, stamp, stamp) for i, c in zip(ids, chunk, strict=True)],
            )
            conn.executemany(
                "INSERT INTO sandbox_message (id, workspace_id, contact_id, text, created_at) "
                "VALUES (?, ?, ?, '欢迎加入', ?)",
                [(i, ws, c, stamp) for i, c in zip(ids, chunk, strict=True)],
            )
            conn.executemany(
                "INSERT INTO contact_send_day (workspace_id, contact_id, day, sends, welfare) "
                "VALUES (?, ?, '2026-11-23', 1, 0) ON CONFLICT (contact_id, day) DO UPDATE SET sends = sends + 1",
                [(ws, c) for c in chunk],
            )
            conn.execute("COMMIT")
        bare = time.perf_counter() - started
        conn.close()
        bare_us = bare / sends * 1e6
        print(
            f"  bare executemany      {bare_us:8.1f} µs/send   {sends / bare:10,.0f} rows/s    ({bare:.2f}s)  ceiling"
        )
        print(f"  siyu / ceiling = {siyu_us / bare_us:.1f}x the time")
    return siyu_us, bare_us


def _plan(contacts: int) -> tuple[float, float]:
    from sqlalchemy import select

    from siyu.contacts.models import Contact
    from siyu.db import Database
    from siyu.delivery.service import Channel, plan
    from siyu.workspaces.service import create_workspace

    section(f"plan: {contacts:,} contacts, budgets applied (opt-outs 1%, a month of counters for 40%)")
    rng = random.Random(SEED)
    with temp_dir() as directory:
        path = directory / "plan.db"
        database = Database(migrated_engine(path))
        with database.transaction() as session:
            ws = create_workspace(session, "bench").id
        started = time.perf_counter()
        ids = _bulk_contacts(path, ws, contacts)
        conn = bare_connect(path)
        conn.execute("BEGIN IMMEDIATE")
        stamp = "2026-11-01 00:00:00.000000"
        conn.executemany(
            "INSERT INTO delivery_opt_out (workspace_id, contact_id, source, created_at) VALUES (?, ?, 'api', ?)",
            [(ws, c, stamp) for c in ids if rng.random() < 0.01],
        )
        counters = []
        for c in ids:
            if rng.random() < 0.4:
                for day in rng.sample(range(1, 24), rng.randint(1, 4)):
                    counters.append((ws, c, f"2026-11-{day:02d}", 1, int(rng.random() < 0.2)))
        conn.executemany(
            "INSERT INTO contact_send_day (workspace_id, contact_id, day, sends, welfare) VALUES (?, ?, ?, ?, ?)",
            counters,
        )
        # WeCom: ten staff members with WeCom userids own the contacts; 60% have an external userid
        stamp_staff = "2026-01-01 00:00:00.000000"
        conn.executemany(
            "INSERT INTO staff (id, workspace_id, email, name, role, is_active, wecom_userid, failed_sign_ins, "
            "created_at) VALUES (?, ?, ?, ?, 'consultant', 1, ?, 0, ?)",
            [(900_000 + n, ws, f"s{n}@bench.cn", f"s{n}", f"user{n}", stamp_staff) for n in range(10)],
        )
        conn.execute("UPDATE contact SET owner_id = 900000 + (id % 10) WHERE workspace_id = ?", (ws,))
        conn.executemany(
            "INSERT INTO identity (workspace_id, contact_id, type, value, created_at) "
            "VALUES (?, ?, 'wecom_external_userid', ?, ?)",
            [(ws, c, f"wm{c}", stamp) for c in ids if rng.random() < 0.6],
        )
        conn.execute(
            "INSERT INTO wecom_settings (workspace_id, corp_id, secret_encrypted, token_encrypted, aes_key_encrypted, "
            "secret_hint, updated_at, created_at) VALUES (?, 'ww', 'x', 'x', 'x', 'x', ?, ?)",
            (ws, stamp, stamp),
        )
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
        print(f"  built {contacts:,} contacts, {len(counters):,} counter rows in {time.perf_counter() - started:.1f}s")
        audience = select(Contact.id).where(Contact.workspace_id == ws)
        timings = []
        for welfare in (False, True):
            with database.transaction(write=False) as session:
                started = time.perf_counter()
                result = plan(session, ws, audience, channel=Channel.sandbox, welfare=welfare, at=NOW)
                timings.append(time.perf_counter() - started)
            print(
                f"  siyu plan (welfare={welfare!s:<5})  {timings[-1]:7.2f}s   total {result.total:,}  "
                f"eligible {result.eligible:,}  excluded {result.excluded}"
            )
        with database.transaction(write=False) as session:
            started = time.perf_counter()
            result = plan(session, ws, audience, channel=Channel.wecom, welfare=False, at=NOW)
            wecom_s = time.perf_counter() - started
        print(
            f"  siyu plan (wecom)        {wecom_s:7.2f}s   eligible {result.eligible:,}  excluded {result.excluded}  "
            "(identities, senders, staff daily limits ranked per sender)"
        )
        timings.append(wecom_s)
        started = time.perf_counter()
        (count,) = conn.execute("SELECT count(*) FROM contact WHERE workspace_id = ?", (ws,)).fetchone()
        bare = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute(
            "SELECT contact_id, sum(sends) FROM contact_send_day WHERE workspace_id = ? AND day >= '2026-11-01' "
            "GROUP BY contact_id",
            (ws,),
        ).fetchall()
        bare_counters = time.perf_counter() - started
        conn.close()
        database.dispose()
        print(f"  bare count(*)          {bare:7.2f}s   ({count:,} contacts)  ceiling")
        print(f"  bare counter sum       {bare_counters:7.2f}s   (one month of counters grouped by contact)")
        worst = max(timings)
        print(f"  slowest plan / bare count = {worst / bare if bare else float('inf'):.1f}x")
    return worst, bare


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


@contextmanager
def _postgres_database(admin_url: str) -> Iterator[str]:
    """A fresh database on the server (dropped afterwards); yields its URL."""
    name = f"siyu_bench_delivery_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _psycopg_connect(url: str) -> Any:
    import psycopg

    raw = make_url(url)
    return psycopg.connect(host=raw.host, port=raw.port, user=raw.username, password=raw.password, dbname=raw.database)


def _rate_line(label: str, seconds: float, sends: int, unit: str, note: str = "") -> None:
    print(
        f"  {label:<21} {seconds / sends * 1e6:8.1f} µs/send   {sends / seconds:10,.0f} {unit:<8} ({seconds:.2f}s)"
        + (f"  {note}" if note else "")
    )


def _timed_batches(contact_ids: list[int], batch: int, write: Callable[[list[int]], None]) -> float:
    started = time.perf_counter()
    for n in range(0, len(contact_ids), batch):
        write(contact_ids[n : n + batch])
    return time.perf_counter() - started


def _send_many_postgres(sends: int, batch: int, admin_url: str) -> tuple[float, float, float]:
    """(siyu sends/s, the best bare rows/s, Core-dicts rows/s) on PostgreSQL."""
    from sqlalchemy import Table, insert
    from sqlalchemy.dialects import postgresql

    from siyu.config import Settings
    from siyu.db import Database, create_db_engine
    from siyu.delivery.models import ContactSendDay, Delivery, DeliverySettings, SandboxMessage
    from siyu.delivery.service import Channel, SendRequest, send_many
    from siyu.migrations.runner import upgrade
    from siyu.workspaces.service import create_workspace

    section(f"send_many on PostgreSQL: {sends:,} sandbox sends in batches of {batch:,} (one transaction per batch)")
    with _postgres_database(admin_url) as url:
        database = Database(create_db_engine(url, Settings(database_url=url, _env_file=None)))  # type: ignore[call-arg]
        upgrade(database.engine)
        with database.transaction() as session:
            ws = create_workspace(session, "bench").id
            session.add(
                DeliverySettings(
                    workspace_id=ws, config={"caps": {"day": None, "week": None, "month": None}}, updated_at=NOW
                )
            )
        conn = _psycopg_connect(url)
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO contact (workspace_id, name, attributes, created_at, updated_at) "
                "SELECT %s, 'c' || n, '{}', %s, %s FROM generate_series(1, %s) AS n RETURNING id",
                (ws, NOW, NOW, sends),
            )
            contact_ids = sorted(row[0] for row in cur.fetchall())
        conn.commit()
        conn.execute("ANALYZE")
        conn.commit()

        def siyu(chunk: list[int]) -> None:
            requests = [
                SendRequest(
                    source="journey:1", step="welcome", contact_id=c, entry=c, channel=Channel.sandbox, text="欢迎加入"
                )
                for c in chunk
            ]
            with database.transaction() as session:
                outcomes = send_many(session, ws, requests, now=NOW)
            assert outcomes[-1].status.value == "sent", outcomes[-1]

        elapsed = _timed_batches(contact_ids, batch, siyu)
        siyu_rate = sends / elapsed
        _rate_line("siyu send_many", elapsed, sends, "sends/s")

        def reset() -> None:
            conn.execute("DELETE FROM sandbox_message")
            conn.execute("DELETE FROM delivery")
            conn.execute("DELETE FROM contact_send_day")
            conn.commit()

        # the ceiling: the same rows through psycopg's executemany (pipelined), ids chosen here
        reset()
        next_id = [10_000_000]

        def bare(chunk: list[int]) -> None:
            ids = list(range(next_id[0], next_id[0] + len(chunk)))
            next_id[0] += len(chunk)
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO delivery (id, workspace_id, source, step, contact_id, entry, channel, status, text, "
                    "welfare, quiet_hours, budget_day, created_at, updated_at, sent_at, attempts) VALUES "
                    "(%s, %s, 'journey:1', 'welcome', %s, %s, 'sandbox', 'sent', '欢迎加入', false, 'hold', "
                    "'2026-11-23', %s, %s, %s, 0)",
                    [(i, ws, c, c, NOW, NOW, NOW) for i, c in zip(ids, chunk, strict=True)],
                )
                cur.executemany(
                    "INSERT INTO sandbox_message (id, workspace_id, contact_id, text, created_at) "
                    "VALUES (%s, %s, %s, '欢迎加入', %s)",
                    [(i, ws, c, NOW) for i, c in zip(ids, chunk, strict=True)],
                )
                cur.executemany(
                    "INSERT INTO contact_send_day (workspace_id, contact_id, day, sends, welfare) "
                    "VALUES (%s, %s, '2026-11-23', 1, 0) "
                    "ON CONFLICT (contact_id, day) DO UPDATE SET sends = contact_send_day.sends + 1",
                    [(ws, c) for c in chunk],
                )
            conn.commit()

        bare_s = _timed_batches(contact_ids, batch, bare)
        bare_rate = sends / bare_s
        _rate_line("bare executemany", bare_s, sends, "rows/s", "ceiling")

        # the same rows as one INSERT ... SELECT FROM unnest(arrays) per table, arrays in binary
        reset()

        def bare_arrays(chunk: list[int]) -> None:
            ids = list(range(next_id[0], next_id[0] + len(chunk)))
            next_id[0] += len(chunk)
            with conn.cursor() as cur:
                cur.execute(
                    "INSERT INTO delivery (id, workspace_id, source, step, contact_id, entry, channel, status, text, "
                    "welfare, quiet_hours, budget_day, created_at, updated_at, sent_at, attempts) "
                    "SELECT u.id, %s, 'journey:1', 'welcome', u.contact_id, u.contact_id, 'sandbox', 'sent', "
                    "'欢迎加入', false, 'hold', '2026-11-23', %s, %s, %s, 0 "
                    "FROM unnest(%b::bigint[], %b::bigint[]) AS u(id, contact_id)",
                    (ws, NOW, NOW, NOW, ids, chunk),
                )
                cur.execute(
                    "INSERT INTO sandbox_message (id, workspace_id, contact_id, text, created_at) "
                    "SELECT u.id, %s, u.contact_id, '欢迎加入', %s FROM unnest(%b::bigint[], %b::bigint[]) "
                    "AS u(id, contact_id)",
                    (ws, NOW, ids, chunk),
                )
                cur.execute(
                    "INSERT INTO contact_send_day (workspace_id, contact_id, day, sends, welfare) "
                    "SELECT %s, u.contact_id, '2026-11-23', 1, 0 FROM unnest(%b::bigint[]) AS u(contact_id) "
                    "ON CONFLICT (contact_id, day) DO UPDATE SET sends = contact_send_day.sends + 1",
                    (ws, chunk),
                )
            conn.commit()

        arrays_s = _timed_batches(contact_ids, batch, bare_arrays)
        arrays_rate = sends / arrays_s
        _rate_line("bare unnest arrays", arrays_s, sends, "rows/s", "ceiling: how send_many writes now")

        # what send_many's writes cost before: SQLAlchemy Core inserts of dicts (multi-row VALUES, RETURNING)
        reset()
        delivery_table, sandbox_table = Delivery.__table__, SandboxMessage.__table__
        counters = ContactSendDay.__table__
        assert isinstance(delivery_table, Table) and isinstance(sandbox_table, Table) and isinstance(counters, Table)
        insert_deliveries = (
            postgresql.insert(delivery_table)
            .on_conflict_do_nothing(index_elements=["workspace_id", "source", "step", "contact_id", "entry"])
            .returning(delivery_table.c.id, delivery_table.c.contact_id)
        )
        upsert = postgresql.insert(counters)
        upsert_counters = upsert.on_conflict_do_update(
            index_elements=["contact_id", "day"], set_={"sends": counters.c.sends + upsert.excluded.sends}
        )
        day = NOW.date()

        def core(chunk: list[int]) -> None:
            with database.transaction() as session:
                connection = session.connection()
                rows = [
                    {
                        "workspace_id": ws,
                        "source": "journey:1",
                        "step": "welcome",
                        "contact_id": c,
                        "entry": c,
                        "channel": "sandbox",
                        "status": "sent",
                        "reason": None,
                        "detail": None,
                        "retry_at": None,
                        "text": "欢迎加入",
                        "content_id": None,
                        "push_id": None,
                        "link": None,
                        "staff_id": None,
                        "welfare": False,
                        "quiet_hours": "hold",
                        "webhook_url": None,
                        "payload": None,
                        "budget_day": day,
                        "created_at": NOW,
                        "updated_at": NOW,
                        "sent_at": NOW,
                        "attempts": 0,
                    }
                    for c in chunk
                ]
                ids = connection.execute(insert_deliveries, rows).all()
                connection.execute(
                    insert(sandbox_table),
                    [
                        {
                            "workspace_id": ws,
                            "id": did,
                            "contact_id": c,
                            "text": "欢迎加入",
                            "link": None,
                            "created_at": NOW,
                            "opens_at": None,
                            "clicks_at": None,
                            "pending_at": None,
                        }
                        for did, c in ids
                    ],
                )
                connection.execute(
                    upsert_counters,
                    [{"workspace_id": ws, "contact_id": c, "day": day, "sends": 1, "welfare": 0} for c in chunk],
                )

        core_s = _timed_batches(contact_ids, batch, core)
        core_rate = sends / core_s
        _rate_line("Core insert of dicts", core_s, sends, "rows/s", "send_many's writes before (writes only)")
        print(
            f"  siyu / executemany = {bare_rate / siyu_rate:.1f}x the time; "
            f"siyu / unnest arrays = {arrays_rate / siyu_rate:.1f}x"
        )
        conn.close()
        database.dispose()
    return siyu_rate, max(bare_rate, arrays_rate), core_rate


def run(
    *,
    quick: bool = False,
    contacts: int | None = None,
    sends: int | None = None,
    batch: int = BATCH,
    postgres: bool = True,
    postgres_url: str | None = None,
    plan: bool = True,
) -> list[Verdict]:
    banner(f"delivery ({cpu_note()})")
    verdicts: list[Verdict] = []
    n_sends = sends or (QUICK_SENDS if quick else FULL_SENDS)
    siyu_us, bare_us = _send_many(n_sends, batch)
    verdicts.append(
        Verdict(
            "delivery",
            f"send_many sandbox <= {TARGET_SEND_US:.0f} µs/send (5,000 steps/s)",
            f"{siyu_us:.0f} µs/send, bare {bare_us:.0f} µs",
            siyu_us <= TARGET_SEND_US,
        )
    )
    if postgres:
        admin = _postgres_admin(postgres_url)
        if admin is not None:
            pg_rate, pg_bare, pg_core = _send_many_postgres(n_sends, batch, admin)
            verdicts.append(
                Verdict(
                    "delivery",
                    f"send_many sandbox on PostgreSQL >= {TARGET_POSTGRES_SENDS:,.0f} sends/s",
                    f"{pg_rate:,.0f} sends/s, bare {pg_bare:,.0f} rows/s, before (Core dicts) {pg_core:,.0f}",
                    pg_rate >= TARGET_POSTGRES_SENDS,
                )
            )
    if not plan:
        return verdicts
    n = contacts or (QUICK_CONTACTS if quick else FULL_CONTACTS)
    plan_s, _ = _plan(n)  # the slowest of the three plans
    scaled = plan_s * FULL_CONTACTS / n
    note = "" if n == FULL_CONTACTS else f", {n:,} contacts scaled linearly to 1,000,000"
    verdicts.append(
        Verdict(
            "delivery",
            f"plan 1,000,000 contacts <= {TARGET_PLAN_S:.0f} s",
            f"{scaled:.1f} s{note}",
            scaled <= TARGET_PLAN_S,
        )
    )
    return verdicts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.delivery", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20,000 sends, 100,000 contacts")
    parser.add_argument("--contacts", type=int, help="contacts for plan()")
    parser.add_argument("--sends", type=int, help="sandbox sends for send_many")
    parser.add_argument("--batch", type=int, default=BATCH, help="requests per send_many call")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--postgres-url", help="an admin URL of a PostgreSQL server (default: SIYU_BENCH_POSTGRES_URL)")
    parser.add_argument("--no-plan", action="store_true", help="send_many only")
    args = parser.parse_args(argv)
    verdicts = run(
        quick=args.quick,
        contacts=args.contacts,
        sends=args.sends,
        batch=args.batch,
        postgres=not args.no_postgres,
        postgres_url=args.postgres_url,
        plan=not args.no_plan,
    )
    print_verdicts(verdicts)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
