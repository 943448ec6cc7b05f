from __future__ import annotations

import datetime as dt
from typing import Any

from siyu.jobs.models import JobStatus
from siyu.kit.schemas import ReadSchema


class JobRead(ReadSchema):
    id: int
    name: str
    payload: dict[str, Any]
    status: JobStatus
    run_at: dt.datetime
    attempts: int
    max_attempts: int
    dedupe_key: str | None
    last_error: str | None
    created_at: dt.datetime
    finished_at: dt.datetime | None
