"""A workspace's WeCom settings and what siyu does with each callback. Services never commit.

Callbacks: `open_for(...)` authenticates and decrypts (nothing is processed from a refused one), then
`process_callback(...)` turns it into siyu data in the caller's transaction:
- add_external_contact with a state naming a channel code → `record_add(source="wecom")` (attributed,
  tagged, assigned) and, with a WelcomeCode, a `wecom.welcome` job;
- add_external_contact without a known state, del_external_contact, del_follow_user, group member
  changes → the events `to_siyu_events` maps them to, through event ingestion;
- anything else → recorded as ignored.
Each callback gets a `wecom_callback` row keyed by its content: a redelivery finds it and is not
processed again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.adapters.wecom import (
    ExternalChatChanged,
    ExternalContactAdded,
    ExternalContactDeletedByStaff,
    StaffDeletedByContact,
    UnknownCallback,
    WeComCallback,
    WeComConfig,
    WeComCrypto,
    to_siyu_events,
)
from siyu.adapters.wecom.events import event_id
from siyu.channels.attribution import CodePaused, NoStaffAvailable, record_add
from siyu.channels.models import ChannelCode, CodeStatus
from siyu.config import Settings, get_settings
from siyu.errors import NotFound, SiyuError, validation_error
from siyu.events import service as events
from siyu.events.models import Event
from siyu.groups.wecom import on_external_chat
from siyu.jobs import enqueue
from siyu.kit.time import utcnow
from siyu.staff.models import Staff
from siyu.wecom import secrets
from siyu.wecom.models import WeComCallbackLog, WeComSettings
from siyu.wecom.schemas import WeComConfigIn, WeComConfigRead

WELCOME_JOB = "wecom.welcome"
CONTACT_WAY_JOB = "wecom.contact_way"

_runtime_settings: Settings | None = None


def use_settings(settings: Settings) -> None:
    """The settings jobs use (create_app registers its own; a plain worker uses get_settings())."""
    global _runtime_settings  # noqa: PLW0603 - one process-wide value, set at start-up
    _runtime_settings = settings


def current_settings() -> Settings:
    return _runtime_settings if _runtime_settings is not None else get_settings()


# --- settings ------------------------------------------------------------------------------------------


def get_settings_row(session: Session, workspace_id: int) -> WeComSettings | None:
    return session.scalar(select(WeComSettings).where(WeComSettings.workspace_id == workspace_id))


def config_read(row: WeComSettings) -> WeComConfigRead:
    return WeComConfigRead(
        corp_id=row.corp_id,
        agent_id=row.agent_id,
        secret_hint=row.secret_hint,
        callback_path=f"/callbacks/wecom/{row.workspace_id}",
        updated_at=row.updated_at,
    )


def read_config(session: Session, workspace_id: int) -> WeComConfigRead:
    row = get_settings_row(session, workspace_id)
    if row is None:
        raise NotFound("WeCom is not configured for this workspace; PUT /api/v1/wecom/config first")
    return config_read(row)


def put_config(session: Session, workspace_id: int, data: WeComConfigIn, settings: Settings) -> WeComSettings:
    """Create or replace the workspace's settings; left-out secrets keep their stored values.

    Saving enqueues a contact-way job for every code that has none yet, so existing codes get their QR.
    """
    row = get_settings_row(session, workspace_id)
    if row is None:
        missing = [name for name in ("secret", "token", "encoding_aes_key") if getattr(data, name) is None]
        if missing:
            raise validation_error(missing[0], "is required the first time WeCom is configured")
    if data.encoding_aes_key is not None or data.token is not None:
        token = data.token if data.token is not None else secrets.decrypt(settings, row.token_encrypted)  # type: ignore[union-attr]
        aes = (
            data.encoding_aes_key
            if data.encoding_aes_key is not None
            else secrets.decrypt(settings, row.aes_key_encrypted)  # type: ignore[union-attr]
        )
        WeComCrypto(token, aes, data.corp_id)  # raises InvalidAESKey (422) for a key that cannot work
    now = utcnow()
    if row is None:
        assert data.secret and data.token and data.encoding_aes_key
        row = WeComSettings(
            workspace_id=workspace_id,
            corp_id=data.corp_id,
            agent_id=data.agent_id,
            secret_encrypted=secrets.encrypt(settings, data.secret),
            token_encrypted=secrets.encrypt(settings, data.token),
            aes_key_encrypted=secrets.encrypt(settings, data.encoding_aes_key),
            secret_hint=secrets.hint(data.secret),
            updated_at=now,
        )
        session.add(row)
    else:
        row.corp_id = data.corp_id
        row.agent_id = data.agent_id
        if data.secret is not None:
            row.secret_encrypted = secrets.encrypt(settings, data.secret)
            row.secret_hint = secrets.hint(data.secret)
        if data.token is not None:
            row.token_encrypted = secrets.encrypt(settings, data.token)
        if data.encoding_aes_key is not None:
            row.aes_key_encrypted = secrets.encrypt(settings, data.encoding_aes_key)
        row.updated_at = now
    session.flush()
    codes = session.scalars(
        select(ChannelCode.id).where(ChannelCode.workspace_id == workspace_id, ChannelCode.wecom_config_id.is_(None))
    )
    for code_id in list(codes):
        enqueue_contact_way(session, workspace_id, code_id)
    return row


def load_config(session: Session, workspace_id: int, settings: Settings) -> WeComConfig | None:
    row = get_settings_row(session, workspace_id)
    if row is None:
        return None
    return WeComConfig(
        corp_id=row.corp_id,
        secret=secrets.decrypt(settings, row.secret_encrypted),
        token=secrets.decrypt(settings, row.token_encrypted),
        encoding_aes_key=secrets.decrypt(settings, row.aes_key_encrypted),
        agent_id=row.agent_id,
    )


def is_configured(session: Session, workspace_id: int) -> bool:
    return session.scalar(select(WeComSettings.id).where(WeComSettings.workspace_id == workspace_id)) is not None


def enqueue_contact_way(session: Session, workspace_id: int, code_id: int) -> None:
    enqueue(
        session, CONTACT_WAY_JOB, {"code_id": code_id}, workspace_id=workspace_id, dedupe_key=f"wecom-way:{code_id}"
    )


def code_changed(session: Session, code: ChannelCode) -> None:
    """A channel code was created, edited, paused or resumed: give it a state, sync its contact way."""
    if code.wecom_state is None:
        code.wecom_state = f"siyu-{code.id}"
    if is_configured(session, code.workspace_id):
        enqueue_contact_way(session, code.workspace_id, code.id)


# --- callbacks -----------------------------------------------------------------------------------------


def callback_kind(callback: WeComCallback) -> str:
    if isinstance(callback, UnknownCallback):
        return "/".join(p for p in (callback.event or callback.msg_type or "unknown", callback.change_type) if p)[:80]
    if isinstance(callback, ExternalChatChanged):
        return f"change_external_chat/{callback.change_type}"
    names = {
        ExternalContactDeletedByStaff: "del_external_contact",
        StaffDeletedByContact: "del_follow_user",
    }
    name = names.get(type(callback))  # type: ignore[call-overload]
    if isinstance(callback, ExternalContactAdded):
        name = "add_half_external_contact" if callback.half else "add_external_contact"
    return f"change_external_contact/{name or type(callback).__name__}"


def callback_key(callback: WeComCallback) -> str:
    """Deterministic from the callback's content: the same callback redelivered has the same key."""
    fields = sorted((k, repr(v)) for k, v in dataclasses.asdict(callback).items())
    return event_id(type(callback).__name__, *fields)


def log_rejection(session: Session, workspace_id: int, reason: str) -> None:
    session.add(
        WeComCallbackLog(
            workspace_id=workspace_id, received_at=utcnow(), kind="rejected", outcome="rejected", detail=reason[:500]
        )
    )


def _staff_for(session: Session, workspace_id: int, userid: str) -> int | None:
    return session.scalar(
        select(Staff.id)
        .where(Staff.workspace_id == workspace_id, Staff.wecom_userid == userid, Staff.is_active.is_(True))
        .order_by(Staff.id)
        .limit(1)
    )


def _store_events(session: Session, workspace_id: int, items: list[dict[str, Any]], region: str) -> int | None:
    """Store mapped events through ingestion; the contact id of the first one."""
    if not items:
        return None
    now = utcnow()
    tz = events.workspace_timezone(session, workspace_id)
    events.store(session, workspace_id, events.prepare(items, tz=tz, region=region, now=now), now=now)
    return session.scalar(
        select(Event.contact_id).where(Event.workspace_id == workspace_id, Event.event_id == items[0]["id"])
    )


def process_callback(
    session: Session, workspace_id: int, callback: WeComCallback, *, region: str = "CN"
) -> WeComCallbackLog:
    """Turn an authenticated callback into siyu data; returns its log row (the earlier one on redelivery)."""
    key = callback_key(callback)
    earlier = session.scalar(
        select(WeComCallbackLog).where(
            WeComCallbackLog.workspace_id == workspace_id, WeComCallbackLog.callback_key == key
        )
    )
    if earlier is not None:
        return earlier
    log = WeComCallbackLog(
        workspace_id=workspace_id,
        callback_key=key,
        received_at=utcnow(),
        kind=callback_kind(callback),
        outcome="processed",
    )
    user_id = getattr(callback, "user_id", None)
    staff_id = _staff_for(session, workspace_id, user_id) if user_id else None
    code: ChannelCode | None = None
    if isinstance(callback, ExternalContactAdded) and callback.state:
        code = session.scalar(
            select(ChannelCode).where(
                ChannelCode.workspace_id == workspace_id, ChannelCode.wecom_state == callback.state
            )
        )
    items = to_siyu_events(
        callback,
        channel_code_for_state=lambda _state: str(code.id) if code is not None else None,
        staff_id_for_userid=lambda _userid: staff_id,
    )
    try:
        if isinstance(callback, ExternalContactAdded) and code is not None:
            log.code_id = code.id
            log.contact_id = _attribute(session, workspace_id, callback, code, staff_id, items[0]["id"], log, region)
        elif items:
            log.contact_id = _store_events(session, workspace_id, items, region)
        elif isinstance(callback, ExternalChatChanged) and callback.change_type in ("create", "dismiss"):
            log.detail = on_external_chat(session, workspace_id, callback)[:500]
        else:
            log.outcome = "ignored"
            log.detail = "no customer event for this callback"
        if isinstance(callback, ExternalContactAdded) and code is None:
            log.detail = f"state {callback.state!r} names no channel code" if callback.state else "no state"
    except SiyuError as exc:
        log.outcome = "failed"
        log.detail = f"{exc.code}: {exc}"[:500]
    session.add(log)
    session.flush()
    if isinstance(callback, ExternalContactAdded) and callback.welcome_code and code is not None:
        _queue_welcome(session, workspace_id, callback, code, log)
    return log


def _attribute(
    session: Session,
    workspace_id: int,
    callback: ExternalContactAdded,
    code: ChannelCode,
    staff_id: int | None,
    event_key: str,
    log: WeComCallbackLog,
    region: str,
) -> int | None:
    try:
        with session.begin_nested():
            result = record_add(
                session,
                workspace_id,
                code.id,
                {"wecom_external_userid": callback.external_user_id},
                occurred_at=callback.occurred_at,
                source="wecom",
                staff_hint=staff_id,
                region=region,
                event_id=event_key,
            )
    except (CodePaused, NoStaffAvailable) as exc:
        # WeCom has added the contact whatever siyu thinks of the code: keep the event, unattributed.
        log.detail = f"not attributed: {exc}"[:500]
        items = to_siyu_events(callback, staff_id_for_userid=lambda _u: staff_id)
        for item in items:
            item["properties"].pop("channel_code", None)
        return _store_events(session, workspace_id, items, region)
    if result.repeat:
        log.detail = "this contact had already come through this code"
    return result.contact_id


def _queue_welcome(
    session: Session, workspace_id: int, callback: ExternalContactAdded, code: ChannelCode, log: WeComCallbackLog
) -> None:
    if code.status is not CodeStatus.active or not (code.welcome_text or code.welcome_link_url):
        log.welcome = "skipped"
        log.welcome_detail = "the channel code has no welcome" if code.status is CodeStatus.active else "code paused"
        return
    assert callback.welcome_code
    log.welcome = "queued"
    enqueue(
        session,
        WELCOME_JOB,
        {
            "callback_id": log.id,
            "code_id": code.id,
            "welcome_code": callback.welcome_code,
            "external_user_id": callback.external_user_id,
            "user_id": callback.user_id,
            "received_at": log.received_at.isoformat(),
        },
        workspace_id=workspace_id,
        dedupe_key=f"wecom-welcome:{callback.welcome_code}"[:200],
        max_attempts=1,
    )


def list_callbacks(session: Session, workspace_id: int, limit: int) -> list[WeComCallbackLog]:
    return list(
        session.scalars(
            select(WeComCallbackLog)
            .where(WeComCallbackLog.workspace_id == workspace_id)
            .order_by(WeComCallbackLog.id.desc())
            .limit(limit)
        )
    )


def received_at_of(payload: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(str(payload["received_at"]))
