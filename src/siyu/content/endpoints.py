"""/api/v1/content: the library, content tags, pushes with tracked links, and content portraits."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.auth.dependencies import Authorize, ReadSession, WriteSession
from siyu.auth.principal import Principal
from siyu.auth.scopes import Scope
from siyu.console.csrf import secret_key
from siyu.content import repository, service
from siyu.content.models import ContentItem, ContentKind, ContentPush, ContentStatus, ContentTagGroup
from siyu.content.schemas import (
    ContentCreate,
    ContentRead,
    ContentTagCreate,
    ContentTagGroupCreate,
    ContentTagGroupRead,
    ContentTagRead,
    ContentUpdate,
    ContentVersionRead,
    LinkRead,
    PortraitRead,
    PortraitTag,
    PushCreate,
    PushCreated,
    PushRead,
)
from siyu.errors import NotFound
from siyu.kit.schemas import Page, decode_cursor, encode_cursor
from siyu.segments import service as segments
from siyu.segments.models import SegmentMember

router = APIRouter(tags=["content"])

ReadContent = Annotated[Principal, Depends(Authorize(Scope.content_read))]
WriteContent = Annotated[Principal, Depends(Authorize(Scope.content_write))]


def link_secret(request: Request) -> bytes:
    return secret_key(request.app.state.settings)


def link_url(request: Request, token: str) -> str:
    return f"{str(request.base_url).rstrip('/')}/r/{token}"


def to_read(session: Session, items: list[ContentItem]) -> list[ContentRead]:
    tags = service.tags_of(session, [i.id for i in items])
    out = []
    for item in items:
        read = ContentRead.model_validate(item)
        read.tags = [ContentTagRead.model_validate(t) for t in tags.get(item.id, [])]
        out.append(read)
    return out


def _push_created(request: Request, push: ContentPush, links: list[service.Link]) -> PushCreated:
    return PushCreated(
        **PushRead.model_validate(push).model_dump(),
        links=[
            LinkRead(
                contact_id=link.contact_id, group_id=link.group_id, token=link.token, url=link_url(request, link.token)
            )
            for link in links
        ],
    )


# --- content tags (before /content/{content_id}) --------------------------------------------------


@router.get("/content/tag-groups", response_model=list[ContentTagGroupRead])
def list_tag_groups(session: ReadSession, principal: ReadContent) -> list[ContentTagGroupRead]:
    return [
        ContentTagGroupRead(id=g.id, name=g.name, tags=[ContentTagRead.model_validate(t) for t in tags])
        for g, tags in service.list_tag_groups(session, principal.workspace_id)
    ]


@router.post("/content/tag-groups", response_model=ContentTagGroupRead, status_code=status.HTTP_201_CREATED)
def create_tag_group(
    data: ContentTagGroupCreate, session: WriteSession, principal: WriteContent
) -> ContentTagGroupRead:
    group = service.create_tag_group(session, principal, data.name)
    result = ContentTagGroupRead(id=group.id, name=group.name, tags=[])
    session.commit()
    return result


@router.delete("/content/tag-groups/{group_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_tag_group(group_id: int, session: WriteSession, principal: WriteContent) -> Response:
    service.delete_tag_group(session, principal, group_id)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/content/tag-groups/{group_id}/tags", response_model=ContentTagRead, status_code=status.HTTP_201_CREATED)
def create_tag(group_id: int, data: ContentTagCreate, session: WriteSession, principal: WriteContent) -> ContentTagRead:
    tag = service.create_tag(session, principal, group_id, data.name)
    result = ContentTagRead.model_validate(tag)
    session.commit()
    return result


@router.delete("/content/tags/{tag_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_tag(tag_id: int, session: WriteSession, principal: WriteContent) -> Response:
    service.delete_tag(session, principal, tag_id)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- items -----------------------------------------------------------------------------------------


@router.get("/content", response_model=Page[ContentRead])
def list_content(
    session: ReadSession,
    principal: ReadContent,
    kind: ContentKind | None = None,
    status: ContentStatus | None = None,
    tag_id: Annotated[list[int] | None, Query(description="content tag ids; several: items with all")] = None,
    q: Annotated[str | None, Query(max_length=200, description="words that must all be in the title")] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page[ContentRead]:
    before = int(decode_cursor(cursor, 1)[0]) if cursor else None
    items = repository.list_items(
        session,
        principal.workspace_id,
        kind=kind,
        status=status,
        tag_ids=tag_id or [],
        q=q,
        before=before,
        limit=limit + 1,
    )
    more = len(items) > limit
    items = items[:limit]
    return Page(items=to_read(session, items), next_cursor=encode_cursor([items[-1].id]) if more else None)


@router.post("/content", response_model=ContentRead, status_code=status.HTTP_201_CREATED)
def create_content(data: ContentCreate, session: WriteSession, principal: WriteContent) -> ContentRead:
    item = service.create_item(session, principal, data)
    result = to_read(session, [item])[0]
    session.commit()
    return result


@router.get("/content/{content_id}", response_model=ContentRead)
def get_content(content_id: int, session: ReadSession, principal: ReadContent) -> ContentRead:
    return to_read(session, [service.get_item(session, principal.workspace_id, content_id)])[0]


@router.patch("/content/{content_id}", response_model=ContentRead)
def update_content(content_id: int, data: ContentUpdate, session: WriteSession, principal: WriteContent) -> ContentRead:
    item = service.update_item(session, principal, content_id, data)
    result = to_read(session, [item])[0]
    session.commit()
    return result


@router.post("/content/{content_id}/archive", response_model=ContentRead)
def archive_content(content_id: int, session: WriteSession, principal: WriteContent) -> ContentRead:
    item = service.archive_item(session, principal, content_id)
    result = to_read(session, [item])[0]
    session.commit()
    return result


@router.get("/content/{content_id}/versions", response_model=list[ContentVersionRead])
def list_versions(content_id: int, session: ReadSession, principal: ReadContent) -> list[ContentVersionRead]:
    item = service.get_item(session, principal.workspace_id, content_id)
    return [ContentVersionRead.model_validate(v) for v in service.list_versions(session, item)]


# --- pushes ----------------------------------------------------------------------------------------


@router.post("/content/{content_id}/pushes", response_model=PushCreated, status_code=status.HTTP_201_CREATED)
def create_push(
    content_id: int, data: PushCreate, request: Request, session: WriteSession, principal: WriteContent
) -> PushCreated:
    """Records a push and returns its tracked links: one per contact (contact_ids or a segment's
    members), or one for a group. Send each person their own link."""
    push, links = service.create_push(session, principal, content_id, data, link_secret(request))
    result = _push_created(request, push, links)
    session.commit()
    return result


@router.get("/content/{content_id}/pushes", response_model=list[PushRead])
def list_pushes(content_id: int, session: ReadSession, principal: ReadContent) -> list[PushRead]:
    item = service.get_item(session, principal.workspace_id, content_id)
    return [PushRead.model_validate(p) for p in service.list_pushes(session, item)]


@router.get("/content/{content_id}/pushes/{push_id}", response_model=PushCreated)
def get_push(
    content_id: int, push_id: int, request: Request, session: ReadSession, principal: ReadContent
) -> PushCreated:
    """A push and its links again (they are derived, the same every time)."""
    push = service.get_push(session, principal.workspace_id, push_id)
    if push.content_id != content_id:
        raise NotFound(f"push {push_id} is not a push of content item {content_id}")
    links = service.push_links(link_secret(request), push, service.push_recipients(session, push))
    return _push_created(request, push, links)


# --- portrait --------------------------------------------------------------------------------------


@router.get("/content/{content_id}/portrait", response_model=PortraitRead)
def content_portrait(
    content_id: int,
    session: ReadSession,
    principal: ReadContent,
    segment_id: Annotated[int | None, Query(description="the same figures among this segment's members")] = None,
) -> PortraitRead:
    item = service.get_item(session, principal.workspace_id, content_id)
    return build_portrait(session, principal, item, segment_id)


def build_portrait(session: Session, principal: Principal, item: ContentItem, segment_id: int | None) -> PortraitRead:
    members = None
    if segment_id is not None:
        principal.require(Scope.segments_read)
        segment = segments.get_segment(session, principal.workspace_id, segment_id)
        members = select(SegmentMember.contact_id).where(SegmentMember.segment_id == segment.id)
    figures = service.portrait(session, item, members)
    tags = service.tags_of(session, [item.id]).get(item.id, [])
    groups: dict[int, str] = {
        group_id: name
        for group_id, name in session.execute(
            select(ContentTagGroup.id, ContentTagGroup.name).where(ContentTagGroup.id.in_({t.group_id for t in tags}))
        )
    }
    return PortraitRead(
        content_id=item.id,
        segment_id=segment_id,
        tags=[PortraitTag(id=t.id, group=groups.get(t.group_id, ""), name=t.name) for t in tags],
        pushes=figures.pushes,
        recipients=figures.recipients,
        views=figures.views,
        unique_viewers=figures.unique_viewers,
        anonymous_group_views=figures.anonymous_group_views,
        favorites=figures.favorites,
        comments=figures.comments,
        shares=figures.shares,
        converted=figures.converted,
        conversion_rate=figures.conversion_rate,
        open_rate=figures.open_rate,
    )
