"""`siyu import contacts`, run as an operator runs it: a real process against the test database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sheet_files import HEADERS, ROWS, write_csv, write_xlsx
from sqlalchemy import func, select

from siyu.contacts.models import Contact
from siyu.imports.models import ContactImport


def siyu(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    # Wide enough that rich does not wrap the messages the assertions look for.
    env = {**os.environ, "SIYU_DATABASE_URL": database_url, "SIYU_SQLITE_SYNCHRONOUS": "NORMAL", "COLUMNS": "300"}
    return subprocess.run(
        [sys.executable, "-m", "siyu.cli", *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def _contacts(db, workspace_id: int) -> int:  # type: ignore[no-untyped-def]
    with db.transaction(write=False) as session:
        return int(
            session.scalar(select(func.count()).select_from(Contact).where(Contact.workspace_id == workspace_id))
        )


def test_import_a_sheet_from_the_command_line(tenant, db, database_url, tmp_path: Path) -> None:
    ws = str(tenant.workspace_id)
    path = write_xlsx(tmp_path / "客户.xlsx", HEADERS, ROWS)
    done = siyu(database_url, "import", "contacts", str(path), "--workspace", ws)
    assert done.returncode == 0, done.stderr
    assert "import 1 done" in done.stdout and _contacts(db, tenant.workspace_id) == 3

    bad = write_csv(
        tmp_path / "bad.csv", ["姓名", "手机", "来源"], [["甲", "13900139001", "抖音"], ["乙", "123", None]]
    )
    refused = siyu(database_url, "import", "contacts", str(bad), "--workspace", ws)
    assert refused.returncode == 1
    assert "1 of 2 rows have problems; nothing was imported" in refused.stderr
    assert "row 3: 手机: '123' is not a valid phone number" in refused.stderr
    error_file = tmp_path / "bad-errors.csv"
    assert str(error_file) in refused.stderr.replace("\n", "")
    assert error_file.read_bytes().startswith(b"\xef\xbb\xbf")
    assert _contacts(db, tenant.workspace_id) == 3

    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"来源": None}), encoding="utf-8")
    errors = tmp_path / "out" / "errors.xlsx"
    errors.parent.mkdir()
    skipped = siyu(
        database_url,
        "import",
        "contacts",
        str(bad),
        "--workspace",
        ws,
        "--mapping",
        str(mapping),
        "--skip-bad-rows",
        "--errors",
        str(errors),
    )
    assert skipped.returncode == 0, skipped.stderr
    assert "1 bad rows skipped" in skipped.stdout and errors.exists()
    assert "read bad.csv as utf-8" in skipped.stdout
    assert _contacts(db, tenant.workspace_id) == 4
    with db.transaction(write=False) as session:
        last = session.scalars(select(ContactImport).order_by(ContactImport.id.desc())).first()
        assert last is not None and last.mapping["来源"] is None and last.skipped == 1


def test_the_command_refuses_with_the_reason(tenant, database_url, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "x.csv", ["姓名"], [["甲"]])
    missing = siyu(database_url, "import", "contacts", str(path), "--workspace", "999")
    assert missing.returncode == 1 and "workspace 999 does not exist" in missing.stderr
    nothing = siyu(database_url, "import", "contacts", str(tmp_path / "nope.csv"), "--workspace", "1")
    assert nothing.returncode == 1 and "is not a file" in nothing.stderr
    mapping = tmp_path / "m.json"
    mapping.write_text('{"姓名": "nickname"}', encoding="utf-8")
    wrong = siyu(
        database_url,
        "import",
        "contacts",
        str(path),
        "--workspace",
        str(tenant.workspace_id),
        "--mapping",
        str(mapping),
    )
    assert wrong.returncode == 1 and "unknown target 'nickname'" in wrong.stderr
