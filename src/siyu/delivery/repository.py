"""Queries of the delivery API and console, always scoped by workspace (and by owner for consultants)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Select, and_, func, select
from sqlalchemy.orm import Session

from siyu.auth.principal import Principal
from siyu.contacts.models import Contact
from siyu.contacts.service import get_contact
from siyu.delivery import budget, policy, reasons, service
from siyu.delivery.models import Channel, Delivery, DeliveryStatus, OptOut, StaffAccount
from siyu.delivery.schemas import DeliveryRead, StaffAccountRead
from siyu.errors import NotFound
from siyu.events.service import workspace_timezone
from siyu.kit.time import utcnow
from siyu.staff.models import Staff


def deliveries_query(
    principal: Principal,
    *,
    contact_id: int | None = None,
    source: str | None = None,
    status: DeliveryStatus | None = None,
    reason: str | None = None,
    channel: Channel | None = None,
) -> Select[Any]:
    q = select(Delivery).where(Delivery.workspace_id == principal.workspace_id)
    if principal.owned_contacts_only is not None:
        q = q.join(Contact, Contact.id == Delivery.contact_id).where(Contact.owner_id == principal.owned_contacts_only)
    if contact_id is not None:
        q = q.where(Delivery.contact_id == contact_id)
    if source is not None:
        q = q.where(Delivery.source == source)
    if status is not None:
        q = q.where(Delivery.status == status)
    if reason is not None:
        q = q.where(Delivery.reason == reason)
    if channel is not None:
        q = q.where(Delivery.channel == channel)
    return q


def list_deliveries(
    session: Session, principal: Principal, *, before_id: int | None, limit: int, **filters: Any
) -> list[Delivery]:
    q = deliveries_query(principal, **filters)
    if before_id is not None:
        q = q.where(Delivery.id < before_id)
    return list(session.scalars(q.order_by(Delivery.id.desc()).limit(limit)))


def get_delivery(session: Session, principal: Principal, delivery_id: int) -> Delivery:
    row: Delivery | None = session.scalar(deliveries_query(principal).where(Delivery.id == delivery_id))
    if row is None:
        raise NotFound(f"delivery {delivery_id} not found")
    return row


def to_read(row: Delivery) -> DeliveryRead:
    return DeliveryRead(
        id=row.id,
        source=row.source,
        step=row.step,
        contact_id=row.contact_id,
        entry=row.entry,
        channel=row.channel,
        status=row.status,
        reason=row.reason,
        reason_text=reasons.text_of(row.reason),
        detail=row.detail,
        retry_at=row.retry_at,
        text=row.text,
        content_id=row.content_id,
        link=row.link,
        staff_id=row.staff_id,
        welfare=row.welfare,
        service=row.service,
        quiet_hours=row.quiet_hours,
        attempts=row.attempts,
        external_id=row.external_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        sent_at=row.sent_at,
    )


def visible_contact(session: Session, principal: Principal, contact_id: int) -> Contact:
    """The live contact, if the caller may see it (another workspace's or, for a consultant, another owner's: 404)."""
    return get_contact(session, principal, contact_id)


def list_opt_outs(session: Session, principal: Principal, *, before: dt.datetime | None, limit: int) -> list[OptOut]:
    q = select(OptOut).where(OptOut.workspace_id == principal.workspace_id)
    if principal.owned_contacts_only is not None:
        q = q.join(Contact, Contact.id == OptOut.contact_id).where(Contact.owner_id == principal.owned_contacts_only)
    if before is not None:
        q = q.where(OptOut.created_at < before)
    return list(session.scalars(q.order_by(OptOut.created_at.desc(), OptOut.contact_id.desc()).limit(limit)))


def staff_accounts(session: Session, workspace_id: int, *, staff_id: int | None = None) -> list[StaffAccountRead]:
    from siyu.channels.models import ChannelCodeStaffDay

    config, _ = policy.load(session, workspace_id)
    q = select(Staff).where(Staff.workspace_id == workspace_id)
    if staff_id is not None:
        q = q.where(Staff.id == staff_id)
    members = list(session.scalars(q.order_by(Staff.id)))
    if staff_id is not None and not members:
        raise NotFound(f"staff {staff_id} not found")
    ids = [m.id for m in members]
    info = service.load_staff(session, workspace_id, ids, config)
    custom = set(session.scalars(select(StaffAccount.staff_id).where(StaffAccount.staff_id.in_(ids))))
    today = budget.window(workspace_timezone(session, workspace_id), utcnow(), None).today
    sent = service.staff_sends(session, ids, today)
    adds = dict(
        session.execute(
            select(ChannelCodeStaffDay.staff_id, func.sum(ChannelCodeStaffDay.adds))
            .where(and_(ChannelCodeStaffDay.staff_id.in_(ids), ChannelCodeStaffDay.day == today))
            .group_by(ChannelCodeStaffDay.staff_id)
        ).all()
    )
    out = []
    for member in members:
        account = info[member.id]
        send_today = budget.ramped(account.send_limit, account.started_on, today, config.staff, account.warmup_days)
        add_today = budget.ramped(account.add_limit, account.started_on, today, config.staff, account.warmup_days)
        assert account.started_on is not None
        out.append(
            StaffAccountRead(
                staff_id=member.id,
                name=member.name,
                wecom_userid=member.wecom_userid,
                started_on=account.started_on,
                send_limit=account.send_limit,
                add_limit=account.add_limit,
                warmup_days=account.warmup_days,
                custom=member.id in custom,
                sends_today=sent.get(member.id, 0),
                send_limit_today=send_today,
                add_limit_today=add_today,
                adds_left_today=None if add_today is None else max(add_today - int(adds.get(member.id) or 0), 0),
            )
        )
    return out
