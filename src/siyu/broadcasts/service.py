"""Broadcasts (群发): validate, plan, freeze the audience, send it in batches, cancel. Services never commit.

- The audience is a SELECT of contact ids (a segment's members, a tag filter, or the current members
  of chat groups); `siyu.delivery.service.plan` counts it after opt-outs, addresses, quiet hours and
  budgets, set-based.
- Starting copies the audience's ids into `broadcast_recipient` in the start's transaction: the
  audience is frozen (who joins the segment later is not added, who leaves is still sent to).
- A batch takes the next BATCH recipients after `broadcast.position`, sends them with one
  `send_many` call (source "broadcast:<id>", step "send", entry 0) and moves the position and the
  counters in the same transaction. A crash rolls the batch back with its sandbox records; delivery's
  key makes a batch sent twice record nothing twice anyway.
- Through WeCom each batch goes through `send_many` too, with `sent_by_caller`: every check and budget
  applies and each recipient gets a delivery (on their timeline, in the log, counted against their caps),
  but no delivery job sends it. The accepted contacts are collected per sending staff member (the
  contact's owner); when every batch is done they become one add_msg_template task per staff member
  (`siyu.broadcasts.wecom`), whose per-customer results settle the deliveries.
  A WeCom group broadcast (chat groups through WeCom) is a group message posted by each group's owner;
  it has no per-contact deliveries (WeCom counts group messages per group, not per customer).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, func, insert, literal, or_, select, update
from sqlalchemy.orm import Session

from siyu.auth.principal import Principal
from siyu.broadcasts.models import (
    AudienceKind,
    Broadcast,
    BroadcastRecipient,
    BroadcastStatus,
    BroadcastWeComTarget,
    BroadcastWeComTask,
    WeComTaskStatus,
)
from siyu.broadcasts.schemas import (
    AudienceRead,
    BroadcastCreate,
    BroadcastRead,
    MessageIn,
    PlanRead,
    ProgressRead,
    StaffTaskRead,
    WeComSummary,
)
from siyu.contacts.models import Identity
from siyu.content.models import ContentItem, ContentStatus
from siyu.delivery import service as delivery
from siyu.delivery.models import Delivery
from siyu.errors import Conflict, NotFound, validation_error
from siyu.groups.models import ChatGroup, ChatGroupMember
from siyu.kit.time import ensure_utc, utcnow
from siyu.segments.compiler import matching_contacts
from siyu.segments.models import Segment, SegmentMember
from siyu.segments.rules import TagsCond
from siyu.segments.service import context as rule_context
from siyu.staff.models import Staff
from siyu.tags.models import Tag
from siyu.wecom.service import is_configured as wecom_configured

BATCH = 1_000
STEP = "send"  # the delivery step of every broadcast message
WECOM_TASK_MAX = 10_000  # add_msg_template takes at most 10,000 external_userids
EXTERNAL_ID = "wecom_external_userid"
ACCEPTED = ("sent", "queued")
RUN_AT_SLACK = dt.timedelta(seconds=60)  # a run_at this close to now (clock skew, slow forms) means now
# Why a WeCom group broadcast leaves a group out.
GROUP_NOT_IN_WECOM = "group_not_in_wecom"
OWNER_NOT_IN_WECOM = "owner_not_in_wecom"


def source_of(broadcast_id: int) -> str:
    return f"broadcast:{broadcast_id}"


def is_group_message(broadcast: Broadcast) -> bool:
    """Chat groups through WeCom: a group message in each group, not a message to each member."""
    return broadcast.audience_kind is AudienceKind.groups and broadcast.channel == "wecom"


# --------------------------------------------------------------------------- reading


def get_broadcast(session: Session, workspace_id: int, broadcast_id: int, *, for_update: bool = False) -> Broadcast:
    statement = select(Broadcast).where(Broadcast.id == broadcast_id, Broadcast.workspace_id == workspace_id)
    if for_update:
        statement = statement.with_for_update()
    broadcast = session.scalars(statement).one_or_none()
    if broadcast is None:
        raise NotFound(f"broadcast {broadcast_id} not found in this workspace")
    return broadcast


def list_broadcasts(
    session: Session, workspace_id: int, *, status: BroadcastStatus | None = None, limit: int = 200
) -> list[Broadcast]:
    q = select(Broadcast).where(Broadcast.workspace_id == workspace_id)
    if status is not None:
        q = q.where(Broadcast.status == status)
    return list(session.scalars(q.order_by(Broadcast.id.desc()).limit(limit)))


def wecom_tasks(session: Session, broadcast: Broadcast) -> list[tuple[BroadcastWeComTask, str | None]]:
    rows = session.execute(
        select(BroadcastWeComTask, Staff.name)
        .join(Staff, Staff.id == BroadcastWeComTask.staff_id)
        .where(BroadcastWeComTask.broadcast_id == broadcast.id)
        .order_by(BroadcastWeComTask.status, Staff.name, BroadcastWeComTask.part)
    ).all()
    return [(task, name) for task, name in rows]


def staff_tasks_read(session: Session, broadcast: Broadcast) -> list[StaffTaskRead]:
    return [
        StaffTaskRead(
            staff_id=task.staff_id,
            staff_name=name,
            part=task.part,
            chat_type=task.chat_type,
            status=task.status,
            target_count=task.target_count,
            msgid=task.msgid,
            handed_at=task.handed_at,
            confirmed_at=task.confirmed_at,
            checked_at=task.checked_at,
            reminded_at=task.reminded_at,
            sent_count=task.sent_count,
            failed_count=task.failed_count,
            error=task.error,
        )
        for task, name in wecom_tasks(session, broadcast)
    ]


def _plan_read(broadcast: Broadcast) -> PlanRead | None:
    if broadcast.plan_total is None or broadcast.planned_at is None:
        return None
    return PlanRead(
        unit="groups" if is_group_message(broadcast) else "contacts",
        total=broadcast.plan_total,
        eligible=broadcast.plan_eligible or 0,
        excluded=dict(broadcast.plan_excluded or {}),
        at=broadcast.planned_at,
    )


def progress_read(broadcast: Broadcast) -> ProgressRead:
    return ProgressRead(
        total=broadcast.total,
        processed=broadcast.processed,
        sent=broadcast.sent,
        queued=broadcast.queued,
        held=broadcast.held,
        skipped=broadcast.skipped,
        failed=broadcast.failed,
        reasons={str(k): int(v) for k, v in (broadcast.reasons or {}).items()},
    )


def _wecom_summaries(session: Session, ids: Sequence[int]) -> dict[int, WeComSummary]:
    found: dict[int, Counter[str]] = {}
    if ids:
        rows = session.execute(
            select(BroadcastWeComTask.broadcast_id, BroadcastWeComTask.status, func.count())
            .where(BroadcastWeComTask.broadcast_id.in_(list(ids)))
            .group_by(BroadcastWeComTask.broadcast_id, BroadcastWeComTask.status)
        ).all()
        for broadcast_id, status, n in rows:
            found.setdefault(broadcast_id, Counter())[str(status)] += int(n)
    return {
        broadcast_id: WeComSummary(
            tasks=sum(c.values()),
            confirmed=c["confirmed"],
            waiting=c["created"],
            failed=c["failed"] + c["unknown"],
        )
        for broadcast_id, c in found.items()
    }


def broadcasts_read(session: Session, broadcasts: Sequence[Broadcast]) -> list[BroadcastRead]:
    summaries = _wecom_summaries(session, [b.id for b in broadcasts if b.channel == "wecom"])
    return [
        BroadcastRead(
            id=b.id,
            name=b.name,
            status=b.status,
            audience=AudienceRead(
                kind=b.audience_kind,
                segment_id=b.segment_id,
                tag_ids=b.tag_ids,
                match=b.tag_match,
                group_ids=b.group_ids,
            ),
            content_id=b.content_id,
            text=b.text,
            channel=b.channel,
            welfare=b.welfare,
            quiet_hours=b.quiet_hours,
            webhook_url=b.webhook_url,
            run_at=b.run_at,
            started_at=b.started_at,
            finished_at=b.finished_at,
            cancelled_at=b.cancelled_at,
            created_at=b.created_at,
            created_by_staff_id=b.created_by_staff_id,
            error=b.error,
            plan=_plan_read(b),
            progress=progress_read(b),
            wecom=summaries.get(b.id, WeComSummary(tasks=0, confirmed=0, waiting=0, failed=0))
            if b.channel == "wecom"
            else None,
        )
        for b in broadcasts
    ]


# --------------------------------------------------------------------------- the audience


def audience_query(session: Session, broadcast: Broadcast, *, now: dt.datetime) -> Select[Any]:
    """SELECT of the audience's contact ids (each once), before budgets."""
    ws = broadcast.workspace_id
    kind = broadcast.audience_kind
    if kind is AudienceKind.segment:
        return select(SegmentMember.contact_id).where(
            SegmentMember.workspace_id == ws, SegmentMember.segment_id == broadcast.segment_id
        )
    if kind is AudienceKind.tags:
        node = TagsCond(tuple(broadcast.tag_ids or ()), broadcast.tag_match or "any")  # type: ignore[arg-type]
        return matching_contacts(session, rule_context(session, ws, now), node)
    return (
        select(ChatGroupMember.contact_id)
        .where(
            ChatGroupMember.workspace_id == ws,
            ChatGroupMember.group_id.in_(list(broadcast.group_ids or ())),
            ChatGroupMember.left_at.is_(None),
        )
        .distinct()
    )


def _group_targets(session: Session, broadcast: Broadcast) -> tuple[dict[int, list[int]], Counter[str]]:
    """A WeCom group broadcast: owner staff id -> their groups that can get it, and groups left out by why."""
    rows = session.execute(
        select(ChatGroup.id, ChatGroup.wecom_chat_id, ChatGroup.owner_staff_id, Staff.wecom_userid, Staff.is_active)
        .outerjoin(Staff, Staff.id == ChatGroup.owner_staff_id)
        .where(ChatGroup.workspace_id == broadcast.workspace_id, ChatGroup.id.in_(list(broadcast.group_ids or ())))
        .order_by(ChatGroup.id)
    ).all()
    by_owner: dict[int, list[int]] = {}
    excluded: Counter[str] = Counter()
    for group_id, chat_id, owner_id, userid, active in rows:
        if not chat_id:
            excluded[GROUP_NOT_IN_WECOM] += 1
        elif owner_id is None or not userid or not active:
            excluded[OWNER_NOT_IN_WECOM] += 1
        else:
            by_owner.setdefault(owner_id, []).append(group_id)
    return by_owner, excluded


def plan(session: Session, broadcast: Broadcast, *, at: dt.datetime, now: dt.datetime | None = None) -> PlanRead:
    """The audience after budgets at `at` (set-based; nothing is written)."""
    if is_group_message(broadcast):
        by_owner, excluded = _group_targets(session, broadcast)
        eligible = sum(len(groups) for groups in by_owner.values())
        return PlanRead(
            unit="groups", total=eligible + sum(excluded.values()), eligible=eligible, excluded=dict(excluded), at=at
        )
    audience = audience_query(session, broadcast, now=now or utcnow())
    result = delivery.plan(
        session,
        broadcast.workspace_id,
        audience,
        channel=delivery.Channel(broadcast.channel),
        welfare=broadcast.welfare,
        at=at,
    )
    return PlanRead(
        unit="contacts",
        total=int(result.total),
        eligible=int(result.eligible),
        excluded={str(reason): int(n) for reason, n in result.excluded.items() if n},
        at=at,
    )


def _store_plan(broadcast: Broadcast, result: PlanRead) -> None:
    broadcast.plan_total = result.total
    broadcast.plan_eligible = result.eligible
    broadcast.plan_excluded = dict(result.excluded)
    broadcast.planned_at = result.at


# --------------------------------------------------------------------------- checking what is asked


def _check_segment(session: Session, workspace_id: int, segment_id: int) -> None:
    segment = session.get(Segment, segment_id)
    if segment is None or segment.workspace_id != workspace_id:
        raise validation_error("audience.segment_id", f"segment {segment_id} does not exist in this workspace")


def _check_tags(session: Session, workspace_id: int, tag_ids: Sequence[int]) -> None:
    known = set(session.scalars(select(Tag.id).where(Tag.workspace_id == workspace_id, Tag.id.in_(list(tag_ids)))))
    for index, tag_id in enumerate(tag_ids):
        if tag_id not in known:
            raise validation_error(f"audience.tag_ids[{index}]", f"tag {tag_id} does not exist in this workspace")


def _check_groups(session: Session, workspace_id: int, group_ids: Sequence[int]) -> None:
    known = set(
        session.scalars(
            select(ChatGroup.id).where(ChatGroup.workspace_id == workspace_id, ChatGroup.id.in_(list(group_ids)))
        )
    )
    for index, group_id in enumerate(group_ids):
        if group_id not in known:
            raise validation_error(f"audience.group_ids[{index}]", f"group {group_id} does not exist in this workspace")


def check_content(session: Session, workspace_id: int, content_id: int, field: str = "content_id") -> ContentItem:
    item = session.get(ContentItem, content_id)
    if item is None or item.workspace_id != workspace_id:
        raise validation_error(field, f"content item {content_id} does not exist in this workspace")
    if item.status is not ContentStatus.published:
        raise validation_error(
            field, f"content item {content_id} is {item.status.value}; publish it before broadcasting it"
        )
    return item


def _check_run_at(run_at: dt.datetime | None, now: dt.datetime) -> dt.datetime | None:
    if run_at is None:
        return None
    at = ensure_utc(run_at)
    if at < now - RUN_AT_SLACK:
        raise validation_error("run_at", f"{at.isoformat()} is in the past; leave run_at out to start now")
    return None if at <= now else at


def draft(session: Session, principal: Principal, data: MessageIn, *, now: dt.datetime) -> Broadcast:
    """A transient broadcast (not added to the session) from a request, every reference checked."""
    ws = principal.workspace_id
    audience = data.audience
    if audience.segment_id is not None:
        _check_segment(session, ws, audience.segment_id)
    elif audience.tag_ids is not None:
        _check_tags(session, ws, audience.tag_ids)
    elif audience.group_ids is not None:
        _check_groups(session, ws, audience.group_ids)
    if data.content_id is None and not data.text:
        raise validation_error("text", "give content_id, text or both: a broadcast needs something to send")
    if data.content_id is not None:
        check_content(session, ws, data.content_id)
    if data.channel == "wecom" and not wecom_configured(session, ws):
        raise validation_error("channel", "WeCom is not configured for this workspace; PUT /api/v1/wecom/config first")
    run_at = _check_run_at(data.run_at, now)
    return Broadcast(
        workspace_id=ws,
        name=getattr(data, "name", None) or "",
        status=BroadcastStatus.scheduled,
        audience_kind=audience.kind,
        segment_id=audience.segment_id,
        tag_ids=audience.tag_ids,
        tag_match=audience.match if audience.tag_ids is not None else None,
        group_ids=audience.group_ids,
        content_id=data.content_id,
        text=data.text,
        channel=data.channel,
        welfare=data.welfare,
        quiet_hours=data.quiet_hours,
        webhook_url=data.webhook_url,
        run_at=run_at or now,
        created_by_staff_id=principal.staff_id,
        total=0,
        position=0,
        processed=0,
        sent=0,
        queued=0,
        held=0,
        skipped=0,
        failed=0,
        reasons={},
    )


def preview(session: Session, principal: Principal, data: MessageIn, *, now: dt.datetime | None = None) -> PlanRead:
    now = now or utcnow()
    broadcast = draft(session, principal, data, now=now)
    return plan(session, broadcast, at=broadcast.run_at, now=now)


# --------------------------------------------------------------------------- writing


def create(
    session: Session, principal: Principal, data: BroadcastCreate, *, now: dt.datetime | None = None
) -> Broadcast:
    """Saves a broadcast with its plan; without run_at it starts now (the audience is frozen now)."""
    now = now or utcnow()
    broadcast = draft(session, principal, data, now=now)
    result = plan(session, broadcast, at=broadcast.run_at, now=now)
    if result.total == 0:
        what = "groups" if result.unit == "groups" else "contacts"
        raise validation_error("audience", f"the audience is empty: no {what} in it now")
    _store_plan(broadcast, result)
    session.add(broadcast)
    session.flush()
    if broadcast.run_at <= now:
        start(session, broadcast, now=now)
    return broadcast


def start(session: Session, broadcast: Broadcast, *, now: dt.datetime) -> None:
    """Freezes the audience and starts sending (the caller holds the row). A broadcast whose references
    went away since it was scheduled fails, saying which."""
    if broadcast.status is not BroadcastStatus.scheduled:
        raise Conflict(f"broadcast {broadcast.id} is {broadcast.status.value}; only a scheduled one can start")
    problem = _start_problem(session, broadcast)
    if problem is not None:
        broadcast.status, broadcast.error, broadcast.finished_at = BroadcastStatus.failed, problem, now
        session.flush()
        return
    broadcast.status = BroadcastStatus.sending
    broadcast.started_at = now
    broadcast.run_at = min(broadcast.run_at, now)
    if broadcast.planned_at is None or broadcast.planned_at != now:
        _store_plan(broadcast, plan(session, broadcast, at=now, now=now))
    if is_group_message(broadcast):
        _group_tasks(session, broadcast)
        broadcast.total = broadcast.plan_total or 0
        _finish(session, broadcast, now)
        return
    audience = audience_query(session, broadcast, now=now).subquery()
    session.execute(
        insert(BroadcastRecipient).from_select(
            ["broadcast_id", "contact_id", "workspace_id"],
            select(literal(broadcast.id), audience.c[0], literal(broadcast.workspace_id)),
        )
    )
    broadcast.total = int(
        session.scalar(
            select(func.count()).select_from(BroadcastRecipient).where(BroadcastRecipient.broadcast_id == broadcast.id)
        )
        or 0
    )
    session.flush()


def _start_problem(session: Session, broadcast: Broadcast) -> str | None:
    ws = broadcast.workspace_id
    if broadcast.audience_kind is AudienceKind.segment and broadcast.segment_id is None:
        return "its segment was deleted"
    if broadcast.content_id is None and not broadcast.text:
        return "its content item was deleted"
    if broadcast.content_id is not None:
        item = session.get(ContentItem, broadcast.content_id)
        if item is None or item.status is not ContentStatus.published:
            return f"content item {broadcast.content_id} is no longer published"
    if broadcast.channel == "wecom" and not wecom_configured(session, ws):
        return "WeCom is no longer configured for this workspace"
    return None


def start_now(session: Session, workspace_id: int, broadcast_id: int, *, now: dt.datetime | None = None) -> Broadcast:
    now = now or utcnow()
    broadcast = get_broadcast(session, workspace_id, broadcast_id, for_update=True)
    start(session, broadcast, now=now)
    return broadcast


def cancel(session: Session, workspace_id: int, broadcast_id: int, *, now: dt.datetime | None = None) -> Broadcast:
    """Stops a scheduled or sending broadcast; what was sent stays sent. WeCom tasks not yet created are
    cancelled; tasks staff already have stay in WeCom (staff may still confirm them)."""
    now = now or utcnow()
    broadcast = get_broadcast(session, workspace_id, broadcast_id, for_update=True)
    pending_tasks = session.scalar(
        select(func.count())
        .select_from(BroadcastWeComTask)
        .where(BroadcastWeComTask.broadcast_id == broadcast.id, BroadcastWeComTask.status == WeComTaskStatus.pending)
    )
    stoppable = broadcast.status in (BroadcastStatus.scheduled, BroadcastStatus.sending) or (
        broadcast.status is BroadcastStatus.sent and bool(pending_tasks)
    )
    if not stoppable:
        raise Conflict(
            f"broadcast {broadcast.id} is {broadcast.status.value} with nothing left to send; "
            "only a scheduled or sending one (or one with WeCom tasks not yet created) can stop"
        )
    was_sending = broadcast.status is BroadcastStatus.sending
    broadcast.status = BroadcastStatus.cancelled
    broadcast.cancelled_at = now
    broadcast.finished_at = broadcast.finished_at or now
    if broadcast.channel == "wecom" and not is_group_message(broadcast):
        # customers whose task will never reach WeCom: their deliveries fail and their budget comes back
        if was_sending:  # stopped between batches: no task was made yet
            unsent = list(
                session.scalars(
                    select(BroadcastWeComTarget.contact_id).where(BroadcastWeComTarget.broadcast_id == broadcast.id)
                )
            )
        else:
            unsent = [
                contact_id
                for ids in session.scalars(
                    select(BroadcastWeComTask.contact_ids).where(
                        BroadcastWeComTask.broadcast_id == broadcast.id,
                        BroadcastWeComTask.status == WeComTaskStatus.pending,
                    )
                )
                for contact_id in ids or ()
            ]
        settle_deliveries(
            session,
            broadcast,
            unsent,
            delivery.DeliveryStatus.failed,
            detail="the broadcast was cancelled before its WeCom task was created",
            now=now,
        )
    session.execute(
        update(BroadcastWeComTask)
        .where(BroadcastWeComTask.broadcast_id == broadcast.id, BroadcastWeComTask.status == WeComTaskStatus.pending)
        .values(status=WeComTaskStatus.cancelled)
    )
    session.flush()
    return broadcast


def settle_deliveries(
    session: Session,
    broadcast: Broadcast,
    contact_ids: Sequence[int],
    status: delivery.DeliveryStatus,
    *,
    now: dt.datetime,
    detail: str | None = None,
    external_id: str | None = None,
    sent_at: dt.datetime | None = None,
) -> int:
    """Records what became of WeCom customers' deliveries (delivery's record_outcomes): sent, failed (the
    budget comes back) or unknown. Returns how many deliveries changed."""
    ids = sorted(set(contact_ids))
    changed = 0
    for start_at in range(0, len(ids), 900):
        delivery_ids = list(
            session.scalars(
                select(Delivery.id).where(
                    Delivery.workspace_id == broadcast.workspace_id,
                    Delivery.source == source_of(broadcast.id),
                    Delivery.step == STEP,
                    Delivery.entry == 0,
                    Delivery.contact_id.in_(ids[start_at : start_at + 900]),
                )
            )
        )
        changed += delivery.record_outcomes(
            session,
            broadcast.workspace_id,
            delivery_ids,
            status,
            now=now,
            detail=detail,
            external_id=external_id,
            sent_at=sent_at,
        )
    return changed


# --------------------------------------------------------------------------- sending


@dataclass
class BatchResult:
    processed: int = 0
    finished: bool = False


def _tally(broadcast: Broadcast, outcomes: Sequence[Any]) -> None:
    counts: Counter[str] = Counter()
    reasons: Counter[str] = Counter({str(k): int(v) for k, v in (broadcast.reasons or {}).items()})
    for outcome in outcomes:
        status = str(outcome.status)
        counts[status] += 1
        if status not in ACCEPTED:
            reasons[str(outcome.reason or status)] += 1
    broadcast.processed += len(outcomes)
    broadcast.sent += counts["sent"]
    broadcast.queued += counts["queued"]
    broadcast.held += counts["held"]
    broadcast.skipped += counts["skipped"]
    broadcast.failed += counts["failed"]
    broadcast.reasons = dict(reasons)  # a new dict: the JSON column sees the change


def send_batch(session: Session, broadcast: Broadcast, *, now: dt.datetime, size: int = BATCH) -> BatchResult:
    """Sends the next `size` recipients (the caller holds the row and commits)."""
    if broadcast.status is not BroadcastStatus.sending:
        return BatchResult()
    ids = list(
        session.scalars(
            select(BroadcastRecipient.contact_id)
            .where(BroadcastRecipient.broadcast_id == broadcast.id, BroadcastRecipient.contact_id > broadcast.position)
            .order_by(BroadcastRecipient.contact_id)
            .limit(size)
        )
    )
    if ids:
        channel = delivery.Channel(broadcast.channel)
        quiet = delivery.QuietHoursPolicy(broadcast.quiet_hours)
        source = source_of(broadcast.id)
        through_wecom = channel is delivery.Channel.wecom
        requests = [
            delivery.SendRequest(
                source=source,
                step=STEP,
                contact_id=contact_id,
                entry=0,
                channel=channel,
                text=broadcast.text,
                content_id=broadcast.content_id,
                welfare=broadcast.welfare,
                quiet_hours=quiet,
                webhook_url=broadcast.webhook_url,
                # WeCom: the staff members' tasks carry the message, not one delivery job per customer
                sent_by_caller=through_wecom,
            )
            for contact_id in ids
        ]
        outcomes = delivery.send_many(session, broadcast.workspace_id, requests, now=now)
        _tally(broadcast, outcomes)
        if through_wecom:
            _add_targets(
                session,
                broadcast,
                [o.delivery_id for o in outcomes if o.status is delivery.DeliveryStatus.queued and o.delivery_id],
            )
        broadcast.position = ids[-1]
    finished = len(ids) < size
    if finished:
        _finish(session, broadcast, now)
    session.flush()
    return BatchResult(processed=len(ids), finished=finished)


def _add_targets(session: Session, broadcast: Broadcast, delivery_ids: Sequence[int]) -> None:
    """The contacts a WeCom batch accepted become targets of their sending staff member's task, with the
    external_userid delivery checked (the contact's first one)."""
    if not delivery_ids:
        return
    ws = broadcast.workspace_id
    first_external = (
        select(Identity.value)
        .where(
            Identity.workspace_id == ws,
            Identity.contact_id == Delivery.contact_id,
            Identity.type == EXTERNAL_ID,
        )
        .order_by(Identity.id)
        .limit(1)
        .correlate(Delivery)
        .scalar_subquery()
    )
    for start_at in range(0, len(delivery_ids), 900):
        session.execute(
            insert(BroadcastWeComTarget).from_select(
                ["broadcast_id", "contact_id", "workspace_id", "staff_id", "external_userid"],
                select(
                    literal(broadcast.id), Delivery.contact_id, literal(ws), Delivery.staff_id, first_external
                ).where(
                    Delivery.workspace_id == ws,
                    Delivery.id.in_(list(delivery_ids[start_at : start_at + 900])),
                    Delivery.staff_id.is_not(None),
                ),
            )
        )


def _finish(session: Session, broadcast: Broadcast, now: dt.datetime) -> None:
    broadcast.status = BroadcastStatus.sent
    broadcast.finished_at = now
    if broadcast.channel == "wecom" and not is_group_message(broadcast):
        _build_tasks(session, broadcast)


def _build_tasks(session: Session, broadcast: Broadcast) -> None:
    """One task per staff member (a part per 10,000 customers) over the accepted targets."""
    existing = set(
        session.execute(
            select(BroadcastWeComTask.staff_id, BroadcastWeComTask.part).where(
                BroadcastWeComTask.broadcast_id == broadcast.id
            )
        ).all()
    )
    by_staff: dict[int, list[int]] = {}
    for staff_id, contact_id in session.execute(
        select(BroadcastWeComTarget.staff_id, BroadcastWeComTarget.contact_id)
        .where(BroadcastWeComTarget.broadcast_id == broadcast.id)
        .order_by(BroadcastWeComTarget.staff_id, BroadcastWeComTarget.contact_id)
    ).all():
        by_staff.setdefault(staff_id, []).append(contact_id)
    for staff_id, contact_ids in by_staff.items():
        for part, start in enumerate(range(0, len(contact_ids), WECOM_TASK_MAX)):
            if (staff_id, part) in existing:
                continue
            chunk = contact_ids[start : start + WECOM_TASK_MAX]
            session.add(
                BroadcastWeComTask(
                    workspace_id=broadcast.workspace_id,
                    broadcast_id=broadcast.id,
                    staff_id=staff_id,
                    part=part,
                    chat_type="single",
                    status=WeComTaskStatus.pending,
                    contact_ids=chunk,
                    target_count=len(chunk),
                )
            )
    session.flush()


def _group_tasks(session: Session, broadcast: Broadcast) -> None:
    by_owner, _excluded = _group_targets(session, broadcast)
    for staff_id, group_ids in sorted(by_owner.items()):
        session.add(
            BroadcastWeComTask(
                workspace_id=broadcast.workspace_id,
                broadcast_id=broadcast.id,
                staff_id=staff_id,
                part=0,
                chat_type="group",
                status=WeComTaskStatus.pending,
                group_ids=group_ids,
                target_count=len(group_ids),
            )
        )
    session.flush()


# --------------------------------------------------------------------------- the poller's work


def due_ids(session: Session, now: dt.datetime) -> list[int]:
    """Broadcasts with work: scheduled ones that are due, and the ones sending (all workspaces)."""
    return list(
        session.scalars(
            select(Broadcast.id)
            .where(
                or_(
                    and_(Broadcast.status == BroadcastStatus.scheduled, Broadcast.run_at <= now),
                    Broadcast.status == BroadcastStatus.sending,
                )
            )
            .order_by(Broadcast.run_at, Broadcast.id)
        )
    )


def lock(session: Session, broadcast_id: int) -> Broadcast | None:
    """The broadcast row for this transaction; None when another worker holds it (PostgreSQL) or it is gone."""
    return session.scalars(
        select(Broadcast)
        .where(Broadcast.id == broadcast_id)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    ).one_or_none()


def step(session: Session, broadcast: Broadcast, *, now: dt.datetime, size: int = BATCH) -> int:
    """One unit of work on a locked broadcast: start it when due, or send a batch. Returns work done."""
    if broadcast.status is BroadcastStatus.scheduled and broadcast.run_at <= now:
        start(session, broadcast, now=now)
        return 1
    if broadcast.status is BroadcastStatus.sending:
        result = send_batch(session, broadcast, now=now, size=size)
        return max(result.processed, 1)
    return 0
