from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status

from siyu.auth.dependencies import Authorize, ReadSession, WriteSession
from siyu.auth.principal import Principal
from siyu.auth.scopes import Scope
from siyu.config import get_settings
from siyu.contacts import attributes as attrs
from siyu.contacts import filters, repository, service
from siyu.contacts.filters import parse_filter, query_filter_params
from siyu.contacts.schemas import (
    AttributeDefinitionCreate,
    AttributeDefinitionRead,
    BulkOwnerChange,
    BulkOwnerResult,
    ContactCreate,
    ContactRead,
    ContactUpdate,
    IdentityIn,
    MergeRead,
    MergeRequest,
    NoteCreate,
    NoteRead,
    TimelineEntry,
)
from siyu.contacts.timeline import timeline
from siyu.kit.schemas import Page, decode_cursor, encode_cursor

router = APIRouter(tags=["contacts"])

ReadContacts = Annotated[Principal, Depends(Authorize(Scope.contacts_read))]
WriteContacts = Annotated[Principal, Depends(Authorize(Scope.contacts_write))]
PAGING = frozenset({"cursor", "limit", "sort"})


def _region() -> str:
    return get_settings().default_phone_region


@router.get("/contacts", response_model=Page[ContactRead], summary="List contacts, newest first")
def list_contacts(
    request: Request,
    session: ReadSession,
    principal: ReadContacts,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    sort: Annotated[Literal["newest", "oldest"], Query(description="creation order")] = "newest",
    q: Annotated[
        str | None,
        Query(description="search: any identity exactly (phone, email, ids...), name prefix, or note text"),
    ] = None,
    tag: Annotated[list[int] | None, Query(description="tag id; repeat for all of several")] = None,
    owner_id: int | None = None,
    unowned: bool | None = None,
    source_channel: str | None = None,
    identity: Annotated[str | None, Query(description="type:value, or a type alone (has such an identity)")] = None,
    created_after: str | None = None,
    created_before: str | None = None,
) -> Page[ContactRead]:
    """Filters combine with AND. Custom and standard attributes filter as `attr.<name>=value`."""
    flt = parse_filter(query_filter_params(request.query_params, skip=PAGING), region=_region())
    before_id = int(decode_cursor(cursor, 1)[0]) if cursor else None
    defs = attrs.definitions(session, principal.workspace_id)
    rows = repository.list_page(
        session,
        principal.workspace_id,
        flt,
        principal.owned_contacts_only,
        defs,
        before_id=before_id,
        limit=limit + 1,
        oldest_first=sort == "oldest",
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(
        items=service.to_read(session, rows), next_cursor=encode_cursor([rows[-1].id]) if more and rows else None
    )


@router.post("/contacts", response_model=ContactRead, status_code=status.HTTP_201_CREATED)
def create_contact(data: ContactCreate, session: WriteSession, principal: WriteContacts) -> ContactRead:
    contact = service.create_contact(session, principal, data, region=_region())
    result = service.to_read(session, [contact])[0]
    session.commit()
    return result


@router.post(
    "/contacts/bulk/owner", response_model=BulkOwnerResult, summary="Hand many contacts to another staff member"
)
def bulk_owner(data: BulkOwnerChange, session: WriteSession, principal: WriteContacts) -> BulkOwnerResult:
    """Applies to the listed ids, or to every contact a filter matches (the filters of GET /contacts),
    e.g. `{"selection": {"filter": {"owner_id": "7"}}, "owner_id": 9, "reason": "离职继承"}`.
    Operators and admins only; each change shows on the contact's timeline."""
    selection = filters.selection_query(
        session,
        principal,
        contact_ids=data.selection.contact_ids,
        filter_params=data.selection.filter,
        region=_region(),
    )
    matched, changed = service.change_owner(session, principal, selection, data.owner_id, data.reason)
    session.commit()
    return BulkOwnerResult(matched=matched, changed=changed)


@router.get("/contacts/lookup", response_model=ContactRead, summary="Find the contact holding an identity")
def lookup_contact(
    session: ReadSession,
    principal: ReadContacts,
    type: Annotated[str, Query(description="identity type, e.g. phone")],
    value: str,
) -> ContactRead:
    contact = service.find_by_identity(session, principal, type, value, region=_region())
    return service.to_read(session, [contact])[0]


@router.get(
    "/contacts/{contact_id}", response_model=ContactRead, summary="Get a contact (a merged id gives its survivor)"
)
def get_contact(contact_id: int, session: ReadSession, principal: ReadContacts) -> ContactRead:
    return service.to_read(session, [service.get_contact(session, principal, contact_id)])[0]


@router.patch("/contacts/{contact_id}", response_model=ContactRead)
def update_contact(
    contact_id: int, data: ContactUpdate, session: WriteSession, principal: WriteContacts
) -> ContactRead:
    contact = service.update_contact(session, principal, contact_id, data)
    result = service.to_read(session, [contact])[0]
    session.commit()
    return result


@router.post("/contacts/{contact_id}/identities", response_model=ContactRead, status_code=status.HTTP_201_CREATED)
def add_identity(contact_id: int, data: IdentityIn, session: WriteSession, principal: WriteContacts) -> ContactRead:
    contact = service.add_identity(session, principal, contact_id, data, region=_region())
    result = service.to_read(session, [contact])[0]
    session.commit()
    return result


@router.delete("/contacts/{contact_id}/identities/{identity_type}/{value}", status_code=status.HTTP_204_NO_CONTENT)
def remove_identity(
    contact_id: int, identity_type: str, value: str, session: WriteSession, principal: WriteContacts
) -> Response:
    service.remove_identity(session, principal, contact_id, identity_type, value, region=_region())
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/contacts/{contact_id}/merge", response_model=MergeRead, summary="Merge another contact into this one")
def merge_contact(contact_id: int, data: MergeRequest, session: WriteSession, principal: WriteContacts) -> MergeRead:
    record = service.merge(session, principal, contact_id, data.other_contact_id, data.reason)
    result = MergeRead.model_validate(record)
    session.commit()
    return result


@router.get("/contacts/{contact_id}/notes", response_model=list[NoteRead])
def list_notes(contact_id: int, session: ReadSession, principal: ReadContacts) -> list[NoteRead]:
    return [NoteRead.model_validate(n) for n in service.list_notes(session, principal, contact_id)]


@router.post("/contacts/{contact_id}/notes", response_model=NoteRead, status_code=status.HTTP_201_CREATED)
def add_note(contact_id: int, data: NoteCreate, session: WriteSession, principal: WriteContacts) -> NoteRead:
    note = NoteRead.model_validate(service.add_note(session, principal, contact_id, data))
    session.commit()
    return note


@router.get("/contacts/{contact_id}/timeline", response_model=Page[TimelineEntry])
def get_timeline(
    contact_id: int,
    session: ReadSession,
    principal: ReadContacts,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[TimelineEntry]:
    """Events, notes, tag changes and merges, newest first."""
    contact = service.get_contact(session, principal, contact_id)
    entries, next_cursor = timeline(session, contact.id, cursor=cursor, limit=limit)
    return Page(items=entries, next_cursor=next_cursor)


@router.get("/attributes", response_model=list[AttributeDefinitionRead], tags=["attributes"])
def list_attributes(
    session: ReadSession, principal: Annotated[Principal, Depends(Authorize(Scope.attributes_read))]
) -> list[AttributeDefinitionRead]:
    defs = attrs.definitions(session, principal.workspace_id).values()
    return [AttributeDefinitionRead.model_validate(d) for d in sorted(defs, key=lambda d: d.id)]


@router.post(
    "/attributes", response_model=AttributeDefinitionRead, status_code=status.HTTP_201_CREATED, tags=["attributes"]
)
def create_attribute(
    data: AttributeDefinitionCreate,
    session: WriteSession,
    principal: Annotated[Principal, Depends(Authorize(Scope.attributes_write))],
) -> AttributeDefinitionRead:
    result = AttributeDefinitionRead.model_validate(attrs.create_definition(session, principal.workspace_id, data))
    session.commit()
    return result
