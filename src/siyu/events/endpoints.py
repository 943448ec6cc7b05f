from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from siyu.auth.dependencies import Authorize, ReadSession
from siyu.auth.principal import Principal
from siyu.auth.scopes import Scope
from siyu.config import get_settings
from siyu.contacts.service import get_contact
from siyu.errors import PayloadTooLarge, validation_error
from siyu.events import inbox, service
from siyu.events.schemas import EventBatch, EventRead, InboxBacklog, IngestBatchRead
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
    response_model=IngestBatchRead,
    status_code=202,
    summary="Send a batch of events",
    responses={200: {"description": "stored at once (wait=true)", "model": IngestBatchRead}},
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": EventBatch.model_json_schema()}}}},
)
async def ingest_events(
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(Authorize(Scope.events_write))],
    wait: Annotated[
        bool,
        Query(description="store the batch before answering (200 with its outcome) instead of queueing it (202)"),
    ] = False,
) -> IngestBatchRead:
    """Up to 1,000 events per call. All-or-nothing: a bad event refuses the batch (422, each problem
    listed with its index, field and reason) and nothing is kept. A 202 means the batch is durably
    received and will be stored by a worker within seconds; look it up with GET /events/batches/{id}.
    Replaying a batch adds nothing."""
    settings = get_settings()
    body = await _read_limited(request, settings.events_max_body_bytes)
    events = service.parse_batch(body, max_events=settings.events_max_batch)
    database = request.app.state.database
    workspace_id = principal.workspace_id

    def check_then_keep() -> IngestBatchRead:
        # Checking needs no lock; only keeping (or, with wait, storing) writes.
        with database.reading() as connection:
            tz = service.workspace_timezone(connection, workspace_id)
            now = utcnow()
            items = service.prepare(events, tz=tz, region=settings.default_phone_region, now=now)
            named = {i.contact_id for i in items if i.contact_id is not None}
            service.live_contact_ids(connection, workspace_id, named)
        if not wait:
            return inbox.pending_read(inbox.accept(database, workspace_id, items, received_at=now))
        inbox.drain_workspace(database, workspace_id)  # what this sender was told 202 before goes first
        with database.transaction() as session:
            stored = service.store(session, workspace_id, items, now=now)
            return inbox.record_stored(session, workspace_id, inbox.new_received(len(items), now), stored)

    result = await run_in_threadpool(check_then_keep)
    if wait:
        response.status_code = 200
    return result


@router.get("/events/inbox", response_model=InboxBacklog, summary="Received batches still waiting to be stored")
def get_inbox_backlog(
    request: Request, principal: Annotated[Principal, Depends(Authorize(Scope.events_read))]
) -> InboxBacklog:
    """For monitoring: a backlog that keeps growing means no `siyu worker` is storing events."""
    waiting = inbox.backlog(request.app.state.database, principal.workspace_id)
    return InboxBacklog(batches=waiting.batches, events=waiting.events, oldest_received_at=waiting.oldest_received_at)


@router.get("/events/batches/{batch_id}", response_model=IngestBatchRead, summary="What became of a batch you sent")
def get_batch(
    batch_id: str,
    request: Request,
    session: ReadSession,
    principal: Annotated[Principal, Depends(Authorize(Scope.events_write))],
) -> IngestBatchRead:
    """`pending` while it waits for a worker; then `stored` with the counts and sequence numbers, or
    `failed` with the reason (for example a contact id deleted after the batch was received)."""
    return inbox.get_batch(request.app.state.database, session, principal.workspace_id, batch_id)


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
