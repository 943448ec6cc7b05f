"""Sheets uploaded on the console's import page, kept between the preview and the import.

The console previews a file, the operator adjusts the mapping, then imports it: the file must survive
between those requests without being sent twice. It is kept on the server's disk under
`<var dir>/uploads/` as `<token>.sheet` plus `<token>.json` (original file name, workspace, staff
member); the token is 32 random URL-safe characters and only opens the file for the same workspace and
staff member. A completed import deletes the file; a refused one keeps it so that the operator can
import it again skipping the bad rows. Whatever is older than an hour is deleted whenever a file is
stored or opened. With several servers, they must share the var directory (or keep a console user on one).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from siyu.errors import NotFound, PayloadTooLarge

MAX_AGE_SECONDS = 3600
CHUNK = 1 << 20
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32}$")


@dataclass(frozen=True)
class StoredUpload:
    token: str
    path: Path
    file_name: str


class UploadStore:
    def __init__(self, directory: Path, max_age_seconds: int = MAX_AGE_SECONDS) -> None:
        self.directory = directory
        self.max_age_seconds = max_age_seconds

    def _paths(self, token: str) -> tuple[Path, Path]:
        return self.directory / f"{token}.sheet", self.directory / f"{token}.json"

    def save(self, source: IO[bytes], file_name: str, *, workspace_id: int, staff_id: int, max_bytes: int) -> str:
        """Copies the upload to disk; PayloadTooLarge (nothing kept) when it is over max_bytes."""
        self.sweep()
        self.directory.mkdir(parents=True, exist_ok=True)
        token = secrets.token_urlsafe(24)
        sheet, meta = self._paths(token)
        size = 0
        try:
            with os.fdopen(os.open(sheet, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
                source.seek(0)
                while chunk := source.read(CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise PayloadTooLarge(f"the file is over {max_bytes // (1024 * 1024)} MB; split it")
                    out.write(chunk)
            # Written last: a token whose .json exists has its whole file.
            info = {"file_name": file_name, "workspace_id": workspace_id, "staff_id": staff_id}
            with os.fdopen(os.open(meta, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as out:
                json.dump(info, out, ensure_ascii=False)
        except BaseException:
            self.delete(token)
            raise
        return token

    def open(self, token: str, *, workspace_id: int, staff_id: int) -> StoredUpload:
        """The stored upload, or NotFound when it is unknown, expired, deleted or someone else's."""
        self.sweep()
        gone = NotFound("the uploaded file is no longer kept (uploads are kept for an hour): upload it again")
        if not _TOKEN.match(token):
            raise gone
        sheet, meta = self._paths(token)
        try:
            info = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise gone from None
        if info.get("workspace_id") != workspace_id or info.get("staff_id") != staff_id or not sheet.exists():
            raise gone
        return StoredUpload(token, sheet, str(info.get("file_name") or "upload"))

    def delete(self, token: str) -> None:
        if _TOKEN.match(token):
            for path in self._paths(token):
                path.unlink(missing_ok=True)

    def sweep(self) -> None:
        """Deletes the files older than max_age_seconds."""
        if not self.directory.is_dir():
            return
        limit = time.time() - self.max_age_seconds
        for path in self.directory.iterdir():
            if path.suffix in (".sheet", ".json"):
                with contextlib.suppress(OSError):  # another process may have deleted it already
                    if path.stat().st_mtime < limit:
                        path.unlink()
