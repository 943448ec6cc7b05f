"""The user model at 1,000,000 contacts and 20,000,000 events, each figure next to a DuckDB ceiling.

    python -m bench.usermodel                                   # 1,000,000 contacts, 20,000,000 events
    python -m bench.usermodel --contacts 100000 --events 2000000
    python -m bench.usermodel --quick                           # 20,000 contacts, 400,000 events
    SIYU_BENCH_CONTACTS=... SIYU_BENCH_EVENTS=... python -m bench.usermodel

Targets (issue #5, item 8):
  1. count of a 3-condition segment (region AND tag AND "content.viewed >= 2 in the last 7 days") <= 1 s
  2. full membership of a broad segment materialised (create_segment) <= 5 s
  3. RFM and tiers for every contact (scoring.recompute, whole workspace) <= 10 s
  4. event-to-membership lag p95 <= 5 s while ingesting 5,000 events/s

Data: generated directly with raw `executemany` into contact, identity, contact_tag and event (rows written
as `siyu.events.repository.insert_events` writes them on SQLite; workspace.event_seq set), because the demo
simulator's bulk mode stores events through the events service 1,000 at a time, far too slow for 20M
events. Computed properties are then built the production way, `siyu.usermodel.pipeline.catch_up`, which
runs at a few thousand events/s on 2 cores; above 3,000,000 events (`--build auto`, the default) catch_up is
timed on the first 250,000 events only and the rest is built by `pipeline.rebuild_workspace` (the repair
path: `computed.rebuild` + full scoring, tags, segments). `--build catch_up|rebuild` forces either.

`--data DIR` keeps the generated raw data (contacts, identities, tags, events) in DIR as
`usermodel-<contacts>-<events>.db`, and the same data with its computed properties built as
`usermodel-<contacts>-<events>-built.db`, and reuses them on later runs with the same sizes (copied into
the temp directory and migrated to the current schema): the built file skips generation and the build
(at full size ~25 minutes) for iterating on the code; delete it after changing how computed properties
are built. Reused data ages: the last event is as old as the file plus ~2 minutes.

The lag phase runs the ingester in its own process by default (as the API server is; `--lag-ingester
thread` keeps it in this process, where it shares the GIL with the pipeline).

The ceiling: the same question asked of DuckDB over the raw events, contacts and tags, exported from the
same SQLite file (sqlite3 CLI to CSV, DuckDB read_csv; loading is not timed). Each figure is the median of
several runs. Everything lives in a temp directory under /tmp (WAL); ./var is never touched.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import (
    Stats,
    Verdict,
    banner,
    bench_settings,
    cpu_note,
    migrated_engine,
    print_verdicts,
    rate,
    ratio,
    section,
    temp_dir,
)
from siyu.kit.heap import settle_after_startup
from siyu.kit.timing import PhaseTimer

FIGURES = frozenset({"count", "membership", "rfm", "lag"})
DEFAULT_CONTACTS = 1_000_000
DEFAULT_EVENTS = 20_000_000
QUICK_CONTACTS = 20_000
QUICK_EVENTS = 400_000
SEED = 20261123
CHUNK = 50_000
AUTO_CATCH_UP_MAX = 3_000_000  # above this, catch_up (~5,000 events/s on 2 cores) is sampled, then rebuilt
SAMPLE_EVENTS = 250_000
DAYS = 90

TARGET_COUNT_S = 1.0
TARGET_MATERIALISE_S = 5.0
TARGET_SCORING_S = 10.0
TARGET_LAG_P95_S = 5.0
LAG_RATE = 5_000  # events/s ingested during the lag phase
LAG_SECONDS = 20.0
LAG_WRITER_CACHE_MB = 4096  # the worker's writer cache for the lag phase, as docs/operations sizes it at 1M
LAG_BATCH = 500  # events per ingest batch (10 batches/s at 5,000 events/s), one of them a probe

TOPICS = ["exam", "job", "english", "kaoyan", "civil", "it"]
CHANNELS = [("douyin", 30), ("wecom", 25), ("xiaohongshu", 15), ("offline", 10), ("referral", 10), (None, 10)]
OTHER_REGIONS = ["北京", "杭州", "广州", "深圳", "成都", "南京", "武汉", None]
# (type, weight)
EVENT_MIX = [
    ("content.viewed", 35),
    ("message.received", 15),
    ("message.sent", 10),
    ("content.shared", 4),
    ("content.favorited", 4),
    ("group.joined", 4),
    ("live.attended", 5),
    ("order.paid", 3),
    ("coupon.redeemed", 1),
]
PHONE_PREFIXES = ("138", "139", "137", "136", "135", "150", "151", "152", "158", "159", "186", "187", "188", "189")

LAG_TYPES = ["content.viewed", "message.received", "content.shared", "live.attended", "order.paid"]
THREE_CONDITIONS = "region 上海 AND tag AND content.viewed >= 2 in the last 7 days"
BROAD_RULE: dict[str, Any] = {"event": "content.viewed", "count": {"op": "gte", "value": 1}, "within_last_days": 30}
LAG_RULE: dict[str, Any] = {"event": "content.viewed", "count": {"op": "gte", "value": 1}, "within_last_days": 1}


def three_condition_rule(tag_id: int) -> dict[str, Any]:
    return {
        "and": [
            {"attribute": "region", "op": "eq", "value": "上海"},
            {"tags": [tag_id]},
            {"event": "content.viewed", "count": {"op": "gte", "value": 2}, "within_last_days": 7},
        ]
    }


def phone(index: int) -> str:
    """A unique valid Chinese mobile number in E.164 per index (as bench.contacts_list builds them)."""
    prefix = PHONE_PREFIXES[index % len(PHONE_PREFIXES)]
    suffix = (index // len(PHONE_PREFIXES) * 7919 + 12345) % 10**8
    return f"+86{prefix}{suffix:08d}"


def _ts(moment: dt.datetime) -> str:
    from siyu.kit.sql import sqlite_datetime

    return sqlite_datetime(moment)


def median_of(runs: int, fn: Callable[[], Any]) -> tuple[float, list[float], Any]:
    times, last = [], None
    for _ in range(runs):
        start = time.perf_counter()
        last = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, last


def figure(label: str, measured: float, target: float, ceiling: float, unit: str = "s") -> str:
    return (
        f"  {label}: measured {measured:.3f} {unit}, target <= {target:g} {unit}, "
        f"ceiling (DuckDB) {ceiling:.3f} {unit}, ratio {ratio(measured, ceiling):.1f}x"
    )


# --- data --------------------------------------------------------------------------------------------


def build(path: Path, contacts: int, events: int, now: dt.datetime) -> tuple[int, int, dict[str, int]]:
    """Fresh migrated file, one workspace, contacts/identities/tags/events. Returns (workspace, tag, counts)."""
    from siyu.db import Database
    from siyu.tags.models import Tag, TagGroup
    from siyu.workspaces.service import create_workspace

    engine = migrated_engine(path)
    with Database(engine).transaction() as session:
        workspace = create_workspace(session, "bench usermodel")
        group = TagGroup(workspace_id=workspace.id, name="意向等级", exclusive=False)
        session.add(group)
        session.flush()
        tag = Tag(workspace_id=workspace.id, group_id=group.id, name="高意向")
        session.add(tag)
        session.flush()
        ws, tag_id = workspace.id, tag.id
    engine.dispose()

    rng = random.Random(SEED)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")  # a failed build is thrown away whole
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1048576")
    conn.execute("PRAGMA temp_store=MEMORY")
    contact_sql = (
        "INSERT INTO contact (id, workspace_id, name, source_channel, region, gender, attributes, "
        "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    identity_sql = "INSERT INTO identity (workspace_id, contact_id, type, value, created_at) VALUES (?, ?, ?, ?, ?)"
    tag_sql = "INSERT INTO contact_tag (contact_id, tag_id, workspace_id, created_at) VALUES (?, ?, ?, ?)"
    channels = [c for c, _ in CHANNELS]
    weights = [w for _, w in CHANNELS]
    counts = {"contacts": contacts, "上海": 0, "tagged": 0}
    first_day = now - dt.timedelta(days=DAYS + 30)
    for start in range(1, contacts + 1, CHUNK):
        c_rows, i_rows, t_rows = [], [], []
        for cid in range(start, min(start + CHUNK, contacts + 1)):
            created = _ts(first_day + dt.timedelta(seconds=rng.random() * 30 * 86400))
            region = "上海" if rng.random() < 0.10 else rng.choice(OTHER_REGIONS)
            counts["上海"] += region == "上海"
            channel = rng.choices(channels, weights)[0]
            c_rows.append((cid, ws, f"客户{cid}", channel, region, None, "{}", created, created))
            i_rows.append((ws, cid, "phone", phone(cid), created))
            if rng.random() < 0.20:
                t_rows.append((cid, tag_id, ws, created))
                counts["tagged"] += 1
        conn.execute("BEGIN")
        conn.executemany(contact_sql, c_rows)
        conn.executemany(identity_sql, i_rows)
        conn.executemany(tag_sql, t_rows)
        conn.execute("COMMIT")

    # Events in time order over the last 90 days, so sequence order is (about) time order as in life.
    # Activity is skewed: 60% of events come from the most active quarter of the contacts.
    types = [t for t, _ in EVENT_MIX]
    cumulative, total = [], 0
    for _, w in EVENT_MIX:
        total += w
        cumulative.append(total / sum(w for _, w in EVENT_MIX))
    viewed = [f'{{"content_id":"c-{k}","topic":"{TOPICS[k % len(TOPICS)]}"}}' for k in range(600)]
    messages = [f'{{"text":"请问课程{k}怎么报名","staff_id":{1 + k % 40}}}' for k in range(50)]
    lives = [f'{{"live_id":"live-{k}"}}' for k in range(20)]
    groups = [f'{{"group_id":"g{k}","group_name":"福利群{k}"}}' for k in range(30)]
    prices = [99.0, 199.0, 299.0, 399.0, 699.0, 1299.0, 2999.0]
    event_sql = (
        "INSERT INTO event (workspace_id, seq, event_id, type, contact_id, occurred_at, received_at, properties) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    )
    span = dt.timedelta(days=DAYS).total_seconds()
    origin = (now - dt.timedelta(days=DAYS)).replace(tzinfo=None)
    active = max(1, contacts // 4)
    rand = rng.random
    for start in range(1, events + 1, CHUNK):
        rows = []
        for seq in range(start, min(start + CHUNK, events + 1)):
            # the last event lands ~2 minutes before now
            at = (origin + dt.timedelta(seconds=(seq / events) * (span - 120))).isoformat(" ", "microseconds")
            cid = 1 + int(rand() * active) if rand() < 0.6 else 1 + int(rand() * contacts)
            r = rand()
            k = 0
            while r > cumulative[k]:
                k += 1
            kind = types[k]
            if kind.startswith("content."):
                props = viewed[int(rand() * 600)]
            elif kind.startswith("message."):
                props = messages[int(rand() * 50)]
            elif kind == "order.paid":
                props = f'{{"order_id":"o{seq}","amount":{prices[int(rand() * 7)]}}}'
            elif kind == "live.attended":
                props = lives[int(rand() * 20)]
            elif kind == "group.joined":
                props = groups[int(rand() * 30)]
            else:
                props = '{"coupon_id":"new-30"}'
            rows.append((ws, seq, f"bench-{seq:010d}", kind, cid, at, at, props))
        conn.execute("BEGIN")
        conn.executemany(event_sql, rows)
        conn.execute("COMMIT")
    conn.execute("UPDATE workspace SET event_seq = ? WHERE id = ?", (events, ws))
    note_first_consults(conn)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    return ws, tag_id, counts


def note_first_consults(conn: sqlite3.Connection) -> None:
    """What storing the events through the drain would have left on each contact: its first
    message.received as its first consult, time and question (events.service._note_first_consult).
    Without it every message of the lag phase would be its contact's first and rewrite the contact row."""
    conn.execute(
        "UPDATE contact SET first_consult_at = f.at, consult_question = json_extract(f.properties, '$.text') "
        # the bare column `properties` comes from the row min() picked (SQLite documents this)
        "FROM (SELECT contact_id, min(occurred_at) AS at, properties FROM event "
        "WHERE type = 'message.received' GROUP BY contact_id) AS f WHERE contact.id = f.contact_id"
    )


def build_or_reuse(
    path: Path, contacts: int, events: int, now: dt.datetime, keep: Path | None
) -> tuple[int, int, dict[str, int], str]:
    """build(), or a copy of the raw data `--data` kept from an earlier run of the same size (migrated to
    the current schema). Returns build()'s answer and how the data came."""
    if keep is None:
        return (*build(path, contacts, events, now), "generated")
    keep.mkdir(parents=True, exist_ok=True)
    kept = keep / f"usermodel-{contacts}-{events}.db"
    if kept.exists() and kept.with_suffix(".json").exists():
        return reuse(kept, path)
    ws, tag_id, counts = build(path, contacts, events, now)
    save(path, kept, ws, tag_id, counts, now)
    return ws, tag_id, counts, f"generated, kept in {kept}"


def reuse(kept: Path, path: Path) -> tuple[int, int, dict[str, int], str]:
    """A file kept by --data: copied into the temp directory and migrated to the current schema."""
    meta = json.loads(kept.with_suffix(".json").read_text())
    shutil.copyfile(kept, path)
    migrated_engine(path).dispose()
    return meta["workspace"], meta["tag"], meta["counts"], f"reused from {kept} (generated {meta['generated']})"


def save(path: Path, kept: Path, ws: int, tag_id: int, counts: dict[str, int], now: dt.datetime) -> None:
    """The closed database file, checkpointed, copied to `kept` with its description beside it."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    shutil.copyfile(path, kept)
    about = {"workspace": ws, "tag": tag_id, "counts": counts, "generated": now.isoformat()}
    kept.with_suffix(".json").write_text(json.dumps(about))


def generate(
    db_path: Path, contacts: int, events: int, now: dt.datetime, keep: Path | None
) -> tuple[int, int, dict[str, int]]:
    start = time.perf_counter()
    ws, tag_id, counts, origin = build_or_reuse(db_path, contacts, events, now, keep)
    built = time.perf_counter() - start
    size = f"file {db_path.stat().st_size / 2**30:.2f} GiB"
    if origin.startswith("reused"):
        print(f"  {origin}: {contacts:,} contacts, {events:,} events, copied and migrated in {built:.0f}s; {size}")
    else:
        print(
            f"  generated directly with raw executemany (not the demo simulator: its bulk mode stores events\n"
            f"  through the events service 1,000 at a time): {contacts:,} contacts ({counts['上海']:,} in 上海, "
            f"{counts['tagged']:,} tagged), {events:,} events over {DAYS} days in {built:.0f}s "
            f"({rate(events, built):,.0f} events/s); {size}; {origin}"
        )
    return ws, tag_id, counts


def build_computed(db: Any, ws: int, events: int, build_mode: str) -> None:
    from siyu.usermodel import pipeline

    if build_mode == "auto":
        build_mode = "catch_up" if events <= AUTO_CATCH_UP_MAX else "rebuild"
    section(f"computed properties ({build_mode})")
    if build_mode == "catch_up":
        start = time.perf_counter()
        processed = pipeline.catch_up(db)
        took = time.perf_counter() - start
        print(
            f"  siyu.usermodel.pipeline.catch_up (the live path: steps of up to {pipeline.BATCH_EVENTS:,} events by\n"
            f"  sequence, each with aggregates, scores, tags, segments): {processed:,} events in {took:.1f}s = "
            f"{rate(processed, took):,.0f} events/s"
        )
    else:
        # catch_up is measured on a sample only (at full size it would take about an hour), then the
        # aggregates are rebuilt from the raw events as the repair path does.
        start = time.perf_counter()
        sampled = 0
        while sampled < SAMPLE_EVENTS:
            with db.transaction(durable=False) as session:  # as run_pending does
                done = pipeline.step(session, ws).events
            if done == 0:
                break
            sampled += done
        took = time.perf_counter() - start
        print(
            f"  siyu.usermodel.pipeline.step (catch_up's unit) on the first {sampled:,} events: {took:.1f}s = "
            f"{rate(sampled, took):,.0f} events/s "
            f"(all {events:,} this way: ~{events / rate(sampled, took) / 60:.0f} min)"
        )
        start = time.perf_counter()
        with db.transaction() as session:
            session.connection().exec_driver_sql(
                "UPDATE stream_cursor SET seq = ? WHERE name = ? AND workspace_id = ?",
                (events, pipeline.CURSOR, ws),
            )
            processed = pipeline.rebuild_workspace(session, ws)
        took = time.perf_counter() - start
        print(
            "  then siyu.usermodel.pipeline.rebuild_workspace (computed.rebuild of every event, chunks of 50,000,\n"
            f"  + full scoring, tags, segments), cursor at the last event: {processed:,} events in {took:.1f}s = "
            f"{rate(processed, took):,.0f} events/s"
        )


# --- the ceiling -------------------------------------------------------------------------------------


def load_duckdb(db_path: Path, tmp: Path, ws: int) -> Any:
    """The raw events, contacts and tags of the SQLite file, in an in-memory DuckDB (untimed)."""
    import duckdb

    exports = {
        "contacts": f"SELECT id, region, merged_into_id FROM contact WHERE workspace_id = {ws}",
        "contact_tag": f"SELECT contact_id, tag_id FROM contact_tag WHERE workspace_id = {ws}",
        "events": (
            "SELECT contact_id, type, occurred_at, "
            "CASE WHEN type = 'order.paid' THEN json_extract(properties, '$.amount') END AS amount "
            f"FROM event WHERE workspace_id = {ws}"
        ),
    }
    types = {
        "contacts": "{'id': 'BIGINT', 'region': 'VARCHAR', 'merged_into_id': 'BIGINT'}",
        "contact_tag": "{'contact_id': 'BIGINT', 'tag_id': 'BIGINT'}",
        "events": "{'contact_id': 'BIGINT', 'type': 'VARCHAR', 'occurred_at': 'TIMESTAMP', 'amount': 'DOUBLE'}",
    }
    con = duckdb.connect()
    con.execute("SET threads = 2")
    for table, sql in exports.items():
        csv = tmp / f"{table}.csv"
        if shutil.which("sqlite3"):
            with csv.open("wb") as out:
                subprocess.run(["sqlite3", "-readonly", "-csv", "-header", str(db_path), sql], stdout=out, check=True)
        else:  # pragma: no cover - the CLI is the fast path
            import csv as csvmod

            src = sqlite3.connect(db_path)
            cursor = src.execute(sql)
            with csv.open("w", newline="") as out:
                writer = csvmod.writer(out)
                writer.writerow([d[0] for d in cursor.description])
                while batch := cursor.fetchmany(100_000):
                    writer.writerows(batch)
            src.close()
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM read_csv('{csv}', header = true, columns = {types[table]})")
        csv.unlink()
    return con


def duck_three(con: Any, tag_id: int, since: dt.datetime) -> int:
    row = con.execute(
        """
        SELECT count(*) FROM contacts c
        WHERE c.merged_into_id IS NULL AND c.region = '上海'
          AND c.id IN (SELECT contact_id FROM contact_tag WHERE tag_id = ?)
          AND c.id IN (SELECT contact_id FROM events WHERE type = 'content.viewed' AND occurred_at >= ?
                       GROUP BY contact_id HAVING count(*) >= 2)
        """,
        [tag_id, since],
    ).fetchone()
    return int(row[0])


def duck_broad(con: Any, since: dt.datetime) -> int:
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE members AS
        SELECT c.id FROM contacts c
        WHERE c.merged_into_id IS NULL
          AND c.id IN (SELECT contact_id FROM events WHERE type = 'content.viewed' AND occurred_at >= ?)
        """,
        [since],
    )
    return int(con.execute("SELECT count(*) FROM members").fetchone()[0])


def duck_rfm(con: Any, now: dt.datetime) -> int:
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE rfm AS
        WITH o AS (
            SELECT contact_id, date_diff('day', max(occurred_at), ?::TIMESTAMP) AS recency,
                   count(*) AS frequency, sum(amount) AS monetary
            FROM events WHERE type = 'order.paid' GROUP BY contact_id
        ), q AS (
            SELECT contact_id,
                   ntile(5) OVER (ORDER BY recency DESC) AS r,
                   ntile(5) OVER (ORDER BY frequency) AS f,
                   ntile(5) OVER (ORDER BY monetary) AS m
            FROM o
        )
        SELECT contact_id, r, f, m,
               CASE WHEN r >= 4 AND f >= 4 AND m >= 4 THEN 'loyal'
                    WHEN r >= 3 AND m >= 4 THEN 'high_quality'
                    WHEN r <= 1 THEN 'lost'
                    WHEN f <= 2 THEN 'low_frequency'
                    ELSE 'ordinary' END AS tier
        FROM q
        """,
        [now.replace(tzinfo=None)],
    )
    return int(con.execute("SELECT count(*) FROM rfm").fetchone()[0])


# --- the lag phase -----------------------------------------------------------------------------------


def _lag_batch(rng: random.Random, n: int, contacts: int, at: str) -> tuple[list[dict[str, Any]], str]:
    """LAG_BATCH events: background events of existing contacts (by phone) and one probe, a content.viewed
    by a brand-new phone, so the probe's contact can enter the probe segment only once the pipeline ran."""
    batch: list[dict[str, Any]] = []
    for k in range(LAG_BATCH - 1):
        kind = LAG_TYPES[k % len(LAG_TYPES)] if rng.random() < 0.6 else "content.viewed"
        props: dict[str, Any]
        if kind.startswith("content."):
            props = {"content_id": f"c-{k % 600}", "topic": TOPICS[k % len(TOPICS)]}
        elif kind == "message.received":
            props = {"text": "请问怎么报名", "staff_id": 1 + k % 40}
        elif kind == "order.paid":
            props = {"order_id": f"lag-{n}-{k}", "amount": 199.0}
        else:
            props = {"live_id": "live-1"}
        who = phone(1 + int(rng.random() * contacts))
        batch.append(
            {"id": f"lag-{n}-{k}", "type": kind, "contact": {"phone": who}, "timestamp": at, "properties": props}
        )
    probe = phone(contacts + 1 + n)
    batch.append(
        {
            "id": f"lag-probe-{n}",
            "type": "content.viewed",
            "contact": {"phone": probe},
            "timestamp": at,
            "properties": {"content_id": "lag-probe", "topic": "exam"},
        }
    )
    return batch, probe


def _ingest_loop(db: Any, ws: int, contacts: int, seconds: float, note: Callable[[str, float], None]) -> dict[str, Any]:
    """Receives LAG_RATE events/s as the API does: each batch checked, then kept in the event inbox (one
    commit, in the inbox's own file); `note(probe phone, commit time)` after each commit, when the API
    would answer 202. Times are time.monotonic (shared across processes)."""
    from siyu.events import inbox
    from siyu.events import service as events
    from siyu.kit.time import utcnow

    region = bench_settings().default_phone_region
    with db.transaction(write=False) as session:
        tz = events.workspace_timezone(session, ws)
    rng = random.Random(SEED + 1)
    out: dict[str, Any] = {"ingested": 0, "busy": 0.0, "batches": 0, "errors": []}
    start = time.monotonic()
    n = 0
    try:
        while True:
            wait = start + n * LAG_BATCH / LAG_RATE - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            batch, probe = _lag_batch(rng, n, contacts, utcnow().isoformat())
            t0 = time.monotonic()
            now = utcnow()
            received = inbox.accept(db, ws, events.prepare(batch, tz=tz, region=region, now=now), received_at=now)
            committed = time.monotonic()
            note(probe, committed)
            out["ingested"] += received.event_count
            out["busy"] += committed - t0
            out["batches"] += 1
            n += 1
            if committed - start >= seconds:
                break
    except Exception as exc:  # pragma: no cover - reported
        out["errors"].append(f"ingest: {exc!r}")
    out["wall"] = time.monotonic() - start
    return out


def _ingest_child(db_path: str, ws: int, contacts: int, seconds: float, queue: Any) -> None:
    """The ingester as its own process (as the API server is in production), reporting through `queue`."""
    from siyu.db import Database, create_db_engine

    database = Database(create_db_engine(f"sqlite:///{db_path}", bench_settings()), bench_settings())
    database.start_checkpointer()  # as `siyu serve` does
    out = _ingest_loop(database, ws, contacts, seconds, lambda probe, at: queue.put(("probe", probe, at)))
    database.dispose()
    queue.put(("done", out, 0.0))


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:  # not Linux, or the thread ended
        return None


@dataclass
class CpuSnapshot:
    """CPU seconds (user, kernel) of this process's named threads, of the whole machine (busy, all), and
    the seconds some task waited on I/O (/proc/pressure/io), read from /proc: what the lag run spent, far
    steadier from run to run than the lag itself on a shared machine. Empty where /proc is missing."""

    threads: dict[str, tuple[float, float]]
    machine: tuple[float, float]
    io_waited: float

    @classmethod
    def take(cls) -> CpuSnapshot:
        threads: dict[str, tuple[float, float]] = {}
        for thread in threading.enumerate():
            stat = _read(f"/proc/self/task/{thread.native_id}/stat")
            if stat is not None:
                fields = stat.rsplit(")", 1)[1].split()  # after the name, which may hold spaces
                threads[thread.name] = (int(fields[11]) / _TICKS, int(fields[12]) / _TICKS)
        machine = (0.0, 0.0)
        cpu = _read("/proc/stat")
        if cpu is not None:
            ticks = [int(v) for v in cpu.splitlines()[0].split()[1:]]
            idle = ticks[3] + ticks[4]  # idle, iowait
            machine = ((sum(ticks[:8]) - idle) / _TICKS, sum(ticks[:8]) / _TICKS)
        io_waited = 0.0
        pressure = _read("/proc/pressure/io")
        if pressure is not None:
            io_waited = int(pressure.splitlines()[0].rsplit("total=", 1)[1]) / 1e6
        return cls(threads, machine, io_waited)

    def since(self, before: CpuSnapshot) -> CpuSnapshot:
        threads = {
            name: (user - before.threads[name][0], kernel - before.threads[name][1])
            for name, (user, kernel) in self.threads.items()
            if name in before.threads
        }
        machine = (self.machine[0] - before.machine[0], self.machine[1] - before.machine[1])
        return CpuSnapshot(threads, machine, self.io_waited - before.io_waited)

    def summary(self, wall: float, events: int) -> str:
        if not self.threads:
            return "  CPU: not measured (no /proc)"
        parts = ", ".join(f"{name} {user:.1f} + {kernel:.1f}" for name, (user, kernel) in sorted(self.threads.items()))
        busy, total = self.machine
        user, kernel = self.threads.get("worker", (0.0, 0.0))
        per_event = (user + kernel) / events * 1e6 if events else 0.0
        return (
            f"  CPU over {wall:.1f}s (user + kernel seconds): {parts}; the machine busy {busy:.1f} of {total:.1f}"
            f" core-seconds, some task waiting on I/O {self.io_waited:.1f}s;\n"
            f"  the pipeline thread: {per_event:.0f} µs of CPU an event stored ({user:.1f}s user, {kernel:.1f}s kernel)"
        )


def lag_phase(
    db: Any, db_path: Path, ws: int, contacts: int, segment_id: int, seconds: float, mode: str
) -> dict[str, Any]:
    """Receive LAG_RATE events/s (a child process, or a thread with --lag-ingester thread) while two threads
    work as `siyu worker` does: the inbox's drain (its own thread) and pipeline.run_pending in a loop; a
    poller notes when each probe's contact shows up in the segment."""
    import multiprocessing
    import queue as queue_mod

    from siyu.events import inbox
    from siyu.usermodel import pipeline

    stop_all = threading.Event()
    ingest_done = threading.Event()
    probes: dict[str, float] = {}  # phone -> commit time (time.monotonic)
    lags: list[float] = []
    lock = threading.Lock()
    stats: dict[str, Any] = {"pipeline_work": 0, "pipeline_calls": 0, "pipeline_busy": 0.0, "errors": []}
    phases = PhaseTimer()  # the pipeline steps' seconds per phase
    stats["pipeline_phases"] = phases
    steps: list[tuple[int, float, float]] = []  # (events, seconds, commit seconds) per step
    stats["pipeline_steps"] = steps

    def on_step(result: Any) -> None:
        phases.add(result.timer)
        steps.append((result.events, sum(result.timer.seconds.values()), result.timer.seconds["commit"]))

    def note(probe: str, at: float) -> None:
        with lock:
            probes[probe] = at

    def worker() -> None:
        try:
            while not stop_all.is_set():
                t0 = time.monotonic()
                done = pipeline.run_pending(db, on_step=on_step)
                stats["pipeline_work"] += done
                stats["pipeline_calls"] += 1
                if done == 0:
                    time.sleep(0.02)
                else:
                    stats["pipeline_busy"] += time.monotonic() - t0
        except Exception as exc:  # pragma: no cover - reported
            stats["errors"].append(f"pipeline: {exc!r}")

    def drainer() -> None:
        try:
            while not stop_all.is_set():
                t0 = time.monotonic()
                done = inbox.drain_for(db)
                stats["drained"] = stats.get("drained", 0) + done
                if done == 0:
                    time.sleep(0.05)
                else:
                    stats["drain_busy"] = stats.get("drain_busy", 0.0) + time.monotonic() - t0
        except Exception as exc:  # pragma: no cover - reported
            stats["errors"].append(f"drain: {exc!r}")

    def poller() -> None:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=5000")
        sql = (
            "SELECT i.value FROM identity i JOIN segment_member m ON m.contact_id = i.contact_id "
            "AND m.segment_id = ? WHERE i.workspace_id = ? AND i.type = 'phone' AND i.value IN ({})"
        )
        while not stop_all.is_set():
            with lock:
                phones = list(probes)
            if phones:
                found = conn.execute(sql.format(",".join("?" * len(phones))), [segment_id, ws, *phones]).fetchall()
                seen = time.monotonic()
                with lock:
                    for (value,) in found:
                        lags.append(seen - probes.pop(value))
            time.sleep(0.02)
        conn.close()

    helpers = [threading.Thread(target=t, name=t.__name__, daemon=True) for t in (drainer, worker, poller)]
    for t in helpers:
        t.start()
    cpu_before = CpuSnapshot.take()
    if mode == "process":
        context = multiprocessing.get_context("spawn")
        messages = context.Queue()
        child = context.Process(target=_ingest_child, args=(str(db_path), ws, contacts, seconds, messages))
        child.start()
        while True:
            try:
                kind, value, at = messages.get(timeout=1.0)
            except queue_mod.Empty:
                if not child.is_alive():
                    stats["errors"].append(f"ingester process exited with {child.exitcode}")
                    break
                continue
            if kind == "probe":
                note(value, at)
            else:
                stats.update(value)
                break
        child.join(timeout=30)
    else:
        stats.update(_ingest_loop(db, ws, contacts, seconds, note))
    ingest_done.set()
    drain_start = time.monotonic()
    while time.monotonic() - drain_start < 120:
        with lock:
            if not probes:
                break
        time.sleep(0.05)
    stats["drain"] = time.monotonic() - drain_start
    stats["cpu"] = CpuSnapshot.take().since(cpu_before)
    stop_all.set()
    for t in helpers:
        t.join(timeout=60)
    stats["lags"] = lags
    stats["unseen"] = len(probes)
    return stats


def _static_figures(
    db: Any, duck: Any, ws: int, tag_id: int, rule: dict[str, Any], principal: Any, runs: int, only: frozenset[str]
) -> list[Verdict]:
    """Figures 1-3 (count, membership, RFM) of `only`, each beside its DuckDB ceiling."""
    from siyu.kit.time import utcnow
    from siyu.scoring import service as scoring
    from siyu.segments import service as segments
    from siyu.segments.compiler import count_matching

    verdicts: list[Verdict] = []
    with db.transaction(write=False) as session:
        ctx = segments.context(session, ws)
        since7 = ctx.day_start(ctx.today - dt.timedelta(days=6))
        since30 = ctx.day_start(ctx.today - dt.timedelta(days=29))
    since7_naive = since7.astimezone(dt.UTC).replace(tzinfo=None)
    since30_naive = since30.astimezone(dt.UTC).replace(tzinfo=None)
    if "count" in only:
        # 1. the 3-condition count
        section(f"1. count of {THREE_CONDITIONS}")

        def count() -> int:
            with db.transaction(write=False) as session:
                ctx = segments.context(session, ws)
                node = segments.parse(session, ws, rule)
                return count_matching(session, ctx, node)

        count()  # warm the page cache once, like a server that has been up
        measured, times, matched = median_of(runs, count)
        ceiling, _, duck_matched = median_of(runs, lambda: duck_three(duck, tag_id, since7_naive))
        print(
            f"  runs: {', '.join(f'{t * 1e3:.0f} ms' for t in times)}; {matched:,} contacts (DuckDB {duck_matched:,})"
        )
        print(figure("count_matching (parse + context + count)", measured, TARGET_COUNT_S, ceiling))
        verdicts.append(
            Verdict(
                "usermodel",
                f"3-condition segment count <= {TARGET_COUNT_S:g} s",
                f"{measured:.3f} s",
                measured <= TARGET_COUNT_S,
            )
        )

    if "membership" in only:
        # 2. full membership materialised
        section("2. full membership materialised: create_segment(content.viewed >= 1 in the last 30 days)")
        sizes: list[int] = []
        times = []
        for n in range(max(3, runs - 2)):
            start = time.perf_counter()
            with db.transaction() as session:
                segment = segments.create_segment(session, principal, name=f"broad {n}", rule=BROAD_RULE)
                segment_id, size = segment.id, segment.member_count
            times.append(time.perf_counter() - start)
            sizes.append(size)
            with db.transaction() as session:  # untimed: leave no segment behind for the next run
                conn = session.connection()
                for table in ("segment_member", "segment_size_day"):
                    conn.exec_driver_sql(f"DELETE FROM {table} WHERE segment_id = ?", (segment_id,))
                conn.exec_driver_sql("DELETE FROM segment WHERE id = ?", (segment_id,))
        measured = statistics.median(times)
        ceiling, _, duck_size = median_of(max(3, runs - 2), lambda: duck_broad(duck, since30_naive))
        print(
            f"  runs (with commit): {', '.join(f'{t:.2f} s' for t in times)}; "
            f"{sizes[-1]:,} members (DuckDB {duck_size:,})"
        )
        print(figure("create_segment", measured, TARGET_MATERIALISE_S, ceiling))
        verdicts.append(
            Verdict(
                "usermodel",
                f"full membership materialised <= {TARGET_MATERIALISE_S:g} s",
                f"{measured:.2f} s",
                measured <= TARGET_MATERIALISE_S,
            )
        )

    if "rfm" in only:
        # 3. RFM and tiers for every contact
        section("3. RFM and tiers for all contacts: scoring.recompute(contact_ids=None)")
        times = []
        written = 0
        for _ in range(3):
            start = time.perf_counter()
            with db.transaction() as session:
                written = scoring.recompute(session, ws, contact_ids=None, now=utcnow())
            times.append(time.perf_counter() - start)
        measured = statistics.median(times)
        ceiling, _, duck_rows = median_of(3, lambda: duck_rfm(duck, utcnow()))
        print(
            f"  runs (with commit): {', '.join(f'{t:.2f} s' for t in times)}; {written:,} score rows "
            f"(DuckDB: ntile(5) R/F/M + tier for {duck_rows:,} buyers)"
        )
        print(figure("scoring.recompute", measured, TARGET_SCORING_S, ceiling))
        verdicts.append(
            Verdict(
                "usermodel",
                f"RFM and tiers for all contacts <= {TARGET_SCORING_S:g} s",
                f"{measured:.2f} s",
                measured <= TARGET_SCORING_S,
            )
        )
    return verdicts


# --- the run -----------------------------------------------------------------------------------------


def run(
    contacts: int | None = None,
    events: int | None = None,
    *,
    quick: bool = False,
    build_mode: str = "auto",
    runs: int = 5,
    lag_seconds: float = LAG_SECONDS,
    lag_ingester: str = "process",
    keep: Path | None = None,
    only: frozenset[str] = FIGURES,
) -> list[Verdict]:
    from siyu.auth.principal import Principal
    from siyu.db import Database, create_db_engine
    from siyu.kit.time import utcnow
    from siyu.scoring import service as scoring
    from siyu.segments import service as segments
    from siyu.usermodel import pipeline

    if contacts is None:
        contacts = QUICK_CONTACTS if quick else int(os.environ.get("SIYU_BENCH_CONTACTS", DEFAULT_CONTACTS))
    if events is None:
        events = QUICK_EVENTS if quick else int(os.environ.get("SIYU_BENCH_EVENTS", DEFAULT_EVENTS))
    banner(f"user model: {contacts:,} contacts, {events:,} events ({cpu_note()})")
    verdicts: list[Verdict] = []
    with temp_dir("siyu-bench-usermodel-") as tmp:
        db_path = tmp / "usermodel.db"
        now = utcnow()
        section("data")
        built_copy = keep / f"usermodel-{contacts}-{events}-built.db" if keep is not None else None
        reused = built_copy is not None and built_copy.exists() and built_copy.with_suffix(".json").exists()
        if reused:
            assert built_copy is not None
            start = time.perf_counter()
            ws, tag_id, counts, origin = reuse(built_copy, db_path)
            print(
                f"  {origin}: {contacts:,} contacts, {events:,} events with their computed properties, copied and "
                f"migrated in {time.perf_counter() - start:.0f}s\n  (delete the file to build them again)"
            )
        else:
            ws, tag_id, counts = generate(db_path, contacts, events, now, keep)
        db = Database(create_db_engine(f"sqlite:///{db_path}", bench_settings()), bench_settings())
        if not reused:
            build_computed(db, ws, events, build_mode)
            if built_copy is not None:
                start = time.perf_counter()
                db.dispose()  # reopened on first use
                save(db_path, built_copy, ws, tag_id, counts, now)
                print(f"  kept in {built_copy} for later runs ({time.perf_counter() - start:.0f}s)")
        engine = db.engine
        db.start_checkpointer()  # as `siyu worker` and `siyu serve` do
        with db.transaction(write=False) as session:
            for table in ("contact_event_stat", "contact_event_day", "contact_score"):
                n = session.connection().exec_driver_sql(f"SELECT count(*) FROM {table}").scalar()
                print(f"    {table}: {n:,} rows")

        rule = three_condition_rule(tag_id)
        principal = Principal(workspace_id=ws, scopes=frozenset())
        if only & {"count", "membership", "rfm"}:
            section("loading the ceiling into DuckDB (untimed)")
            start = time.perf_counter()
            duck = load_duckdb(db_path, tmp, ws)
            print(f"  sqlite3 CLI -> CSV -> DuckDB read_csv, {time.perf_counter() - start:.0f}s")
            verdicts += _static_figures(db, duck, ws, tag_id, rule, principal, runs, only)
            duck.close()
        if "lag" not in only:
            return verdicts
        if "rfm" not in only:  # as the hourly full run would have: the intention levels kept, the cut points
            with db.transaction() as session:
                scoring.recompute(session, ws, contact_ids=None, now=utcnow())

        # 4. event-to-membership lag
        section(f"4. event-to-membership lag while ingesting {LAG_RATE:,} events/s for {lag_seconds:.0f}s")
        with db.transaction() as session:
            segments.create_segment(session, principal, name="3 conditions", rule=rule)
            lag_segment = segments.create_segment(session, principal, name="viewed today", rule=LAG_RULE)
            lag_segment_id = lag_segment.id
        where = "its own process (as the API server is)" if lag_ingester == "process" else "a thread of this process"
        print(
            "  saved segments kept live by the pipeline: the 3-condition one and 'content.viewed in the last 1 day'\n"
            f"  (the probe segment). Ingester in {where}: as POST /api/v1/events, each batch of {LAG_BATCH} events\n"
            "  checked and kept in the event inbox (one commit, the 202), one of them a probe (content.viewed by a\n"
            "  new phone). Worker, as `siyu worker`: a thread draining the inbox (events stored) and a thread running\n"
            "  pipeline.run_pending in a loop. Poller: bare sqlite3, every 20 ms, lag = seen in segment - the 202's\n"
            "  commit (so the lag includes the time the batch waited in the inbox)."
        )
        # The worker's Database as `siyu worker` readies it: one writer connection, its cache warmed first,
        # a checkpointer.
        db.dispose()
        worker_settings = bench_settings()
        if "SIYU_SQLITE_WRITER_CACHE_MB" not in os.environ:  # docs/operations: sizing for a million contacts
            worker_settings = worker_settings.model_copy(update={"sqlite_writer_cache_mb": LAG_WRITER_CACHE_MB})
        worker_db = Database(create_db_engine(f"sqlite:///{db_path}", worker_settings), worker_settings)
        start = time.perf_counter()
        warmed = pipeline.start_worker_database(worker_db)
        settle_after_startup()  # as `siyu worker` does before it takes work
        print(
            f"  worker start: {len(warmed)} tables and indexes read into its writer cache in "
            f"{time.perf_counter() - start:.1f}s (SIYU_SQLITE_WRITER_CACHE_MB={worker_settings.sqlite_writer_cache_mb})"
        )
        try:
            result = lag_phase(worker_db, db_path, ws, contacts, lag_segment_id, lag_seconds, lag_ingester)
        finally:
            worker_db.dispose()
        lags = Stats.of(result["lags"])
        achieved = rate(result.get("ingested", 0), result.get("wall", 0.0))
        print(
            f"  ingested {result.get('ingested', 0):,} events in {result.get('wall', 0.0):.1f}s "
            f"= {achieved:,.0f} events/s "
            f"({result.get('batches', 0)} batches, inside ingest {result.get('busy', 0.0):.1f}s);\n"
            f"  pipeline: {result['pipeline_work']:,} events+contacts in {result['pipeline_calls']} run_pending calls, "
            f"busy {result['pipeline_busy']:.1f}s; inbox drain stored {result.get('drained', 0):,} events, "
            f"busy {result.get('drain_busy', 0.0):.1f}s;\n"
            f"  backlog done {result['drain']:.1f}s after ingestion stopped\n"
            f"  pipeline steps by phase: {result['pipeline_phases'].summary()}\n"
            f"  steps (events, seconds, of which commit): "
            + ", ".join(f"{n:,} {t:.1f}s {c:.1f}s" for n, t, c in result["pipeline_steps"])
        )
        print(result["cpu"].summary(result.get("wall", 0.0) + result["drain"], result.get("ingested", 0)))
        if result["errors"]:
            print(f"  ERRORS: {result['errors']}")
        print(f"  probes seen {lags.count}, never seen {result['unseen']}")
        print(
            f"  lag: measured p50 {lags.p50:.2f} s, p95 {lags.p95:.2f} s (max {lags.high:.2f} s), "
            f"target p95 <= {TARGET_LAG_P95_S:g} s, ceiling: none (DuckDB has no incremental path), ratio n/a"
        )
        met = lags.count > 0 and result["unseen"] == 0 and lags.p95 <= TARGET_LAG_P95_S and achieved >= 0.95 * LAG_RATE
        verdicts.append(
            Verdict(
                "usermodel",
                f"event-to-membership lag p95 <= {TARGET_LAG_P95_S:g} s at {LAG_RATE:,} events/s",
                f"p95 {lags.p95:.2f} s at {achieved:,.0f} events/s",
                met,
            )
        )
        engine.dispose()
    return verdicts


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.usermodel", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_CONTACTS:,} contacts, {QUICK_EVENTS:,} events")
    parser.add_argument(
        "--contacts", type=int, default=None, help=f"default {DEFAULT_CONTACTS:,} (or SIYU_BENCH_CONTACTS)"
    )
    parser.add_argument("--events", type=int, default=None, help=f"default {DEFAULT_EVENTS:,} (or SIYU_BENCH_EVENTS)")
    parser.add_argument(
        "--build",
        choices=("auto", "catch_up", "rebuild"),
        default="auto",
        help=f"catch_up: the live path throughout; rebuild: catch_up on a sample, then rebuild_workspace; "
        f"auto: catch_up up to {AUTO_CATCH_UP_MAX:,} events",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(FIGURES),
        help="measure only this figure (repeatable; default: all)",
    )
    parser.add_argument("--lag-ingester", choices=("process", "thread"), default="process")
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (median)")
    parser.add_argument("--lag-seconds", type=float, default=LAG_SECONDS)
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep the generated raw data in DIR and reuse it on later runs of the same size",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    verdicts = run(
        args.contacts,
        args.events,
        quick=args.quick,
        build_mode=args.build,
        runs=args.runs,
        lag_seconds=args.lag_seconds,
        lag_ingester=args.lag_ingester,
        keep=args.data,
        only=frozenset(args.only or FIGURES),
    )
    print_verdicts(verdicts, "targets (medians and ceilings measured in this run)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
