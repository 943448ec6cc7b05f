"""Broadcasts: a broadcast to 1,000,000 contacts planned with budgets applied, its start (the audience
frozen), and sandbox send throughput, on SQLite.

    python -m bench.broadcasts            # 1,000,000 contacts; 50,000 sends measured
    python -m bench.broadcasts --quick    # 100,000 contacts; 20,000 sends
    python -m bench.broadcasts --contacts 300000 --sends 30000

plan: siyu.broadcasts.service.plan for a segment of N contacts and for a tag filter over the same
contacts (opt-outs 1%, a month of send counters for 40% so caps bite, quiet hours, welfare days),
beside the bare ceiling measured in the same run: COUNT(*) of the same audience, and SELECT of its ids.
Target: 1,000,000 contacts planned in <= 60 s.

start: creating the broadcast with no run_at plans it and freezes the audience (INSERT ... SELECT of
N ids into broadcast_recipient), beside the bare INSERT ... SELECT of the same ids into a scratch table.

send: the worker's poller (siyu.broadcasts.tasks.send_due) sending batches of 1,000 through
delivery.send_many, one transaction per batch: sandbox sends/s, for information.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import time
from pathlib import Path

from bench.common import (
    Verdict,
    banner,
    bare_connect,
    bench_settings,
    cpu_note,
    migrated_engine,
    print_verdicts,
    section,
    temp_dir,
)

FULL_CONTACTS = 1_000_000
QUICK_CONTACTS = 100_000
FULL_SENDS = 50_000
QUICK_SENDS = 20_000
TARGET_PLAN_S = 60.0
NOW = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)  # 10:00 in Shanghai, outside quiet hours
SEED = 20261123
STAMP = "2026-11-01 00:00:00.000000"


def _build(path: Path, contacts: int) -> tuple[int, int, int]:
    """N contacts all tagged and all in one segment, 1% opted out, 40% with a month of sends.
    Returns (workspace id, tag id, segment id)."""
    from siyu.db import Database
    from siyu.workspaces.service import create_workspace

    rng = random.Random(SEED)
    database = Database(migrated_engine(path))
    with database.transaction() as session:
        ws = create_workspace(session, "bench").id
    database.dispose()
    conn = bare_connect(path)
    conn.execute("BEGIN IMMEDIATE")
    ids = list(range(1, contacts + 1))
    conn.executemany(
        "INSERT INTO contact (id, workspace_id, name, attributes, created_at, updated_at) VALUES (?, ?, ?, '{}', ?, ?)",
        [(c, ws, f"c{c}", STAMP, STAMP) for c in ids],
    )
    conn.execute(
        "INSERT INTO tag_group (id, workspace_id, name, exclusive, created_at) VALUES (1, ?, '兴趣', 0, ?)", (ws, STAMP)
    )
    conn.execute(
        "INSERT INTO tag (id, workspace_id, group_id, name, created_at) VALUES (1, ?, 1, '考研', ?)", (ws, STAMP)
    )
    conn.executemany(
        "INSERT INTO contact_tag (workspace_id, contact_id, tag_id, created_at) VALUES (?, ?, 1, ?)",
        [(ws, c, STAMP) for c in ids],
    )
    conn.execute(
        "INSERT INTO segment (id, workspace_id, name, rule, version, member_count, created_at, updated_at) "
        'VALUES (1, ?, \'考研意向\', \'{"tags": [1], "match": "any"}\', 1, ?, ?, ?)',
        (ws, contacts, STAMP, STAMP),
    )
    conn.executemany(
        "INSERT INTO segment_member (workspace_id, segment_id, contact_id, entered_at) VALUES (?, 1, ?, ?)",
        [(ws, c, STAMP) for c in ids],
    )
    conn.executemany(
        "INSERT INTO delivery_opt_out (workspace_id, contact_id, source, created_at) VALUES (?, ?, 'api', ?)",
        [(ws, c, STAMP) for c in ids if rng.random() < 0.01],
    )
    counters = []
    for c in ids:
        if rng.random() < 0.4:
            for day in rng.sample(range(1, 23), rng.randint(1, 4)):
                counters.append((ws, c, f"2026-11-{day:02d}", 1, int(rng.random() < 0.2)))
    conn.executemany(
        "INSERT INTO contact_send_day (workspace_id, contact_id, day, sends, welfare) VALUES (?, ?, ?, ?, ?)", counters
    )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()
    return ws, 1, 1


def _ceiling(path: Path, sql: str, params: tuple[object, ...], fetch_all: bool) -> float:
    conn = bare_connect(path)
    started = time.perf_counter()
    cursor = conn.execute(sql, params)
    rows = cursor.fetchall() if fetch_all else cursor.fetchone()
    elapsed = time.perf_counter() - started
    assert rows
    conn.close()
    return elapsed


def run(quick: bool = False, contacts: int | None = None, sends: int | None = None) -> list[Verdict]:
    from siyu.auth.principal import Principal
    from siyu.auth.scopes import ALL_SCOPES
    from siyu.broadcasts import service
    from siyu.broadcasts.models import Broadcast
    from siyu.broadcasts.schemas import AudienceIn, BroadcastCreate, BroadcastPreviewIn
    from siyu.db import Database, create_db_engine
    from siyu.kit.time import set_clock

    contacts = contacts or (QUICK_CONTACTS if quick else FULL_CONTACTS)
    sends = min(sends or (QUICK_SENDS if quick else FULL_SENDS), contacts)
    banner(f"broadcasts: {contacts:,} contacts ({cpu_note()})")
    set_clock(lambda: NOW)
    try:
        with temp_dir() as directory:
            path = directory / "broadcasts.db"
            started = time.perf_counter()
            ws, tag_id, segment_id = _build(path, contacts)
            built_s = time.perf_counter() - started
            print(f"  built {contacts:,} contacts (tag, segment, opt-outs, counters) in {built_s:.1f}s")
            database = Database(create_db_engine(f"sqlite:///{path}", bench_settings()))
            principal = Principal(workspace_id=ws, scopes=ALL_SCOPES)

            section(f"plan: {contacts:,} contacts with budgets applied, beside the bare audience")
            timings: dict[str, float] = {}
            for label, audience in (
                ("segment", AudienceIn(segment_id=segment_id)),
                ("tag filter", AudienceIn(tag_ids=[tag_id], match="any")),
            ):
                data = BroadcastPreviewIn(audience=audience, text="双十一", channel="sandbox")
                with database.transaction(write=False) as session:
                    started = time.perf_counter()
                    result = service.preview(session, principal, data, now=NOW)
                    timings[label] = time.perf_counter() - started
                print(
                    f"  siyu plan ({label:<10})  {timings[label]:7.2f}s   total {result.total:,}  "
                    f"eligible {result.eligible:,}  excluded {result.excluded}"
                )
            count_s = _ceiling(path, "SELECT COUNT(*) FROM segment_member WHERE segment_id = ?", (segment_id,), False)
            select_s = _ceiling(
                path,
                "SELECT contact_id FROM segment_member WHERE segment_id = ? ORDER BY contact_id",
                (segment_id,),
                True,
            )
            print(f"  bare COUNT(*) of the segment      {count_s:7.2f}s   ceiling")
            print(f"  bare SELECT of the segment's ids  {select_s:7.2f}s   ceiling")
            plan_s = max(timings.values())
            print(f"  siyu plan / bare SELECT = {plan_s / select_s:.1f}x the time")

            section("start: plan at the start and freeze the audience (INSERT ... SELECT into broadcast_recipient)")
            data_create = BroadcastCreate(
                name="百万群发", audience=AudienceIn(segment_id=segment_id), text="双十一", channel="sandbox"
            )
            with database.transaction() as session:
                started = time.perf_counter()
                broadcast = service.create(session, principal, data_create, now=NOW)
                start_s = time.perf_counter() - started
                broadcast_id, frozen = broadcast.id, broadcast.total
            conn = bare_connect(path)
            conn.execute("CREATE TABLE scratch (a INTEGER, b INTEGER, c INTEGER, PRIMARY KEY (a, b))")
            conn.execute("BEGIN IMMEDIATE")
            started = time.perf_counter()
            conn.execute(
                "INSERT INTO scratch SELECT 1, contact_id, ? FROM segment_member WHERE segment_id = ?", (ws, segment_id)
            )
            conn.execute("COMMIT")
            bare_freeze_s = time.perf_counter() - started
            conn.execute("DROP TABLE scratch")
            conn.close()
            print(f"  siyu create + plan + freeze  {start_s:7.2f}s   {frozen:,} recipients frozen")
            print(f"  bare INSERT ... SELECT       {bare_freeze_s:7.2f}s   ceiling (the freeze alone, no plan)")

            section(f"send: the poller sends {sends:,} recipients in batches of {service.BATCH:,} (sandbox)")
            started = time.perf_counter()
            done = 0
            while done < sends:
                with database.transaction() as session:
                    row = service.lock(session, broadcast_id)
                    assert row is not None
                    done += service.send_batch(session, row, now=NOW).processed
            send_s = time.perf_counter() - started
            with database.transaction(write=False) as session:
                row = session.get(Broadcast, broadcast_id)
                assert row is not None
                progress = service.progress_read(row)
            print(
                f"  siyu batches  {done / send_s:10,.0f} recipients/s ({done:,} in {send_s:.2f}s): "
                f"sent {progress.sent:,}, skipped {progress.skipped:,} {progress.reasons}"
            )
            print(f"  at this rate the whole broadcast takes {frozen / (done / send_s) / 60:.1f} min on one worker")
            database.dispose()
    finally:
        set_clock(None)
    scaled = plan_s * FULL_CONTACTS / contacts
    note = "" if contacts == FULL_CONTACTS else f", extrapolated from {contacts:,}"
    return [
        Verdict(
            "broadcast plan",
            "1,000,000 contacts planned with budgets <= 60 s",
            f"{scaled:.1f} s{note}; bare SELECT {select_s:.2f} s",
            scaled <= TARGET_PLAN_S,
        )
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.broadcasts", description=__doc__)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_CONTACTS:,} contacts, {QUICK_SENDS:,} sends")
    parser.add_argument("--contacts", type=int, default=None, help="contacts in the audience")
    parser.add_argument("--sends", type=int, default=None, help="recipients sent to measure throughput")
    args = parser.parse_args(argv)
    print_verdicts(run(quick=args.quick, contacts=args.contacts, sends=args.sends))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
