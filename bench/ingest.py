"""Event ingestion through the real HTTP API into SQLite, next to a bare `executemany` of the same rows.

    python -m bench.ingest            # 100 measured batches of 1,000 events, 20,000 people
    python -m bench.ingest --quick    # a smoke run

Targets (from the issue): >= 50,000 events/s through the API, and >= 0.5 of the bare-SQLite ceiling.
The server runs as its own process (`siyu serve`, uvicorn) with the default SIYU_SQLITE_SYNCHRONOUS=FULL,
so every 2xx is a durable commit; the ceiling uses the same schema and PRAGMAs.

The API keeps a checked batch in the inbox and answers 202; storing it as events (people resolved,
numbered) is the drain's work. So the run also measures the drain, per batch beside the ceiling, and,
with `siyu serve --with-worker` (the product's one-machine setup), how fast events are stored while
senders keep sending: a sender rate the drain could not follow would only fill the inbox.
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
from siyu.db import Database
from siyu.events import inbox
from siyu.kit.heap import settle_after_startup

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
    events: int = 0  # in the measured (first-sight and steady) batches
    batch_size: int = 0


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
    stream.batch_size = config.batch_size
    return stream


# --- through the API ---------------------------------------------------------------------------------


@dataclass
class BatchResult:
    phase: str
    seconds: float
    accepted: int
    contacts_created: int
    first_seq: int | None
    drain_seconds: float = 0.0
    ceiling_seconds: float = 0.0


def post_batches(
    client: httpx.Client, bodies: list[bytes], phase: str, ceiling: Ceiling, database: Database
) -> list[BatchResult]:
    """Each batch through the API (timed), then stored by the drain in this process (timed apart), then
    the same rows into the ceiling (untimed copy, timed insert).

    Interleaving batch by batch means the API, the drain and the ceiling meet the same machine noise.
    """
    results = []
    for body in bodies:
        start = time.perf_counter()
        response = client.post("/api/v1/events", content=body)
        seconds = time.perf_counter() - start
        if response.status_code != 202:
            raise RuntimeError(f"POST /api/v1/events answered {response.status_code}: {response.text[:500]}")
        start = time.perf_counter()
        inbox.drain(database)
        drain_seconds = time.perf_counter() - start
        outcome = ceiling.outcome(response.json()["batch_id"])
        if outcome["status"] != "stored":
            raise RuntimeError(f"batch not stored: {outcome}")
        result = BatchResult(
            phase, seconds, outcome["accepted"], outcome["contacts_created"], outcome["first_seq"], drain_seconds
        )
        if outcome["first_seq"] is not None:
            result.ceiling_seconds = ceiling.insert_batch(outcome["first_seq"], outcome["last_seq"])
        results.append(result)
    return results


def phase_line(label: str, results: list[BatchResult]) -> str:
    if not results:
        return f"  {label:<12} (none)"
    events = sum(r.accepted for r in results)
    api = Stats.of([r.seconds for r in results])
    drain = Stats.of([r.drain_seconds for r in results])
    bare = Stats.of([r.ceiling_seconds for r in results])
    created = sum(r.contacts_created for r in results) / len(results)
    api_rate = rate(events, sum(r.seconds for r in results))
    drain_rate = rate(events, sum(r.drain_seconds for r in results))
    bare_rate = rate(events, sum(r.ceiling_seconds for r in results))
    return (
        f"  {label:<12} {len(results):>4} batches  "
        f"{api_rate:>8,.0f} ev/s p50 {api.p50 * 1e3:5.1f} ms p95 {api.p95 * 1e3:5.1f} ms | "
        f"{drain_rate:>8,.0f} ev/s p50 {drain.p50 * 1e3:5.1f} ms | "
        f"{bare_rate:>8,.0f} ev/s p50 {bare.p50 * 1e3:5.1f} ms p95 {bare.p95 * 1e3:5.1f} ms | "
        f"{ratio(api_rate, bare_rate):.3f}; {created:,.0f} new contacts/batch"
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

    def outcome(self, batch_id: str) -> dict[str, Any]:
        cursor = self.source.execute(
            "SELECT status, accepted, contacts_created, first_seq, last_seq, error FROM ingest_batch "
            "WHERE batch_id = ?",
            (batch_id,),
        )
        row = cursor.fetchone()
        if row is None:
            raise RuntimeError(f"batch {batch_id} has no outcome after the drain")
        return dict(zip([c[0] for c in cursor.description], row, strict=True))

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
    prepare: list[float] = field(default_factory=list)
    accept: list[float] = field(default_factory=list)

    def total(self) -> list[float]:
        return [a + b + c for a, b, c in zip(self.parse, self.prepare, self.accept, strict=True)]

    def part(self, start: int, stop: int | None = None) -> StageTimes:
        return StageTimes(self.parse[start:stop], self.prepare[start:stop], self.accept[start:stop])


def receive(database: Database, workspace_id: int, body: bytes, settings: Settings) -> None:
    """What POST /api/v1/events does with a body, without HTTP: parse, check, keep in the inbox."""
    from siyu.events import service

    batch = service.parse_batch(body, max_events=settings.events_max_batch)
    now = dt.datetime.now(dt.UTC)
    items = service.prepare(batch, tz=SHANGHAI, region=settings.default_phone_region, now=now)
    inbox.accept(database, workspace_id, items, received_at=now)


def in_process(
    path: Path,
    bodies: Sequence[bytes],
    profiled: Sequence[bytes] = (),
    api_profile: cProfile.Profile | None = None,
    drain_profile: cProfile.Profile | None = None,
) -> StageTimes:
    """parse_batch + prepare + accept (the inbox commit), as the endpoint runs them, without HTTP, on a
    fresh database; each batch drained after (untimed). Then `profiled` run under the profilers: the
    API's part in one, the drain's (one batch per transaction) in the other."""
    from siyu.events import service

    settings = bench_settings()
    engine = migrated_engine(path, settings)
    workspace_id, _ = create_workspace_and_key(engine)
    database = Database(engine, settings)
    tz = SHANGHAI
    times = StageTimes()
    try:
        for body in bodies:
            t0 = time.perf_counter()
            batch = service.parse_batch(body, max_events=settings.events_max_batch)
            t1 = time.perf_counter()
            now = dt.datetime.now(dt.UTC)
            items = service.prepare(batch, tz=tz, region=settings.default_phone_region, now=now)
            t2 = time.perf_counter()
            inbox.accept(database, workspace_id, items, received_at=now)
            t3 = time.perf_counter()
            times.parse.append(t1 - t0)
            times.prepare.append(t2 - t1)
            times.accept.append(t3 - t2)
            inbox.drain(database)
        for body in profiled:
            assert api_profile is not None and drain_profile is not None
            api_profile.runcall(receive, database, workspace_id, body, settings)
            drain_profile.runcall(inbox.drain, database)
    finally:
        database.dispose()
    return times


def stage_lines(label: str, times: StageTimes, batch_size: int) -> list[str]:
    total = Stats.of(times.total())
    out = [
        f"  {label}: {len(times.parse)} batches, {rate(batch_size, total.p50):,.0f} events/s at the median "
        f"(p50 {total.p50 * 1e3:.1f} ms per batch)"
    ]
    for name, values in (("parse_batch", times.parse), ("prepare", times.prepare), ("accept", times.accept)):
        stats = Stats.of(values)
        out.append(
            f"    {name:<12} p50 {stats.p50 * 1e3:7.2f} ms  p95 {stats.p95 * 1e3:7.2f} ms  "
            f"({ratio(stats.p50, total.p50):5.1%} of the median batch)"
        )
    return out


# --- senders and the worker at once ------------------------------------------------------------------


@dataclass
class EndToEnd:
    label: str
    events: int
    sending_seconds: float  # first request sent -> last answer
    stored_seconds: float  # first request sent -> last event stored
    deepest_inbox: int  # batches waiting, at most, seen while sending

    @property
    def sent_rate(self) -> float:
        return rate(self.events, self.sending_seconds)

    @property
    def stored_rate(self) -> float:
        return rate(self.events, self.stored_seconds)

    def line(self, ceiling_rate: float) -> str:
        return (
            f"  {self.label}: answered {self.sent_rate:,.0f} events/s; all stored after {self.stored_seconds:.2f}s = "
            f"{self.stored_rate:,.0f} events/s stored ({ratio(self.stored_rate, ceiling_rate):.3f} of the ceiling); "
            f"inbox at most {self.deepest_inbox} batches deep"
        )


def end_to_end(
    stream: Stream, *, label: str, db_path: Path, tmp: Path, settings: Settings, clients: int, server_workers: int
) -> EndToEnd:
    """`siyu serve --with-worker`: the senders post the steady batches while the worker stores them; the
    clock stops when the last event is stored. Warm-up and first-sight batches go first, untimed."""
    engine = migrated_engine(db_path, settings)
    _, key = create_workspace_and_key(engine)
    engine.dispose()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    watch = sqlite3.connect(db_path, isolation_level=None)
    inbox_watch = sqlite3.connect(db_path.with_name(f"{db_path.stem}-inbox{db_path.suffix}"), isolation_level=None)

    def outcomes() -> int:
        return int(watch.execute("SELECT count(*) FROM ingest_batch").fetchone()[0])

    def wait_stored(count: int, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while outcomes() < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {outcomes()} of {count} batches stored after {timeout:.0f}s")
            time.sleep(0.005)

    try:
        with running_server(db_path, tmp, workers=server_workers, with_worker=True) as server:
            with httpx.Client(base_url=server.base_url, headers=headers, timeout=120.0) as client:
                for body in stream.warmup + stream.first_sight:
                    client.post("/api/v1/events", content=body).raise_for_status()
            before = len(stream.warmup) + len(stream.first_sight)
            wait_stored(before)
            queue = list(reversed(stream.steady))
            lock = threading.Lock()
            deepest = 0

            def send() -> None:
                nonlocal deepest
                with httpx.Client(base_url=server.base_url, headers=headers, timeout=120.0) as own:
                    while True:
                        with lock:
                            if not queue:
                                return
                            body = queue.pop()
                        own.post("/api/v1/events", content=body).raise_for_status()

            started = time.perf_counter()
            threads = [threading.Thread(target=send) for _ in range(clients)]
            for thread in threads:
                thread.start()
            while any(thread.is_alive() for thread in threads):
                depth = int(inbox_watch.execute("SELECT count(*) FROM event_inbox").fetchone()[0])
                deepest = max(deepest, depth)
                time.sleep(0.02)
            for thread in threads:
                thread.join()
            sent = time.perf_counter() - started
            wait_stored(before + len(stream.steady))
            stored = time.perf_counter() - started
            events = int(watch.execute("SELECT count(*) FROM event").fetchone()[0])
    finally:
        watch.close()
        inbox_watch.close()
    expected = (len(stream.warmup) + len(stream.first_sight) + len(stream.steady)) * stream.batch_size
    if events != expected:
        raise RuntimeError(f"{events} events stored, expected {expected}")
    return EndToEnd(label, len(stream.steady) * stream.batch_size, sent, stored, deepest)


def drain_capacity(stream: Stream, db_path: Path, settings: Settings) -> tuple[int, float]:
    """The steady batches received while no worker runs, then stored by one drain: (events, seconds)."""
    engine = migrated_engine(db_path, settings)
    workspace_id, _ = create_workspace_and_key(engine)
    database = Database(engine, settings)
    try:
        for body in stream.warmup + stream.first_sight:
            receive(database, workspace_id, body, settings)
        inbox.drain(database)
        for body in stream.steady:
            receive(database, workspace_id, body, settings)
        start = time.perf_counter()
        events = inbox.drain(database)
        return events, time.perf_counter() - start
    finally:
        database.dispose()


# --- the benchmark -----------------------------------------------------------------------------------


def run(quick: bool = False, profile: bool = True) -> list[Verdict]:
    config = QUICK if quick else FULL
    settle_after_startup()  # as `siyu worker` does: this process drains in phase one
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
        database = Database(engine, settings)

        section("HTTP API (one client, sequential, keep-alive); after each batch the drain, then the ceiling")
        print(
            "  API: POST answered 202 once the checked batch is committed in the inbox (SIYU_SQLITE_SYNCHRONOUS)\n"
            "  drain: that batch stored as events (people resolved, numbered, its outcome) and committed\n"
            "  ceiling: the same event rows into a fresh migrated database with bare sqlite3:\n"
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
                post_batches(client, stream.warmup, "warm-up", ceiling, database)
                first = post_batches(client, stream.first_sight, "first-sight", ceiling, database)
                steady = post_batches(client, stream.steady, "steady", ceiling, database)
        finally:
            ceiling.close()
            database.dispose()
        measured = first + steady
        accepted = sum(r.accepted for r in measured)
        if accepted != stream.events:
            raise RuntimeError(f"the API accepted {accepted} of {stream.events} events")
        api_seconds = sum(r.seconds for r in measured)
        drain_seconds = sum(r.drain_seconds for r in measured)
        ceiling_seconds = sum(r.ceiling_seconds for r in measured)
        api_rate = rate(accepted, api_seconds)
        ceiling_rate = rate(accepted, ceiling_seconds)
        overall_ratio = ratio(api_rate, ceiling_rate)
        print(
            "\n  per phase: API events/s, per-batch p50/p95 | drain events/s, p50 (one batch per transaction) | "
            "ceiling events/s, p50/p95 | ratio API/ceiling"
        )
        for label, results in (("first-sight", first), ("steady", steady), ("all", measured)):
            print(phase_line(label, results))
        print(
            f"\n  overall: API {api_rate:,.0f} events/s ({accepted:,} events in {api_seconds:.2f}s of requests), "
            f"ceiling {ceiling_rate:,.0f} events/s: ratio {overall_ratio:.3f}; "
            f"drain {rate(accepted, drain_seconds):,.0f} events/s one batch at a time"
        )

        section("storing: the drain on its own, then senders and the worker at once")
        steady_ceiling = rate(sum(r.accepted for r in steady), sum(r.ceiling_seconds for r in steady))
        capacity = drain_capacity(stream, tmp / "capacity.db", settings)
        print(
            f"  the drain alone: {capacity[0]:,} waiting events stored in {capacity[1]:.2f}s = "
            f"{rate(*capacity):,.0f} events/s ({inbox.DRAIN_EVENTS:,} per transaction; "
            f"{ratio(rate(*capacity), steady_ceiling):.3f} of the steady ceiling, {steady_ceiling:,.0f} events/s)"
        )
        runs = [
            end_to_end(
                stream,
                label="1 client, `siyu serve --with-worker` (the worker runs the user-model pipeline too)",
                db_path=tmp / "e2e1.db",
                tmp=tmp,
                settings=settings,
                clients=1,
                server_workers=1,
            ),
        ]
        for result in runs:
            print(result.line(steady_ceiling))

        if profile:
            section("in process: parse_batch + prepare + accept, same batches, no HTTP (fresh database)")
            count = min(config.profile_batches, len(stream.steady) // 2)
            api_profile, drain_profile = cProfile.Profile(), cProfile.Profile()
            staged = in_process(
                tmp / "inproc.db",
                stream.first_sight + stream.steady[:count],
                profiled=stream.steady[count : 2 * count],
                api_profile=api_profile,
                drain_profile=drain_profile,
            )
            head = len(stream.first_sight)
            first_times, steady_times = staged.part(0, head), staged.part(head)
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
            for title, profiler in (("the API's part", api_profile), ("the drain", drain_profile)):
                section(f"cProfile of {count} further steady batches in process: {title}")
                stats = pstats.Stats(profiler)
                print("top 12 by cumulative time:")
                print(profile_text(stats, "cumulative", 12))
                print("\ntop 12 by own time (tottime):")
                print(profile_text(stats, "tottime", 12))

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
        Verdict(
            "ingest",
            f">= {TARGET_EVENTS_PER_S:,} events/s stored by the drain (what the API receives must be stored)",
            f"{rate(*capacity):,.0f} events/s",
            rate(*capacity) >= TARGET_EVENTS_PER_S,
        ),
    ]
    print_verdicts(verdicts, "bench.ingest targets")
    return verdicts


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
