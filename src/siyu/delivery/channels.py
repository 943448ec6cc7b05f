"""External channels: the `delivery.send` job sends one queued delivery and records its outcome.

One delivery per job, one transaction for its outcome (the job's own, committed with the job's
completion). Before calling the channel the job marks the attempt (`call_started_at`) in a short
transaction of its own, and only then calls, holding no database lock (SQLite has one writer).

A crash after the call and before the outcome commits leaves the job to run again after its lease:
- webhook: sent again with the same `X-Siyu-Delivery` id (at least once; receivers drop the repeat);
- e-mail: sent again with the same Message-ID (at least once);
- WeCom: `add_msg_template` has no idempotency key, so a run that finds an earlier attempt marked and
  unrecorded records `unknown` (reason outcome_unknown) and does not call again: at most once.

Retryable failures (webhook 5xx/408/429/timeouts, SMTP 4xx/connection, WeCom busy/rate-limited) raise, so
the job is retried with exponential backoff; on the job's last attempt the delivery is recorded
`failed` (dead_letter) instead. Permanent refusals are `failed` at once. Both give the budget back.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from siyu.adapters import email as email_adapter
from siyu.adapters import webhook as webhook_adapter
from siyu.adapters.wecom.errors import InvalidCredentials, RateLimited, WeComBusy, WeComError, WeComNetworkError
from siyu.config import Settings
from siyu.contacts.models import Contact, Identity
from siyu.content.models import ContentItem
from siyu.delivery import policy, reasons, secrets, service
from siyu.delivery.models import Channel, Delivery, DeliverySettings, DeliveryStatus
from siyu.jobs.models import Job
from siyu.kit.time import utcnow
from siyu.staff.models import Staff


class RetryLater(Exception):
    """The channel failed in a way worth retrying: the job is queued again after a backoff."""


@dataclass(frozen=True)
class CallResult:
    ok: bool
    retryable: bool = False
    unknown: bool = False  # the call may or may not have been applied
    error: str | None = None
    external_id: str | None = None


def _settings() -> Settings:
    from siyu.wecom.service import current_settings

    return current_settings()


def absolute_link(link: str | None) -> str | None:
    if not link:
        return None
    base = _settings().delivery_link_base_url.rstrip("/")
    return base + link if base else link


# --------------------------------------------------------------------------- the job


def send_job(session: Session, job: Job) -> None:
    delivery_id = int(job.payload["delivery_id"])
    now = utcnow()
    engine = session.get_bind()
    # 1. Mark the attempt, committed before any call (a short transaction of its own).
    with Session(bind=engine, expire_on_commit=False) as marker:
        row = marker.get(Delivery, delivery_id)
        if row is None or row.status is not DeliveryStatus.queued or row.workspace_id != job.workspace_id:
            return  # recorded by an earlier run, or gone
        if row.channel is Channel.wecom and row.call_started_at is not None:
            unknown = CallResult(False, unknown=True, error=_unknown_text(row))
            marker.rollback()  # (touching row after this would begin a new transaction)
            _record(session, delivery_id, unknown, now)
            return
        try:
            call = _prepare(marker, row)
        except _Refused as refused:
            marker.rollback()
            _record(session, delivery_id, CallResult(False, error=str(refused)), now)
            return
        row.call_started_at = now
        row.attempts += 1
        marker.commit()
    # 2. Call the channel, holding no database lock.
    result = call()
    # 3. Record the outcome in the job's transaction.
    if result.retryable and job.attempts < job.max_attempts:
        _note_retry(engine, delivery_id, result, job, clear_marker=True)
        raise RetryLater(f"delivery {delivery_id}: {result.error}")
    _record(session, delivery_id, result, utcnow(), dead_letter=result.retryable)


def _unknown_text(row: Delivery) -> str:
    started = row.call_started_at.isoformat() if row.call_started_at else "?"
    return f"a WeCom call started at {started} was never recorded (the worker stopped); not repeated"


def _note_retry(engine: Any, delivery_id: int, result: CallResult, job: Job, *, clear_marker: bool) -> None:
    """Keeps the last error on the row while the job waits to retry; a failure that surely did not
    reach the channel clears the attempt mark (so WeCom may be called again)."""
    values: dict[str, Any] = {
        "detail": f"attempt {job.attempts} of {job.max_attempts} failed: {result.error}"[:500],
        "updated_at": utcnow(),
    }
    if clear_marker:
        values["call_started_at"] = None
    with Session(bind=engine) as note:
        note.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.status == DeliveryStatus.queued)
            .values(**values)
        )
        note.commit()


def _record(
    session: Session, delivery_id: int, result: CallResult, now: dt.datetime, *, dead_letter: bool = False
) -> None:
    row = session.scalar(select(Delivery).where(Delivery.id == delivery_id).with_for_update())
    if row is None or row.status is not DeliveryStatus.queued:
        return
    row.updated_at = now
    row.call_started_at = None
    if result.ok:
        row.status = DeliveryStatus.sent
        row.sent_at = now
        row.reason = None
        row.detail = None
        row.external_id = result.external_id
    elif result.unknown:
        row.status = DeliveryStatus.unknown
        row.reason = reasons.OUTCOME_UNKNOWN
        row.detail = (result.error or "")[:500]
    else:
        row.status = DeliveryStatus.failed
        row.reason = reasons.DEAD_LETTER if dead_letter else reasons.SEND_FAILED
        row.detail = (result.error or "")[:500]
        service.give_back(session, row)
    session.flush()


class _Refused(Exception):
    """The delivery cannot be sent any more (its address or sender went away): a permanent failure."""


def _prepare(session: Session, row: Delivery) -> Any:
    """Reads what the call needs and returns a function making it (no database access inside)."""
    if row.channel is Channel.webhook:
        return _prepare_webhook(session, row)
    if row.channel is Channel.email:
        return _prepare_email(session, row)
    if row.channel is Channel.wecom:
        return _prepare_wecom(session, row)
    raise _Refused(f"channel {row.channel} has no sender")


def _content_title(session: Session, content_id: int | None) -> str | None:
    if content_id is None:
        return None
    return session.scalar(select(ContentItem.title).where(ContentItem.id == content_id))


def webhook_body(session: Session, row: Delivery) -> bytes:
    contact = session.get(Contact, row.contact_id)
    identities = {
        kind: value
        for kind, value in session.execute(
            select(Identity.type, Identity.value)
            .where(Identity.contact_id == row.contact_id)
            .order_by(Identity.id.desc())
        )
    }
    body: dict[str, Any] = {
        "id": row.id,
        "workspace_id": row.workspace_id,
        "source": row.source,
        "step": row.step,
        "entry": row.entry,
        "contact": {
            "id": row.contact_id,
            "name": contact.name if contact is not None else None,
            "identities": identities,
        },
        "text": row.text,
        "content": (
            {"id": row.content_id, "title": _content_title(session, row.content_id), "link": absolute_link(row.link)}
            if row.content_id is not None
            else None
        ),
        "staff_id": row.staff_id,
        "welfare": row.welfare,
        "payload": row.payload,
        "created_at": row.created_at.isoformat(),
    }
    return orjson.dumps(body)


def _prepare_webhook(session: Session, row: Delivery) -> Any:
    config, settings_row = policy.load(session, row.workspace_id)
    url = row.webhook_url or config.webhook_url
    if not url:
        raise _Refused("no webhook endpoint any more: set webhook_url in the delivery settings")
    if settings_row is None or not settings_row.webhook_secret_encrypted:
        service.ensure_webhook_secret(session, row.workspace_id, settings_row, utcnow())
        settings_row = session.scalar(select(DeliverySettings).where(DeliverySettings.workspace_id == row.workspace_id))
    assert settings_row is not None and settings_row.webhook_secret_encrypted
    secret = secrets.decrypt(settings_row.webhook_secret_encrypted)
    body = webhook_body(session, row)
    key = str(row.id)
    timeout = _settings().delivery_webhook_timeout_seconds

    def call() -> CallResult:
        result = webhook_adapter.post(
            url, body, secret=secret, delivery_key=key, timestamp=int(utcnow().timestamp()), timeout=timeout
        )
        return CallResult(
            result.ok,
            retryable=result.retryable,
            error=result.error,
            external_id=f"HTTP {result.status_code}" if result.status_code else None,
        )

    return call


def smtp_config(settings: Settings) -> email_adapter.SmtpConfig:
    return email_adapter.SmtpConfig(
        host=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username or None,
        password=settings.smtp_password or None,
        starttls=settings.smtp_starttls,
        ssl=settings.smtp_ssl,
        sender=settings.smtp_from,
        timeout=settings.smtp_timeout_seconds,
    )


def _prepare_email(session: Session, row: Delivery) -> Any:
    settings = _settings()
    if not (settings.smtp_host and settings.smtp_from):
        raise _Refused("SMTP is not configured on this server (SIYU_SMTP_HOST, SIYU_SMTP_FROM)")
    to = session.scalar(
        select(Identity.value)
        .where(Identity.contact_id == row.contact_id, Identity.type == service.EMAIL_IDENTITY)
        .order_by(Identity.id)
        .limit(1)
    )
    if not to:
        raise _Refused("the contact has no email identity any more")
    title = _content_title(session, row.content_id)
    payload = row.payload or {}
    text = row.text or ""
    subject = str(payload.get("subject") or title or (text.splitlines()[0] if text else "") or "siyu")[:120]
    link = absolute_link(row.link)
    body = "\n\n".join(part for part in (text, f"{title or ''} {link}".strip() if link else "") if part)
    config = smtp_config(settings)
    message = email_adapter.build(config, delivery_id=row.id, to=to, subject=subject, text=body)

    def call() -> CallResult:
        result = email_adapter.send(config, message)
        return CallResult(
            result.ok, retryable=result.retryable, error=result.error, external_id=str(message["Message-ID"])
        )

    return call


def _prepare_wecom(session: Session, row: Delivery) -> Any:
    from siyu.adapters.wecom import WeComClient
    from siyu.wecom import service as wecom

    config = wecom.load_config(session, row.workspace_id, _settings())
    if config is None:
        raise _Refused("WeCom is not configured for this workspace any more")
    external = session.scalar(
        select(Identity.value)
        .where(Identity.contact_id == row.contact_id, Identity.type == service.WECOM_IDENTITY)
        .order_by(Identity.id)
        .limit(1)
    )
    sender = session.scalar(select(Staff.wecom_userid).where(Staff.id == row.staff_id)) if row.staff_id else None
    if not external:
        raise _Refused("the contact has no wecom_external_userid identity any more")
    if not sender:
        raise _Refused("the sending staff member has no WeCom userid (wecom_userid) any more")
    attachments: list[dict[str, Any]] = []
    link = absolute_link(row.link)
    if link and link.startswith("http"):
        title = _content_title(session, row.content_id) or link
        attachments.append({"msgtype": "link", "link": {"title": title[:128], "url": link}})
    text = row.text if row.text else (None if attachments else link)
    base_url = _settings().wecom_base_url

    def call() -> CallResult:
        client: WeComClient = config.client(base_url=base_url)
        try:
            with client:
                result = client.add_msg_template(
                    sender=sender, external_userids=[external], text=text, attachments=attachments
                )
        except WeComNetworkError as exc:
            # a POST that timed out may have been applied: never repeat it
            return CallResult(False, unknown=True, error=exc.message[:300])
        except (WeComBusy, RateLimited) as exc:
            return CallResult(False, retryable=True, error=exc.message[:300])
        except InvalidCredentials as exc:
            return CallResult(False, error=exc.message[:300])
        except WeComError as exc:
            return CallResult(False, error=exc.message[:300])
        if external in result.fail_list:
            return CallResult(False, error=f"WeCom could not reach {external} (fail_list); msgid {result.msgid}")
        return CallResult(True, external_id=result.msgid or None)

    return call
