"""Event ingestion through the real HTTP API into SQLite, next to a bare `executemany` of the same rows.

    python -m bench.ingest            # 100 measured batches of 1,000 events, 20,000 people
    python -m bench.ingest --quick    # a smoke run

Targets (from the issue): >= 50,000 events/s through the API, and >= 0.5 of the bare-SQLite ceiling.
The server runs as its own process (`siyu serve`, uvicorn) with the default SIYU_SQLITE_SYNCHRONOUS=FULL,
so every 2xx is a durable commit; the ceiling uses the same schema and PRAGMAs.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import pstats
import random
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson

from bench.common import (
    Stats,
    Verdict,
    banner,
    bare_connect,
    bench_settings,
    cpu_note,
    create_workspace_and_key,
    migrated_engine,
    print_verdicts,
    profile_text,
    rate,
    ratio,
    running_server,
    section,
    temp_dir,
)
from siyu.config import Settings

TARGET_EVENTS_PER_S = 50_000
TARGET_CEILING_RATIO = 0.5
SHANGHAI = ZoneInfo("Asia/Shanghai")
PHONE_PREFIXES = ("138", "139", "137", "136", "135", "150", "151", "152", "158", "159", "186", "187", "188", "189")
EVENT_TYPES = ("content.viewed", "message.received", "order.paid", "group.joined")
EVENT_WEIGHTS = (50, 25, 10, 15)
CHANNELS = ("wecom", "group", "moments", "h5")
QUESTIONS = ("这个多少钱?", "有优惠吗", "什么时候发货", "适合敏感肌吗?", "怎么使用", "还有库存吗")


@dataclass(frozen=True)
class Config:
    batch_size: int = 1000
    people: int = 20_000
    warmup_batches: int = 4
    warmup_people: int = 1_000
    first_sight_batches: int = 25
    steady_batches: int = 75
    profile_batches: int = 20
    seed: int = 20261123

    @property
    def measured_batches(self) -> int:
        return self.first_sight_batches + self.steady_batches


FULL = Config()
QUICK = Config(people=4_000, warmup_batches=2, warmup_people=500, first_sight_batches=5, steady_batches=10)


# --- the event stream --------------------------------------------------------------------------------


def make_people(rng: random.Random, count: int, used_phones: set[str]) -> list[dict[str, str]]:
    """Contact references as a sender names them: phone only (60%), WeCom id only (30%), both (10%)."""
    people: list[dict[str, str]] = []
    for _ in range(count):
        while True:
            phone = rng.choice(PHONE_PREFIXES) + f"{rng.randrange(10**8):08d}"
            if phone not in used_phones:
                used_phones.add(phone)
                break
        wecom = f"wm{rng.getrandbits(96):024x}"
        roll = rng.random()
        # Senders write numbers in different ways; siyu normalises them to E.164.
        written = phone if rng.random() < 0.85 else f"+86 {phone[:3]} {phone[3:7]} {phone[7:]}"
        if roll < 0.6:
            people.append({"phone": written})
        elif roll < 0.9:
            people.append({"wecom_external_userid": wecom})
        else:
            people.append({"phone": written, "wecom_external_userid": wecom})
    return people


def make_event(rng: random.Random, number: int, person: dict[str, str], now: dt.datetime) -> dict[str, Any]:
    kind = rng.choices(EVENT_TYPES, EVENT_WEIGHTS)[0]
    occurred = (now - dt.timedelta(seconds=rng.randrange(30 * 86400))).astimezone(SHANGHAI)
    properties: dict[str, Any]
    if kind == "content.viewed":
        properties = {"content_id": f"article-{rng.randrange(500)}", "channel": rng.choice(CHANNELS)}
    elif kind == "message.received":
        properties = {"text": rng.choice(QUESTIONS), "staff_id": rng.randrange(1, 40)}
    elif kind == "order.paid":
        properties = {
            "order_id": f"SO{number:010d}",
            "amount": round(rng.uniform(9.9, 2999), 2),
            "items": [{"sku": f"SKU-{rng.randrange(300)}", "qty": rng.randrange(1, 4)}],
        }
    else:
        group = rng.randrange(200)
        properties = {"group_id": f"wrOgQhDgAA{group:06d}", "group_name": f"福利群{group}"}
    return {
        "id": f"evt-{number:09d}",
        "type": kind,
        "contact": person,
        "timestamp": occurred.isoformat(timespec="seconds"),
        "properties": properties,
    }


@dataclass
class Stream:
    """Pre-encoded request bodies, by phase."""

    warmup: list[bytes] = field(default_factory=list)
    first_sight: list[bytes] = field(default_factory=list)
    steady: list[bytes] = field(default_factory=list)
    events: int = 0


def make_stream(config: Config) -> Stream:
    rng = random.Random(config.seed)
    now = dt.datetime.now(dt.UTC)
    phones: set[str] = set()
    stream = Stream()
    number = 0

    def batch(pick: Any) -> bytes:
        nonlocal number
        events = []
        for _ in range(config.batch_size):
            number += 1
            events.append(make_event(rng, number, pick(), now))
        return orjson.dumps({"events": events})

    # Warm-up people are their own pool, so the measured first-sight batches still meet new people.
    warm = make_people(rng, config.warmup_people, phones)
    stream.warmup = [batch(lambda: rng.choice(warm)) for _ in range(config.warmup_batches)]

    people = make_people(rng, config.people, phones)
    unseen = list(people)
    seen: list[dict[str, str]] = []
    p_new = min(1.0, config.people / (config.first_sight_batches * config.batch_size))

    def first_sight_pick() -> dict[str, str]:
        if unseen and (not seen or rng.random() < p_new):
            person = unseen.pop()
            seen.append(person)
            return person
        return rng.choice(seen)

    stream.first_sight = [batch(first_sight_pick) for _ in range(config.first_sight_batches)]
    known = seen or people
    stream.steady = [batch(lambda: rng.choice(known)) for _ in range(config.steady_batches)]
    stream.events = config.measured_batches * config.batch_size
    return stream


# --- through the API ---------------------------------------------------------------------------------


@dataclass
class BatchResult:
    phase: str
    seconds: float
    accepted: int
    contacts_created: int
    first_seq: int | None
    ceiling_seconds: float = 0.0


def post_batches(client: httpx.Client, bodies: list[bytes], phase: str, ceiling: Ceiling) -> list[BatchResult]:
    """Each batch through the API, then (untimed copy, timed insert) the same rows into the ceiling.

    Interleaving batch by batch means the API and its ceiling meet the same machine noise.
    """
    results = []
    for body in bodies:
        start = time.perf_counter()
        response = client.post("/api/v1/events", content=body)
        seconds = time.perf_counter() - start
        if response.status_code != 200:
            raise RuntimeError(f"POST /api/v1/events answered {response.status_code}: {response.text[:500]}")
        data = response.json()
        result = BatchResult(phase, seconds, data["accepted"], data["contacts_created"], data["first_seq"])
        if data["first_seq"] is not None:
            result.ceiling_seconds = ceiling.insert_batch(data["first_seq"], data["last_seq"])
        results.append(result)
    return results


def phase_line(label: str, results: list[BatchResult]) -> str:
    if not results:
        return f"  {label:<12} (none)"
    events = sum(r.accepted for r in results)
    api = Stats.of([r.seconds for r in results])
    bare = Stats.of([r.ceiling_seconds for r in results])
    pair = Stats.of([ratio(r.ceiling_seconds, r.seconds) for r in results])
    created = sum(r.contacts_created for r in results) / len(results)
    api_rate = rate(events, sum(r.seconds for r in results))
    bare_rate = rate(events, sum(r.ceiling_seconds for r in results))
    return (
        f"  {label:<12} {len(results):>4} batches  "
        f"{api_rate:>8,.0f} ev/s p50 {api.p50 * 1e3:6.1f} ms p95 {api.p95 * 1e3:6.1f} ms | "
        f"{bare_rate:>8,.0f} ev/s p50 {bare.p50 * 1e3:5.1f} ms p95 {bare.p95 * 1e3:5.1f} ms | "
        f"{ratio(api_rate, bare_rate):.3f} (per-batch median {pair.p50:.3f}); "
        f"{created:,.0f} new contacts/batch"
    )


# --- the ceiling: the same rows, bare sqlite3 --------------------------------------------------------

EVENT_COLUMNS = "workspace_id, seq, event_id, type, contact_id, occurred_at, received_at, properties"
INSERT_EVENTS = f"INSERT INTO event ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"


class Ceiling:
    """A second fresh migrated database that receives, with bare sqlite3, the rows the API just stored.

    Per batch: the event rows are read back from the API's database and any new contact rows copied (so
    the foreign keys hold, as they must for the API), untimed; then one `executemany` of the events and
    COMMIT, timed. Same schema, same PRAGMAs (WAL, synchronous, busy_timeout, foreign_keys).
    """

    def __init__(self, api_db: Path, path: Path) -> None:
        migrated_engine(path).dispose()
        self.source = sqlite3.connect(api_db, isolation_level=None)
        self.conn = bare_connect(path)
        self.copied_contacts = 0
        self.stored = 0
        self.conn.execute("BEGIN IMMEDIATE")
        for workspace in self.source.execute("SELECT * FROM workspace").fetchall():
            marks = ", ".join("?" * len(workspace))
            self.conn.execute(f"INSERT INTO workspace VALUES ({marks})", workspace)
        self.conn.execute("COMMIT")

    def _copy_new_contacts(self) -> None:
        cursor = self.source.execute("SELECT * FROM contact WHERE id > ? ORDER BY id", (self.copied_contacts,))
        rows = cursor.fetchall()
        if rows:
            columns = [c[0] for c in cursor.description]
            marks = ", ".join("?" * len(columns))
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.executemany(f"INSERT INTO contact ({', '.join(columns)}) VALUES ({marks})", rows)
            self.conn.execute("COMMIT")
            self.copied_contacts = rows[-1][columns.index("id")]

    def insert_batch(self, first_seq: int, last_seq: int) -> float:
        self._copy_new_contacts()
        rows = self.source.execute(
            f"SELECT {EVENT_COLUMNS} FROM event WHERE seq BETWEEN ? AND ? ORDER BY seq", (first_seq, last_seq)
        ).fetchall()
        start = time.perf_counter()
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.executemany(INSERT_EVENTS, rows)
        self.conn.execute("COMMIT")
        seconds = time.perf_counter() - start
        self.stored += len(rows)
        return seconds

    def close(self) -> None:
        count = self.conn.execute("SELECT count(*) FROM event").fetchone()[0]
        self.source.close()
        self.conn.close()
        if count != self.stored:
            raise RuntimeError(f"ceiling holds {count} events, expected {self.stored}")


# --- in process: where the server's time goes ----------------------------------------------------------


@dataclass
class StageTimes:
    parse: list[float] = field(default_factory=list)
    ingest: list[float] = field(default_factory=list)
    commit: list[float] = field(default_factory=list)

    def total(self) -> list[float]:
        return [a + b + c for a, b, c in zip(self.parse, self.ingest, self.commit, strict=True)]


def in_process(
    path: Path, bodies: Sequence[bytes], profiled: Sequence[bytes] = (), profiler: cProfile.Profile | None = None
) -> StageTimes:
    """parse_batch + ingest + commit, as the endpoint runs them, without HTTP, on a fresh database.

    `bodies` are timed stage by stage; then `profiled` run under the profiler (their times are not kept).
    """
    from siyu.db import Database
    from siyu.events import service

    settings = bench_settings()
    engine = migrated_engine(path, settings)
    workspace_id, _ = create_workspace_and_key(engine)
    database = Database(engine)
    times = StageTimes()
    try:
        for body in bodies:
            t0 = time.perf_counter()
            batch = service.parse_batch(body, max_events=settings.events_max_batch)
            t1 = time.perf_counter()
            session = database.session()
            try:
                service.ingest(session, workspace_id, batch, region=settings.default_phone_region)
                t2 = time.perf_counter()
                session.commit()
                t3 = time.perf_counter()
            finally:
                session.close()
            times.parse.append(t1 - t0)
            times.ingest.append(t2 - t1)
            times.commit.append(t3 - t2)
        for body in profiled:
            assert profiler is not None
            profiler.enable()
            batch = service.parse_batch(body, max_events=settings.events_max_batch)
            with database.transaction() as session:
                service.ingest(session, workspace_id, batch, region=settings.default_phone_region)
            profiler.disable()
    finally:
        database.dispose()
    return times


def stage_lines(label: str, times: StageTimes, batch_size: int) -> list[str]:
    total = Stats.of(times.total())
    out = [
        f"  {label}: {len(times.parse)} batches, {rate(batch_size, total.p50):,.0f} events/s at the median "
        f"(p50 {total.p50 * 1e3:.1f} ms per batch)"
    ]
    for name, values in (("parse_batch", times.parse), ("ingest", times.ingest), ("commit", times.commit)):
        stats = Stats.of(values)
        out.append(
            f"    {name:<12} p50 {stats.p50 * 1e3:7.2f} ms  p95 {stats.p95 * 1e3:7.2f} ms  "
            f"({ratio(stats.p50, total.p50):5.1%} of the median batch)"
        )
    return out


# --- the benchmark -----------------------------------------------------------------------------------


def run(quick: bool = False, profile: bool = True) -> list[Verdict]:
    config = QUICK if quick else FULL
    settings = bench_settings()
    banner("bench.ingest: POST /api/v1/events (HTTP, uvicorn, SQLite) vs bare sqlite3 executemany")
    print(
        f"{cpu_note()}; SIYU_SQLITE_SYNCHRONOUS={settings.sqlite_synchronous}, "
        f"busy_timeout={settings.sqlite_busy_timeout_ms} ms, WAL"
    )
    print(
        f"{config.warmup_batches} warm-up + {config.first_sight_batches} first-sight + {config.steady_batches} "
        f"steady batches of {config.batch_size:,} events; {config.people:,} people "
        "(60% phone, 30% WeCom id, 10% both)"
    )

    start = time.perf_counter()
    stream = make_stream(config)
    print(
        f"generated and encoded the stream in {time.perf_counter() - start:.1f}s "
        f"({sum(map(len, stream.first_sight + stream.steady)) / 1e6:.1f} MB of request bodies)"
    )

    with temp_dir() as tmp:
        api_db = tmp / "api.db"
        engine = migrated_engine(api_db, settings)
        _, key = create_workspace_and_key(engine)
        engine.dispose()

        section("HTTP API (one client, sequential, keep-alive) and, after each batch, its ceiling")
        print(
            "  ceiling: the same rows the API stored, into a fresh migrated database with bare sqlite3:\n"
            "  BEGIN IMMEDIATE; executemany(INSERT INTO event ...); COMMIT -- one per batch, same PRAGMAs"
        )
        ceiling = Ceiling(api_db, tmp / "ceiling.db")
        try:
            with (
                running_server(api_db, tmp) as server,
                httpx.Client(
                    base_url=server.base_url,
                    headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
                    timeout=120.0,
                ) as client,
            ):
                post_batches(client, stream.warmup, "warm-up", ceiling)
                first = post_batches(client, stream.first_sight, "first-sight", ceiling)
                steady = post_batches(client, stream.steady, "steady", ceiling)
        finally:
            ceiling.close()
        measured = first + steady
        accepted = sum(r.accepted for r in measured)
        if accepted != stream.events:
            raise RuntimeError(f"the API accepted {accepted} of {stream.events} events")
        api_seconds = sum(r.seconds for r in measured)
        ceiling_seconds = sum(r.ceiling_seconds for r in measured)
        api_rate = rate(accepted, api_seconds)
        ceiling_rate = rate(accepted, ceiling_seconds)
        overall_ratio = ratio(api_rate, ceiling_rate)
        print("\n  per phase: API events/s, per-batch p50/p95 | ceiling events/s, p50/p95 | ratio API/ceiling")
        for label, results in (("first-sight", first), ("steady", steady), ("all", measured)):
            print(phase_line(label, results))
        print(
            f"\n  overall: API {api_rate:,.0f} events/s ({accepted:,} events in {api_seconds:.2f}s of requests), "
            f"ceiling {ceiling_rate:,.0f} events/s: ratio {overall_ratio:.3f}"
        )

        concurrent_rate = concurrent_phase(
            stream, key_db=tmp / "concurrent.db", tmp=tmp, settings=settings, batch_size=config.batch_size
        )
        steady_ceiling = rate(sum(r.accepted for r in steady), sum(r.ceiling_seconds for r in steady))
        concurrent_ratio = ratio(concurrent_rate, steady_ceiling)
        print(
            f"  steady batches: {concurrent_rate:,.0f} events/s through the API, ceiling {steady_ceiling:,.0f} "
            f"events/s: ratio {concurrent_ratio:.3f}"
        )

        if profile:
            section("in process: parse_batch + ingest + commit, same batches, no HTTP (fresh database)")
            count = min(config.profile_batches, len(stream.steady) // 2)
            profiler = cProfile.Profile()
            staged = in_process(
                tmp / "inproc.db",
                stream.first_sight + stream.steady[:count],
                profiled=stream.steady[count : 2 * count],
                profiler=profiler,
            )
            head = len(stream.first_sight)
            first_times = StageTimes(staged.parse[:head], staged.ingest[:head], staged.commit[:head])
            steady_times = StageTimes(staged.parse[head:], staged.ingest[head:], staged.commit[head:])
            for line in stage_lines("first-sight", first_times, config.batch_size):
                print(line)
            for line in stage_lines("steady", steady_times, config.batch_size):
                print(line)
            for label, api_results, times in (("first-sight", first, first_times), ("steady", steady, steady_times)):
                api_p50 = Stats.of([r.seconds for r in api_results]).p50
                service_p50 = Stats.of(times.total()).p50
                print(
                    f"  {label}: API p50 {api_p50 * 1e3:.1f} ms per batch vs in process {service_p50 * 1e3:.1f} ms: "
                    f"difference {(api_p50 - service_p50) * 1e3:+.0f} ms "
                    "(HTTP + uvicorn + FastAPI; measured at different moments, so indicative only)"
                )

            section(f"cProfile of {count} further steady batches in process (parse_batch + ingest + commit)")
            stats = pstats.Stats(profiler)
            print("top 15 by cumulative time:")
            print(profile_text(stats, "cumulative", 15))
            print("\ntop 15 by own time (tottime):")
            print(profile_text(stats, "tottime", 15))

    verdicts = [
        Verdict(
            "ingest",
            f">= {TARGET_EVENTS_PER_S:,} events/s through the API",
            f"{api_rate:,.0f} events/s",
            api_rate >= TARGET_EVENTS_PER_S,
        ),
        Verdict(
            "ingest",
            f">= {TARGET_CEILING_RATIO} of the bare-SQLite ceiling ({ceiling_rate:,.0f} events/s)",
            f"{overall_ratio:.3f}",
            overall_ratio >= TARGET_CEILING_RATIO,
        ),
    ]
    print_verdicts(verdicts, "bench.ingest targets")
    return verdicts


CONCURRENT_CLIENTS = 2
CONCURRENT_WORKERS = 2


def concurrent_phase(stream: Stream, *, key_db: Path, tmp: Path, settings: Settings, batch_size: int) -> float:
    """Integrators send in parallel: the same steady batches from several clients to several server
    processes. Checking a batch needs no lock, so processes overlap; only storing is one at a time."""
    section(f"{CONCURRENT_CLIENTS} clients, `siyu serve --workers {CONCURRENT_WORKERS}` (fresh database, same stream)")
    engine = migrated_engine(key_db, settings)
    _, key = create_workspace_and_key(engine)
    engine.dispose()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    with running_server(key_db, tmp, workers=CONCURRENT_WORKERS) as server:
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=120.0) as client:
            for body in stream.warmup + stream.first_sight:
                client.post("/api/v1/events", content=body).raise_for_status()
        queue = list(stream.steady)
        lock = threading.Lock()
        accepted = 0

        def send() -> None:
            nonlocal accepted
            with httpx.Client(base_url=server.base_url, headers=headers, timeout=120.0) as own:
                while True:
                    with lock:
                        if not queue:
                            return
                        body = queue.pop()
                    response = own.post("/api/v1/events", content=body)
                    response.raise_for_status()
                    with lock:
                        accepted += int(response.json()["accepted"])

        started = time.perf_counter()
        threads = [threading.Thread(target=send) for _ in range(CONCURRENT_CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    if accepted != len(stream.steady) * batch_size:
        raise RuntimeError(f"concurrent phase accepted {accepted} events")
    return rate(accepted, elapsed)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run with fewer, smaller batches")
    parser.add_argument("--no-profile", action="store_true", help="skip the in-process timing and profile")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run(quick=args.quick, profile=not args.no_profile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
