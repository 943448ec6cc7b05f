"""Helpers for the delivery tests: a workspace with contacts, staff and settings made straight in the
database, and short ways to build requests and read outcomes."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.contacts.models import Contact, Identity
from siyu.db import Database
from siyu.delivery import policy
from siyu.delivery.models import Delivery, DeliverySettings
from siyu.delivery.service import Channel, QuietHoursPolicy, SendRequest
from siyu.staff.models import Role, Staff
from siyu.workspaces.service import create_workspace

_n = itertools.count(1)
T0 = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)  # 10:00 in Shanghai, a Monday


def workspace(db: Database, name: str = "品牌A", timezone: str = "Asia/Shanghai") -> int:
    with db.transaction() as session:
        return create_workspace(session, name, timezone=timezone).id


def contacts(
    db: Database,
    workspace_id: int,
    n: int,
    *,
    owner_id: int | None = None,
    timezone: str | None = None,
    email: bool = False,
    wecom: bool = False,
) -> list[int]:
    ids = []
    with db.transaction() as session:
        for _ in range(n):
            contact = Contact(workspace_id=workspace_id, name=f"客户{next(_n)}", owner_id=owner_id, timezone=timezone)
            session.add(contact)
            session.flush()
            if email:
                session.add(
                    Identity(
                        workspace_id=workspace_id, contact_id=contact.id, type="email", value=f"c{contact.id}@x.cn"
                    )
                )
            if wecom:
                session.add(
                    Identity(
                        workspace_id=workspace_id,
                        contact_id=contact.id,
                        type="wecom_external_userid",
                        value=f"wmEXT{contact.id}",
                    )
                )
            ids.append(contact.id)
    return ids


def staff(
    db: Database, workspace_id: int, *, wecom_userid: str | None = "zhangsan", created_at: dt.datetime | None = None
) -> int:
    with db.transaction() as session:
        row = Staff(
            workspace_id=workspace_id,
            email=f"s{next(_n)}@x.cn",
            name="顾问",
            role=Role.consultant,
            wecom_userid=wecom_userid,
        )
        if created_at is not None:
            row.created_at = created_at
        session.add(row)
        session.flush()
        return row.id


def configure(db: Database, workspace_id: int, **config: Any) -> None:
    validated = policy.validate(config).model_dump(mode="json")
    with db.transaction() as session:
        row = session.get(DeliverySettings, workspace_id)
        if row is None:
            session.add(DeliverySettings(workspace_id=workspace_id, config=validated, updated_at=T0))
        else:
            row.config = validated


def req(contact_id: int, *, source: str = "journey:1", step: str = "s1", entry: int = 0, **extra: Any) -> SendRequest:
    extra.setdefault("channel", Channel.sandbox)
    if "text" not in extra and "content_id" not in extra:
        extra["text"] = "你好"
    return SendRequest(source=source, step=step, contact_id=contact_id, entry=entry, **extra)


def deliveries(session: Session, workspace_id: int) -> list[Delivery]:
    return list(session.scalars(select(Delivery).where(Delivery.workspace_id == workspace_id).order_by(Delivery.id)))


__all__ = ["T0", "Channel", "QuietHoursPolicy", "configure", "contacts", "deliveries", "req", "staff", "workspace"]
