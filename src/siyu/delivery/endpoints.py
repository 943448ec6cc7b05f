"""/api/v1/delivery routes (scopes delivery:read / delivery:write).

Settings (budgets, quiet hours, welfare days, opt-out words, webhook endpoint and its write-only secret,
staff account limits), the deliveries log, a single send for integrators, opt-outs, and the audience plan.
Consultants see only their own contacts' deliveries and opt-outs.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status
from sqlalchemy import Select, and_, func, select

from siyu.auth.dependencies import Authorize, ReadSession, WriteSession
from siyu.auth.principal import Principal
from siyu.auth.scopes import Scope
from siyu.contacts.models import Contact
from siyu.delivery import policy, reasons, repository, secrets, service, stream
from siyu.delivery.models import Channel, DeliverySettings, DeliveryStatus, StaffAccount
from siyu.delivery.schemas import (
    DeliveryRead,
    OptOutCreate,
    OptOutRead,
    PlanRead,
    PlanRequest,
    SendCreate,
    SettingsRead,
    StaffAccountRead,
    StaffAccountUpdate,
    WebhookSecretRead,
)
from siyu.errors import NotFound, validation_error
from siyu.kit.schemas import Page, decode_cursor, encode_cursor
from siyu.kit.time import ensure_utc, utcnow
from siyu.segments import service as segments
from siyu.staff.models import Staff
from siyu.tags.models import ContactTag, Tag

router = APIRouter(tags=["delivery"])

ReadDelivery = Annotated[Principal, Depends(Authorize(Scope.delivery_read))]
WriteDelivery = Annotated[Principal, Depends(Authorize(Scope.delivery_write))]
Limit = Annotated[int, Query(ge=1, le=500)]


# --- settings ----------------------------------------------------------------------------------------


def _settings_read(session: Any, workspace_id: int, new_secret: str | None = None) -> SettingsRead:
    config, row = policy.load(session, workspace_id)
    return SettingsRead(
        config=config,
        webhook_secret_hint=row.webhook_secret_hint if row is not None else None,
        webhook_secret=new_secret,
        updated_at=row.updated_at if row is not None else None,
    )


@router.get("/delivery/settings", response_model=SettingsRead, summary="Budgets, quiet hours, opt-out words, webhook")
def get_settings(session: ReadSession, principal: ReadDelivery) -> SettingsRead:
    return _settings_read(session, principal.workspace_id)


def save_config(session: Any, workspace_id: int, config: policy.DeliveryConfig) -> str | None:
    """Stores the whole config; a webhook endpoint without a secret yet gets one (returned, shown once)."""
    now = utcnow()
    row = session.get(DeliverySettings, workspace_id)
    if row is None:
        row = DeliverySettings(workspace_id=workspace_id, config={}, updated_at=now)
        session.add(row)
    row.config = config.model_dump(mode="json")
    row.updated_at = now
    session.flush()
    if config.webhook_url and not row.webhook_secret_encrypted:
        return service.ensure_webhook_secret(session, workspace_id, row, now)
    return None


@router.put(
    "/delivery/settings",
    response_model=SettingsRead,
    summary="Replace the settings (left-out fields take their defaults)",
)
def put_settings(data: policy.DeliveryConfig, session: WriteSession, principal: WriteDelivery) -> SettingsRead:
    new_secret = save_config(session, principal.workspace_id, data)
    result = _settings_read(session, principal.workspace_id, new_secret)
    session.commit()
    return result


@router.post(
    "/delivery/settings/webhook-secret",
    response_model=WebhookSecretRead,
    status_code=status.HTTP_201_CREATED,
    summary="Make a new webhook signing secret (shown once; the old one stops working)",
)
def rotate_webhook_secret(session: WriteSession, principal: WriteDelivery) -> WebhookSecretRead:
    now = utcnow()
    row = session.get(DeliverySettings, principal.workspace_id)
    if row is None:
        row = DeliverySettings(workspace_id=principal.workspace_id, config={}, updated_at=now)
        session.add(row)
    value, encrypted, hint = secrets.new_secret_values()
    row.webhook_secret_encrypted, row.webhook_secret_hint, row.updated_at = encrypted, hint, now
    session.commit()
    return WebhookSecretRead(webhook_secret=value, webhook_secret_hint=hint)


@router.get("/delivery/staff-accounts", response_model=list[StaffAccountRead], summary="Staff limits and warm-up")
def list_staff_accounts(session: ReadSession, principal: ReadDelivery) -> list[StaffAccountRead]:
    return repository.staff_accounts(session, principal.workspace_id)


@router.put(
    "/delivery/staff-accounts/{staff_id}",
    response_model=StaffAccountRead,
    summary="Set a staff account's start day and limits (null: the workspace's defaults)",
)
def put_staff_account(
    staff_id: int, data: StaffAccountUpdate, session: WriteSession, principal: WriteDelivery
) -> StaffAccountRead:
    save_staff_account(session, principal.workspace_id, staff_id, data)
    (result,) = repository.staff_accounts(session, principal.workspace_id, staff_id=staff_id)
    session.commit()
    return result


def save_staff_account(session: Any, workspace_id: int, staff_id: int, data: StaffAccountUpdate) -> None:
    member = session.get(Staff, staff_id)
    if member is None or member.workspace_id != workspace_id:
        raise NotFound(f"staff {staff_id} not found")
    row = session.get(StaffAccount, staff_id)
    if row is None:
        row = StaffAccount(workspace_id=workspace_id, staff_id=staff_id, updated_at=utcnow())
        session.add(row)
    row.started_on, row.send_limit, row.add_limit, row.warmup_days = (
        data.started_on,
        data.send_limit,
        data.add_limit,
        data.warmup_days,
    )
    row.updated_at = utcnow()
    session.flush()


# --- deliveries --------------------------------------------------------------------------------------


@router.get("/delivery/deliveries", response_model=Page[DeliveryRead], summary="The deliveries log, newest first")
def list_deliveries(
    session: ReadSession,
    principal: ReadDelivery,
    contact_id: int | None = None,
    source: Annotated[str | None, Query(max_length=100, description='"journey:12", "broadcast:7", "api"')] = None,
    status: DeliveryStatus | None = None,
    reason: Annotated[str | None, Query(description="a reason code, e.g. quiet_hours, cap_day, opted_out")] = None,
    channel: Channel | None = None,
    cursor: str | None = None,
    limit: Limit = 50,
) -> Page[DeliveryRead]:
    if reason is not None and reason not in reasons.ALL:
        raise validation_error("reason", f"one of {', '.join(reasons.ALL)}")
    before = int(decode_cursor(cursor, 1)[0]) if cursor else None
    rows = repository.list_deliveries(
        session,
        principal,
        before_id=before,
        limit=limit + 1,
        contact_id=contact_id,
        source=source,
        status=status,
        reason=reason,
        channel=channel,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(items=[repository.to_read(r) for r in rows], next_cursor=encode_cursor([rows[-1].id]) if more else None)


@router.get("/delivery/deliveries/{delivery_id}", response_model=DeliveryRead)
def get_delivery(delivery_id: int, session: ReadSession, principal: ReadDelivery) -> DeliveryRead:
    return repository.to_read(repository.get_delivery(session, principal, delivery_id))


@router.post(
    "/delivery/deliveries",
    response_model=DeliveryRead,
    status_code=status.HTTP_201_CREATED,
    summary='Send one message (source "api"); the same (contact, step, entry) again returns the first',
)
def create_delivery(data: SendCreate, session: WriteSession, principal: WriteDelivery) -> DeliveryRead:
    contact = repository.visible_contact(session, principal, data.contact_id)
    if data.content_id is not None:
        from siyu.content.service import get_item

        get_item(session, principal.workspace_id, data.content_id)
    if data.staff_id is not None:
        member = session.get(Staff, data.staff_id)
        if member is None or member.workspace_id != principal.workspace_id:
            raise validation_error("staff_id", f"no staff member {data.staff_id} in this workspace")
    request = service.SendRequest(
        source="api",
        step=data.step,
        contact_id=contact.id,
        entry=data.entry,
        channel=data.channel,
        text=data.text,
        content_id=data.content_id,
        staff_id=data.staff_id,
        welfare=data.welfare,
        service=data.service,
        quiet_hours=data.quiet_hours,
        webhook_url=data.webhook_url,
        payload=data.payload,
    )
    (outcome,) = service.send_many(session, principal.workspace_id, [request], now=utcnow())
    row = repository.get_delivery(session, principal, outcome.delivery_id)
    result = repository.to_read(row)
    session.commit()
    return result


# --- opt-outs ----------------------------------------------------------------------------------------


@router.get("/delivery/opt-outs", response_model=Page[OptOutRead], summary="Contacts who receive nothing")
def list_opt_outs(
    session: ReadSession, principal: ReadDelivery, cursor: str | None = None, limit: Limit = 50
) -> Page[OptOutRead]:
    before = dt.datetime.fromisoformat(str(decode_cursor(cursor, 1)[0])) if cursor else None
    rows = repository.list_opt_outs(session, principal, before=before, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(
        items=[OptOutRead.model_validate(r) for r in rows],
        next_cursor=encode_cursor([rows[-1].created_at.isoformat()]) if more else None,
    )


@router.post(
    "/delivery/opt-outs",
    response_model=OptOutRead,
    status_code=status.HTTP_201_CREATED,
    summary="Opt a contact out of every channel",
)
def create_opt_out(data: OptOutCreate, session: WriteSession, principal: WriteDelivery) -> OptOutRead:
    contact = repository.visible_contact(session, principal, data.contact_id)
    stream.record_opt_out(session, principal.workspace_id, contact.id, source="api", detail=data.note, now=utcnow())
    from siyu.delivery.models import OptOut

    row = session.get(OptOut, contact.id)
    assert row is not None
    result = OptOutRead.model_validate(row)
    session.commit()
    return result


@router.delete(
    "/delivery/opt-outs/{contact_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Opt a contact back in",
)
def delete_opt_out(contact_id: int, session: WriteSession, principal: WriteDelivery) -> Response:
    contact = repository.visible_contact(session, principal, contact_id)
    if not stream.record_opt_in(session, principal.workspace_id, contact.id, source="api", now=utcnow()):
        raise NotFound(f"contact {contact_id} has not opted out")
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- plan --------------------------------------------------------------------------------------------


def audience_of(session: Any, principal: Principal, data: PlanRequest) -> Select[Any]:
    """The SELECT of contact ids the request names, checked against this workspace (and owner)."""
    ws = principal.workspace_id
    owner = principal.owned_contacts_only
    if data.segment_id is not None:
        segment = segments.get_segment(session, ws, data.segment_id)
        return segments.members_query(segment, principal)
    if data.contact_ids is not None:
        q = select(Contact.id).where(Contact.workspace_id == ws, Contact.id.in_(data.contact_ids))
        if owner is not None:
            q = q.where(Contact.owner_id == owner)
        found = set(session.scalars(q))
        missing = [c for c in data.contact_ids if c not in found]
        if missing:
            raise validation_error("contact_ids", f"no contact with id {missing[0]} in this workspace")
        return q
    assert data.tags is not None
    tag_ids = list(dict.fromkeys(data.tags.ids))
    known = set(session.scalars(select(Tag.id).where(Tag.workspace_id == ws, Tag.id.in_(tag_ids))))
    unknown = [t for t in tag_ids if t not in known]
    if unknown:
        raise validation_error("tags.ids", f"no tag with id {unknown[0]} in this workspace")
    q = select(ContactTag.contact_id).where(ContactTag.workspace_id == ws, ContactTag.tag_id.in_(tag_ids))
    if data.tags.match == "all":
        q = q.group_by(ContactTag.contact_id).having(func.count() == len(tag_ids))
    if owner is not None:
        q = q.join(Contact, and_(Contact.id == ContactTag.contact_id, Contact.owner_id == owner))
    return q


@router.post(
    "/delivery/plan",
    response_model=PlanRead,
    summary="How many of an audience a send would reach now, with budgets applied, and why not the rest",
)
def plan_audience(data: PlanRequest, session: ReadSession, principal: ReadDelivery) -> PlanRead:
    audience = audience_of(session, principal, data)
    if data.staff_id is not None:
        member = session.get(Staff, data.staff_id)
        if member is None or member.workspace_id != principal.workspace_id:
            raise validation_error("staff_id", f"no staff member {data.staff_id} in this workspace")
    at = ensure_utc(data.at) if data.at is not None else utcnow()
    result = service.plan(
        session,
        principal.workspace_id,
        audience,
        channel=data.channel,
        welfare=data.welfare,
        at=at,
        staff_id=data.staff_id,
    )
    return PlanRead(
        total=result.total,
        eligible=result.eligible,
        excluded=result.excluded,
        excluded_text={code: reasons.TEXT[code] for code in result.excluded},
        at=at,
    )
