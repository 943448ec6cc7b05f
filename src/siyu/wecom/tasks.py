"""WeCom jobs: keep a channel code's 「联系我」 contact way in step, send a new contact's welcome.

Both run in the worker (`siyu.jobs`), inside the job's transaction; they never commit.
- `wecom.contact_way` {code_id}: add_contact_way the first time (stores config_id and qr_code on the
  code), update_contact_way after (pool, state; a paused code asks staff to confirm each add). A WeCom
  error raises, so the job is retried with back-off and the error is kept on the job.
- `wecom.welcome` {callback_id, code_id, welcome_code, received_at, ...}: send the code's welcome within
  WeCom's 20 s window. Already sent (41051), expired or refused: recorded on the callback row, never
  retried (a welcome code is single-use and short-lived).
- `wecom.app_message` {message_id}: one app message (应用消息) to a staff member (siyu.wecom.app_messages);
  busy, rate-limited or unreachable WeCom is retried with back-off, safely (WeCom's duplicate check).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.adapters.wecom import ExternalContactAdded, WeComClient, WeComConfig, Welcome, send_welcome
from siyu.adapters.wecom.client import REMARK_MAX_CHARS, WELCOME_WINDOW_SECONDS
from siyu.channels.models import ChannelCode, ChannelCodeStaff, CodeStatus
from siyu.errors import validation_error
from siyu.jobs import job_handler
from siyu.jobs.models import Job
from siyu.jobs.registry import exponential_backoff
from siyu.kit.time import utcnow
from siyu.staff.models import Staff
from siyu.wecom import app_messages, service
from siyu.wecom.models import WeComCallbackLog


def _client(config: WeComConfig) -> WeComClient:
    return config.client(base_url=service.current_settings().wecom_base_url)


def _config(session: Session, workspace_id: int | None) -> WeComConfig | None:
    if workspace_id is None:
        return None
    return service.load_config(session, workspace_id, service.current_settings())


@job_handler(service.CONTACT_WAY_JOB, max_attempts=5)
def sync_contact_way(session: Session, job: Job) -> None:
    code = session.get(ChannelCode, int(job.payload["code_id"]))
    config = _config(session, job.workspace_id)
    if code is None or config is None or code.workspace_id != job.workspace_id:
        return  # the code was deleted, or WeCom was unconfigured since: nothing to do
    users = [
        userid
        for userid in session.scalars(
            select(Staff.wecom_userid)
            .join(ChannelCodeStaff, ChannelCodeStaff.staff_id == Staff.id)
            .where(ChannelCodeStaff.code_id == code.id, Staff.is_active.is_(True), Staff.wecom_userid.is_not(None))
            .order_by(ChannelCodeStaff.position)
        )
        if userid
    ]
    if not users:
        raise validation_error(
            "pool", f"channel code {code.name!r}: no staff member of its pool has a WeCom userid (wecom_userid)"
        )
    state = code.wecom_state or f"siyu-{code.id}"
    code.wecom_state = state
    remark = code.name[:REMARK_MAX_CHARS]
    skip_verify = code.status is CodeStatus.active
    with _client(config) as client:
        if code.wecom_config_id is None:
            way = client.add_contact_way(
                users=users, state=state, contact_type=2, remark=remark, skip_verify=skip_verify
            )
            code.wecom_config_id = way.config_id
            code.wecom_qr_code = way.qr_code
        else:
            client.update_contact_way(
                code.wecom_config_id, users=users, state=state, remark=remark, skip_verify=skip_verify
            )
    session.flush()


def _welcome_of(code: ChannelCode) -> Welcome:
    attachments: list[dict[str, Any]] = []
    if code.welcome_link_url:
        link = {"title": code.welcome_link_title or code.welcome_link_url, "url": code.welcome_link_url}
        attachments.append({"msgtype": "link", "link": link})
    return Welcome(text=code.welcome_text, attachments=attachments)


@job_handler(service.WELCOME_JOB, max_attempts=1)
def send_code_welcome(session: Session, job: Job) -> None:
    payload = job.payload
    log = session.get(WeComCallbackLog, int(payload["callback_id"]))
    if log is None or log.welcome not in (None, "queued"):
        return  # done by an earlier run
    code = session.get(ChannelCode, int(payload["code_id"]))
    config = _config(session, job.workspace_id)
    if code is None or config is None:
        log.welcome, log.welcome_detail = "skipped", "the code or the WeCom settings are gone"
        return
    elapsed = (utcnow() - service.received_at_of(payload)).total_seconds()
    if elapsed >= WELCOME_WINDOW_SECONDS:
        log.welcome = "expired"
        log.welcome_detail = (
            f"the job ran {elapsed:.0f} s after the callback; WeCom allows {WELCOME_WINDOW_SECONDS:.0f} s"
        )
        return
    callback = ExternalContactAdded(
        corp_id=config.corp_id,
        create_time=0,
        user_id=str(payload.get("user_id") or ""),
        external_user_id=str(payload.get("external_user_id") or ""),
        welcome_code=str(payload["welcome_code"]),
    )
    with _client(config) as client:
        outcome = send_welcome(client, callback, _welcome_of(code), received_at=client.clock() - max(elapsed, 0.0))
    log.welcome = outcome.status
    log.welcome_detail = str(outcome.error)[:500] if outcome.error is not None else None
    session.flush()


@job_handler(app_messages.APP_MESSAGE_JOB, max_attempts=6, retry_backoff=exponential_backoff(base=15.0, cap=1800.0))
def send_app_message(session: Session, job: Job) -> None:
    app_messages.send_job(session, job)
