"""Reading a customer sheet: .xlsx (openpyxl, read-only, streaming) or .csv (UTF-8 with or without BOM, or
GBK/GB18030 as Chinese Excel saves it). Rows come out one at a time with the row number Excel shows."""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePath
from typing import IO, Any

from siyu.errors import ValidationFailed

CHUNK = 1 << 20
MAX_ROWS = 1_000_000
XLSX_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # the old binary .xls (and .et) format


def refuse(reason: str) -> ValidationFailed:
    return ValidationFailed(f"file: {reason}", details=[{"field": "file", "reason": reason}])


def cell_text(value: Any) -> str | None:
    """A cell as the operator sees it, for previews and the error file."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.isoformat(" ", "seconds") if value.time() != dt.time() else value.date().isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


@dataclass
class Table:
    """An opened sheet. `rows()` streams (row number, cells) for the data rows, padded to the headers."""

    file_name: str
    file_format: str  # "xlsx" | "csv"
    encoding: str | None  # csv only: "utf-8", "utf-8-sig" or "gb18030"
    headers: list[str]
    header_row: int
    size_hint: int | None  # rows in the sheet as its dimension says (xlsx), for progress bars
    _source: IO[bytes]
    _delimiter: str = ","
    _sheet: Any = None

    def rows(self) -> Iterator[tuple[int, list[Any]]]:
        width = len(self.headers)
        raw = self._xlsx_rows() if self.file_format == "xlsx" else self._csv_rows()
        count = 0
        for number, cells in raw:
            if number <= self.header_row:
                continue
            row = [_clean(c) for c in cells[:width]]
            if all(c is None for c in row):
                continue
            count += 1
            if count > MAX_ROWS:
                raise refuse(f"more than {MAX_ROWS:,} rows; split the file")
            if len(row) < width:
                row += [None] * (width - len(row))
            yield number, row

    def _xlsx_rows(self) -> Iterator[tuple[int, list[Any]]]:
        # Loaded once: openpyxl reads a whole sheet at load when it has no <dimension> (its own files).
        if self._sheet is None:
            self._sheet = _open_sheet(self._source)[0]
        yield from _sheet_rows(self._sheet)

    def _csv_rows(self) -> Iterator[tuple[int, list[str]]]:
        assert self.encoding is not None
        reader = csv.reader(_lines(self._source, self.encoding), delimiter=self._delimiter)
        # csv counts physical lines; Excel counts records (a quoted newline stays in one row).
        yield from enumerate(reader, start=1)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _open_sheet(source: IO[bytes]) -> tuple[Any, Any]:
    from openpyxl import load_workbook  # type: ignore[import-untyped]

    try:
        workbook = load_workbook(source, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise refuse(f"not a readable .xlsx workbook ({type(exc).__name__}); save it again from Excel") from None
    sheet = workbook.active if workbook.active is not None else workbook.worksheets[0]
    return sheet, workbook


_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_ROW, _CELL, _VALUE, _INLINE, _TEXT = (f"{_NS}{t}" for t in ("row", "c", "v", "is", "t"))


def _column_index(reference: str) -> int:
    index = 0
    for char in reference:
        if char.isdigit():
            break
        index = index * 26 + ord(char.upper()) - 64
    return index - 1


def _sheet_rows(sheet: Any) -> Iterator[tuple[int, list[Any]]]:
    """(row number, values) of a read-only openpyxl sheet, straight from its XML.

    openpyxl's own iter_rows builds a dict per cell and parses inline strings (which openpyxl, pandas and
    many exporters write) through its descriptor machinery: 3-4x slower than this loop, which reads the
    same things: shared and inline strings, numbers, booleans, and numbers styled as dates."""
    from openpyxl.utils.datetime import from_excel  # type: ignore[import-untyped]
    from openpyxl.xml.functions import iterparse  # type: ignore[import-untyped]  # defusedxml's when installed

    workbook = sheet.parent
    shared = sheet._shared_strings
    date_styles = set(workbook._date_formats)
    timedelta_styles = set(workbook._timedelta_formats)
    epoch = workbook.epoch
    with sheet._get_source() as source:
        row_number = 0
        for _event, element in iterparse(source):
            if element.tag != _ROW:
                continue
            number = element.get("r")
            row_number = int(number) if number else row_number + 1
            values: list[Any] = []
            column = -1
            for cell in element.iter(_CELL):
                reference = cell.get("r")
                column = _column_index(reference) if reference else column + 1
                kind = cell.get("t", "n")
                value: Any
                if kind == "inlineStr":
                    inline = cell.find(_INLINE)
                    value = "".join(t.text or "" for t in inline.iter(_TEXT)) if inline is not None else None
                else:
                    value = cell.findtext(_VALUE)
                    if value is not None:
                        if kind == "s":
                            value = shared[int(value)]
                        elif kind == "n":
                            value = float(value) if "." in value or "E" in value or "e" in value else int(value)
                            style = int(cell.get("s", 0))
                            if style and style in date_styles:
                                with contextlib.suppress(OverflowError, ValueError):
                                    value = from_excel(value, epoch, timedelta=style in timedelta_styles)
                        elif kind == "b":
                            value = value == "1"
                        elif kind == "d":
                            value = _iso_datetime(value)
                if value is not None:
                    if column >= len(values):
                        values.extend([None] * (column + 1 - len(values)))
                    values[column] = value
            element.clear()
            yield row_number, values


def _iso_datetime(value: str) -> Any:
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        return value


def _lines(source: IO[bytes], encoding: str) -> Iterator[str]:
    source.seek(0)
    decoder = codecs.getincrementaldecoder(encoding)()
    pending = ""
    while True:
        chunk = source.read(CHUNK)
        text = pending + decoder.decode(chunk, final=not chunk)
        if not chunk:
            if text:
                yield text
            return
        lines = text.splitlines(keepends=True)
        pending = lines.pop() if lines and not lines[-1].endswith(("\n", "\r")) else ""
        # A lone "\r" at the end may be half of "\r\n": keep it for the next chunk.
        if lines and lines[-1].endswith("\r"):
            pending = lines.pop() + pending
        yield from lines


def detect_encoding(source: IO[bytes]) -> str:
    """utf-8-sig when the file starts with a BOM; utf-8 when all of it decodes so; else gb18030 (a superset
    of GBK, what Chinese Excel writes for "CSV"). Reads the whole file once, in chunks."""
    source.seek(0)
    head = source.read(3)
    candidates = ["utf-8-sig"] if head == codecs.BOM_UTF8 else ["utf-8", "gb18030"]
    for encoding in candidates:
        source.seek(0)
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            while chunk := source.read(CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return encoding
    raise refuse("the text is neither UTF-8 nor GBK/GB18030; save it from Excel as 'CSV UTF-8' or as .xlsx")


def _format_of(source: IO[bytes], file_name: str) -> str:
    source.seek(0)
    magic = source.read(4)
    suffix = PurePath(file_name).suffix.lower()
    if magic == OLE_MAGIC or suffix in (".xls", ".et"):
        raise refuse("old binary .xls files are not read; open it in Excel or WPS and save as .xlsx")
    if magic == XLSX_MAGIC:
        return "xlsx"
    if suffix in (".xlsx", ".xlsm"):
        raise refuse("the file is named .xlsx but is not a workbook; save it again from Excel")
    return "csv"


def _delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", "\t", ";")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > counts[","] else ","


def _header_of(rows: Iterator[tuple[int, Any]]) -> tuple[int, list[Any]] | None:
    """The first row naming two or more columns (a title row above the headers is skipped), or the first
    non-empty row when no row has two."""
    first: tuple[int, list[Any]] | None = None
    for number, cells in rows:
        values = [_clean(c) for c in cells]
        filled = sum(v is not None for v in values)
        if filled >= 2:
            return number, values
        if filled and first is None:
            first = (number, values)
        if number > 20:
            break
    return first


def open_table(source: IO[bytes], file_name: str) -> Table:
    """Opens a sheet from a seekable binary file; raises ValidationFailed (field "file") saying why not."""
    file_format = _format_of(source, file_name)
    encoding = None
    delimiter = ","
    size_hint = None
    if file_format == "csv":
        encoding = detect_encoding(source)
        first_line = next(_lines(source, encoding), "")
        delimiter = _delimiter(first_line)
        table = Table(file_name, "csv", encoding, [], 0, None, source, delimiter)
        raw: Iterator[tuple[int, Any]] = table._csv_rows()
    else:
        source.seek(0)
        sheet, _workbook = _open_sheet(source)
        try:
            # The <dimension> tag when the writer put one there; never a pass over the sheet to count.
            sheet.calculate_dimension()
            size_hint = sheet.max_row if isinstance(sheet.max_row, int) else None
        except ValueError:
            size_hint = None
        table = Table(file_name, "xlsx", None, [], 0, size_hint, source, _sheet=sheet)
        raw = table._xlsx_rows()
    found = _header_of(raw)
    raw.close()  # type: ignore[attr-defined]
    if found is None:
        raise refuse("the sheet is empty; the first row must name the columns (姓名, 手机号, ...)")
    header_row, values = found
    while values and values[-1] is None:
        values.pop()
    headers: list[str] = []
    for index, value in enumerate(values):
        text = cell_text(value) or f"column {_column_letter(index)}"
        if text in headers:
            raise refuse(f"the column {text!r} appears twice in the header row; rename one of them")
        headers.append(text)
    table.headers = headers
    table.header_row = header_row
    return table


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters
