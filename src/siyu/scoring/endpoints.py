"""/api/v1/scoring/* (settings, recompute) and /api/v1/contacts/{id}/scores.

Scopes: reading the settings takes attributes:read and changing them or recomputing attributes:write
(the scoring settings describe the workspace's data model, like attribute definitions); a contact's
scores take contacts:read, and a consultant sees only their own contacts' scores.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from siyu.auth.dependencies import Authorize, ReadSession, WriteSession
from siyu.auth.principal import Principal
from siyu.auth.scopes import Scope
from siyu.contacts import service as contacts
from siyu.jobs import enqueue
from siyu.kit.time import utcnow
from siyu.scoring import service
from siyu.scoring import tasks as _tasks  # noqa: F401 - registers the recompute job enqueued below
from siyu.scoring.config import ScoringConfig
from siyu.scoring.rules import RfmCuts
from siyu.scoring.schemas import ContactScoresRead, RecomputeResult, RfmCutsRead, ScoringSettingsRead

router = APIRouter(tags=["scoring"])

ReadScoring = Annotated[Principal, Depends(Authorize(Scope.attributes_read))]
WriteScoring = Annotated[Principal, Depends(Authorize(Scope.attributes_write))]
ReadContacts = Annotated[Principal, Depends(Authorize(Scope.contacts_read))]


def _settings_read(session: Session, workspace_id: int) -> ScoringSettingsRead:
    config = service.load_config(session, workspace_id)
    row = service.settings_row(session, workspace_id)
    stored = service.stored_cuts(session, workspace_id)
    cuts: RfmCutsRead | None = None
    if stored is not None:
        effective: RfmCuts = stored.with_fixed(config.rfm)
        cuts = RfmCutsRead(
            recency_days=list(effective.recency_days),
            frequency=list(effective.frequency),
            monetary_yuan=[c / 100 for c in effective.monetary_cents],
            customers=effective.customers,
            computed_at=row.rfm_cuts_at if row is not None else None,
        )
    updated_at = row.updated_at if row is not None and row.config is not None else None
    return ScoringSettingsRead(config=config, rfm_cuts=cuts, updated_at=updated_at)


@router.get("/scoring/settings", response_model=ScoringSettingsRead, summary="Settings of the built-in models")
def get_settings(session: ReadSession, principal: ReadScoring) -> ScoringSettingsRead:
    return _settings_read(session, principal.workspace_id)


@router.put("/scoring/settings", response_model=ScoringSettingsRead, summary="Replace the built-in models' settings")
def put_settings(data: ScoringConfig, session: WriteSession, principal: WriteScoring) -> ScoringSettingsRead:
    """Missing fields take their defaults. Scores follow within moments: a recompute job is queued."""
    service.save_config(session, principal.workspace_id, data)
    enqueue(
        session,
        service.RECOMPUTE_JOB,
        {},
        workspace_id=principal.workspace_id,
        dedupe_key=f"{service.RECOMPUTE_JOB}:{principal.workspace_id}",
    )
    result = _settings_read(session, principal.workspace_id)
    session.commit()
    return result


@router.post("/scoring/recompute", response_model=RecomputeResult, summary="Score every contact now")
def recompute_now(session: WriteSession, principal: WriteScoring) -> RecomputeResult:
    """Also refreshes the RFM cut points. A large workspace takes seconds; the hourly job does the same."""
    count = service.recompute(session, principal.workspace_id, contact_ids=None, now=utcnow())
    session.commit()
    return RecomputeResult(contacts=count)


@router.get(
    "/contacts/{contact_id}/scores", response_model=ContactScoresRead, summary="A contact's scores and the reasons"
)
def contact_scores(contact_id: int, session: ReadSession, principal: ReadContacts) -> ContactScoresRead:
    contact = contacts.get_contact(session, principal, contact_id)
    row = service.scores(session, contact.id)
    if row is not None:
        # Runs store the numbers; the reasons are built now, as of the row's computed_at.
        reasons = service.reasons_for(session, principal.workspace_id, contact.id, row.computed_at)
        read = ContactScoresRead.model_validate(row)
        return read.model_copy(update={"reasons": reasons})
    fresh = service.evaluate(session, principal.workspace_id, contact.id, now=utcnow())
    if fresh is None:  # pragma: no cover - get_contact returned a live contact
        raise AssertionError(f"contact {contact.id} could not be scored")
    return ContactScoresRead.model_validate({**fresh, "stored": False})
