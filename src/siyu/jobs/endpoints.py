"""Read-only view of a workspace's background jobs: what is queued, what failed and why."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from siyu.auth.dependencies import Authorize, ReadSession
from siyu.auth.principal import Principal
from siyu.auth.scopes import Scope
from siyu.jobs.models import Job, JobStatus
from siyu.jobs.schemas import JobRead
from siyu.kit.repository import get_in_workspace
from siyu.kit.schemas import Page, decode_cursor, encode_cursor

router = APIRouter(tags=["jobs"])

ReadJobs = Annotated[Principal, Depends(Authorize(Scope.jobs_read))]


@router.get("/jobs", response_model=Page[JobRead], summary="List this workspace's jobs, newest first")
def list_jobs(
    session: ReadSession,
    principal: ReadJobs,
    status: JobStatus | None = None,
    name: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[JobRead]:
    q = select(Job).where(Job.workspace_id == principal.workspace_id)
    if status is not None:
        q = q.where(Job.status == status)
    if name is not None:
        q = q.where(Job.name == name)
    if cursor:
        q = q.where(Job.id < int(decode_cursor(cursor, 1)[0]))
    rows = list(session.scalars(q.order_by(Job.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(
        items=[JobRead.model_validate(r) for r in rows],
        next_cursor=encode_cursor([rows[-1].id]) if more and rows else None,
    )


@router.get("/jobs/{job_id}", response_model=JobRead)
def get_job(job_id: int, session: ReadSession, principal: ReadJobs) -> JobRead:
    return JobRead.model_validate(get_in_workspace(session, Job, principal.workspace_id, job_id, "job"))
