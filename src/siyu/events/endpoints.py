from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from siyu.auth.dependencies import Authorize, ReadSession
from siyu.auth.principal import Principal
from siyu.auth.scopes import Scope
from siyu.config import get_settings
from siyu.contacts.service import get_contact
from siyu.errors import PayloadTooLarge, validation_error
from siyu.events import service
from siyu.events.schemas import EventBatch, EventRead, IngestResult
from siyu.kit.time import utcnow

router = APIRouter(tags=["events"])


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body is {int(declared)} bytes; the limit is {limit} bytes: send smaller batches")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body is over the limit of {limit} bytes: send smaller batches")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/events",
    response_model=IngestResult,
    summary="Send a batch of events",
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": EventBatch.model_json_schema()}}}},
)
async def ingest_events(
    request: Request,
    principal: Annotated[Principal, Depends(Authorize(Scope.events_write))],
) -> IngestResult:
    """Up to 1,000 events per call. All-or-nothing: a bad event refuses the batch (422, each problem
    listed with its index, field and reason) and nothing is stored. Answered only after the batch is
    durably committed. Replaying a batch adds nothing."""
    settings = get_settings()
    body = await _read_limited(request, settings.events_max_body_bytes)
    events = service.parse_batch(body, max_events=settings.events_max_batch)
    database = request.app.state.database

    def check_then_write() -> IngestResult:
        # Checking needs no lock; only storing runs in the write transaction (one writer on SQLite).
        with database.transaction(write=False) as session:
            tz = service.workspace_timezone(session, principal.workspace_id)
        now = utcnow()
        items = service.prepare(events, tz=tz, region=settings.default_phone_region, now=now)
        with database.transaction() as session:
            return service.store(session, principal.workspace_id, items, now=now)

    return await run_in_threadpool(check_then_write)


@router.get("/events", response_model=list[EventRead], summary="Read events in sequence order")
def list_events(
    session: ReadSession,
    principal: Annotated[Principal, Depends(Authorize(Scope.events_read))],
    after_seq: Annotated[int | None, Query(description="only events after this sequence number")] = None,
    contact_id: int | None = None,
    type: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[EventRead]:
    if contact_id is not None:
        contact_id = get_contact(session, principal, contact_id).id
    elif principal.owned_contacts_only is not None:
        raise validation_error("contact_id", "a consultant reads events one contact at a time; give contact_id")
    return service.list_events(
        session, principal.workspace_id, after_seq=after_seq, contact_id=contact_id, type=type, limit=limit
    )
