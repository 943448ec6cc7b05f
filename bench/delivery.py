"""Delivery engine: send_many through the sandbox channel, and plan() over a large audience, on SQLite.

    python -m bench.delivery            # send_many: 100,000 sends in batches of 1,000; plan: 1,000,000 contacts
    python -m bench.delivery --quick    # 20,000 sends; plan: 100,000 contacts
    python -m bench.delivery --contacts 300000 --sends 50000 --batch 500

send_many: µs per sandbox send and sends/s, each batch one transaction (as a journey worker commits
once per batch), beside the ceiling: a bare sqlite3 executemany of the same rows (deliveries, sandbox
messages, counter upserts) in the same number of transactions. Journeys target 5,000 steps/s per
worker, so a send must stay well under 200 µs.

plan: one set-based query for N contacts with budgets applied (opt-outs, caps from a month of counters,
quiet hours), beside the bare count of the same audience. Target: 1,000,000 contacts in <= 60 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import time
from pathlib import Path

from bench.common import Verdict, banner, bare_connect, cpu_note, migrated_engine, print_verdicts, section, temp_dir

FULL_CONTACTS = 1_000_000
QUICK_CONTACTS = 100_000
FULL_SENDS = 100_000
QUICK_SENDS = 20_000
BATCH = 1_000
TARGET_SEND_US = 200.0  # 5,000 journey steps/s
TARGET_PLAN_S = 60.0
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


def run(
    *, quick: bool = False, contacts: int | None = None, sends: int | None = None, batch: int = BATCH
) -> list[Verdict]:
    banner(f"delivery ({cpu_note()})")
    siyu_us, bare_us = _send_many(sends or (QUICK_SENDS if quick else FULL_SENDS), batch)
    n = contacts or (QUICK_CONTACTS if quick else FULL_CONTACTS)
    plan_s, _ = _plan(n)  # the slowest of the three plans
    scaled = plan_s * FULL_CONTACTS / n
    note = "" if n == FULL_CONTACTS else f", {n:,} contacts scaled linearly to 1,000,000"
    return [
        Verdict(
            "delivery",
            f"send_many sandbox <= {TARGET_SEND_US:.0f} µs/send (5,000 steps/s)",
            f"{siyu_us:.0f} µs/send, bare {bare_us:.0f} µs",
            siyu_us <= TARGET_SEND_US,
        ),
        Verdict(
            "delivery",
            f"plan 1,000,000 contacts <= {TARGET_PLAN_S:.0f} s",
            f"{scaled:.1f} s{note}",
            scaled <= TARGET_PLAN_S,
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.delivery", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20,000 sends, 100,000 contacts")
    parser.add_argument("--contacts", type=int, help="contacts for plan()")
    parser.add_argument("--sends", type=int, help="sandbox sends for send_many")
    parser.add_argument("--batch", type=int, default=BATCH, help="requests per send_many call")
    args = parser.parse_args(argv)
    verdicts = run(quick=args.quick, contacts=args.contacts, sends=args.sends, batch=args.batch)
    print_verdicts(verdicts)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
