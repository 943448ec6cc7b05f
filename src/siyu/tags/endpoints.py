from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from siyu.auth.dependencies import Authorize, ReadSession, WriteSession
from siyu.auth.principal import Principal
from siyu.auth.scopes import Scope
from siyu.config import get_settings
from siyu.contacts import filters
from siyu.contacts import service as contacts
from siyu.contacts.models import Contact
from siyu.contacts.schemas import ContactRead
from siyu.tags import service
from siyu.tags.schemas import (
    BulkTagsChange,
    BulkTagsResult,
    ContactSelection,
    ContactTagsChange,
    TagChangeRead,
    TagCreate,
    TagGroupCreate,
    TagGroupRead,
    TagGroupUpdate,
    TagMerge,
    TagMergeResult,
    TagRead,
    TagUpdate,
)

router = APIRouter(tags=["tags"])

ReadTags = Annotated[Principal, Depends(Authorize(Scope.tags_read))]
WriteTags = Annotated[Principal, Depends(Authorize(Scope.tags_write))]
TagContacts = Annotated[Principal, Depends(Authorize(Scope.contacts_write))]


class TagWithCount(TagRead):
    contacts: int


@router.get("/tag-groups", response_model=list[TagGroupRead])
def list_groups(session: ReadSession, principal: ReadTags) -> list[TagGroupRead]:
    return [TagGroupRead.model_validate(g) for g in service.list_groups(session, principal.workspace_id)]


@router.post("/tag-groups", response_model=TagGroupRead, status_code=status.HTTP_201_CREATED)
def create_group(data: TagGroupCreate, session: WriteSession, principal: WriteTags) -> TagGroupRead:
    result = TagGroupRead.model_validate(service.create_group(session, principal.workspace_id, data))
    session.commit()
    return result


@router.patch("/tag-groups/{group_id}", response_model=TagGroupRead)
def update_group(group_id: int, data: TagGroupUpdate, session: WriteSession, principal: WriteTags) -> TagGroupRead:
    result = TagGroupRead.model_validate(service.update_group(session, principal.workspace_id, group_id, data))
    session.commit()
    return result


@router.get("/tags", response_model=list[TagWithCount], summary="Tags with how many contacts hold each")
def list_tags(session: ReadSession, principal: ReadTags, group_id: int | None = None) -> list[TagWithCount]:
    counts = service.counts(session, principal.workspace_id)
    return [
        TagWithCount(id=t.id, group_id=t.group_id, name=t.name, created_at=t.created_at, contacts=counts.get(t.id, 0))
        for t in service.list_tags(session, principal.workspace_id, group_id)
    ]


@router.post("/tags", response_model=TagRead, status_code=status.HTTP_201_CREATED)
def create_tag(data: TagCreate, session: WriteSession, principal: WriteTags) -> TagRead:
    result = TagRead.model_validate(service.create_tag(session, principal.workspace_id, data))
    session.commit()
    return result


@router.patch("/tags/{tag_id}", response_model=TagRead)
def update_tag(tag_id: int, data: TagUpdate, session: WriteSession, principal: WriteTags) -> TagRead:
    result = TagRead.model_validate(service.update_tag(session, principal.workspace_id, tag_id, data))
    session.commit()
    return result


@router.delete("/tags/{tag_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_tag(
    tag_id: int,
    session: WriteSession,
    principal: WriteTags,
    force: Annotated[bool, Query(description="also remove it from the contacts holding it")] = False,
) -> Response:
    service.delete_tag(session, principal, tag_id, force=force)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/tags/{tag_id}/merge", response_model=TagMergeResult, summary="Merge a tag into another")
def merge_tag(tag_id: int, data: TagMerge, session: WriteSession, principal: WriteTags) -> TagMergeResult:
    """Every contact holding this tag gets `into_tag_id` instead; the changes are recorded in each
    contact's tag history, and this tag is deleted."""
    target, held, added = service.merge_tags(session, principal, tag_id, data.into_tag_id)
    result = TagMergeResult(into=TagRead.model_validate(target), contacts=held, added=added)
    session.commit()
    return result


def selection_query(session: Session, principal: Principal, selection: ContactSelection) -> Select[Any]:
    return filters.selection_query(
        session,
        principal,
        contact_ids=selection.contact_ids,
        filter_params=selection.filter,
        region=get_settings().default_phone_region,
    )


# Declared before /contacts/{contact_id}/tags so "bulk" is not read as a contact id.
@router.post("/contacts/bulk/tags", response_model=BulkTagsResult, summary="Tag or untag many contacts at once")
def bulk_tags(data: BulkTagsChange, session: WriteSession, principal: TagContacts) -> BulkTagsResult:
    """Applies to the listed ids, or to every contact a filter matches (the filters of GET /contacts)."""
    query = selection_query(session, principal, data.selection)
    matched = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    added, removed = service.change_tags(
        session, principal, query, add=data.add, remove=data.remove, reason=data.reason
    )
    session.commit()
    return BulkTagsResult(matched=matched, added=added, removed=removed)


@router.post("/contacts/{contact_id}/tags", response_model=ContactRead, summary="Add and remove tags on one contact")
def change_contact_tags(
    contact_id: int, data: ContactTagsChange, session: WriteSession, principal: TagContacts
) -> ContactRead:
    contact = contacts.get_contact(session, principal, contact_id)
    only_this = select(Contact.id).where(Contact.id == contact.id)
    service.change_tags(session, principal, only_this, add=data.add, remove=data.remove, reason=data.reason)
    result = contacts.to_read(session, [contact])[0]
    session.commit()
    return result


@router.get("/contacts/{contact_id}/tag-history", response_model=list[TagChangeRead])
def tag_history(
    contact_id: int,
    session: ReadSession,
    principal: Annotated[Principal, Depends(Authorize(Scope.contacts_read))],
) -> list[TagChangeRead]:
    contact = contacts.get_contact(session, principal, contact_id)
    return [TagChangeRead.model_validate(c) for c in service.history(session, contact.id)]
