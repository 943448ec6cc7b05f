"""/api/v1/scripts: search the script library by a customer's question, record uses, read a script's figures."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from siyu.auth.dependencies import Authorize, ReadSession, WriteSession
from siyu.auth.principal import Principal
from siyu.auth.scopes import Scope
from siyu.scripts import service
from siyu.scripts.schemas import (
    ScriptHit,
    ScriptSearchResult,
    ScriptStats,
    ScriptUseCreate,
    ScriptUseRead,
    StaffUsageRead,
)

router = APIRouter(tags=["scripts"])

ReadContent = Annotated[Principal, Depends(Authorize(Scope.content_read))]


def hit_of(result: service.Result) -> ScriptHit:
    return ScriptHit(
        id=result.doc.id,
        title=result.doc.title,
        question=result.doc.question,
        answers=list(result.doc.answers),
        score=result.score,
        matched_terms=list(result.terms),
        uses=result.usage.uses,
        conversion_rate=result.usage.conversion_rate,
    )


@router.get("/scripts/search", response_model=ScriptSearchResult)
def search_scripts(
    session: ReadSession,
    principal: ReadContent,
    q: Annotated[str, Query(max_length=2000, description="the customer's question, Chinese or English")] = "",
    limit: Annotated[int, Query(ge=1, le=50)] = 5,
) -> ScriptSearchResult:
    """Published scripts ranked for the question (jieba + BM25); an empty `q` gives the most used ones."""
    results = service.search(session, principal.workspace_id, q, limit)
    return ScriptSearchResult(query=q, items=[hit_of(r) for r in results])


@router.post("/scripts/{script_id}/uses", response_model=ScriptUseRead, status_code=status.HTTP_201_CREATED)
def record_use(script_id: int, data: ScriptUseCreate, session: WriteSession, principal: ReadContent) -> ScriptUseRead:
    """Records that one answer of a script was used (copied or sent), by the caller, for a contact if given."""
    use = service.record_use(session, principal, script_id, answer_index=data.answer_index, contact_id=data.contact_id)
    result = ScriptUseRead.model_validate(use)
    session.commit()
    return result


@router.get("/scripts/{script_id}/stats", response_model=ScriptStats)
def script_stats(script_id: int, session: ReadSession, principal: ReadContent) -> ScriptStats:
    """Uses (in all, by answer, by staff) and conversion: contacts it was used with who paid an order within
    7 days after a use."""
    service.get_script(session, principal.workspace_id, script_id)
    figures = service.usage(session, principal.workspace_id, [script_id])[script_id]
    return ScriptStats(
        script_id=script_id,
        uses=figures.uses,
        last_used_at=figures.last_used_at,
        uses_by_answer=dict(sorted(figures.by_answer.items())),
        by_staff=[
            StaffUsageRead(staff_id=s.staff_id, name=s.name, uses=s.uses)
            for s in service.usage_by_staff(session, principal.workspace_id, script_id)
        ],
        contacts=figures.contacts,
        converted=figures.converted,
        conversion_rate=figures.conversion_rate,
        conversion_window_days=service.CONVERSION_WINDOW.days,
    )
