"""/api/v1/journeys routes (scopes journeys:read / journeys:write)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.auth.dependencies import Authorize, ReadSession, WriteSession
from siyu.auth.principal import Principal
from siyu.auth.scopes import Scope
from siyu.journeys import service
from siyu.journeys.models import EnrolmentStatus, Journey, JourneyEnrolment, JourneyStatus, JourneyVersion
from siyu.journeys.schemas import (
    ConversionRead,
    EnrolmentPage,
    EnrolmentRead,
    EnrolRequest,
    EnrolResultRead,
    FromTemplate,
    JourneyCounts,
    JourneyCreate,
    JourneyRead,
    JourneyUpdate,
    LiftRead,
    NumbersRead,
    RateRead,
    StepNumbersRead,
    TemplateRead,
    ValidateRead,
    ValidateRequest,
    VersionRead,
)
from siyu.journeys.templates import TEMPLATES, instantiate
from siyu.kit.schemas import decode_cursor, encode_cursor

router = APIRouter(tags=["journeys"])

ReadJourneys = Annotated[Principal, Depends(Authorize(Scope.journeys_read))]
WriteJourneys = Annotated[Principal, Depends(Authorize(Scope.journeys_write))]


def journeys_read(session: Session, journeys: list[Journey]) -> list[JourneyRead]:
    counts = service.summary_counts(session, [j.id for j in journeys])
    published = {
        (int(j), int(v)): d
        for j, v, d in session.execute(
            select(JourneyVersion.journey_id, JourneyVersion.version, JourneyVersion.definition).where(
                JourneyVersion.journey_id.in_([j.id for j in journeys if j.version is not None])
            )
        )
    }
    out = []
    for j in journeys:
        current = published.get((j.id, j.version)) if j.version is not None else None
        out.append(
            JourneyRead(
                id=j.id,
                name=j.name,
                description=j.description,
                status=j.status,
                version=j.version,
                trigger_kind=j.trigger_kind,
                draft=j.draft,
                published=current is not None and current == j.draft,
                next_fire_at=j.next_fire_at,
                activated_at=j.activated_at,
                created_at=j.created_at,
                updated_at=j.updated_at,
                counts=JourneyCounts(**counts.get(j.id, {})),
            )
        )
    return out


def _one(session: Session, journey: Journey) -> JourneyRead:
    (result,) = journeys_read(session, [journey])
    return result


def enrolments_read(
    session: Session, rows: list[JourneyEnrolment], names: dict[int, str] | None = None
) -> list[EnrolmentRead]:
    return [
        EnrolmentRead.model_validate(
            {
                **{c: getattr(r, c) for c in EnrolmentRead.model_fields if c != "journey_name"},
                "journey_name": (names or {}).get(r.journey_id),
            }
        )
        for r in rows
    ]


# --------------------------------------------------------------------------- templates and checking


@router.get("/journeys/templates", response_model=list[TemplateRead], summary="Templates from the seeds")
def list_templates(principal: ReadJourneys) -> list[TemplateRead]:
    return [TemplateRead.model_validate(asdict(t)) for t in TEMPLATES.values()]


@router.post(
    "/journeys/from-template",
    response_model=JourneyRead,
    status_code=status.HTTP_201_CREATED,
    summary="A new draft journey from a template",
)
def from_template(data: FromTemplate, session: WriteSession, principal: WriteJourneys) -> JourneyRead:
    definition = instantiate(data.template, data.channel)
    journey = service.create_journey(
        session,
        principal,
        name=data.name,
        description=data.description or TEMPLATES[data.template].description,
        definition=definition,
    )
    result = _one(session, journey)
    session.commit()
    return result


@router.post(
    "/journeys/validate",
    response_model=ValidateRead,
    summary="Check a definition against this workspace (422 names the bad node's JSON path)",
)
def validate(data: ValidateRequest, session: ReadSession, principal: ReadJourneys) -> ValidateRead:
    definition = service.check(session, principal.workspace_id, data.definition)
    return ValidateRead(valid=True, trigger=definition.trigger.kind, steps=list(definition.order))


@router.get(
    "/journeys/contacts/{contact_id}",
    response_model=list[EnrolmentRead],
    summary="One contact's journeys: every enrolment, newest first",
)
def contact_journeys(contact_id: int, session: ReadSession, principal: ReadJourneys) -> list[EnrolmentRead]:
    pairs = service.contact_enrolments(session, principal, contact_id)
    names = {e.journey_id: n for e, n in pairs}
    return enrolments_read(session, [e for e, _ in pairs], names)


# --------------------------------------------------------------------------- journeys


@router.get("/journeys", response_model=list[JourneyRead])
def list_journeys(
    session: ReadSession, principal: ReadJourneys, status: JourneyStatus | None = None
) -> list[JourneyRead]:
    return journeys_read(session, service.list_journeys(session, principal.workspace_id, status))


@router.post("/journeys", response_model=JourneyRead, status_code=status.HTTP_201_CREATED)
def create_journey(data: JourneyCreate, session: WriteSession, principal: WriteJourneys) -> JourneyRead:
    journey = service.create_journey(
        session, principal, name=data.name, description=data.description, definition=data.definition
    )
    result = _one(session, journey)
    session.commit()
    return result


@router.get("/journeys/{journey_id}", response_model=JourneyRead)
def get_journey(journey_id: int, session: ReadSession, principal: ReadJourneys) -> JourneyRead:
    return _one(session, service.get_journey(session, principal.workspace_id, journey_id))


@router.patch("/journeys/{journey_id}", response_model=JourneyRead, summary="Edit the name, description or draft")
def update_journey(
    journey_id: int, data: JourneyUpdate, session: WriteSession, principal: WriteJourneys
) -> JourneyRead:
    journey = service.update_journey(
        session,
        principal,
        journey_id,
        name=data.name,
        description=data.description,
        definition=data.definition,
    )
    result = _one(session, journey)
    session.commit()
    return result


@router.post(
    "/journeys/{journey_id}/publish",
    response_model=VersionRead,
    summary="Publish the draft as the next immutable version (enrolments stay on the version they entered)",
)
def publish(journey_id: int, session: WriteSession, principal: WriteJourneys) -> VersionRead:
    version = service.publish(session, principal, journey_id)
    result = VersionRead.model_validate(version)
    session.commit()
    return result


@router.post("/journeys/{journey_id}/activate", response_model=JourneyRead, summary="Start (or resume) the journey")
def activate(journey_id: int, session: WriteSession, principal: WriteJourneys) -> JourneyRead:
    result = _one(session, service.activate(session, principal, journey_id))
    session.commit()
    return result


@router.post(
    "/journeys/{journey_id}/pause",
    response_model=JourneyRead,
    summary="Nobody enters or moves until resumed; goal events still take contacts out",
)
def pause(journey_id: int, session: WriteSession, principal: WriteJourneys) -> JourneyRead:
    result = _one(session, service.pause(session, principal, journey_id))
    session.commit()
    return result


@router.post(
    "/journeys/{journey_id}/archive",
    response_model=JourneyRead,
    summary="End the journey: everyone still in it is taken out",
)
def archive(journey_id: int, session: WriteSession, principal: WriteJourneys) -> JourneyRead:
    result = _one(session, service.archive(session, principal, journey_id))
    session.commit()
    return result


@router.get("/journeys/{journey_id}/versions", response_model=list[VersionRead])
def list_versions(journey_id: int, session: ReadSession, principal: ReadJourneys) -> list[VersionRead]:
    journey = service.get_journey(session, principal.workspace_id, journey_id)
    return [VersionRead.model_validate(v) for v in service.list_versions(session, journey)]


@router.get("/journeys/{journey_id}/versions/{version}", response_model=VersionRead)
def get_version(journey_id: int, version: int, session: ReadSession, principal: ReadJourneys) -> VersionRead:
    journey = service.get_journey(session, principal.workspace_id, journey_id)
    return VersionRead.model_validate(service.get_version(session, journey, version))


@router.get(
    "/journeys/{journey_id}/numbers",
    response_model=NumbersRead,
    summary="Per step: waiting now, arrived, passed, exited, delivery outcomes; goal conversion vs the holdout",
)
def numbers(journey_id: int, session: ReadSession, principal: ReadJourneys) -> NumbersRead:
    journey = service.get_journey(session, principal.workspace_id, journey_id)
    found = service.numbers(session, journey)
    conversion = found.conversion
    return NumbersRead(
        entered=found.entered,
        active=found.active,
        completed=found.completed,
        exited=found.exited,
        steps=[
            StepNumbersRead(step=s.step, type=s.type, name=s.name, waiting=s.waiting, **s.counters) for s in found.steps
        ],
        conversion=ConversionRead(
            goal=conversion.goal,
            overall=RateRead.model_validate(asdict(conversion.overall)),
            treated=RateRead.model_validate(asdict(conversion.treated)),
            holdout=RateRead.model_validate(asdict(conversion.holdout)),
            lift=LiftRead.model_validate(asdict(conversion.lift)),
            has_holdout=conversion.has_holdout,
        ),
    )


@router.get("/journeys/{journey_id}/enrolments", response_model=EnrolmentPage)
def list_enrolments(
    journey_id: int,
    session: ReadSession,
    principal: ReadJourneys,
    status: EnrolmentStatus | None = None,
    step: Annotated[str | None, Query(max_length=40)] = None,
    contact_id: int | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> EnrolmentPage:
    journey = service.get_journey(session, principal.workspace_id, journey_id)
    before = int(decode_cursor(cursor, 1)[0]) if cursor else None
    rows = service.list_enrolments(
        session,
        principal,
        journey,
        service.EnrolmentFilter(status=status, step=step, contact_id=contact_id),
        before=before,
        limit=limit + 1,
    )
    next_cursor = encode_cursor([rows[limit - 1].id]) if len(rows) > limit else None
    return EnrolmentPage(
        items=enrolments_read(session, rows[:limit], {journey.id: journey.name}), next_cursor=next_cursor
    )


@router.post(
    "/journeys/{journey_id}/enrolments",
    response_model=EnrolResultRead,
    summary="Enrol contacts by hand now (testing, operations); the entry rules apply",
)
def enrol(journey_id: int, data: EnrolRequest, session: WriteSession, principal: WriteJourneys) -> EnrolResultRead:
    result = service.enrol_by_hand(session, principal, journey_id, data.contact_ids)
    session.commit()
    return EnrolResultRead(
        enrolled=[{"contact_id": c, "enrolment_id": e} for c, e in result.enrolled],  # type: ignore[misc]
        refused=[{"contact_id": c, "reason": r} for c, r in sorted(result.refused.items())],  # type: ignore[misc]
    )


@router.post(
    "/journeys/{journey_id}/enrolments/{enrolment_id}/exit",
    response_model=EnrolmentRead,
    summary="Take one contact out of the journey now",
)
def exit_enrolment(
    journey_id: int, enrolment_id: int, session: WriteSession, principal: WriteJourneys
) -> EnrolmentRead:
    row = service.take_out(session, principal, journey_id, enrolment_id)
    (result,) = enrolments_read(session, [row])
    session.commit()
    return result
