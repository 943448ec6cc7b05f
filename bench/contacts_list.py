"""GET /api/v1/contacts filtered by tag at 1,000,000 contacts, next to the bare SQL keyset query.

    python -m bench.contacts_list                  # 1,000,000 contacts (built once, cached under bench/out/)
    python -m bench.contacts_list --quick          # 50,000 contacts
    python -m bench.contacts_list --contacts 200000

Target: p50 <= 50 ms per request through the HTTP API for every case. The ceiling, measured in the same run
on the same file, is the equivalent keyset query run with bare sqlite3.

The built database is cached in bench/out/ keyed by size, generator version and schema head. A cached file
is used only after it is checked against its manifest (schema head, row counts, tag ids), and each run works
on a copy of it, so a run never changes the cache and the figures do not depend on it.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import json
import pstats
import random
import re
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from sqlalchemy import Engine, event

from bench.common import (
    OUT_DIR,
    Server,
    Stats,
    Verdict,
    banner,
    bare_connect,
    bench_settings,
    cpu_note,
    create_api_key_for,
    explain,
    met_text,
    migrated_engine,
    print_verdicts,
    profile_text,
    ratio,
    running_server,
    section,
    sqlite_url,
    temp_dir,
)

GENERATOR_VERSION = 1
SEED = 20261123
DEFAULT_CONTACTS = 1_000_000
QUICK_CONTACTS = 50_000
TARGET_P50_S = 0.050
PAGE_LIMIT = 50
DEEP_PAGE = 200
CHUNK = 20_000

# (group, exclusive, [(tag, share of contacts holding it)]). Each contact ends with 0-3 tags.
TAG_PLAN: list[tuple[str, bool, list[tuple[str, float]]]] = [
    ("客户状态", False, [("已购客户", 0.30), ("复购客户", 0.05), ("流失预警", 0.03)]),
    ("意向等级", True, [("A级", 0.06), ("B级", 0.08), ("C级", 0.06)]),
    ("兴趣", False, [("护肤", 0.10), ("彩妆", 0.04), ("母婴", 0.03), ("健身", 0.03), ("美食", 0.03)]),
    ("兴趣2", False, [("旅行", 0.02), ("数码", 0.02), ("家居", 0.02)]),
    ("来源活动", False, [("双11活动", 0.04), ("618活动", 0.03), ("直播间", 0.04), ("老带新", 0.02)]),
    ("会员", False, [("VIP私享会", 0.01), ("黑卡会员", 0.005)]),
]
POPULAR, RARE, MEDIUM = "已购客户", "VIP私享会", "护肤"
CHANNELS = [("douyin", 30), ("wecom", 25), ("xiaohongshu", 15), ("offline", 10), ("referral", 10), (None, 10)]
REGIONS = ["上海", "北京", "杭州", "广州", "深圳", "成都", "南京", "武汉", None]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
PHONE_PREFIXES = ("138", "139", "137", "136", "135", "150", "151", "152", "158", "159", "186", "187", "188", "189")
EPOCH = dt.datetime(2023, 1, 1, 8, 0, 0)


# --- building the database ---------------------------------------------------------------------------


@dataclass
class Manifest:
    version: int
    contacts: int
    seed: int
    head: str
    workspace_id: int
    tags: dict[str, int]
    tag_counts: dict[str, int]
    identities: int
    build_seconds: float

    def tag(self, name: str) -> int:
        return self.tags[name]


def alembic_head() -> str:
    from alembic.script import ScriptDirectory

    from siyu.migrations.runner import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    return head or "none"


def cache_paths(contacts: int, head: str) -> tuple[Path, Path]:
    stem = f"contacts-{contacts}-v{GENERATOR_VERSION}-{head}"
    return OUT_DIR / f"{stem}.db", OUT_DIR / f"{stem}.json"


def _ts(moment: dt.datetime) -> str:
    # How SQLAlchemy stores DateTime on SQLite (naive UTC).
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def _phone(index: int) -> str:
    """A unique, valid Chinese mobile number in E.164 for each index (a bijection on the 8-digit part)."""
    prefix = PHONE_PREFIXES[index % len(PHONE_PREFIXES)]
    suffix = (index // len(PHONE_PREFIXES) * 7919 + 12345) % 10**8
    return f"+86{prefix}{suffix:08d}"


def _create_tags(engine: Engine) -> tuple[int, dict[str, int]]:
    from siyu.db import Database
    from siyu.tags.models import Tag, TagGroup
    from siyu.workspaces.service import create_workspace

    tags: dict[str, int] = {}
    with Database(engine).transaction() as session:
        workspace = create_workspace(session, "bench contacts")
        for group_name, exclusive, members in TAG_PLAN:
            group = TagGroup(workspace_id=workspace.id, name=group_name, exclusive=exclusive)
            session.add(group)
            session.flush()
            for tag_name, _share in members:
                tag = Tag(workspace_id=workspace.id, group_id=group.id, name=tag_name)
                session.add(tag)
                session.flush()
                tags[tag_name] = tag.id
        return workspace.id, tags


def _tags_for(rng: random.Random, plan: list[tuple[int, float, int | None]]) -> list[int]:
    """Independent draws per tag (at most one per exclusive group), capped at 3 in plan order."""
    chosen: list[int] = []
    groups_used: set[int] = set()
    for tag_id, share, exclusive_group in plan:
        if rng.random() < share:
            if exclusive_group is not None:
                if exclusive_group in groups_used:
                    continue
                groups_used.add(exclusive_group)
            chosen.append(tag_id)
            if len(chosen) == 3:
                break
    return chosen


def build(path: Path, manifest_path: Path, contacts: int, head: str) -> Manifest:
    start = time.perf_counter()
    building = path.with_suffix(".building")
    for leftover in (building, Path(f"{building}-wal"), Path(f"{building}-shm")):
        leftover.unlink(missing_ok=True)
    engine = migrated_engine(building)
    workspace_id, tags = _create_tags(engine)
    engine.dispose()

    # Popular and rare first so the cap at 3 never drops them; exclusive-group tags share a group number.
    plan: list[tuple[int, float, int | None]] = []
    for group_index, (_group, exclusive, members) in enumerate(TAG_PLAN):
        for tag_name, share in members:
            plan.append((tags[tag_name], share, group_index if exclusive else None))
    plan.sort(key=lambda item: (item[0] != tags[POPULAR], item[0] != tags[RARE], -item[1]))
    channels = [c for c, _ in CHANNELS]
    channel_weights = [w for _, w in CHANNELS]

    rng = random.Random(SEED)
    conn = sqlite3.connect(building, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")  # a build that fails is thrown away whole
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1048576")
    conn.execute("PRAGMA temp_store=MEMORY")
    contact_sql = (
        "INSERT INTO contact (id, workspace_id, name, source_channel, region, gender, attributes, "
        "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    identity_sql = "INSERT INTO identity (workspace_id, contact_id, type, value, created_at) VALUES (?, ?, ?, ?, ?)"
    tag_sql = "INSERT INTO contact_tag (contact_id, tag_id, workspace_id, created_at) VALUES (?, ?, ?, ?)"
    tag_counts: dict[int, int] = dict.fromkeys(tags.values(), 0)
    identities = 0
    columns = [
        TextColumn("  building {task.fields[what]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns) as progress:
        task = progress.add_task("build", total=contacts, what=f"{contacts:,} contacts")
        for chunk_start in range(1, contacts + 1, CHUNK):
            chunk_end = min(chunk_start + CHUNK, contacts + 1)
            contact_rows = []
            identity_rows = []
            tag_rows = []
            for cid in range(chunk_start, chunk_end):
                created = _ts(EPOCH + dt.timedelta(seconds=cid * 30))
                name = rng.choice(SURNAMES) + rng.choice(("先生", "女士", "小姐", ""))
                channel = rng.choices(channels, channel_weights)[0]
                gender = rng.choice(("male", "female", "female", "unknown", None))
                contact_rows.append(
                    (cid, workspace_id, name, channel, rng.choice(REGIONS), gender, "{}", created, created)
                )
                identity_rows.append((workspace_id, cid, "phone", _phone(cid), created))
                if rng.random() < 0.4:
                    identity_rows.append((workspace_id, cid, "wecom_external_userid", f"wm{cid:010d}x{SEED}", created))
                for tag_id in _tags_for(rng, plan):
                    tag_rows.append((cid, tag_id, workspace_id, created))
                    tag_counts[tag_id] += 1
            conn.execute("BEGIN")
            conn.executemany(contact_sql, contact_rows)
            conn.executemany(identity_sql, identity_rows)
            conn.executemany(tag_sql, tag_rows)
            conn.execute("COMMIT")
            identities += len(identity_rows)
            progress.advance(task, chunk_end - chunk_start)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    building.replace(path)
    manifest = Manifest(
        version=GENERATOR_VERSION,
        contacts=contacts,
        seed=SEED,
        head=head,
        workspace_id=workspace_id,
        tags=tags,
        tag_counts={str(k): v for k, v in tag_counts.items()},
        identities=identities,
        build_seconds=round(time.perf_counter() - start, 1),
    )
    manifest_path.write_text(json.dumps(manifest.__dict__, ensure_ascii=False, indent=2))
    return manifest


def check_cached(path: Path, manifest_path: Path, contacts: int, head: str) -> tuple[Manifest | None, str]:
    """The cached database's manifest if the file matches it, else None and the reason."""
    if not path.exists() or not manifest_path.exists():
        return None, "no cached database"
    try:
        manifest = Manifest(**json.loads(manifest_path.read_text()))
    except (ValueError, TypeError) as exc:
        return None, f"unreadable manifest ({exc})"
    if (manifest.version, manifest.contacts, manifest.seed, manifest.head) != (
        GENERATOR_VERSION,
        contacts,
        SEED,
        head,
    ):
        return None, "manifest is for another build"
    conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)

    def scalar(sql: str, *params: object) -> object:
        row = conn.execute(sql, params).fetchone()
        return row[0] if row else None

    # (what, SQL, parameters, expected value)
    checks: list[tuple[str, str, tuple[object, ...], object]] = [
        ("schema head", "SELECT version_num FROM alembic_version", (), head),
        ("contact count", "SELECT count(*) FROM contact", (), contacts),
        ("identity count", "SELECT count(*) FROM identity", (), manifest.identities),
    ]
    for name, tag_id in manifest.tags.items():
        sql = "SELECT name FROM tag WHERE id = ? AND workspace_id = ?"
        checks.append((f"tag {tag_id}", sql, (tag_id, manifest.workspace_id), name))
    for tag_id_text, count in manifest.tag_counts.items():
        checks.append(
            (
                f"tag {tag_id_text} count",
                "SELECT count(*) FROM contact_tag WHERE tag_id = ?",
                (int(tag_id_text),),
                count,
            )
        )
    try:
        for what, sql, params, expected in checks:
            if scalar(sql, *params) != expected:
                return None, f"cached {what} differs from the manifest"
    except sqlite3.Error as exc:
        return None, f"unreadable database ({exc})"
    finally:
        conn.close()
    return manifest, "cached database checked against its manifest"


def ensure_database(contacts: int) -> tuple[Path, Manifest]:
    head = alembic_head()
    path, manifest_path = cache_paths(contacts, head)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    manifest, reason = check_cached(path, manifest_path, contacts, head)
    if manifest is not None:
        print(f"{reason}: {path.name} (checked in {time.perf_counter() - start:.1f}s)")
        return path, manifest
    print(f"building {path.name} ({reason})")
    manifest = build(path, manifest_path, contacts, head)
    print(f"built in {manifest.build_seconds:.0f}s: {path.stat().st_size / 1e6:,.0f} MB")
    return path, manifest


# --- the cases ---------------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    tag_ids: list[int]
    source_channel: str | None = None
    before_id: int | None = None
    api: list[float] = field(default_factory=list)
    service: list[float] = field(default_factory=list)
    bare: list[float] = field(default_factory=list)
    bare_detail: list[float] = field(default_factory=list)
    ids_match: bool = True
    app_sql: tuple[str, tuple[Any, ...]] | None = None
    error: str | None = None

    def params(self) -> list[tuple[str, str | int | float | bool | None]]:
        out: list[tuple[str, str | int | float | bool | None]] = [("tag", t) for t in self.tag_ids]
        if self.source_channel is not None:
            out.append(("source_channel", self.source_channel))
        out.append(("limit", PAGE_LIMIT))
        if self.before_id is not None:
            out.append(("cursor", cursor_for(self.before_id)))
        return out

    def filter_params(self) -> dict[str, str | list[str]]:
        out: dict[str, str | list[str]] = {"tag": [str(t) for t in self.tag_ids]}
        if self.source_channel is not None:
            out["source_channel"] = self.source_channel
        return out


def cursor_for(before_id: int) -> str:
    from siyu.kit.schemas import encode_cursor

    return encode_cursor([before_id])


def bare_sql(case: Case, workspace_id: int) -> tuple[str, tuple[Any, ...]]:
    """The keyset query the endpoint needs, written by hand: contact_tag drives, in contact id order."""
    first, *rest = case.tag_ids
    sql = (
        "SELECT contact.* FROM contact_tag JOIN contact ON contact.id = contact_tag.contact_id "
        "WHERE contact_tag.tag_id = ? AND contact.workspace_id = ? AND contact.merged_into_id IS NULL"
    )
    params: list[Any] = [first, workspace_id]
    for tag_id in rest:
        sql += " AND EXISTS (SELECT 1 FROM contact_tag AS t2 WHERE t2.contact_id = contact.id AND t2.tag_id = ?)"
        params.append(tag_id)
    if case.source_channel is not None:
        sql += " AND contact.source_channel = ?"
        params.append(case.source_channel)
    if case.before_id is not None:
        sql += " AND contact_tag.contact_id < ?"
        params.append(case.before_id)
    sql += f" ORDER BY contact_tag.contact_id DESC LIMIT {PAGE_LIMIT + 1}"
    return sql, tuple(params)


DETAIL_IDENTITIES = "SELECT id, contact_id, type, value FROM identity WHERE contact_id IN ({}) ORDER BY id"
DETAIL_TAGS = (
    "SELECT contact_tag.contact_id, tag.id, tag.name, tag.group_id FROM contact_tag "
    "JOIN tag ON tag.id = contact_tag.tag_id WHERE contact_tag.contact_id IN ({}) ORDER BY tag.id"
)


def bare_page(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...], detail: bool) -> list[int]:
    cursor = conn.execute(sql, params)
    id_index = [column[0] for column in cursor.description].index("id")
    ids = [row[id_index] for row in cursor.fetchall()]
    if detail and ids:
        page = ids[:PAGE_LIMIT]
        marks = ",".join("?" * len(page))
        conn.execute(DETAIL_IDENTITIES.format(marks), page).fetchall()
        conn.execute(DETAIL_TAGS.format(marks), page).fetchall()
    return ids


class ServicePager:
    """The endpoint's work without HTTP: parse the filter, list_page, to_read, serialise the page."""

    def __init__(self, engine: Engine, workspace_id: int) -> None:
        from siyu.db import Database

        self.database = Database(engine)
        self.workspace_id = workspace_id
        self.captured: list[tuple[str, tuple[Any, ...]]] = []
        self.capturing = False

        @event.listens_for(engine, "before_cursor_execute")
        def _capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
            if self.capturing:
                self.captured.append((statement, tuple(parameters or ())))

    def page(self, case: Case) -> bytes:
        from siyu.contacts import attributes as attrs
        from siyu.contacts import repository, service
        from siyu.contacts.filters import parse_filter
        from siyu.contacts.schemas import ContactRead
        from siyu.kit.schemas import Page, encode_cursor

        with self.database.transaction(write=False) as session:
            flt = parse_filter(case.filter_params(), region=bench_settings().default_phone_region)
            defs = attrs.definitions(session, self.workspace_id)
            rows = repository.list_page(
                session, self.workspace_id, flt, None, defs, before_id=case.before_id, limit=PAGE_LIMIT + 1
            )
            more = len(rows) > PAGE_LIMIT
            rows = rows[:PAGE_LIMIT]
            page = Page[ContactRead](
                items=service.to_read(session, rows), next_cursor=encode_cursor([rows[-1].id]) if more else None
            )
            return page.model_dump_json().encode()

    def capture(self, case: Case) -> list[tuple[str, tuple[Any, ...]]]:
        self.captured = []
        self.capturing = True
        try:
            self.page(case)
        finally:
            self.capturing = False
        return self.captured


def timed(fn: Callable[[], object], repeat: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def walk(client: httpx.Client, tag_id: int, pages: int) -> Iterator[tuple[int, float, str | None, list[int]]]:
    """Pages 1..pages of one tag via next_cursor: (page number, seconds, cursor used, ids)."""
    cursor: str | None = None
    for number in range(1, pages + 1):
        params: list[tuple[str, str | int | float | bool | None]] = [("tag", tag_id), ("limit", PAGE_LIMIT)]
        if cursor:
            params.append(("cursor", cursor))
        start = time.perf_counter()
        response = client.get("/api/v1/contacts", params=params)
        seconds = time.perf_counter() - start
        response.raise_for_status()
        data = response.json()
        yield number, seconds, cursor, [item["id"] for item in data["items"]]
        cursor = data["next_cursor"]
        if cursor is None:
            return


def server_error_lines(server: Server) -> list[str]:
    """The application frames and the exception line of the last traceback in the server's log."""
    lines = server.log_tail(200).splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback")]
    if not starts:
        return lines[-5:]
    trace = lines[starts[-1] :]
    frames = [line.strip() for line in trace if "/siyu/" in line and line.strip().startswith("File")]
    errors = [line for line in trace if re.match(r"^[\w.]+(Error|Exception)\b", line)]
    return frames + errors[-1:]


def measure(
    case: Case,
    client: httpx.Client,
    server: Server,
    pager: ServicePager,
    bare: sqlite3.Connection,
    workspace_id: int,
    requests: int,
) -> Verdict:
    """Times one case through the API, in process and as bare SQL; prints the figures; returns its verdict."""
    target = f"{case.name}: p50 <= {TARGET_P50_S * 1e3:.0f} ms"
    params = case.params()
    sql, sql_params = bare_sql(case, workspace_id)
    bare_ids = bare_page(bare, sql, sql_params, detail=False)
    case.bare = timed(lambda: bare_page(bare, sql, sql_params, detail=False), requests, 3)
    case.bare_detail = timed(lambda: bare_page(bare, sql, sql_params, detail=True), requests, 3)
    sql_only, sql_full = Stats.of(case.bare), Stats.of(case.bare_detail)
    rarest_line = ""
    if len(case.tag_ids) > 1:
        # The first tag drives the index walk; driving by the rarest one shows what ordering would buy.
        count_sql = "SELECT count(*) FROM contact_tag WHERE tag_id = ?"
        by_size = sorted(case.tag_ids, key=lambda t: bare.execute(count_sql, (t,)).fetchone()[0])
        if by_size != case.tag_ids:
            rarest = Case(case.name, by_size, case.source_channel, case.before_id)
            r_sql, r_params = bare_sql(rarest, workspace_id)
            rarest_ids = bare_page(bare, r_sql, r_params, detail=False)
            same = "same page" if rarest_ids[:PAGE_LIMIT] == bare_ids[:PAGE_LIMIT] else "DIFFERENT page"
            r_stats = Stats.of(timed(lambda: bare_page(bare, r_sql, r_params, detail=False), requests, 3))
            rarest_line = f"    bare, rarest first  {r_stats.ms()}   (tags {by_size}: {same})"
    try:
        captured = pager.capture(case)
        case.app_sql = next((s for s in captured if "LIMIT" in s[0] and "FROM contact" in s[0]), None)
    except Exception as exc:
        case.error = f"in process: {type(exc).__name__}: {exc}"

    response = client.get("/api/v1/contacts", params=params)
    if response.status_code != 200:
        print(f"\n  {case.name}   [FAILED: HTTP {response.status_code} {response.text[:200]}]")
        for line in server_error_lines(server):
            print(f"    server log: {line}")
        if case.error:
            print(f"    {case.error}")
        print(f"    bare keyset query   {sql_only.ms()}   ({len(bare_ids)} rows: the page exists)")
        print(f"    bare + detail (3q)  {sql_full.ms()}")
        if rarest_line:
            print(rarest_line)
        return Verdict("contacts_list", target, f"fails with HTTP {response.status_code}", False)

    data = response.json()
    api_ids = [item["id"] for item in data["items"]]
    case.ids_match = api_ids == bare_ids[:PAGE_LIMIT] and (
        (data["next_cursor"] is not None) == (len(bare_ids) > PAGE_LIMIT)
    )

    def api_call() -> None:
        client.get("/api/v1/contacts", params=params).raise_for_status()

    case.api = timed(api_call, requests, 5)
    case.service = [] if case.error else timed(lambda: pager.page(case), requests, 3)
    api, svc = Stats.of(case.api), Stats.of(case.service)
    met = api.p50 <= TARGET_P50_S
    print(
        f"\n  {case.name}   [{len(api_ids)} items; ids equal to the bare query's: {'yes' if case.ids_match else 'NO'}]"
    )
    print(f"    HTTP API            {api.ms()}")
    print(f"    in process (svc)    {svc.ms()}")
    print(f"    bare keyset query   {sql_only.ms()}")
    print(f"    bare + detail (3q)  {sql_full.ms()}")
    if rarest_line:
        print(rarest_line)
    print(
        f"    ratio API/bare p50 {ratio(api.p50, sql_only.p50):6.1f}x   "
        f"API/bare+detail {ratio(api.p50, sql_full.p50):5.1f}x   "
        f"service/bare+detail {ratio(svc.p50, sql_full.p50):5.1f}x   "
        f"target p50 <= {TARGET_P50_S * 1e3:.0f} ms: {met_text(met)}"
    )
    measured = f"p50 {api.p50 * 1e3:.1f} ms, {ratio(api.p50, sql_only.p50):.1f}x the bare query"
    if not case.ids_match:
        measured += "; WRONG PAGE (ids differ from the bare query)"
    return Verdict("contacts_list", target, measured, met and case.ids_match)


# --- the benchmark -----------------------------------------------------------------------------------


def run(contacts: int = DEFAULT_CONTACTS, requests: int = 60, profile: bool = False) -> list[Verdict]:
    from siyu.db import create_db_engine
    from siyu.kit.schemas import decode_cursor

    settings = bench_settings()
    banner(f"bench.contacts_list: GET /api/v1/contacts?tag=... at {contacts:,} contacts vs the bare keyset query")
    print(f"{cpu_note()}; SIYU_SQLITE_SYNCHRONOUS={settings.sqlite_synchronous}, WAL, no ANALYZE (as the app)")
    cached, manifest = ensure_database(contacts)
    ws = manifest.workspace_id
    popular, rare, medium = manifest.tag(POPULAR), manifest.tag(RARE), manifest.tag(MEDIUM)
    counts = {name: manifest.tag_counts[str(manifest.tag(name))] for name in (POPULAR, RARE, MEDIUM)}
    print(
        f"{contacts:,} contacts, {manifest.identities:,} identities, "
        f"{sum(manifest.tag_counts.values()):,} contact tags over {len(manifest.tags)} tags; "
        + ", ".join(
            f"{name} (id {manifest.tag(name)}): {count:,} = {count / contacts:.1%}" for name, count in counts.items()
        )
    )

    verdicts: list[Verdict] = []
    with temp_dir() as tmp:
        db = tmp / "contacts.db"
        start = time.perf_counter()
        shutil.copyfile(cached, db)
        print(f"working copy made in {time.perf_counter() - start:.1f}s ({db.stat().st_size / 1e6:,.0f} MB)")
        engine = create_db_engine(sqlite_url(db), settings)
        key = create_api_key_for(engine, ws)
        pager = ServicePager(engine, ws)
        bare = bare_connect(db, settings)
        headers = {"Authorization": f"Bearer {key}"}
        try:
            with (
                running_server(db, tmp) as server,
                httpx.Client(base_url=server.base_url, headers=headers, timeout=60.0) as client,
            ):
                section(f"walk: {POPULAR} pages 1 -> {DEEP_PAGE} via next_cursor (one request each)")
                walk_times: list[float] = []
                deep_cursor: str | None = None
                deep_number = 0
                for number, seconds, cursor, _ids in walk(client, popular, DEEP_PAGE):
                    walk_times.append(seconds)
                    deep_cursor, deep_number = cursor, number
                print(f"  pages 1..{deep_number}: {Stats.of(walk_times).ms()}")
                deep_before = int(decode_cursor(deep_cursor, 1)[0]) if deep_cursor else None
                far_before = bare.execute(
                    "SELECT contact_id FROM contact_tag WHERE tag_id = ? ORDER BY contact_id LIMIT 1 OFFSET ?",
                    (popular, counts[POPULAR] // 10),
                ).fetchone()[0]

                cases = [
                    Case(f"{POPULAR} (~30%), page 1", [popular]),
                    Case(f"{RARE} (~1%), page 1", [rare]),
                    Case(f"{POPULAR}, page {deep_number} (next_cursor)", [popular], before_id=deep_before),
                    Case(f"{POPULAR}, ~90% deep (cursor id {far_before})", [popular], before_id=far_before),
                    Case(f"{POPULAR} + {MEDIUM} (two tags)", [popular, medium]),
                    Case(f"{POPULAR} + {RARE} (two tags)", [popular, rare]),
                    Case(f"{POPULAR} + source_channel=douyin", [popular], source_channel="douyin"),
                ]
                section(f"per case: {requests} timed requests after 5 warm-up ones; limit={PAGE_LIMIT}")
                verdicts += [measure(case, client, server, pager, bare, ws, requests) for case in cases]

                verdicts += measure_search(client, bare, ws, requests)

            section("query plans: the SQL the app ran (captured in process), then the bare query")
            for case in cases:
                print(f"\n  {case.name}")
                if case.error:
                    print(f"    app: {case.error}")
                if case.app_sql is not None:
                    print("    app:")
                    for line in explain(bare, *case.app_sql):
                        print(line)
                sql, sql_params = bare_sql(case, ws)
                print("    bare:")
                for line in explain(bare, sql, sql_params):
                    print(line)
            first = cases[0]
            if first.app_sql is not None:
                statement, params = first.app_sql
                print(f"\n  app SQL of '{first.name}':\n    {' '.join(statement.split())}\n    params {params}")
            if profile:
                section(f"cProfile: 50 pages of '{first.name}' in process (list_page + to_read + JSON)")
                profiler = cProfile.Profile()
                profiler.enable()
                for _ in range(50):
                    pager.page(first)
                profiler.disable()
                print(profile_text(pstats.Stats(profiler), "cumulative", 20))
            detail = [s for s in pager.capture(first) if "identity" in s[0] or "JOIN tag" in s[0]]
            for statement, params in detail:
                print(f"\n  page detail query: {' '.join(statement.split())[:160]}...")
                for line in explain(bare, statement, params):
                    print(line)
        finally:
            bare.close()
            engine.dispose()

    print_verdicts(verdicts, "bench.contacts_list targets")
    return verdicts


def measure_search(client: httpx.Client, bare: sqlite3.Connection, workspace_id: int, requests: int) -> list[Verdict]:
    """GET /api/v1/contacts?q=... (the console's search box) beside the bare look-up it comes down to."""
    section(f"search (q): {requests} timed requests each; limit={PAGE_LIMIT}")
    phone = bare.execute(
        "SELECT value FROM identity WHERE workspace_id = ? AND type = 'phone' ORDER BY id LIMIT 1 OFFSET 500000",
        (workspace_id,),
    ).fetchone()[0]
    by_phone = "SELECT contact_id FROM identity WHERE workspace_id = ? AND type = 'phone' AND value = ?"
    by_name = "SELECT id FROM contact WHERE workspace_id = ? AND name >= ? AND name < ? ORDER BY id DESC LIMIT " + str(
        PAGE_LIMIT + 1
    )
    searches = [
        ("phone as stored (E.164)", phone, by_phone, (workspace_id, phone)),
        ("phone as typed (11 digits)", phone[3:], by_phone, (workspace_id, phone)),
        ("surname 王 (~5% of contacts)", "王", by_name, (workspace_id, "王", "王\U0010ffff")),
        ("name prefix 王先生", "王先生", by_name, (workspace_id, "王先生", "王先生\U0010ffff")),
        ("no match", "查无此人", by_phone, (workspace_id, "查无此人")),
    ]
    verdicts = []
    for label, term, sql, params in searches:
        response = client.get("/api/v1/contacts", params={"q": term, "limit": PAGE_LIMIT})
        response.raise_for_status()
        found = len(response.json()["items"])
        api = Stats.of(
            timed(lambda t=term: client.get("/api/v1/contacts", params={"q": t, "limit": PAGE_LIMIT}), requests, 3)
        )
        base = Stats.of(timed(lambda q=sql, p=params: bare.execute(q, p).fetchall(), requests, 3))
        met = api.p50 <= TARGET_P50_S
        print(f"\n  {label}   [q={term!r}, {found} items]")
        print(f"    HTTP API            {api.ms()}")
        print(f"    bare look-up        {base.ms()}")
        target_text = f"target p50 <= {TARGET_P50_S * 1e3:.0f} ms: {met_text(met)}"
        print(f"    ratio API/bare p50 {ratio(api.p50, base.p50):6.1f}x   {target_text}")
        verdicts.append(
            Verdict(
                "contacts_list",
                f"search {label}: p50 <= {TARGET_P50_S * 1e3:.0f} ms",
                f"p50 {api.p50 * 1e3:.1f} ms",
                met,
            )
        )
    return verdicts


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.contacts_list", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=None, help=f"contacts to build (default {DEFAULT_CONTACTS:,})")
    parser.add_argument("--quick", action="store_true", help=f"a smoke run at {QUICK_CONTACTS:,} contacts")
    parser.add_argument("--requests", type=int, default=60, help="timed requests per case (default 60)")
    parser.add_argument("--profile", action="store_true", help="also profile one case's page in process")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    contacts = args.contacts or (QUICK_CONTACTS if args.quick else DEFAULT_CONTACTS)
    run(contacts=contacts, requests=args.requests, profile=args.profile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
