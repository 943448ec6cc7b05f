"""/api/v1/smart-tags: rules that tag contacts by segment rule or by keywords in their messages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from siyu.auth.dependencies import Authorize, ReadSession, WriteSession
from siyu.auth.principal import Principal
from siyu.auth.scopes import Scope
from siyu.smarttags import service
from siyu.smarttags.schemas import (
    KeywordTest,
    KeywordTestResult,
    SmartTagCreate,
    SmartTagRead,
    SmartTagRunResult,
    SmartTagUpdate,
)

router = APIRouter(tags=["smart tags"])

ReadTags = Annotated[Principal, Depends(Authorize(Scope.tags_read))]
WriteTags = Annotated[Principal, Depends(Authorize(Scope.tags_write))]


@router.get("/smart-tags", response_model=list[SmartTagRead])
def list_smart_tags(session: ReadSession, principal: ReadTags) -> list[SmartTagRead]:
    return [SmartTagRead.model_validate(r) for r in service.list_smart_tags(session, principal.workspace_id)]


@router.post("/smart-tags", response_model=SmartTagRead, status_code=status.HTTP_201_CREATED)
def create_smart_tag(data: SmartTagCreate, session: WriteSession, principal: WriteTags) -> SmartTagRead:
    """Saves a smart tag. Rule-based ones apply on the next pipeline run (or now, with .../run);
    keyword ones apply to messages received from now on."""
    result = SmartTagRead.model_validate(service.create_smart_tag(session, principal, data))
    session.commit()
    return result


# Declared before /smart-tags/{smart_tag_id}/... so "keywords" is never read as an id.
@router.post(
    "/smart-tags/keywords/test",
    response_model=KeywordTestResult,
    summary="Which keyword smart tags a message would trigger, and its words as jieba cuts them",
)
def test_keywords(data: KeywordTest, session: ReadSession, principal: ReadTags) -> KeywordTestResult:
    return service.try_keywords(session, principal.workspace_id, data.text, data.keywords)


@router.get("/smart-tags/{smart_tag_id}", response_model=SmartTagRead)
def get_smart_tag(smart_tag_id: int, session: ReadSession, principal: ReadTags) -> SmartTagRead:
    return SmartTagRead.model_validate(service.get_smart_tag(session, principal.workspace_id, smart_tag_id))


@router.patch("/smart-tags/{smart_tag_id}", response_model=SmartTagRead)
def update_smart_tag(
    smart_tag_id: int, data: SmartTagUpdate, session: WriteSession, principal: WriteTags
) -> SmartTagRead:
    result = SmartTagRead.model_validate(service.update_smart_tag(session, principal, smart_tag_id, data))
    session.commit()
    return result


@router.delete("/smart-tags/{smart_tag_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_smart_tag(smart_tag_id: int, session: WriteSession, principal: WriteTags) -> Response:
    """Deletes the rule; the tags it put on stay."""
    service.delete_smart_tag(session, principal.workspace_id, smart_tag_id)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/smart-tags/{smart_tag_id}/run",
    response_model=SmartTagRunResult,
    summary="Apply a rule-based smart tag over the whole workspace now",
)
def run_smart_tag(smart_tag_id: int, session: WriteSession, principal: WriteTags) -> SmartTagRunResult:
    result = service.run_smart_tag(session, principal, smart_tag_id)
    session.commit()
    return SmartTagRunResult(smart_tag_id=smart_tag_id, added=result.added, removed=result.removed)
