"""WeCom broadcasts: one add_msg_template task per sending staff member, confirmed by staff in WeCom.

WeCom does not let siyu message customers directly: a broadcast becomes a task that appears in the staff
member's WeCom client, and goes out when they confirm it (企业发表, document/path/92135).

- Creating a task (`create_pending`) is at most once: the task is marked `creating` and committed before
  the call; the answer is recorded in a second transaction. A task found still `creating` after
  CREATING_LEASE (the worker died between the two) becomes `unknown` and is not repeated, because a
  second call would put a second task in front of the staff member and, once confirmed, a second
  message in front of the customers. A timeout is `unknown` too; a refusal is `failed`.
- Confirmation (`check_results`): get_groupmsg_task says whether the staff member sent it (status 2
  sent, 0 not yet); get_groupmsg_send_result says, per customer, 1 sent, 2 not a friend any more,
  3 already got another broadcast this month (WeCom's own cap). Reads only, safe to repeat; a task is
  checked every CHECK_EVERY until confirmed, and once more when its results have settled.
- Each customer has a delivery (recorded by the batches through send_many with `sent_by_caller`), settled
  here: sent (1), failed (2, 3, in add_msg_template's fail_list, a task refused or cancelled, or still
  unsent when the results settle; the budget comes back), unknown (a task that may or may not exist).
- A reminder is a staff task (待办) for the staff member, one per broadcast, staff member and local day.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from siyu.adapters.wecom import WeComClient, WeComConfig
from siyu.adapters.wecom.client import GroupMsgSendResult
from siyu.adapters.wecom.errors import RateLimited, WeComBusy, WeComError, WeComNetworkError
from siyu.broadcasts.models import (
    Broadcast,
    BroadcastStatus,
    BroadcastWeComTarget,
    BroadcastWeComTask,
    WeComTaskStatus,
)
from siyu.broadcasts.service import settle_deliveries
from siyu.content.models import ContentItem
from siyu.db import Database
from siyu.delivery.models import DeliveryStatus
from siyu.errors import Conflict, NotFound
from siyu.events.service import workspace_timezone
from siyu.groups.models import ChatGroup
from siyu.kit.time import utcnow
from siyu.staff.models import Staff
from siyu.wecom import service as wecom_settings

log = logging.getLogger("siyu.broadcasts")

CREATING_LEASE = dt.timedelta(minutes=10)
CHECK_EVERY = dt.timedelta(minutes=5)
RETRY_AFTER = dt.timedelta(minutes=1)  # WeCom busy or limiting: a pending task waits this long
SETTLE = dt.timedelta(hours=1)  # after confirmation, results are read once more after this
TASKS_PER_TURN = 20
UNSENT, SENT, NOT_FRIEND, LIMIT = 0, 1, 2, 3
RESULT_TEXT = {
    NOT_FRIEND: "WeCom: not the staff member's customer any more (status 2)",
    LIMIT: "WeCom: the customer already got this month's broadcasts from the enterprise (status 3)",
}


def client_for(config: WeComConfig) -> WeComClient:
    return config.client(base_url=wecom_settings.current_settings().wecom_base_url)


def _config(session: Session, workspace_id: int) -> WeComConfig | None:
    return wecom_settings.load_config(session, workspace_id, wecom_settings.current_settings())


# --------------------------------------------------------------------------- what a task sends


def message_of(session: Session, broadcast: Broadcast) -> tuple[str | None, list[dict[str, Any]]]:
    """(text, attachments) of add_msg_template: the broadcast's text, and its content as a link (or, for
    content without a URL, its title and body as the text)."""
    text = broadcast.text
    attachments: list[dict[str, Any]] = []
    item = session.get(ContentItem, broadcast.content_id) if broadcast.content_id is not None else None
    if item is not None:
        data = item.data or {}
        url = data.get("url") if isinstance(data.get("url"), str) else None
        if url and url.startswith(("http://", "https://")):
            attachments.append({"msgtype": "link", "link": {"title": item.title[:128], "url": url}})
        elif item.data.get("appid") and item.data.get("path"):
            attachments.append(
                {
                    "msgtype": "miniprogram",
                    "miniprogram": {"title": item.title[:64], "appid": item.data["appid"], "page": item.data["path"]},
                }
            )
        elif not text:
            text = "\n\n".join(part for part in (item.title, item.body) if part)
    return text, attachments


@dataclass(frozen=True)
class _Call:
    task_id: int
    config: WeComConfig
    body: dict[str, Any]


def _prepare(session: Session, task: BroadcastWeComTask) -> _Call | str:
    """What to send for a task, or why it cannot be sent."""
    broadcast = session.get(Broadcast, task.broadcast_id)
    config = _config(session, task.workspace_id)
    if broadcast is None or config is None:
        return "WeCom is no longer configured for this workspace"
    sender = session.scalar(select(Staff.wecom_userid).where(Staff.id == task.staff_id, Staff.is_active.is_(True)))
    if not sender:
        return "the staff member has no WeCom userid (wecom_userid) or is deactivated"
    text, attachments = message_of(session, broadcast)
    if not text and not attachments:
        return "the broadcast has nothing WeCom can send (no text, and its content item is gone)"
    body: dict[str, Any] = {"sender": sender, "chat_type": task.chat_type, "text": text, "attachments": attachments}
    if task.chat_type == "single":
        external = list(
            session.scalars(
                select(BroadcastWeComTarget.external_userid)
                .where(
                    BroadcastWeComTarget.broadcast_id == task.broadcast_id,
                    BroadcastWeComTarget.contact_id.in_(list(task.contact_ids or [])),
                )
                .order_by(BroadcastWeComTarget.contact_id)
            )
        )
        if not external:
            return "none of the task's customers has a WeCom external_userid any more"
        body["external_userids"] = external
    return _Call(task.id, config, body)


def _settle_task(
    session: Session,
    task: BroadcastWeComTask,
    status: DeliveryStatus,
    detail: str,
    now: dt.datetime,
    *,
    contact_ids: list[int] | None = None,
) -> None:
    """Settles the deliveries of a single-chat task's customers (all of them, or `contact_ids`)."""
    if task.chat_type != "single":
        return  # a group message has no per-contact deliveries
    broadcast = session.get(Broadcast, task.broadcast_id)
    if broadcast is None:
        return
    ids = list(task.contact_ids or []) if contact_ids is None else contact_ids
    settle_deliveries(session, broadcast, ids, status, now=now, detail=detail[:500], external_id=task.msgid)


def _contacts_of(session: Session, task: BroadcastWeComTask, externals: list[str]) -> list[int]:
    found: list[int] = []
    for start in range(0, len(externals), 900):
        found.extend(
            session.scalars(
                select(BroadcastWeComTarget.contact_id).where(
                    BroadcastWeComTarget.broadcast_id == task.broadcast_id,
                    BroadcastWeComTarget.staff_id == task.staff_id,
                    BroadcastWeComTarget.external_userid.in_(externals[start : start + 900]),
                )
            )
        )
    return found


# --------------------------------------------------------------------------- creating tasks


def _claim(db: Database, task_id: int, now: dt.datetime) -> _Call | None:
    with db.transaction() as session:
        task = session.scalars(
            select(BroadcastWeComTask)
            .where(BroadcastWeComTask.id == task_id, BroadcastWeComTask.status == WeComTaskStatus.pending)
            .with_for_update(skip_locked=True)
        ).one_or_none()
        if task is None:
            return None
        prepared = _prepare(session, task)
        if isinstance(prepared, str):
            task.status, task.error, task.attempted_at = WeComTaskStatus.failed, prepared, now
            _settle_task(session, task, DeliveryStatus.failed, prepared, now)
            return None
        task.status, task.attempted_at = WeComTaskStatus.creating, now
        return prepared


def _call(
    call: _Call, make_client: Callable[[WeComConfig], WeComClient]
) -> tuple[WeComTaskStatus, str | None, str | None, list[str]]:
    body = call.body
    try:
        with make_client(call.config) as client:
            result = client.add_msg_template(
                sender=body["sender"],
                external_userids=body.get("external_userids", ()),
                text=body["text"],
                attachments=body["attachments"],
                chat_type=body["chat_type"],
            )
    except WeComNetworkError as exc:
        return WeComTaskStatus.unknown, None, f"{exc.message[:400]}; not repeated (WeCom may have the task)", []
    except (WeComBusy, RateLimited) as exc:
        return WeComTaskStatus.pending, None, exc.message[:500], []  # surely not applied: try again later
    except WeComError as exc:
        return WeComTaskStatus.failed, None, exc.message[:500], []
    note = f"WeCom could not include {len(result.fail_list)} customers (fail_list)" if result.fail_list else None
    return WeComTaskStatus.created, result.msgid or None, note, [str(e) for e in result.fail_list]


def create_pending(
    db: Database, *, now: dt.datetime | None = None, make_client: Callable[[WeComConfig], WeComClient] = client_for
) -> int:
    """Creates pending tasks in WeCom, each at most once; returns how many were handled."""
    now = now or utcnow()
    with db.transaction(write=False) as session:
        ids = list(
            session.scalars(
                select(BroadcastWeComTask.id)
                .where(
                    BroadcastWeComTask.status == WeComTaskStatus.pending,
                    or_(
                        BroadcastWeComTask.attempted_at.is_(None),
                        BroadcastWeComTask.attempted_at <= now - RETRY_AFTER,
                    ),
                )
                .order_by(BroadcastWeComTask.id)
                .limit(TASKS_PER_TURN)
            )
        )
        stale = list(
            session.scalars(
                select(BroadcastWeComTask.id).where(
                    BroadcastWeComTask.status == WeComTaskStatus.creating,
                    BroadcastWeComTask.attempted_at < now - CREATING_LEASE,
                )
            )
        )
    if stale:
        with db.transaction() as session:
            lost = "the worker stopped during add_msg_template; not repeated (WeCom may have the task)"
            for gone in session.scalars(
                select(BroadcastWeComTask)
                .where(BroadcastWeComTask.id.in_(stale), BroadcastWeComTask.status == WeComTaskStatus.creating)
                .with_for_update(skip_locked=True)
            ):
                gone.status, gone.error = WeComTaskStatus.unknown, lost
                _settle_task(session, gone, DeliveryStatus.unknown, lost, now)
    done = len(stale)
    for task_id in ids:
        call = _claim(db, task_id, now)
        done += 1
        if call is None:
            continue
        status, msgid, error, fail_list = _call(call, make_client)
        with db.transaction() as session:
            task = session.get(BroadcastWeComTask, task_id)
            if task is None or task.status is not WeComTaskStatus.creating:
                continue
            task.status, task.msgid, task.error = status, msgid, error
            if status is WeComTaskStatus.created:
                task.handed_at = utcnow()
                if fail_list:
                    left_out = _contacts_of(session, task, fail_list)
                    detail = "WeCom left the customer out of the task (fail_list)"
                    _settle_task(session, task, DeliveryStatus.failed, detail, now, contact_ids=left_out)
            elif status is WeComTaskStatus.failed:
                _settle_task(session, task, DeliveryStatus.failed, f"WeCom refused the task: {error}", now)
            elif status is WeComTaskStatus.unknown:
                _settle_task(session, task, DeliveryStatus.unknown, error or "", now)
        if status is WeComTaskStatus.pending:
            break  # WeCom is busy or limiting: leave the rest for a later turn
    return done


# --------------------------------------------------------------------------- confirmations


def _due_checks(session: Session, now: dt.datetime) -> list[int]:
    return list(
        session.scalars(
            select(BroadcastWeComTask.id)
            .where(
                BroadcastWeComTask.status.in_([WeComTaskStatus.created, WeComTaskStatus.confirmed]),
                BroadcastWeComTask.msgid.is_not(None),
                BroadcastWeComTask.settled.is_(False),
                or_(BroadcastWeComTask.checked_at.is_(None), BroadcastWeComTask.checked_at <= now - CHECK_EVERY),
            )
            .order_by(BroadcastWeComTask.checked_at.is_not(None), BroadcastWeComTask.checked_at, BroadcastWeComTask.id)
            .limit(TASKS_PER_TURN)
        )
    )


@dataclass
class _Check:
    task_id: int
    workspace_id: int
    msgid: str
    userid: str | None
    config: WeComConfig | None


def check_results(
    db: Database, *, now: dt.datetime | None = None, make_client: Callable[[WeComConfig], WeComClient] = client_for
) -> int:
    """Reads confirmations and per-customer results of created tasks from WeCom; returns tasks checked."""
    now = now or utcnow()
    checks: list[_Check] = []
    with db.transaction(write=False) as session:
        for task_id in _due_checks(session, now):
            task = session.get(BroadcastWeComTask, task_id)
            if task is None or task.msgid is None:
                continue
            userid = session.scalar(select(Staff.wecom_userid).where(Staff.id == task.staff_id))
            checks.append(_Check(task.id, task.workspace_id, task.msgid, userid, _config(session, task.workspace_id)))
    for check in checks:
        state: int | None = None
        sent_at: dt.datetime | None = None
        results: list[GroupMsgSendResult] = []
        error: str | None = None
        if check.config is None or not check.userid:
            error = "WeCom settings or the staff member's WeCom userid are gone; cannot read the result"
        else:
            try:
                with make_client(check.config) as client:
                    mine = [t for t in client.groupmsg_tasks(check.msgid) if t.userid == check.userid]
                    if mine:
                        state = mine[0].status
                        if mine[0].send_time:
                            sent_at = dt.datetime.fromtimestamp(mine[0].send_time, dt.UTC)
                    if state:
                        results = client.groupmsg_send_results(check.msgid, check.userid)
            except WeComError as exc:
                error = exc.message[:500]
        _record_check(db, check, state, sent_at, results, error, now)
    return len(checks)


def _record_check(
    db: Database,
    check: _Check,
    state: int | None,
    sent_at: dt.datetime | None,
    results: list[GroupMsgSendResult],
    error: str | None,
    now: dt.datetime,
) -> None:
    with db.transaction() as session:
        task = session.get(BroadcastWeComTask, check.task_id)
        if task is None:
            return
        task.checked_at = now
        if error is not None:
            task.error = error
            return
        task.error = None
        if state and task.status is WeComTaskStatus.created:
            task.status = WeComTaskStatus.confirmed
            task.confirmed_at = sent_at or now
        settling = task.confirmed_at is not None and now >= task.confirmed_at + SETTLE
        if settling:
            task.settled = True  # results settle soon after confirmation: this read is the last
        if not results and not settling:
            return
        counts = {SENT: 0, NOT_FRIEND: 0, LIMIT: 0}
        by_external: dict[str, GroupMsgSendResult] = {}
        for row in results:
            if row.status in counts:
                counts[row.status] += 1
            if row.external_userid:
                by_external[row.external_userid] = row
        if results:
            task.sent_count = counts[SENT]
            task.failed_count = counts[NOT_FRIEND] + counts[LIMIT]
        if task.chat_type != "single":
            return
        for status in (UNSENT, SENT, NOT_FRIEND, LIMIT):
            externals = [e for e, r in by_external.items() if r.status == status]
            for start in range(0, len(externals), 900):
                session.execute(
                    update(BroadcastWeComTarget)
                    .where(
                        BroadcastWeComTarget.broadcast_id == task.broadcast_id,
                        BroadcastWeComTarget.staff_id == task.staff_id,
                        BroadcastWeComTarget.external_userid.in_(externals[start : start + 900]),
                    )
                    .values(result=status)
                )
        _settle_results(session, task, by_external, settling, now)


def _settle_results(
    session: Session,
    task: BroadcastWeComTask,
    by_external: dict[str, GroupMsgSendResult],
    settling: bool,
    now: dt.datetime,
) -> None:
    """Customers' deliveries from WeCom's per-customer results: 1 sent (at its send_time), 2 and 3 failed;
    on the last read, customers WeCom still reports unsent (or not at all) failed too."""
    by_outcome: dict[tuple[int, int | None], list[str]] = {}
    for external, row in by_external.items():
        if row.status in (SENT, NOT_FRIEND, LIMIT):
            by_outcome.setdefault((row.status, row.send_time if row.status == SENT else None), []).append(external)
    for (status, send_time), externals in by_outcome.items():
        contact_ids = _contacts_of(session, task, externals)
        if status == SENT:
            at = dt.datetime.fromtimestamp(send_time, dt.UTC) if send_time else task.confirmed_at or now
            broadcast = session.get(Broadcast, task.broadcast_id)
            if broadcast is not None:
                settle_deliveries(
                    session,
                    broadcast,
                    contact_ids,
                    DeliveryStatus.sent,
                    now=now,
                    external_id=task.msgid,
                    sent_at=at,
                )
        else:
            _settle_task(session, task, DeliveryStatus.failed, RESULT_TEXT[status], now, contact_ids=contact_ids)
    if settling:
        unsent = [
            contact_id
            for contact_id, result in session.execute(
                select(BroadcastWeComTarget.contact_id, BroadcastWeComTarget.result).where(
                    BroadcastWeComTarget.broadcast_id == task.broadcast_id,
                    BroadcastWeComTarget.contact_id.in_(list(task.contact_ids or [])),
                )
            ).all()
            if result in (None, UNSENT)
        ]
        detail = "WeCom reports no send to this customer after the staff member confirmed the task"
        _settle_task(session, task, DeliveryStatus.failed, detail, now, contact_ids=unsent)


def recheck(session: Session, workspace_id: int, broadcast_id: int) -> int:
    """Asks for a fresh read of the broadcast's tasks on the worker's next turn."""
    result = session.execute(
        update(BroadcastWeComTask)
        .where(
            BroadcastWeComTask.workspace_id == workspace_id,
            BroadcastWeComTask.broadcast_id == broadcast_id,
            BroadcastWeComTask.status.in_([WeComTaskStatus.created, WeComTaskStatus.confirmed]),
        )
        .values(checked_at=None, settled=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def group_names(session: Session, group_ids: list[int]) -> list[str]:
    return list(session.scalars(select(ChatGroup.name).where(ChatGroup.id.in_(group_ids)).order_by(ChatGroup.id)))


# --------------------------------------------------------------------------- reminders


def remind(
    session: Session, workspace_id: int, broadcast_id: int, staff_id: int, *, now: dt.datetime | None = None
) -> int:
    """A staff task asking the staff member to confirm the broadcast in WeCom; returns the task's id.
    One a local day per broadcast and staff member: a second reminder the same day returns the first."""
    from siyu.stafftasks.service import TaskKind, create_task

    now = now or utcnow()
    broadcast = session.scalars(
        select(Broadcast).where(Broadcast.id == broadcast_id, Broadcast.workspace_id == workspace_id)
    ).one_or_none()
    if broadcast is None:
        raise NotFound(f"broadcast {broadcast_id} not found in this workspace")
    tasks = list(
        session.scalars(
            select(BroadcastWeComTask).where(
                BroadcastWeComTask.broadcast_id == broadcast.id, BroadcastWeComTask.staff_id == staff_id
            )
        )
    )
    if not tasks:
        raise NotFound(f"staff member {staff_id} has no WeCom task in broadcast {broadcast_id}")
    waiting = [t for t in tasks if t.status is WeComTaskStatus.created]
    if not waiting:
        states = ", ".join(sorted({t.status.value for t in tasks}))
        raise Conflict(f"staff member {staff_id} has nothing to confirm in broadcast {broadcast_id} ({states})")
    if broadcast.status is BroadcastStatus.failed:
        raise Conflict(f"broadcast {broadcast_id} failed; there is nothing to confirm")
    day = now.astimezone(workspace_timezone(session, workspace_id)).date()
    customers = sum(t.target_count for t in waiting)
    what = f"{customers} 个群" if waiting[0].chat_type == "group" else f"{customers} 位客户"
    task = create_task(
        session,
        workspace_id,
        staff_id=staff_id,
        kind=TaskKind.manual,
        title=f"在企业微信确认群发「{broadcast.name}」（{what}）"[:200],
        contact_id=None,
        due_at=now,
        source_key=f"broadcast:{broadcast.id}:confirm:{staff_id}:{day.isoformat()}",
        detail="企业微信 → 客户联系 → 群发助手：确认并发送这条企业群发。",
    )
    for t in waiting:
        t.reminded_at = now
    session.flush()
    return int(task.id)
