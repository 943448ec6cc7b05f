"""Spreadsheet writers shared by exports and import error files: CSV in UTF-8 with a BOM (so Excel reads
Chinese right) and .xlsx through openpyxl's write-only mode (rows go to disk as they come)."""

from __future__ import annotations

import codecs
import csv
import io
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
XLSX_MAX_ROWS = 1_048_576  # Excel's limit, header included


def csv_chunks(rows: Iterable[list[Any]], flush_every: int = 1000) -> Iterator[bytes]:
    """Encodes rows as CSV (UTF-8 with BOM), yielding a chunk every `flush_every` rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    yield codecs.BOM_UTF8
    for n, row in enumerate(rows, start=1):
        writer.writerow(["" if v is None else v for v in row])
        if n % flush_every == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


def write_csv(path: Path, rows: Iterable[list[Any]]) -> None:
    with path.open("wb") as out:
        for chunk in csv_chunks(rows):
            out.write(chunk)


def write_xlsx(path: Path, rows: Iterable[list[Any]], title: str = "contacts") -> None:
    from openpyxl import Workbook  # type: ignore[import-untyped]

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=title[:31])
    for n, row in enumerate(rows, start=1):
        if n > XLSX_MAX_ROWS:
            raise ValueError(f"more than {XLSX_MAX_ROWS - 1:,} rows do not fit in an .xlsx sheet; export CSV instead")
        sheet.append(row)
    workbook.save(path)


def temp_path(suffix: str) -> Path:
    handle = tempfile.NamedTemporaryFile(prefix="siyu-", suffix=suffix, delete=False)  # noqa: SIM115
    handle.close()
    return Path(handle.name)
