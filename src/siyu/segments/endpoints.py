from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from sqlalchemy import select

from siyu.auth.dependencies import Authorize, ReadSession, WriteSession
from siyu.auth.principal import Principal
from siyu.auth.scopes import Scope
from siyu.contacts import service as contacts
from siyu.contacts.models import Contact
from siyu.contacts.schemas import ContactRead
from siyu.kit.schemas import Page, decode_cursor, encode_cursor
from siyu.segments import service
from siyu.segments.explain import explain_membership
from siyu.segments.models import SegmentMember
from siyu.segments.schemas import (
    ContactSegmentRead,
    ExplanationLineRead,
    MemberIds,
    RefreshRead,
    SegmentCreate,
    SegmentPreview,
    SegmentPreviewRequest,
    SegmentRead,
    SegmentUpdate,
    SizeDay,
)

router = APIRouter(tags=["segments"])

ReadSegments = Annotated[Principal, Depends(Authorize(Scope.segments_read))]
WriteSegments = Annotated[Principal, Depends(Authorize(Scope.segments_write))]
ReadContacts = Annotated[Principal, Depends(Authorize(Scope.contacts_read))]


@router.get("/segments", response_model=list[SegmentRead])
def list_segments(session: ReadSession, principal: ReadSegments) -> list[SegmentRead]:
    return [SegmentRead.model_validate(s) for s in service.list_segments(session, principal.workspace_id)]


@router.post("/segments", response_model=SegmentRead, status_code=status.HTTP_201_CREATED)
def create_segment(data: SegmentCreate, session: WriteSession, principal: WriteSegments) -> SegmentRead:
    segment = service.create_segment(session, principal, name=data.name, rule=data.rule, description=data.description)
    result = SegmentRead.model_validate(segment)
    session.commit()
    return result


@router.post("/segments/preview", response_model=SegmentPreview)
def preview_segment(data: SegmentPreviewRequest, session: ReadSession, principal: ReadSegments) -> SegmentPreview:
    """Count and sample of a rule now, without saving it (the builder's live count)."""
    found = service.preview(session, principal, data.rule, sample_size=data.sample_size)
    rows = list(session.scalars(select(Contact).where(Contact.id.in_(found.sample)).order_by(Contact.id.desc())))
    return SegmentPreview(count=found.count, sample=contacts.to_read(session, rows))


@router.get("/segments/{segment_id}", response_model=SegmentRead)
def get_segment(segment_id: int, session: ReadSession, principal: ReadSegments) -> SegmentRead:
    return SegmentRead.model_validate(service.get_segment(session, principal.workspace_id, segment_id))


@router.patch("/segments/{segment_id}", response_model=SegmentRead)
def update_segment(
    segment_id: int, data: SegmentUpdate, session: WriteSession, principal: WriteSegments
) -> SegmentRead:
    segment = service.update_segment(
        session, principal, segment_id, name=data.name, rule=data.rule, description=data.description
    )
    result = SegmentRead.model_validate(segment)
    session.commit()
    return result


@router.delete("/segments/{segment_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_segment(segment_id: int, session: WriteSession, principal: WriteSegments) -> Response:
    service.delete_segment(session, principal, segment_id)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/segments/{segment_id}/refresh", response_model=RefreshRead)
def refresh_segment(segment_id: int, session: WriteSession, principal: WriteSegments) -> RefreshRead:
    """Re-evaluates the whole segment now (membership is kept live anyway; this is for impatience and repair)."""
    segment = service.get_segment(session, principal.workspace_id, segment_id)
    moved = service.refresh(session, segment, service.context(session, principal.workspace_id))
    result = RefreshRead(entered=moved.entered, exited=moved.exited, member_count=segment.member_count)
    session.commit()
    return result


@router.get("/segments/{segment_id}/members", response_model=Page[ContactRead])
def list_members(
    segment_id: int,
    session: ReadSession,
    principal: ReadSegments,
    _contacts: ReadContacts,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Page[ContactRead]:
    segment = service.get_segment(session, principal.workspace_id, segment_id)
    after = int(decode_cursor(cursor, 1)[0]) if cursor else None
    ids = service.list_member_ids(session, segment, principal, after=after, limit=limit + 1)
    more = len(ids) > limit
    ids = ids[:limit]
    rows = list(session.scalars(select(Contact).where(Contact.id.in_(ids)).order_by(Contact.id)))
    return Page(items=contacts.to_read(session, rows), next_cursor=encode_cursor([ids[-1]]) if more else None)


@router.get("/segments/{segment_id}/member-ids", response_model=MemberIds)
def list_member_ids(
    segment_id: int,
    session: ReadSession,
    principal: ReadSegments,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> MemberIds:
    """The full member list, as contact ids in pages of up to 100,000."""
    segment = service.get_segment(session, principal.workspace_id, segment_id)
    after = int(decode_cursor(cursor, 1)[0]) if cursor else None
    ids = service.list_member_ids(session, segment, principal, after=after, limit=limit + 1)
    more = len(ids) > limit
    ids = ids[:limit]
    return MemberIds(items=ids, next_cursor=encode_cursor([ids[-1]]) if more else None)


@router.get("/segments/{segment_id}/history", response_model=list[SizeDay])
def size_history(
    segment_id: int, session: ReadSession, principal: ReadSegments, days: Annotated[int, Query(ge=1, le=366)] = 30
) -> list[SizeDay]:
    segment = service.get_segment(session, principal.workspace_id, segment_id)
    return [SizeDay.model_validate(row) for row in service.size_history(session, segment, days)]


@router.get("/contacts/{contact_id}/segments", response_model=list[ContactSegmentRead])
def contact_segments(
    contact_id: int, session: ReadSession, principal: ReadSegments, _contacts: ReadContacts
) -> list[ContactSegmentRead]:
    """The segments a contact is in, each with why: every condition of its rule and how it came out."""
    contact = contacts.get_contact(session, principal, contact_id)
    entered = dict(
        session.execute(
            select(SegmentMember.segment_id, SegmentMember.entered_at).where(SegmentMember.contact_id == contact.id)
        ).all()
    )
    result = []
    for segment in service.segments_of_contact(session, contact.id):
        why = explain_membership(session, principal.workspace_id, contact.id, segment)
        result.append(
            ContactSegmentRead(
                segment_id=segment.id,
                name=segment.name,
                entered_at=entered[segment.id],
                why=[ExplanationLineRead(depth=x.depth, text=x.text, matched=x.matched) for x in why.lines],
            )
        )
    return result
