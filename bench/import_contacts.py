"""Spreadsheet import of 100,000 customers into SQLite, next to a bare `executemany` of the same rows.

    python -m bench.import_contacts            # a 100,000-row customer sheet, as .xlsx and as .csv
    python -m bench.import_contacts --quick    # 10,000 rows

Target (from the issue): 100,000 rows imported in under 60 s on SQLite, through the import service (read,
check every row, dedupe by identity, write contacts, identities, notes and tags, record the import, commit).
The ceiling, measured in the same run on a fresh copy of the schema, is the same contacts and identities
inserted with bare sqlite3 `executemany` and one commit: what the database alone costs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import (
    Verdict,
    banner,
    bare_connect,
    bench_settings,
    cpu_note,
    migrated_engine,
    print_verdicts,
    rate,
    ratio,
    section,
    temp_dir,
)

TARGET_SECONDS = 60.0
FULL_ROWS = 100_000
QUICK_ROWS = 10_000
HEADERS = [
    "客户姓名",
    "手机号",
    "微信号",
    "地区",
    "职业",
    "性别",
    "生日",
    "来源",
    "首次咨询时间",
    "咨询问题",
    "备注",
    "标签",
    "负责人",
]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英"
REGIONS = ("北京", "上海", "广州", "深圳", "杭州", "成都", "武汉", "西安", "南京", "重庆", "天津", "苏州")
JOBS = ("电商运营", "学生", "教师", "设计师", "程序员", "销售", "会计", "宝妈", "自由职业", None)
CHANNELS = ("抖音", "小红书", "知乎", "百度SEM", "淘宝", "朋友推荐", "公众号")
QUESTIONS = ("报考条件是什么", "多少钱", "什么时候开课", "有优惠吗", "证书有用吗", None)
TAGS = ("意向:A级", "意向:B级", "意向:C级", "老客户", "已报名", "已考试未拿证", "已拿证", "训练营")
PHONE_PREFIXES = ("138", "139", "137", "136", "150", "151", "158", "186", "187", "188", "189")
STAFF = 20


@dataclass(frozen=True)
class Sheet:
    rows: list[list[Any]]
    phones: list[str]  # distinct, normalised


def make_sheet(rows: int, seed: int = 20261123) -> Sheet:
    """A customer statistics table as seed 002 describes it; 2% of rows repeat an earlier person."""
    rng = random.Random(seed)
    used: set[str] = set()
    out: list[list[Any]] = []
    phones: list[str] = []
    start = dt.datetime(2026, 1, 1, 9, 0)
    for n in range(rows):
        if out and rng.random() < 0.02:
            again = list(rng.choice(out))
            again[10] = None  # the repeat adds nothing new but its tags
            again[11] = rng.choice(TAGS[3:])
            out.append(again)
            continue
        while True:
            phone = rng.choice(PHONE_PREFIXES) + f"{rng.randrange(10**8):08d}"
            if phone not in used:
                used.add(phone)
                break
        phones.append("+86" + phone)
        written = phone if rng.random() < 0.8 else f"{phone[:3]} {phone[3:7]} {phone[7:]}"
        birthday = dt.date(1970, 1, 1) + dt.timedelta(days=rng.randrange(365 * 35))
        consult = start + dt.timedelta(minutes=rng.randrange(60 * 24 * 320))
        tags = ", ".join(rng.sample(TAGS, rng.randrange(0, 3))) or None
        out.append(
            [
                rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.randrange(1, 3))),
                written,
                f"wx_{n:07d}" if rng.random() < 0.4 else None,
                rng.choice(REGIONS),
                rng.choice(JOBS),
                rng.choice(("男", "女", "男", "女", "未知")),
                birthday.isoformat(),
                rng.choice(CHANNELS),
                consult.strftime("%Y-%m-%d %H:%M"),
                rng.choice(QUESTIONS),
                "想报三级" if rng.random() < 0.1 else None,
                tags,
                f"顾问{rng.randrange(STAFF):02d}",
            ]
        )
    return Sheet(out, phones)


def write_files(sheet: Sheet, directory: Path) -> dict[str, Path]:
    from openpyxl import Workbook  # type: ignore[import-untyped]

    from siyu.exports.writers import write_csv

    xlsx = directory / "客户统计表.xlsx"
    workbook = Workbook(write_only=True)
    ws = workbook.create_sheet("客户")
    ws.append(HEADERS)
    for row in sheet.rows:
        ws.append(row)
    workbook.save(xlsx)
    csv_path = directory / "客户统计表.csv"
    write_csv(csv_path, [HEADERS, *sheet.rows])
    return {"xlsx": xlsx, "csv": csv_path}


def prepare_database(path: Path) -> tuple[Any, int]:
    from siyu.db import Database
    from siyu.staff.models import Role, Staff
    from siyu.workspaces.service import create_workspace

    engine = migrated_engine(path)
    with Database(engine).transaction() as session:
        workspace = create_workspace(session, "bench")
        session.add_all(
            Staff(workspace_id=workspace.id, email=f"gu{n:02d}@bench.cn", name=f"顾问{n:02d}", role=Role.consultant)
            for n in range(STAFF)
        )
        return engine, workspace.id


@dataclass(frozen=True)
class ImportRun:
    file_format: str
    rows: int
    read_s: float
    total_s: float
    created: int
    updated: int
    errors: int


def run_import(path: Path, database_path: Path) -> ImportRun:
    from siyu.auth.principal import Principal
    from siyu.auth.scopes import ALL_SCOPES
    from siyu.db import Database
    from siyu.imports import service
    from siyu.imports.reader import open_table

    engine, workspace_id = prepare_database(database_path)
    try:
        with path.open("rb") as source:
            read_start = time.perf_counter()
            rows = sum(1 for _ in open_table(source, path.name).rows())
            read_s = time.perf_counter() - read_start
            start = time.perf_counter()
            with Database(engine).transaction() as session:
                table = open_table(source, path.name)
                principal = Principal(workspace_id=workspace_id, scopes=ALL_SCOPES)
                record = service.import_contacts(
                    session, principal, table, None, service.Options(), region=bench_settings().default_phone_region
                )
                created, updated, errors = record.created, record.updated, record.errors
            total_s = time.perf_counter() - start
    finally:
        engine.dispose()
    return ImportRun(path.suffix.lstrip("."), rows, read_s, total_s, created, updated, errors)


def ceiling(sheet: Sheet, database_path: Path) -> float:
    """Seconds for bare sqlite3 to insert the same contacts (profile columns) and their phone identities."""
    engine, workspace_id = prepare_database(database_path)
    engine.dispose()
    conn = bare_connect(database_path)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    firsts = {}
    for row in sheet.rows:
        firsts.setdefault(row[1].replace(" ", ""), row)
    contacts = [
        (n, workspace_id, row[0], row[3], row[4], row[7], row[9], "{}", now, now)
        for n, row in enumerate(firsts.values(), start=1)
    ]
    identities = [(workspace_id, n, "phone", "+86" + phone, now) for n, phone in enumerate(firsts, start=1)]
    start = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO contact (id, workspace_id, name, region, occupation, source_channel, consult_question, "
        "attributes, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        contacts,
    )
    conn.executemany(
        "INSERT INTO identity (workspace_id, contact_id, type, value, created_at) VALUES (?, ?, ?, ?, ?)", identities
    )
    conn.execute("COMMIT")
    seconds = time.perf_counter() - start
    conn.close()
    return seconds


def run(quick: bool = False, rows: int | None = None) -> list[Verdict]:
    count = rows or (QUICK_ROWS if quick else FULL_ROWS)
    banner(f"import: a {count:,}-row customer sheet into SQLite ({cpu_note()})")
    verdicts: list[Verdict] = []
    with temp_dir() as directory:
        section("generating the sheet")
        start = time.perf_counter()
        sheet = make_sheet(count)
        files = write_files(sheet, directory)
        sizes = ", ".join(f"{k} {p.stat().st_size / 1e6:.1f} MB" for k, p in files.items())
        print(
            f"  {count:,} rows ({len(sheet.phones):,} people, the rest repeats) "
            f"in {time.perf_counter() - start:.1f}s: {sizes}"
        )
        section("ceiling: bare sqlite3 executemany of the same contacts and identities, one commit")
        bare = ceiling(sheet, directory / "ceiling.db")
        print(f"  {bare:.2f}s  ({rate(len(sheet.phones), bare):,.0f} contacts/s)")
        for file_format, path in files.items():
            section(f"import through the service: .{file_format}")
            result = run_import(path, directory / f"import-{file_format}.db")
            assert result.errors == 0, f"the generated sheet had {result.errors} bad rows"
            assert result.created == len(sheet.phones), (result.created, len(sheet.phones))
            how = "openpyxl load + streaming sheet XML" if file_format == "xlsx" else "csv"
            print(f"  reading alone ({how}): {result.read_s:.2f}s")
            print(
                f"  import: {result.total_s:.2f}s for {result.rows:,} rows = {rate(result.rows, result.total_s):,.0f} "
                f"rows/s; created {result.created:,}; {ratio(result.total_s, bare):.1f}x the bare insert"
            )
            verdicts.append(
                Verdict(
                    "import",
                    f"{count:,}-row .{file_format} imported in < {TARGET_SECONDS:.0f}s on SQLite",
                    f"{result.total_s:.1f}s, {rate(result.rows, result.total_s):,.0f} rows/s",
                    result.total_s < TARGET_SECONDS * count / FULL_ROWS,
                )
            )
    print_verdicts(verdicts)
    return verdicts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.import_contacts", description=__doc__)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ROWS:,} rows instead of {FULL_ROWS:,}")
    parser.add_argument("--rows", type=int, default=None, help="any number of rows")
    args = parser.parse_args(argv)
    run(quick=args.quick, rows=args.rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
