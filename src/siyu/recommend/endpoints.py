"""/api/v1: contacts' portraits, recommendations for a contact, a group or a whole segment, and settings.

Scopes: a contact's portrait and recommendations take contacts:read and content:read (a consultant sees
only their own contacts); a group's take groups:read and content:read; a segment's batch takes
segments:read and content:read (a consultant gets only their own contacts among the members); the
settings take content:read to read and content:write to change (which rebuilds every portrait).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.auth.dependencies import Authorize, ReadSession, WriteSession
from siyu.auth.principal import Principal
from siyu.auth.scopes import Scope
from siyu.computed.models import StreamCursor
from siyu.contacts import service as contacts
from siyu.groups import service as groups
from siyu.kit.schemas import Schema
from siyu.recommend import portrait, service
from siyu.segments import service as segments

router = APIRouter(tags=["recommendations"])

ReadContacts = Annotated[Principal, Depends(Authorize(Scope.contacts_read))]
ReadContent = Annotated[Principal, Depends(Authorize(Scope.content_read))]
WriteContent = Annotated[Principal, Depends(Authorize(Scope.content_write))]
ReadGroups = Annotated[Principal, Depends(Authorize(Scope.groups_read))]
ReadSegments = Annotated[Principal, Depends(Authorize(Scope.segments_read))]

Limit = Annotated[int, Query(ge=1, le=service.MAX_LIMIT, description="how many items")]
Seed = Annotated[
    int | None, Query(ge=0, le=2**63 - 1, description="seeds the exploration's sampling: same seed, same ranking")
]
IncludeSeen = Annotated[bool, Query(description="also list items already seen (ranked after, penalised)")]


class AffinityRead(BaseModel):
    tag_id: int
    tag: str
    group: str
    current: float = Field(description="the affinity today, decayed")
    score: float = Field(description="the stored affinity as of `as_of_day`")
    as_of_day: dt.date


class SeenRead(BaseModel):
    content_id: int
    title: str
    count: int
    first_at: dt.datetime
    last_at: dt.datetime


class PortraitRead(BaseModel):
    contact_id: int
    today: dt.date
    half_life_days: float
    affinities: list[AffinityRead]
    seen: list[SeenRead]


class RecommendationRead(BaseModel):
    content_id: int
    title: str
    kind: str
    score: float
    interest: float = Field(description="the contact's side: interest floor + affinity weight x interest (0..1)")
    stage: float = Field(description="the stage factor: above 1 fits the contact's stage, below 1 does not")
    exploration: float = Field(description="the Thompson sample of the item's engagement rate (score = product)")
    seen_count: int
    reasons: list[str]
    why: str = Field(description="the reasons in one line")


class RecommendationsRead(BaseModel):
    contact_id: int | None = None
    group_id: int | None = None
    members: int | None = None
    stage: str | None
    seed: int
    interests: dict[str, float] = Field(description="strongest interests, relative to the strongest (0..1)")
    items: list[RecommendationRead]


class SegmentBatchRequest(Schema):
    limit: int = Field(default=5, ge=1, le=service.MAX_LIMIT, description="items per contact")
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1)
    after_contact_id: int = Field(default=0, ge=0, description="page on: the next_after_contact_id of the last page")
    page_size: int = Field(default=1_000, ge=1, le=10_000, description="members per page")


class BatchRowRead(BaseModel):
    contact_id: int
    content_ids: list[int]
    scores: list[float]


class SegmentBatchRead(BaseModel):
    segment_id: int
    rows: list[BatchRowRead]
    next_after_contact_id: int | None = Field(description="null on the last page")


class SettingsRead(BaseModel):
    config: portrait.RecommendConfig
    rebuilt_events: int | None = None


def _read(recs: service.Recommendations, **ids: int | None) -> RecommendationsRead:
    return RecommendationsRead(
        **ids,
        stage=recs.stage,
        seed=recs.seed,
        interests=recs.interests,
        items=[
            RecommendationRead(
                content_id=r.content_id,
                title=r.title,
                kind=r.kind,
                score=r.score,
                interest=r.interest,
                stage=r.stage,
                exploration=r.exploration,
                seen_count=r.seen_count,
                reasons=r.reasons,
                why=", ".join(r.reasons),
            )
            for r in recs.items
        ],
    )


@router.get("/contacts/{contact_id}/portrait", response_model=PortraitRead, summary="A contact's content interests")
def contact_portrait(
    contact_id: int,
    session: ReadSession,
    principal: ReadContacts,
    _content: ReadContent,
    top: Annotated[int, Query(ge=1, le=200)] = 10,
) -> PortraitRead:
    contact = contacts.get_contact(session, principal, contact_id)
    config, today, affinities, seen = service.portrait_of(session, principal.workspace_id, contact.id, top=top)
    return PortraitRead(
        contact_id=contact.id,
        today=today,
        half_life_days=config.half_life_days,
        affinities=[AffinityRead.model_validate(a, from_attributes=True) for a in affinities],
        seen=[SeenRead.model_validate(s, from_attributes=True) for s in seen],
    )


@router.get(
    "/contacts/{contact_id}/recommendations",
    response_model=RecommendationsRead,
    summary="Content to send this contact next, and why",
)
def contact_recommendations(
    contact_id: int,
    session: ReadSession,
    principal: ReadContacts,
    _content: ReadContent,
    limit: Limit = 5,
    seed: Seed = None,
    include_seen: IncludeSeen = False,
) -> RecommendationsRead:
    contact = contacts.get_contact(session, principal, contact_id)
    recs = service.recommend_for_contact(
        session, principal.workspace_id, contact.id, limit=limit, seed=seed, include_seen=include_seen
    )
    return _read(recs, contact_id=contact.id)


@router.get(
    "/groups/{group_id}/recommendations",
    response_model=RecommendationsRead,
    summary="Content to push to this group next, and why",
)
def group_recommendations(
    group_id: int,
    session: ReadSession,
    principal: ReadGroups,
    _content: ReadContent,
    limit: Limit = 5,
    seed: Seed = None,
    include_seen: IncludeSeen = False,
) -> RecommendationsRead:
    group = groups.get_group(session, principal.workspace_id, group_id)
    recs, members = service.recommend_for_group(
        session, principal.workspace_id, group.id, limit=limit, seed=seed, include_seen=include_seen
    )
    return _read(recs, group_id=group.id, members=members)


@router.post(
    "/segments/{segment_id}/recommendations",
    response_model=SegmentBatchRead,
    summary="Top items for every member of a segment, a page of members at a time",
)
def segment_recommendations(
    segment_id: int, data: SegmentBatchRequest, session: ReadSession, principal: ReadSegments, _content: ReadContent
) -> SegmentBatchRead:
    """Pages through the members by contact id: pass `next_after_contact_id` back as `after_contact_id`.
    Items already seen are ranked last (penalised), not left out, so every row has `limit` items."""
    segment = segments.get_segment(session, principal.workspace_id, segment_id)
    ids = service.segment_page(
        session,
        principal.workspace_id,
        segment.id,
        after=data.after_contact_id,
        size=data.page_size,
        owner_id=principal.owned_contacts_only,
    )
    rows = service.recommend_batch(session, principal.workspace_id, ids, limit=data.limit, seed=data.seed)
    return SegmentBatchRead(
        segment_id=segment.id,
        rows=[BatchRowRead(contact_id=r.contact_id, content_ids=r.content_ids, scores=r.scores) for r in rows],
        next_after_contact_id=ids[-1] if len(ids) == data.page_size else None,
    )


@router.get("/recommendations/settings", response_model=SettingsRead, summary="Portrait and ranking settings")
def get_settings(session: ReadSession, principal: ReadContent) -> SettingsRead:
    return SettingsRead(config=portrait.load_config(session, principal.workspace_id))


@router.put(
    "/recommendations/settings", response_model=SettingsRead, summary="Replace the portrait and ranking settings"
)
def put_settings(data: portrait.RecommendConfig, session: WriteSession, principal: WriteContent) -> SettingsRead:
    """Missing fields take their defaults. Changing weights, seen events or the half-life rebuilds every
    portrait of the workspace from the raw events, in this request."""
    before = portrait.load_config(session, principal.workspace_id)
    portrait.save_config(session, principal.workspace_id, data)
    rebuilt = None
    if portrait.portrait_changed(before, data):
        rebuilt = portrait.rebuild_portraits(session, principal.workspace_id, up_to_seq=_cursor(session, principal))
    result = SettingsRead(config=portrait.load_config(session, principal.workspace_id), rebuilt_events=rebuilt)
    session.commit()
    return result


def _cursor(session: Session, principal: Principal) -> int:
    """The user-model pipeline's cursor, locked (a running step finishes first): the rebuild stops
    where the stream's consumer stands, and the next step goes on from there."""
    seq = session.scalar(
        select(StreamCursor.seq)
        .where(StreamCursor.name == "usermodel", StreamCursor.workspace_id == principal.workspace_id)
        .with_for_update()
    )
    return int(seq or 0)
