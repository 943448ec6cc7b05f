from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field


class ImportRead(BaseModel):
    """What came of one import. `error_file` is where the rows that failed can be downloaded."""

    id: int
    status: str = Field(description="completed | refused (bad rows and no skipping: nothing was imported)")
    file_name: str
    file_format: str = Field(description="xlsx | csv")
    encoding: str | None = Field(description="csv only: utf-8, utf-8-sig or gb18030 (GBK)")
    skip_bad_rows: bool
    rows: int = Field(description="data rows read (empty rows are not counted)")
    created: int = Field(description="new contacts")
    updated: int = Field(description="existing contacts the file named (found by identity)")
    skipped: int = Field(description="bad rows left out (skip_bad_rows)")
    errors: int = Field(description="bad rows")
    tags_created: int
    mapping: dict[str, str | None]
    staff_id: int | None
    api_key_id: int | None
    created_at: dt.datetime
    error_file: str | None = Field(description="GET this (?format=csv|xlsx) for the bad rows with their reasons")


class PreviewRow(BaseModel):
    row: int = Field(description="the row number Excel shows (the header is row 1)")
    values: dict[str, Any]
    existing_contact_ids: list[int] = Field(description="contacts this row's identities already name")
    problems: list[str]


class ImportPreview(BaseModel):
    file_name: str
    file_format: str
    encoding: str | None
    headers: list[str]
    header_row: int
    guessed_mapping: dict[str, str | None]
    mapping: dict[str, str | None] = Field(description="the guess with the mapping you sent laid over it")
    rows: list[PreviewRow]
