"""App messages (应用消息) to staff: siyu's own reminders — new tasks, escalations, the morning digest —
sent by the workspace's WeCom app (its `agent_id`) to the staff member's WeCom (their `wecom_userid`).

`notify_staff` queues one in the caller's transaction together with its `wecom.app_message` job (outbox):
the message exists if and only if what caused it commits. Its `dedupe_key` makes the same notice twice one
row. Nothing is queued when the workspace has no WeCom app (no agent_id); a staff member without a WeCom
userid, or one who already got `HOURLY_CAP` messages this hour (WeCom silently drops more than 30 a
minute per member), gets a `skipped` row saying why.

Sending: the job marks the attempt (committed) before calling, then records the outcome. Every call asks
WeCom's duplicate check for `DUPLICATE_CHECK_SECONDS` (4 hours, WeCom's longest): a retry after a
timeout or a crash re-sends the same body and WeCom drops it if the first landed, so a message arrives
once. An attempt older than the check window cannot be repeated safely and is recorded failed
(outcome_unknown) instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from siyu.adapters.wecom.client import (
    APP_CARD_DESCRIPTION_MAX_BYTES,
    APP_CARD_TITLE_MAX_BYTES,
    APP_DUPLICATE_CHECK_MAX_SECONDS,
    AppMessageResult,
)
from siyu.adapters.wecom.errors import InvalidCredentials, RateLimited, WeComBusy, WeComError, WeComNetworkError
from siyu.errors import validation_error
from siyu.jobs import enqueue
from siyu.jobs.models import Job
from siyu.kit.sql import dialect_insert
from siyu.kit.time import utcnow
from siyu.staff.models import Staff
from siyu.wecom import service
from siyu.wecom.models import AppMessageStatus, WeComAppMessage, WeComSettings

APP_MESSAGE_JOB = "wecom.app_message"
DUPLICATE_CHECK_SECONDS = APP_DUPLICATE_CHECK_MAX_SECONDS
# An unrecorded attempt younger than this is re-sent (WeCom's duplicate check drops it if it landed).
SAFE_RESEND = dt.timedelta(seconds=DUPLICATE_CHECK_SECONDS - 600)
HOURLY_CAP = 20  # per staff member; WeCom drops beyond 30 a minute and 1,000 an hour per member and app
LIST_MAX = 500

# reasons
NO_WECOM_USERID = "no_wecom_userid"
STAFF_INACTIVE = "staff_inactive"
HOURLY_CAP_REACHED = "hourly_cap"
NOT_IN_APP_RANGE = "not_in_app_range"  # WeCom answered the userid in invaliduser / 81013
SEND_FAILED = "send_failed"
DEAD_LETTER = "dead_letter"
OUTCOME_UNKNOWN = "outcome_unknown"
NOT_CONFIGURED = "not_configured"


def _clip(text: str, max_bytes: int) -> str:
    """`text` cut to at most `max_bytes` of UTF-8 on a character boundary (WeCom counts bytes)."""
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    return data[: max_bytes - 3].decode("utf-8", errors="ignore") + "…"


def app_agent_id(session: Session, workspace_id: int) -> int | None:
    """The workspace's WeCom app id, or None when app messages are off (WeCom or agent_id not set)."""
    return session.scalar(select(WeComSettings.agent_id).where(WeComSettings.workspace_id == workspace_id))


def notify_staff(
    session: Session,
    workspace_id: int,
    *,
    staff_id: int,
    kind: str,
    key: str,
    title: str,
    description: str,
    path: str | None = None,
    now: dt.datetime | None = None,
) -> WeComAppMessage | None:
    """Queue an app message to one staff member (see the module docstring). `path` is a console path
    (e.g. "/console/tasks"): with a public base URL set (delivery_link_base_url) the message is a text
    card opening it. Returns the row (made now or before), or None when the workspace has no WeCom app.
    Never commits."""
    if not key or len(key) > 200:
        raise validation_error("key", "must be 1-200 characters")
    if app_agent_id(session, workspace_id) is None:
        return None
    existing = _by_key(session, workspace_id, key)
    if existing is not None:
        return existing
    now = now or utcnow()
    staff = session.get(Staff, staff_id)
    if staff is None or staff.workspace_id != workspace_id:
        raise validation_error("staff_id", f"no staff member {staff_id} in this workspace")
    status, reason = AppMessageStatus.queued, None
    if not staff.is_active:
        status, reason = AppMessageStatus.skipped, STAFF_INACTIVE
    elif not staff.wecom_userid:
        status, reason = AppMessageStatus.skipped, NO_WECOM_USERID
    elif _sent_last_hour(session, staff_id, now) >= HOURLY_CAP:
        status, reason = AppMessageStatus.skipped, HOURLY_CAP_REACHED
    base = service.current_settings().delivery_link_base_url.rstrip("/")
    session.execute(
        dialect_insert(session)(WeComAppMessage)
        .values(
            workspace_id=workspace_id,
            staff_id=staff_id,
            userid=staff.wecom_userid,
            kind=kind,
            dedupe_key=key,
            title=_clip(title.strip() or kind, APP_CARD_TITLE_MAX_BYTES),
            description=_clip(description.strip(), APP_CARD_DESCRIPTION_MAX_BYTES),
            url=base + path if base and path else None,
            status=status,
            reason=reason,
            attempts=0,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["workspace_id", "dedupe_key"])
    )
    row = _by_key(session, workspace_id, key)
    assert row is not None  # inserted now, or by a transaction that committed first
    if row.status is AppMessageStatus.queued:
        enqueue(
            session,
            APP_MESSAGE_JOB,
            {"message_id": row.id},
            workspace_id=workspace_id,
            dedupe_key=f"wecom-app:{row.id}",
        )
    return row


def _by_key(session: Session, workspace_id: int, key: str) -> WeComAppMessage | None:
    return session.scalars(
        select(WeComAppMessage).where(WeComAppMessage.workspace_id == workspace_id, WeComAppMessage.dedupe_key == key)
    ).one_or_none()


def _sent_last_hour(session: Session, staff_id: int, now: dt.datetime) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(WeComAppMessage)
            .where(
                WeComAppMessage.staff_id == staff_id,
                WeComAppMessage.created_at > now - dt.timedelta(hours=1),
                WeComAppMessage.status.in_([AppMessageStatus.queued, AppMessageStatus.sent]),
            )
        )
        or 0
    )


def list_messages(
    session: Session,
    workspace_id: int,
    *,
    status: AppMessageStatus | None = None,
    staff_id: int | None = None,
    limit: int = 50,
) -> list[WeComAppMessage]:
    """The newest app messages of the workspace first."""
    query = select(WeComAppMessage).where(WeComAppMessage.workspace_id == workspace_id)
    if status is not None:
        query = query.where(WeComAppMessage.status == status)
    if staff_id is not None:
        query = query.where(WeComAppMessage.staff_id == staff_id)
    return list(session.scalars(query.order_by(WeComAppMessage.id.desc()).limit(min(limit, LIST_MAX))))


# --------------------------------------------------------------------------- sending


@dataclass(frozen=True)
class _Outcome:
    ok: bool
    retryable: bool = False
    reason: str | None = None
    error: str | None = None
    msgid: str | None = None


class RetryAppMessage(Exception):
    """WeCom was busy, rate-limited or unreachable: the job runs again after a backoff."""


def send_job(session: Session, job: Job) -> None:
    message_id = int(job.payload["message_id"])
    engine = session.get_bind()
    now = utcnow()
    # 1. Mark the attempt in a short transaction of its own, committed before the call.
    with Session(bind=engine, expire_on_commit=False) as marker:
        row = marker.get(WeComAppMessage, message_id)
        if row is None or row.status is not AppMessageStatus.queued or row.workspace_id != job.workspace_id:
            return  # recorded by an earlier run, or gone
        if row.call_started_at is not None and now - row.call_started_at >= SAFE_RESEND:
            started = row.call_started_at.isoformat()
            marker.rollback()
            _record(
                session,
                message_id,
                _Outcome(
                    False,
                    reason=OUTCOME_UNKNOWN,
                    error=f"an attempt at {started} was never recorded and WeCom's duplicate check has lapsed; "
                    "not repeated",
                ),
            )
            return
        call = _prepare(marker, row)
        if isinstance(call, _Outcome):
            marker.rollback()
            _record(session, message_id, call)
            return
        if row.call_started_at is None:
            row.call_started_at = now
        row.attempts += 1
        marker.commit()
    # 2. Call WeCom, holding no database lock.
    outcome = call()
    # 3. Record the outcome in the job's transaction (or leave it queued for the retry).
    if outcome.retryable and job.attempts < job.max_attempts:
        with Session(bind=engine) as note:
            note.execute(
                update(WeComAppMessage)
                .where(WeComAppMessage.id == message_id, WeComAppMessage.status == AppMessageStatus.queued)
                .values(detail=f"attempt {job.attempts} of {job.max_attempts} failed: {outcome.error}"[:500])
            )
            note.commit()
        raise RetryAppMessage(f"app message {message_id}: {outcome.error}")
    if outcome.retryable:
        outcome = _Outcome(False, reason=DEAD_LETTER, error=outcome.error)
    _record(session, message_id, outcome)


def _prepare(session: Session, row: WeComAppMessage) -> Callable[[], _Outcome] | _Outcome:
    """A function making the call (no database access inside), or the outcome when there is nothing to call."""
    config = service.load_config(session, row.workspace_id, service.current_settings())
    if config is None or config.agent_id is None:
        return _Outcome(False, reason=NOT_CONFIGURED, error="the workspace's WeCom app (agent_id) is not set any more")
    staff = session.get(Staff, row.staff_id) if row.staff_id is not None else None
    if staff is None or not staff.is_active:
        return _Outcome(False, reason=STAFF_INACTIVE, error="the staff member is gone or deactivated")
    userid = staff.wecom_userid
    if not userid:
        return _Outcome(False, reason=NO_WECOM_USERID, error="the staff member has no WeCom userid any more")
    agent_id = config.agent_id
    card = {"title": row.title, "description": row.description, "url": row.url, "btntxt": "查看"} if row.url else None
    text = None if card else f"{row.title}\n{row.description}".strip()
    base_url = service.current_settings().wecom_base_url

    def call() -> _Outcome:
        try:
            with config.client(base_url=base_url) as client:
                result: AppMessageResult = client.send_app_message(
                    agent_id=agent_id,
                    userids=[userid],
                    text=text,
                    card=card,
                    duplicate_check_seconds=DUPLICATE_CHECK_SECONDS,
                )
        except (WeComBusy, RateLimited, WeComNetworkError) as exc:
            # safe to repeat: the duplicate check drops a body that already landed
            return _Outcome(False, retryable=True, error=exc.message[:300])
        except InvalidCredentials as exc:
            return _Outcome(False, reason=SEND_FAILED, error=exc.message[:300])
        except WeComError as exc:
            reason = NOT_IN_APP_RANGE if exc.errcode == 81013 else SEND_FAILED
            return _Outcome(False, reason=reason, error=exc.message[:300])
        if userid.lower() in result.invalid_users or userid.lower() in result.unlicensed_users:
            return _Outcome(
                False,
                reason=NOT_IN_APP_RANGE,
                error=f"WeCom refused {userid}: not in the app's visible range or without a licence",
            )
        return _Outcome(True, msgid=result.msgid or None)

    return call


def _record(session: Session, message_id: int, outcome: _Outcome) -> None:
    row = session.scalar(select(WeComAppMessage).where(WeComAppMessage.id == message_id).with_for_update())
    if row is None or row.status is not AppMessageStatus.queued:
        return
    row.call_started_at = None
    if outcome.ok:
        row.status = AppMessageStatus.sent
        row.sent_at = utcnow()
        row.msgid = outcome.msgid
        row.reason = row.detail = None
    else:
        row.status = AppMessageStatus.failed
        row.reason = outcome.reason or SEND_FAILED
        row.detail = (outcome.error or "")[:500]
    session.flush()
