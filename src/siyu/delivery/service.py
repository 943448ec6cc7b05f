"""The delivery engine: the only way anything reaches a contact (ADR 0008).

    outcomes = send_many(session, workspace_id, [SendRequest(...), ...], now=utcnow())
    summary = plan(session, workspace_id, audience, channel=Channel.wecom, welfare=False, at=now)

Every delivery is one row unique on (workspace, source, step, contact, entry), written with its outcome in
the caller's transaction (never committed here). Asking again for a key that exists returns the recorded
outcome and does nothing else. The checks, in order (codes in siyu.delivery.reasons): the contact exists,
the content is published, opt-out, an address on the channel, quiet hours in the contact's zone (hold or
skip), frequency caps per local day / week / month across channels, welfare days per month, the sending
staff account's daily limit with its warm-up (WeCom only).

Sandbox sends are a row in `sandbox_message` in the same transaction: exactly once. External channels
(webhook, email, WeCom) are written `queued` with a `delivery.send` job in the same transaction (outbox);
the job sends and records the outcome, one delivery per transaction (siyu.delivery.channels).

A caller that sends by itself (a WeCom broadcast: one add_msg_template task for many customers) records
its deliveries with `SendRequest(sent_by_caller=True)`: every check and budget applies, an accepted one is
`queued` with reason `sent_by_caller` and no job, and the caller settles it with `record_outcomes` once
the channel reports per contact (a failure gives the budget back, as a job's would).

Budgets are counted when a send is accepted (sent or queued), per contact per local day, in
`contact_send_day`; `plan` and the checks read those counters, never the deliveries.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import orjson
from sqlalchemy import (
    Integer,
    Select,
    Table,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from siyu.adapters.sandbox import simulate
from siyu.contacts.models import Contact, Identity
from siyu.content.models import ContentItem, ContentPush, ContentPushRecipient, ContentStatus
from siyu.content.service import make_token
from siyu.delivery import budget, policy, reasons
from siyu.delivery.models import (
    ACCEPTED,
    Channel,
    ContactSendDay,
    Delivery,
    DeliverySettings,
    DeliveryStatus,
    OptOut,
    QuietHoursPolicy,
    StaffAccount,
    StaffSendDay,
)
from siyu.delivery.policy import Caps, DeliveryConfig
from siyu.errors import validation_error
from siyu.events.service import workspace_timezone
from siyu.jobs.models import Job, JobStatus
from siyu.kit.sql import dialect_insert, select_where_in, sqlite_datetime
from siyu.staff.models import Staff
from siyu.wecom.models import WeComSettings

__all__ = [
    "AudiencePlan",
    "Channel",
    "DeliveryStatus",
    "QuietHoursPolicy",
    "SendOutcome",
    "SendRequest",
    "eligible_contacts",
    "opt_in",
    "opt_out",
    "plan",
    "record_outcomes",
    "release_held",
    "send_many",
    "staff_add_allowance",
    "staff_send_allowance",
]

SEND_JOB = "delivery.send"
EMAIL_MAX_ATTEMPTS = 6
WECOM_MAX_ATTEMPTS = 3
EMAIL_IDENTITY = "email"
WECOM_IDENTITY = "wecom_external_userid"
MAX_KEY_CHARS = 100
CHUNK = 900  # ids per IN (...) list


_NO_CAPS = Caps(day=None, week=None, month=None)  # what a service message is held to


@dataclass(frozen=True)
class SendRequest:
    source: str  # "journey:12", "broadcast:7", "api" (<= 100 chars)
    step: str  # journey step id, or "send"
    contact_id: int
    entry: int  # journey enrolment id; 0 when a source reaches a contact once
    channel: Channel
    text: str | None = None
    content_id: int | None = None  # a published content item: the delivery carries the contact's tracked link
    staff_id: int | None = None  # the sending staff account (WeCom); None: the contact's owner
    welfare: bool = False  # welfare-type content (at most N days a month)
    # A service message the contact asked for (live reminder, order notice): not stopped by frequency
    # caps or welfare days (still counted in them); opt-out, quiet hours and staff limits still apply.
    service: bool = False
    quiet_hours: QuietHoursPolicy = QuietHoursPolicy.hold
    webhook_url: str | None = None  # webhook channel: instead of the workspace's endpoint
    payload: dict[str, Any] | None = None  # extra JSON for webhook bodies
    # The caller sends it itself (external channels only): checked and counted, queued with reason
    # sent_by_caller and no job, never held (a hold is a skip), no tracked link; settle with record_outcomes.
    sent_by_caller: bool = False

    @property
    def key(self) -> tuple[str, str, int, int]:
        return (self.source, self.step, self.contact_id, self.entry)


@dataclass(frozen=True)
class SendOutcome:
    delivery_id: int
    status: DeliveryStatus
    reason: str | None
    retry_at: dt.datetime | None


@dataclass(frozen=True)
class AudiencePlan:
    total: int
    eligible: int
    excluded: dict[str, int]  # reason code -> contacts, in check order


# --------------------------------------------------------------------------- evaluation


@dataclass
class _Decision:
    status: DeliveryStatus
    reason: str | None = None
    detail: str | None = None
    retry_at: dt.datetime | None = None
    staff_id: int | None = None
    budget_day: dt.date | None = None


@dataclass
class _ContactInfo:
    owner_id: int | None
    timezone: str | None


@dataclass
class _StaffInfo:
    wecom_userid: str | None
    active: bool
    started_on: dt.date | None
    send_limit: int | None
    add_limit: int | None
    warmup_days: int


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


class _Batch:
    """Everything the checks read for a batch of requests, loaded with a few set-based queries; counters
    are updated in memory as sends are accepted, so later requests of the batch see earlier ones."""

    def __init__(self, session: Session, workspace_id: int, now: dt.datetime, requests: Sequence[SendRequest]) -> None:
        self.session = session
        self.workspace_id = workspace_id
        self.now = now
        self.config, self.settings_row = policy.load(session, workspace_id)
        self.ws_tz = str(workspace_timezone(session, workspace_id))
        self.quiet = self.config.quiet_hours.times() if self.config.quiet_hours is not None else None
        self.staff_day = budget.window(budget.zone(None, self.ws_tz), now, None)
        contact_ids = sorted({r.contact_id for r in requests})
        self.contacts: dict[int, _ContactInfo] = {}
        self.merged: dict[int, int] = {}  # merged-away profile -> the one it was merged into
        self.opted_out: set[int] = set()
        for cid, owner, tz, merged in select_where_in(
            session,
            "SELECT id, owner_id, timezone, merged_into_id FROM contact WHERE workspace_id = {p} AND id {in}",
            [workspace_id],
            contact_ids,
        ):
            if merged is None:
                self.contacts[cid] = _ContactInfo(owner, tz)
            else:
                self.merged[cid] = merged
        live = sorted(self.contacts)
        self.opted_out.update(
            row[0]
            for row in select_where_in(
                session,
                "SELECT contact_id FROM delivery_opt_out WHERE workspace_id = {p} AND contact_id {in}",
                [workspace_id],
                live,
            )
        )
        # per contact: {local day: [sends, welfare sends]} over the windows
        self.counts: dict[int, dict[dt.date, list[int]]] = defaultdict(dict)
        if live:
            earliest = min(self.window_of(cid).earliest for cid in live)
            sqlite_dialect = session.get_bind().dialect.name == "sqlite"
            for cid, day, sends, welfare in select_where_in(
                session,
                "SELECT contact_id, day, sends, welfare FROM contact_send_day WHERE day >= {p} AND contact_id {in}",
                [earliest.isoformat() if sqlite_dialect else earliest],
                live,
            ):
                self.counts[cid][dt.date.fromisoformat(day) if isinstance(day, str) else day] = [sends, welfare]
        channels = {r.channel for r in requests}
        self.addresses: dict[tuple[str, int], str] = {}
        wanted_types = [
            t for c, t in ((Channel.email, EMAIL_IDENTITY), (Channel.wecom, WECOM_IDENTITY)) if c in channels
        ]
        if wanted_types and self.contacts:
            for ids in _chunks(sorted(self.contacts)):
                for cid, kind, value in session.execute(
                    select(Identity.contact_id, Identity.type, Identity.value)
                    .where(
                        Identity.workspace_id == workspace_id,
                        Identity.contact_id.in_(ids),
                        Identity.type.in_(wanted_types),
                    )
                    .order_by(Identity.id)
                ):
                    self.addresses.setdefault((kind, cid), value)
        self.wecom_configured = Channel.wecom in channels and (
            session.scalar(select(WeComSettings.id).where(WeComSettings.workspace_id == workspace_id)) is not None
        )
        self.staff: dict[int, _StaffInfo] = {}
        self.staff_sent: dict[int, int] = {}
        if Channel.wecom in channels:
            senders = {r.staff_id for r in requests if r.channel is Channel.wecom and r.staff_id is not None}
            senders |= {
                c.owner_id
                for r in requests
                if r.channel is Channel.wecom
                and r.staff_id is None
                and (c := self.contacts.get(r.contact_id)) is not None
                and c.owner_id is not None
            }
            self.staff = load_staff(session, workspace_id, senders, self.config)
            self.staff_sent = staff_sends(session, list(self.staff), self.staff_day.today)
        self.items: dict[int, tuple[str, int]] = {}
        content_ids = sorted({r.content_id for r in requests if r.content_id is not None})
        for cid, status, version in (
            session.execute(
                select(ContentItem.id, ContentItem.status, ContentItem.version).where(
                    ContentItem.workspace_id == workspace_id, ContentItem.id.in_(content_ids)
                )
            )
            if content_ids
            else ()
        ):
            if status is ContentStatus.published:
                self.items[cid] = (status.value, version)
        self.webhook_url = self.config.webhook_url
        self.smtp_configured = Channel.email in channels and smtp_configured()

    def window_of(self, contact_id: int) -> budget.LocalWindow:
        info = self.contacts[contact_id]
        return budget.window(budget.zone(info.timezone, self.ws_tz), self.now, self.quiet)

    def zone_name(self, contact_id: int) -> str:
        return str(budget.zone(self.contacts[contact_id].timezone, self.ws_tz))

    def sender_of(self, request: SendRequest) -> int | None:
        if request.staff_id is not None:
            return request.staff_id
        info = self.contacts.get(request.contact_id)
        return info.owner_id if info is not None else None

    def decide(self, request: SendRequest) -> _Decision:
        """Runs the checks in order; an accepted send is counted at once (in memory)."""
        skipped, held = DeliveryStatus.skipped, DeliveryStatus.held
        contact_id = request.contact_id
        if contact_id not in self.contacts:
            merged = self.merged.get(contact_id)
            detail = f"merged into contact {merged}" if merged else f"no contact {contact_id} in this workspace"
            return _Decision(skipped, reasons.NO_CONTACT, detail)
        staff_id = self.sender_of(request)
        if request.content_id is not None and request.content_id not in self.items:
            return _Decision(
                skipped, reasons.CONTENT_UNAVAILABLE, f"content item {request.content_id} is missing or not published"
            )
        if contact_id in self.opted_out:
            return _Decision(skipped, reasons.OPTED_OUT, None, staff_id=staff_id)
        missing = self.missing_address(request, staff_id)
        if missing is not None:
            return _Decision(skipped, reasons.NO_ADDRESS, missing, staff_id=staff_id)
        win = self.window_of(contact_id)
        if win.quiet:
            assert self.config.quiet_hours is not None and win.quiet_until is not None
            qh = self.config.quiet_hours
            where = f"quiet hours {qh.start}-{qh.end} in {self.zone_name(contact_id)}"
            if request.quiet_hours is QuietHoursPolicy.hold and not request.sent_by_caller:
                return _Decision(
                    held,
                    reasons.QUIET_HOURS,
                    f"{where}; held until {win.quiet_until.isoformat()}",
                    win.quiet_until,
                    staff_id,
                )
            if request.sent_by_caller:
                where += f"; {request.source} sends now, so it is not held"
            return _Decision(skipped, reasons.QUIET_HOURS, where, staff_id=staff_id)
        days = self.counts.get(contact_id, {})
        caps = self.config.caps if not request.service else _NO_CAPS
        day_sends = days.get(win.today, (0, 0))[0]
        if caps.day is not None and day_sends >= caps.day:
            return _Decision(
                skipped, reasons.CAP_DAY, f"{day_sends} of {caps.day} on {win.today.isoformat()}", staff_id=staff_id
            )
        if caps.week is not None:
            week = sum(v[0] for d, v in days.items() if win.week_start <= d <= win.today)
            if week >= caps.week:
                return _Decision(
                    skipped,
                    reasons.CAP_WEEK,
                    f"{week} of {caps.week} in the week from {win.week_start.isoformat()}",
                    staff_id=staff_id,
                )
        if caps.month is not None:
            month = sum(v[0] for d, v in days.items() if win.month_start <= d <= win.today)
            if month >= caps.month:
                return _Decision(
                    skipped,
                    reasons.CAP_MONTH,
                    f"{month} of {caps.month} in {win.month_start.strftime('%Y-%m')}",
                    staff_id=staff_id,
                )
        welfare_limit = self.config.welfare_days_per_month
        if request.welfare and welfare_limit is not None and not request.service:
            welfare_days = sum(1 for d, v in days.items() if win.month_start <= d <= win.today and v[1] > 0)
            today_had = days.get(win.today, (0, 0))[1] > 0
            if not today_had and welfare_days >= welfare_limit:
                return _Decision(
                    skipped,
                    reasons.WELFARE_DAYS,
                    f"welfare on {welfare_days} of {welfare_limit} days in {win.month_start.strftime('%Y-%m')}",
                    staff_id=staff_id,
                )
        if request.channel is Channel.wecom and staff_id is not None:
            allowance = self.staff_allowance(staff_id)
            if allowance is not None and allowance <= 0:
                limit = self.staff_limit(staff_id)
                detail = f"staff {staff_id} sent {self.staff_sent.get(staff_id, 0)} of {limit} today"
                if request.sent_by_caller:
                    detail += f"; {request.source} sends now, so it is not held"
                elif request.quiet_hours is QuietHoursPolicy.hold:
                    until = self.staff_day.next_day_at
                    return _Decision(
                        held, reasons.STAFF_LIMIT, f"{detail}; held until {until.isoformat()}", until, staff_id
                    )
                return _Decision(skipped, reasons.STAFF_LIMIT, detail, staff_id=staff_id)
        # accepted: count it now, so the rest of the batch sees it
        counter = days.setdefault(win.today, [0, 0]) if days else self.counts[contact_id].setdefault(win.today, [0, 0])
        counter[0] += 1
        if request.welfare:
            counter[1] += 1
        if request.channel is Channel.wecom and staff_id is not None:
            self.staff_sent[staff_id] = self.staff_sent.get(staff_id, 0) + 1
        if request.sent_by_caller:
            sender = f" through staff {staff_id}" if staff_id is not None else ""
            return _Decision(
                DeliveryStatus.queued,
                reasons.SENT_BY_CALLER,
                f"{request.source} sends it itself{sender} and reports the outcome",
                staff_id=staff_id,
                budget_day=win.today,
            )
        status = DeliveryStatus.sent if request.channel is Channel.sandbox else DeliveryStatus.queued
        return _Decision(status, staff_id=staff_id, budget_day=win.today)

    def missing_address(self, request: SendRequest, staff_id: int | None) -> str | None:
        channel = request.channel
        if channel is Channel.sandbox:
            return None
        if channel is Channel.webhook:
            if request.webhook_url or self.webhook_url:
                return None
            return "no webhook endpoint: set webhook_url in the delivery settings or on the request"
        if channel is Channel.email:
            if not self.smtp_configured:
                return "SMTP is not configured on this server (SIYU_SMTP_HOST)"
            if (EMAIL_IDENTITY, request.contact_id) in self.addresses:
                return None
            return "the contact has no email identity"
        if not self.wecom_configured:
            return "WeCom is not configured for this workspace"
        if (WECOM_IDENTITY, request.contact_id) not in self.addresses:
            return "the contact has no wecom_external_userid identity"
        if staff_id is None:
            return "no sending staff member: the contact has no owner and the request names none"
        staff = self.staff.get(staff_id)
        if staff is None or not staff.active or not staff.wecom_userid:
            return f"staff {staff_id} is not an active staff member with a WeCom userid (wecom_userid)"
        return None

    def staff_limit(self, staff_id: int) -> int | None:
        info = self.staff.get(staff_id)
        if info is None:
            return None
        return budget.ramped(
            info.send_limit, info.started_on, self.staff_day.today, self.config.staff, info.warmup_days
        )

    def staff_allowance(self, staff_id: int) -> int | None:
        limit = self.staff_limit(staff_id)
        return None if limit is None else limit - self.staff_sent.get(staff_id, 0)


def load_staff(
    session: Session, workspace_id: int, staff_ids: Iterable[int], config: DeliveryConfig
) -> dict[int, _StaffInfo]:
    ids = sorted(set(staff_ids))
    if not ids:
        return {}
    out: dict[int, _StaffInfo] = {}
    rows = session.execute(
        select(
            Staff.id,
            Staff.wecom_userid,
            Staff.is_active,
            Staff.created_at,
            StaffAccount.started_on,
            StaffAccount.send_limit,
            StaffAccount.add_limit,
            StaffAccount.warmup_days,
        )
        .outerjoin(StaffAccount, StaffAccount.staff_id == Staff.id)
        .where(Staff.workspace_id == workspace_id, Staff.id.in_(ids))
    )
    tz = workspace_timezone(session, workspace_id)
    for sid, userid, active, created, started, send_limit, add_limit, warmup in rows:
        out[sid] = _StaffInfo(
            wecom_userid=userid,
            active=bool(active),
            started_on=started if started is not None else created.astimezone(tz).date(),
            send_limit=send_limit if send_limit is not None else config.staff.send_limit,
            add_limit=add_limit if add_limit is not None else config.staff.add_limit,
            warmup_days=warmup if warmup is not None else config.staff.warmup_days,
        )
    return out


def staff_sends(session: Session, staff_ids: list[int], day: dt.date) -> dict[int, int]:
    if not staff_ids:
        return {}
    rows = session.execute(
        select(StaffSendDay.staff_id, StaffSendDay.sends).where(
            StaffSendDay.staff_id.in_(staff_ids), StaffSendDay.day == day
        )
    )
    return {sid: int(n) for sid, n in rows}


# --------------------------------------------------------------------------- send_many


def _check(requests: Sequence[SendRequest]) -> None:
    for index, r in enumerate(requests):
        if not r.source or len(r.source) > MAX_KEY_CHARS:
            raise validation_error(f"requests[{index}].source", f"1 to {MAX_KEY_CHARS} characters")
        if not r.step or len(r.step) > MAX_KEY_CHARS:
            raise validation_error(f"requests[{index}].step", f"1 to {MAX_KEY_CHARS} characters")
        if not isinstance(r.channel, Channel):
            raise validation_error(f"requests[{index}].channel", f"one of {', '.join(c.value for c in Channel)}")
        if r.text is None and r.content_id is None and r.payload is None:
            raise validation_error(f"requests[{index}].text", "a delivery needs text, content_id or a payload")
        if r.sent_by_caller and r.channel is Channel.sandbox:
            raise validation_error(
                f"requests[{index}].sent_by_caller", "only for external channels: a sandbox send is its own record"
            )


def _existing(
    session: Session, workspace_id: int, keys: Sequence[tuple[str, str, int, int]]
) -> dict[tuple[str, str, int, int], SendOutcome]:
    by_source: dict[tuple[str, str], set[int]] = defaultdict(set)
    for source, step, contact_id, _entry in keys:
        by_source[(source, step)].add(contact_id)
    found: dict[tuple[str, str, int, int], SendOutcome] = {}
    for (source, step), contact_ids in by_source.items():
        for did, cid, entry, status, reason, retry_at in select_where_in(
            session,
            "SELECT id, contact_id, entry, status, reason, retry_at FROM delivery "
            "WHERE workspace_id = {p} AND source = {p} AND step = {p} AND contact_id {in}",
            [workspace_id, source, step],
            sorted(contact_ids),
        ):
            found[(source, step, cid, entry)] = SendOutcome(did, DeliveryStatus(status), reason, _utc(retry_at))
    return found


def _utc(value: Any) -> dt.datetime | None:
    """A UTC DATETIME read by raw SQL (a string on SQLite, naive on PostgreSQL) as an aware datetime."""
    if value is None:
        return None
    moment: dt.datetime = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def send_many(
    session: Session, workspace_id: int, requests: Sequence[SendRequest], *, now: dt.datetime
) -> list[SendOutcome]:
    """Records and sends each request once; returns one outcome per request, in order. Never commits."""
    if not requests:
        return []
    _check(requests)
    keys = [r.key for r in requests]
    outcomes = _existing(session, workspace_id, keys)
    fresh: list[SendRequest] = []
    seen: set[tuple[str, str, int, int]] = set()
    for r in requests:
        if r.key not in outcomes and r.key not in seen:
            seen.add(r.key)
            fresh.append(r)
    if fresh:
        batch = _Batch(session, workspace_id, now, fresh)
        decisions = [batch.decide(r) for r in fresh]
        written = _write_new(session, batch, fresh, decisions)
        outcomes.update(written)
    return [outcomes[k] for k in keys]


@dataclass
class _Links:
    push_id: int | None = None
    link: str | None = None


def _content_links(
    session: Session, batch: _Batch, accepted: list[tuple[SendRequest, _Decision]]
) -> dict[tuple[str, str, int, int], _Links]:
    """The tracked link of each accepted content delivery: a content push per (source, step, content,
    channel), its recipients, and /r/<token> per contact (siyu.content.service.make_token)."""
    out: dict[tuple[str, str, int, int], _Links] = {}
    groups: dict[tuple[str, int, str], list[SendRequest]] = defaultdict(list)
    for request, _ in accepted:
        if request.content_id is not None and not request.sent_by_caller:  # a caller's own message has no link
            push_source = f"{request.source}/{request.step}"[:MAX_KEY_CHARS]
            groups[(push_source, request.content_id, request.channel.value)].append(request)
    if not groups:
        return out
    secret = link_secret()
    for (push_source, content_id, channel), members in groups.items():
        push = session.scalar(
            select(ContentPush)
            .where(
                ContentPush.workspace_id == batch.workspace_id,
                ContentPush.content_id == content_id,
                ContentPush.source == push_source,
                ContentPush.channel == channel,
                ContentPush.group_id.is_(None),
            )
            .order_by(ContentPush.id)
            .limit(1)
        )
        if push is None:
            push = ContentPush(
                workspace_id=batch.workspace_id,
                content_id=content_id,
                content_version=batch.items[content_id][1],
                source=push_source,
                channel=channel,
                recipient_count=0,
                created_at=batch.now,
            )
            session.add(push)
            session.flush()
        contact_ids = sorted({r.contact_id for r in members})
        already: set[int] = set()
        for ids in _chunks(contact_ids):
            already.update(
                session.scalars(
                    select(ContentPushRecipient.contact_id).where(
                        ContentPushRecipient.push_id == push.id, ContentPushRecipient.contact_id.in_(ids)
                    )
                )
            )
        new = [c for c in contact_ids if c not in already]
        if new:
            session.execute(
                insert(ContentPushRecipient),
                [{"workspace_id": batch.workspace_id, "push_id": push.id, "contact_id": c} for c in new],
            )
            push.recipient_count = (push.recipient_count or 0) + len(new)
        for request in members:
            out[request.key] = _Links(push.id, f"/r/{make_token(secret, push.id, request.contact_id)}")
    return out


def smtp_configured() -> bool:
    from siyu.wecom.service import current_settings

    settings = current_settings()
    return bool(settings.smtp_host and settings.smtp_from)


def link_secret() -> bytes:
    from siyu.console.csrf import secret_key
    from siyu.wecom.service import current_settings

    return secret_key(current_settings())


def _write_new(
    session: Session, batch: _Batch, requests: list[SendRequest], decisions: list[_Decision]
) -> dict[tuple[str, str, int, int], SendOutcome]:
    accepted = [(r, d) for r, d in zip(requests, decisions, strict=True) if d.status in ACCEPTED]
    links = _content_links(session, batch, accepted)
    unrecorded: dict[tuple[str, str, int, int], SendOutcome] = {}
    recorded: list[tuple[SendRequest, _Decision, _Links | None]] = []
    for r, d in zip(requests, decisions, strict=True):
        if r.contact_id not in batch.contacts and r.contact_id not in batch.merged:
            # no such contact here (or another workspace's): nothing may point at it, so nothing is recorded
            unrecorded[r.key] = SendOutcome(0, d.status, d.reason, None)
        else:
            recorded.append((r, d, links.get(r.key)))
    inserted = _insert_deliveries(session, batch, recorded) if recorded else {}
    outcomes: dict[tuple[str, str, int, int], SendOutcome] = dict(unrecorded)
    done: list[tuple[int, SendRequest, _Decision]] = []
    for r, d in zip(requests, decisions, strict=True):
        if r.key in unrecorded:
            continue
        did = inserted.get(r.key)
        if did is None:
            continue  # another transaction recorded this key first (PostgreSQL): its outcome is below
        outcomes[r.key] = SendOutcome(did, d.status, d.reason, d.retry_at)
        done.append((did, r, d))
    lost = [r.key for r in requests if r.key not in inserted and r.key not in unrecorded]
    if lost:
        outcomes.update(_existing(session, batch.workspace_id, lost))
    _after_accept(session, batch, [(did, r, d, links.get(r.key)) for did, r, d in done if d.status in ACCEPTED])
    return outcomes


def _after_accept(
    session: Session,
    batch: _Batch,
    accepted: list[tuple[int, SendRequest, _Decision, _Links | None]],
) -> None:
    """Counters, the sandbox's messages, and the outbox jobs of external sends."""
    if not accepted:
        return
    now = batch.now
    ws = batch.workspace_id
    per_day: dict[tuple[int, dt.date], list[int]] = defaultdict(lambda: [0, 0])
    per_staff: dict[int, int] = defaultdict(int)
    sandbox_rows: list[dict[str, Any]] = []
    jobs: list[dict[str, Any]] = []
    sim = batch.config.sandbox
    for did, r, d, link in accepted:
        assert d.budget_day is not None
        slot = per_day[(r.contact_id, d.budget_day)]
        slot[0] += 1
        if r.welfare:
            slot[1] += 1
        if r.channel is Channel.wecom and d.staff_id is not None:
            per_staff[d.staff_id] += 1
        if r.channel is Channel.sandbox:
            opens_at, clicks_at = simulate(sim, did, now, has_link=bool(link and link.link))
            sandbox_rows.append(
                {
                    "workspace_id": ws,
                    "id": did,
                    "contact_id": r.contact_id,
                    "text": r.text,
                    "link": link.link if link else None,
                    "created_at": now,
                    "opens_at": opens_at,
                    "clicks_at": clicks_at,
                    "pending_at": opens_at,
                }
            )
        elif not r.sent_by_caller:
            jobs.append(_job_row(ws, did, r.channel, batch.config, now))
    _add_contact_sends(session, ws, per_day)
    if per_staff:
        add_staff_sends(session, ws, batch.staff_day.today, per_staff)
    if sandbox_rows:
        _insert_sandbox(session, sandbox_rows)
    if jobs:
        if any(r.channel is Channel.webhook and not r.sent_by_caller for _, r, _, _ in accepted):
            ensure_webhook_secret(session, ws, batch.settings_row, now)
        _insert_jobs(session, jobs)


# The hot path is written per dialect. SQLite gets plain executemany of prepared rows (its one writer holds
# the lock, so ids are max(id)+1 onwards and no key can be taken meanwhile). PostgreSQL gets one statement
# per table, INSERT ... SELECT FROM unnest(<one array per column>): the statement text never changes, so
# psycopg neither rewrites a multi-row VALUES list nor adapts each row (that cost 5x the writes), and the
# arrays go in binary (%b: 4x cheaper to dump than text arrays); keys another transaction recorded first
# are left out by ON CONFLICT DO NOTHING.

_DELIVERY_COLUMNS = (
    "id, workspace_id, source, step, contact_id, entry, channel, status, reason, detail, retry_at, text, "
    "content_id, push_id, link, staff_id, welfare, service, quiet_hours, webhook_url, payload, budget_day, "
    "created_at, updated_at, sent_at, attempts"
)
_DELIVERY_INSERT = f"INSERT INTO delivery ({_DELIVERY_COLUMNS}) VALUES ({', '.join('?' * 26)})"
_PG_DELIVERY_INSERT = (
    "INSERT INTO delivery (workspace_id, source, step, contact_id, entry, channel, status, reason, detail, "
    "retry_at, text, content_id, push_id, link, staff_id, welfare, service, quiet_hours, webhook_url, payload, "
    "budget_day, created_at, updated_at, sent_at, attempts) "
    "SELECT %s, u.source, u.step, u.contact_id, u.entry, u.channel, u.status, u.reason, u.detail, u.retry_at, "
    "u.text, u.content_id, u.push_id, u.link, u.staff_id, u.welfare, u.service, u.quiet_hours, u.webhook_url, "
    "u.payload::json, u.budget_day, %s, %s, CASE WHEN u.sent THEN %s::timestamp END, 0 "
    "FROM unnest(%b::text[], %b::text[], %b::bigint[], %b::bigint[], %b::text[], %b::text[], %b::text[], "
    "%b::text[], %b::timestamp[], %b::text[], %b::bigint[], %b::bigint[], %b::text[], %b::bigint[], "
    "%b::boolean[], %b::boolean[], %b::text[], %b::text[], %b::text[], %b::date[], %b::boolean[]) "
    "AS u(source, step, contact_id, entry, channel, status, reason, detail, retry_at, text, content_id, push_id, "
    "link, staff_id, welfare, service, quiet_hours, webhook_url, payload, budget_day, sent) "
    "ON CONFLICT (workspace_id, source, step, contact_id, entry) DO NOTHING "
    "RETURNING id, source, step, contact_id, entry"
)


def _naive_utc(value: dt.datetime | None) -> dt.datetime | None:
    """A UTC DATETIME as PostgreSQL stores it (timestamp without time zone), for raw parameters."""
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value is not None else None


def _insert_deliveries(
    session: Session, batch: _Batch, recorded: list[tuple[SendRequest, _Decision, _Links | None]]
) -> dict[tuple[str, str, int, int], int]:
    connection = session.connection()
    ws, now = batch.workspace_id, batch.now
    if connection.dialect.name == "sqlite":
        start = int(connection.exec_driver_sql("SELECT COALESCE(MAX(id), 0) FROM delivery").scalar_one()) + 1
        stamp = sqlite_datetime(now)
        out: dict[tuple[str, str, int, int], int] = {}
        values = []
        for offset, (r, d, link) in enumerate(recorded):
            did = start + offset
            out[r.key] = did
            sent = d.status is DeliveryStatus.sent
            values.append(
                (
                    did,
                    ws,
                    r.source,
                    r.step,
                    r.contact_id,
                    r.entry,
                    r.channel.value,
                    d.status.value,
                    d.reason,
                    d.detail[:500] if d.detail else None,
                    sqlite_datetime(d.retry_at) if d.retry_at else None,
                    r.text,
                    r.content_id if d.reason != reasons.CONTENT_UNAVAILABLE else None,
                    link.push_id if link else None,
                    link.link if link else None,
                    d.staff_id,
                    1 if r.welfare else 0,
                    1 if r.service else 0,
                    r.quiet_hours.value,
                    r.webhook_url,
                    orjson.dumps(r.payload).decode() if r.payload is not None else None,
                    d.budget_day.isoformat() if d.budget_day else None,
                    stamp,
                    stamp,
                    stamp if sent else None,
                    0,
                )
            )
        connection.exec_driver_sql(_DELIVERY_INSERT, values)
        return out
    at = _naive_utc(now)
    columns: tuple[list[Any], ...] = tuple([] for _ in range(21))
    for r, d, link in recorded:
        for column, value in zip(
            columns,
            (
                r.source,
                r.step,
                r.contact_id,
                r.entry,
                r.channel.value,
                d.status.value,
                d.reason,
                d.detail[:500] if d.detail else None,
                _naive_utc(d.retry_at),
                r.text,
                r.content_id if d.reason != reasons.CONTENT_UNAVAILABLE else None,
                link.push_id if link else None,
                link.link if link else None,
                d.staff_id,
                r.welfare,
                r.service,
                r.quiet_hours.value,
                r.webhook_url,
                orjson.dumps(r.payload).decode() if r.payload is not None else None,
                d.budget_day,
                d.status is DeliveryStatus.sent,
            ),
            strict=True,
        ):
            column.append(value)
    result = connection.exec_driver_sql(_PG_DELIVERY_INSERT, (ws, at, at, at, *columns))
    return {(src, step, cid, entry): did for did, src, step, cid, entry in result}


def _add_contact_sends(session: Session, workspace_id: int, per_day: dict[tuple[int, dt.date], list[int]]) -> None:
    connection = session.connection()
    # in key order: two transactions counting the same contacts lock their rows in one order (no deadlock)
    keys = sorted(per_day)
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(
            "INSERT INTO contact_send_day (workspace_id, contact_id, day, sends, welfare) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (contact_id, day) DO UPDATE SET sends = sends + excluded.sends, "
            "welfare = welfare + excluded.welfare",
            [(workspace_id, cid, day.isoformat(), *per_day[(cid, day)]) for cid, day in keys],
        )
        return
    connection.exec_driver_sql(
        "INSERT INTO contact_send_day (workspace_id, contact_id, day, sends, welfare) "
        "SELECT %s, u.contact_id, u.day, u.sends, u.welfare "
        "FROM unnest(%b::bigint[], %b::date[], %b::integer[], %b::integer[]) AS u(contact_id, day, sends, welfare) "
        "ON CONFLICT (contact_id, day) DO UPDATE SET sends = contact_send_day.sends + excluded.sends, "
        "welfare = contact_send_day.welfare + excluded.welfare",
        (
            workspace_id,
            [cid for cid, _ in keys],
            [day for _, day in keys],
            [per_day[k][0] for k in keys],
            [per_day[k][1] for k in keys],
        ),
    )


def _insert_sandbox(session: Session, rows: list[dict[str, Any]]) -> None:
    connection = session.connection()
    if connection.dialect.name == "sqlite":

        def stamp(value: dt.datetime | None) -> str | None:
            return sqlite_datetime(value) if value is not None else None

        connection.exec_driver_sql(
            "INSERT INTO sandbox_message (id, workspace_id, contact_id, text, link, created_at, opens_at, clicks_at, "
            "pending_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    row["id"],
                    row["workspace_id"],
                    row["contact_id"],
                    row["text"],
                    row["link"],
                    stamp(row["created_at"]),
                    stamp(row["opens_at"]),
                    stamp(row["clicks_at"]),
                    stamp(row["pending_at"]),
                )
                for row in rows
            ],
        )
        return
    connection.exec_driver_sql(
        "INSERT INTO sandbox_message (id, workspace_id, contact_id, text, link, created_at, opens_at, clicks_at, "
        "pending_at) SELECT u.id, %s, u.contact_id, u.text, u.link, %s, u.opens_at, u.clicks_at, u.pending_at "
        "FROM unnest(%b::bigint[], %b::bigint[], %b::text[], %b::text[], %b::timestamp[], %b::timestamp[], "
        "%b::timestamp[]) AS u(id, contact_id, text, link, opens_at, clicks_at, pending_at)",
        (
            rows[0]["workspace_id"],
            _naive_utc(rows[0]["created_at"]),
            [row["id"] for row in rows],
            [row["contact_id"] for row in rows],
            [row["text"] for row in rows],
            [row["link"] for row in rows],
            [_naive_utc(row["opens_at"]) for row in rows],
            [_naive_utc(row["clicks_at"]) for row in rows],
            [_naive_utc(row["pending_at"]) for row in rows],
        ),
    )


def _insert_jobs(session: Session, jobs: list[dict[str, Any]]) -> None:
    """The outbox's delivery.send jobs (dedupe key delivery:<id>; one already pending is left alone)."""
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        session.execute(sqlite.insert(Job).on_conflict_do_nothing(), jobs)
        return
    first = jobs[0]
    connection.exec_driver_sql(
        "INSERT INTO job (workspace_id, name, payload, status, run_at, attempts, max_attempts, dedupe_key, "
        "created_at) SELECT %s, %s, u.payload::json, %s, %s, 0, u.max_attempts, u.dedupe_key, %s "
        "FROM unnest(%b::text[], %b::integer[], %b::text[]) AS u(payload, max_attempts, dedupe_key) "
        "ON CONFLICT DO NOTHING",
        (
            first["workspace_id"],
            first["name"],
            first["status"].name,
            _naive_utc(first["run_at"]),
            _naive_utc(first["created_at"]),
            [orjson.dumps(job["payload"]).decode() for job in jobs],
            [job["max_attempts"] for job in jobs],
            [job["dedupe_key"] for job in jobs],
        ),
    )


def add_staff_sends(session: Session, workspace_id: int, day: dt.date, per_staff: dict[int, int]) -> None:
    upsert = dialect_insert(session)
    statement = upsert(StaffSendDay)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["staff_id", "day"], set_={"sends": StaffSendDay.sends + statement.excluded.sends}
        ),
        [{"workspace_id": workspace_id, "staff_id": sid, "day": day, "sends": n} for sid, n in per_staff.items()],
    )


def _job_row(
    workspace_id: int, delivery_id: int, channel: Channel, config: DeliveryConfig, now: dt.datetime
) -> dict[str, Any]:
    attempts = {
        Channel.webhook: config.webhook_max_attempts,
        Channel.email: EMAIL_MAX_ATTEMPTS,
        Channel.wecom: WECOM_MAX_ATTEMPTS,
    }[channel]
    return {
        "workspace_id": workspace_id,
        "name": SEND_JOB,
        "payload": {"delivery_id": delivery_id},
        "status": JobStatus.queued,
        "run_at": now,
        "attempts": 0,
        "max_attempts": attempts,
        "dedupe_key": f"delivery:{delivery_id}",
        "created_at": now,
    }


def ensure_webhook_secret(
    session: Session, workspace_id: int, row: DeliverySettings | None, now: dt.datetime
) -> str | None:
    """The workspace's webhook signing secret, made (and stored encrypted) the first time it is needed.
    Returns the new secret when one was made, else None."""
    if row is None:
        row = session.scalar(select(DeliverySettings).where(DeliverySettings.workspace_id == workspace_id))
    if row is not None and row.webhook_secret_encrypted:
        return None
    from siyu.delivery.secrets import new_secret_values

    value, encrypted, hint = new_secret_values()
    if row is None:
        upsert = dialect_insert(session)
        session.execute(
            upsert(DeliverySettings)
            .values(
                workspace_id=workspace_id,
                config={},
                webhook_secret_encrypted=encrypted,
                webhook_secret_hint=hint,
                updated_at=now,
            )
            .on_conflict_do_nothing()
        )
    else:
        row.webhook_secret_encrypted = encrypted
        row.webhook_secret_hint = hint
        row.updated_at = now
    session.flush()
    return value


# --------------------------------------------------------------------------- held deliveries


def release_held(session: Session, workspace_id: int, delivery_ids: Sequence[int], *, now: dt.datetime) -> int:
    """Re-evaluates held deliveries whose time has come: each is sent (or queued), held again, or skipped.
    Returns how many were looked at. The caller commits."""
    rows = list(
        session.scalars(
            select(Delivery)
            .where(
                Delivery.workspace_id == workspace_id,
                Delivery.id.in_(list(delivery_ids)),
                Delivery.status == DeliveryStatus.held,
            )
            .order_by(Delivery.id)
            # PostgreSQL: two workers releasing at once take different rows; SQLite has one writer
            .with_for_update(skip_locked=True)
        )
    )
    if not rows:
        return 0
    requests = [_request_of(row) for row in rows]
    batch = _Batch(session, workspace_id, now, requests)
    decisions = [batch.decide(r) for r in requests]
    accepted = [(r, d) for r, d in zip(requests, decisions, strict=True) if d.status in ACCEPTED]
    links = _content_links(session, batch, accepted)
    done: list[tuple[int, SendRequest, _Decision, _Links | None]] = []
    for row, r, d in zip(rows, requests, decisions, strict=True):
        row.status = d.status
        row.reason = d.reason
        row.detail = d.detail[:500] if d.detail else None
        row.retry_at = d.retry_at
        row.staff_id = d.staff_id
        row.budget_day = d.budget_day
        row.updated_at = now
        if d.status in ACCEPTED:
            link = links.get(r.key)
            if link is not None:
                row.push_id, row.link = link.push_id, link.link
            if d.status is DeliveryStatus.sent:
                row.sent_at = now
            done.append((row.id, r, d, link))
    session.flush()
    _after_accept(session, batch, done)
    return len(rows)


def _request_of(row: Delivery) -> SendRequest:
    return SendRequest(
        source=row.source,
        step=row.step,
        contact_id=row.contact_id,
        entry=row.entry,
        channel=row.channel,
        text=row.text,
        content_id=row.content_id,
        staff_id=row.staff_id if row.channel is Channel.wecom else None,
        welfare=row.welfare,
        service=row.service,
        quiet_hours=row.quiet_hours,
        webhook_url=row.webhook_url,
        payload=row.payload,
    )


def due_held(session: Session, now: dt.datetime, limit: int) -> list[tuple[int, int]]:
    """(workspace, delivery) of held deliveries due by `now`, oldest first."""
    return [
        (ws, did)
        for ws, did in session.execute(
            select(Delivery.workspace_id, Delivery.id)
            .where(Delivery.status == DeliveryStatus.held, Delivery.retry_at <= now)
            .order_by(Delivery.retry_at, Delivery.id)
            .limit(limit)
        )
    ]


# --------------------------------------------------------------------------- budget given back


def give_back(session: Session, delivery: Delivery) -> None:
    """A permanent failure after acceptance: the contact's (and staff account's) budget is returned."""
    if delivery.budget_day is None:
        return
    session.execute(
        update(ContactSendDay)
        .where(ContactSendDay.contact_id == delivery.contact_id, ContactSendDay.day == delivery.budget_day)
        .values(
            sends=case((ContactSendDay.sends > 0, ContactSendDay.sends - 1), else_=0),
            welfare=case(
                (and_(literal(delivery.welfare), ContactSendDay.welfare > 0), ContactSendDay.welfare - 1),
                else_=ContactSendDay.welfare,
            ),
        )
        .execution_options(synchronize_session=False)
    )
    if delivery.channel is Channel.wecom and delivery.staff_id is not None and delivery.sent_at is None:
        day = budget.window(workspace_timezone(session, delivery.workspace_id), delivery.created_at, None).today
        session.execute(
            update(StaffSendDay)
            .where(StaffSendDay.staff_id == delivery.staff_id, StaffSendDay.day == day, StaffSendDay.sends > 0)
            .values(sends=StaffSendDay.sends - 1)
            .execution_options(synchronize_session=False)
        )
    delivery.budget_day = None


# --------------------------------------------------------------------------- outcomes a caller reports

SETTLED_BY_CALLER = (DeliveryStatus.sent, DeliveryStatus.failed, DeliveryStatus.unknown)


def record_outcomes(
    session: Session,
    workspace_id: int,
    delivery_ids: Sequence[int],
    status: DeliveryStatus,
    *,
    now: dt.datetime,
    reason: str | None = None,
    detail: str | None = None,
    external_id: str | None = None,
    sent_at: dt.datetime | None = None,
) -> int:
    """Settles deliveries a caller sent itself (SendRequest.sent_by_caller), once the channel reported them:
    `sent`, `failed` (reason send_failed unless given; the contact's and the staff account's budget is given
    back, as a failed job's would be) or `unknown` (outcome_unknown; the budget stays spent). Only rows of
    the workspace still queued by their caller change, so a repeated report changes nothing. Returns how
    many changed. Never commits."""
    if status not in SETTLED_BY_CALLER:
        raise validation_error("status", f"one of {', '.join(s.value for s in SETTLED_BY_CALLER)}")
    if reason is None:
        reason = {DeliveryStatus.failed: reasons.SEND_FAILED, DeliveryStatus.unknown: reasons.OUTCOME_UNKNOWN}.get(
            status
        )
    changed = 0
    ids = sorted(set(delivery_ids))
    for chunk in _chunks(ids):
        rows = session.execute(
            select(
                Delivery.id,
                Delivery.contact_id,
                Delivery.budget_day,
                Delivery.welfare,
                Delivery.channel,
                Delivery.staff_id,
                Delivery.created_at,
            )
            .where(
                Delivery.workspace_id == workspace_id,
                Delivery.id.in_(list(chunk)),
                Delivery.status == DeliveryStatus.queued,
                Delivery.reason == reasons.SENT_BY_CALLER,
            )
            .order_by(Delivery.id)
            .with_for_update()
        ).all()
        if not rows:
            continue
        values: dict[str, Any] = {"status": status, "reason": reason, "updated_at": now}
        if detail is not None:
            values["detail"] = detail[:500]
        if external_id is not None:
            values["external_id"] = external_id[:200]
        if status is DeliveryStatus.sent:
            values["sent_at"] = sent_at or now
        elif status is DeliveryStatus.failed:
            values["budget_day"] = None
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_([row.id for row in rows]))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if status is DeliveryStatus.failed:
            _give_back_many(session, workspace_id, rows)
        changed += len(rows)
    return changed


def _give_back_many(session: Session, workspace_id: int, rows: Sequence[Any]) -> None:
    """give_back for many never-sent deliveries at once: one decrement per counter row."""
    per_day: dict[tuple[int, dt.date], list[int]] = defaultdict(lambda: [0, 0])
    per_staff: dict[tuple[int, dt.date], int] = defaultdict(int)
    tz = workspace_timezone(session, workspace_id)
    for row in rows:
        if row.budget_day is None:
            continue
        slot = per_day[(row.contact_id, row.budget_day)]
        slot[0] += 1
        slot[1] += 1 if row.welfare else 0
        if row.channel is Channel.wecom and row.staff_id is not None:
            per_staff[(row.staff_id, budget.window(tz, row.created_at, None).today)] += 1
    connection = session.connection()
    if per_day:
        days = cast(Table, ContactSendDay.__table__)
        connection.execute(
            update(days)
            .where(days.c.contact_id == bindparam("b_contact"), days.c.day == bindparam("b_day"))
            .values(
                sends=case((days.c.sends > bindparam("b_sends"), days.c.sends - bindparam("b_sends")), else_=0),
                welfare=case(
                    (days.c.welfare > bindparam("b_welfare"), days.c.welfare - bindparam("b_welfare")), else_=0
                ),
            ),
            [
                {"b_contact": cid, "b_day": day, "b_sends": n[0], "b_welfare": n[1]}
                for (cid, day), n in sorted(per_day.items())
            ],
        )
    if per_staff:
        staff_days = cast(Table, StaffSendDay.__table__)
        connection.execute(
            update(staff_days)
            .where(staff_days.c.staff_id == bindparam("b_staff"), staff_days.c.day == bindparam("b_day"))
            .values(
                sends=case(
                    (staff_days.c.sends > bindparam("b_sends"), staff_days.c.sends - bindparam("b_sends")), else_=0
                )
            ),
            [{"b_staff": sid, "b_day": day, "b_sends": n} for (sid, day), n in sorted(per_staff.items())],
        )


# --------------------------------------------------------------------------- opt-outs


def opt_out(
    session: Session, workspace_id: int, contact_id: int, *, source: str, detail: str | None, now: dt.datetime
) -> bool:
    """Records the opt-out; True if it is new. Held deliveries of the contact are skipped at their release."""
    upsert = dialect_insert(session)
    row = session.execute(
        upsert(OptOut)
        .values(workspace_id=workspace_id, contact_id=contact_id, source=source, detail=detail, created_at=now)
        .on_conflict_do_nothing()
        .returning(OptOut.contact_id)
    ).first()
    return row is not None


def opt_in(session: Session, workspace_id: int, contact_id: int) -> bool:
    result = session.execute(delete(OptOut).where(OptOut.workspace_id == workspace_id, OptOut.contact_id == contact_id))
    return bool(getattr(result, "rowcount", 0))


# --------------------------------------------------------------------------- staff allowances


def staff_send_allowance(session: Session, staff_id: int, day: dt.date) -> int | None:
    """Messages the staff account may still send on `day` (workspace time), warm-up included; None: no limit."""
    ws = session.scalar(select(Staff.workspace_id).where(Staff.id == staff_id))
    if ws is None:
        return 0
    config, _ = policy.load(session, ws)
    info = load_staff(session, ws, [staff_id], config).get(staff_id)
    if info is None:
        return 0
    limit = budget.ramped(info.send_limit, info.started_on, day, config.staff, info.warmup_days)
    if limit is None:
        return None
    return max(limit - staff_sends(session, [staff_id], day).get(staff_id, 0), 0)


def staff_add_allowance(session: Session, staff_id: int, day: dt.date) -> int | None:
    """Customers the staff account may still add on `day` (workspace time): its daily add limit, ramped
    while the account warms up, less the adds already recorded through channel codes that day.
    None: no limit. Acquisition reads this when rotating a code's staff pool."""
    from siyu.channels.models import ChannelCodeStaffDay

    ws = session.scalar(select(Staff.workspace_id).where(Staff.id == staff_id))
    if ws is None:
        return 0
    config, _ = policy.load(session, ws)
    info = load_staff(session, ws, [staff_id], config).get(staff_id)
    if info is None:
        return 0
    limit = budget.ramped(info.add_limit, info.started_on, day, config.staff, info.warmup_days)
    if limit is None:
        return None
    added = session.scalar(
        select(func.coalesce(func.sum(ChannelCodeStaffDay.adds), 0)).where(
            ChannelCodeStaffDay.staff_id == staff_id, ChannelCodeStaffDay.day == day
        )
    )
    return max(limit - int(added or 0), 0)


# --------------------------------------------------------------------------- plan


def _audience_ids(audience: Select[Any]) -> Any:
    inner = audience.subquery("audience")
    column = next(iter(inner.c))
    return select(column.label("id")).distinct().subquery("aud")


def _reasons_select(
    session: Session,
    workspace_id: int,
    audience: Select[Any],
    *,
    channel: Channel,
    welfare: bool,
    at: dt.datetime,
    staff_id: int | None,
) -> Any:
    """SELECT (id, reason) for every distinct contact id of the audience: reason NULL = would be accepted
    now; otherwise the code of the first check that stops it. The same checks as send_many, in SQL."""
    config, _ = policy.load(session, workspace_id)
    ws_tz = str(workspace_timezone(session, workspace_id))
    quiet = config.quiet_hours.times() if config.quiet_hours is not None else None
    aud = _audience_ids(audience)
    c = Contact.__table__.alias("c")
    # Zones: the workspace's, and those of contacts with one of their own (a partial index holds them).
    names = [
        n
        for n in session.scalars(
            select(Contact.timezone)
            .where(Contact.workspace_id == workspace_id, Contact.timezone.is_not(None))
            .distinct()
        )
        if n
    ]
    windows = {name: budget.window(budget.zone(name, ws_tz), at, quiet) for name in names}
    default = budget.window(budget.zone(None, ws_tz), at, quiet)
    zone_key = func.coalesce(c.c.timezone, literal(ws_tz))

    def per_zone(pick: Any) -> Any:
        """A literal when every contact shares the workspace's window, else a CASE on the contact's zone."""
        differing = {n: pick(w) for n, w in windows.items() if pick(w) != pick(default)}
        if not differing:
            return literal(pick(default))
        return case(differing, value=zone_key, else_=literal(pick(default)))

    earliest = min([default.earliest, *(w.earliest for w in windows.values())])
    s = ContactSendDay.__table__.alias("s")
    if any(w != default for w in windows.values()):
        sc = Contact.__table__.alias("sc")
        s_zone = func.coalesce(sc.c.timezone, literal(ws_tz))

        def s_zone_value(pick: Any) -> Any:
            differing = {n: pick(w) for n, w in windows.items() if pick(w) != pick(default)}
            if not differing:
                return literal(pick(default))
            return case(differing, value=s_zone, else_=literal(pick(default)))

        today_s, week_s, month_s = (
            s_zone_value(lambda w: w.today),
            s_zone_value(lambda w: w.week_start),
            s_zone_value(lambda w: w.month_start),
        )
        source: Any = s.join(sc, sc.c.id == s.c.contact_id)
    else:
        today_s, week_s, month_s = literal(default.today), literal(default.week_start), literal(default.month_start)
        source = s
    zero = literal(0)
    in_month = and_(s.c.day >= month_s, s.c.day <= today_s)
    cnt = (
        select(
            s.c.contact_id.label("contact_id"),
            func.sum(case((s.c.day == today_s, s.c.sends), else_=zero)).label("d"),
            func.sum(case((and_(s.c.day >= week_s, s.c.day <= today_s), s.c.sends), else_=zero)).label("w"),
            func.sum(case((in_month, s.c.sends), else_=zero)).label("m"),
            func.sum(case((and_(in_month, s.c.welfare > 0), 1), else_=zero)).label("wd"),
            func.max(case((and_(s.c.day == today_s, s.c.welfare > 0), 1), else_=zero)).label("wt"),
        )
        .select_from(source)
        .where(s.c.workspace_id == workspace_id, s.c.day >= earliest)
        .group_by(s.c.contact_id)
        .subquery("cnt")
    )
    sender = literal(staff_id) if staff_id is not None else c.c.owner_id
    conditions: list[tuple[Any, str]] = [
        (c.c.id.is_(None), reasons.NO_CONTACT),
        (
            exists().where(OptOut.contact_id == aud.c.id, OptOut.workspace_id == workspace_id),
            reasons.OPTED_OUT,
        ),
    ]
    address = _address_sql(session, workspace_id, channel, config, aud.c.id, sender)
    if address is not None:
        conditions.append((address, reasons.NO_ADDRESS))
    if default.quiet or any(w.quiet for w in windows.values()):
        conditions.append((per_zone(lambda w: w.quiet), reasons.QUIET_HOURS))
    caps = config.caps
    for cap, column, code in (
        (caps.day, "d", reasons.CAP_DAY),
        (caps.week, "w", reasons.CAP_WEEK),
        (caps.month, "m", reasons.CAP_MONTH),
    ):
        if cap is not None:
            conditions.append((func.coalesce(cnt.c[column], 0) >= cap, code))
    if welfare and config.welfare_days_per_month is not None:
        conditions.append(
            (
                and_(
                    func.coalesce(cnt.c.wt, 0) == 0,
                    func.coalesce(cnt.c.wd, 0) >= config.welfare_days_per_month,
                ),
                reasons.WELFARE_DAYS,
            )
        )
    reason = case(*conditions, else_=literal(None))
    base = (
        select(aud.c.id.label("id"), reason.label("reason"), sender.label("sender"))
        .select_from(aud)
        .outerjoin(c, and_(c.c.id == aud.c.id, c.c.workspace_id == workspace_id, c.c.merged_into_id.is_(None)))
        .outerjoin(cnt, cnt.c.contact_id == aud.c.id)
    )
    if channel is not Channel.wecom:
        return base.subquery("reasons")
    # The staff account's daily limit: of the contacts passing every other check, each sender takes
    # as many as it has left today, in contact id order (as send_many does for a batch in id order).
    allowances = _staff_allowances(session, workspace_id, config, at, staff_id)
    inner = base.subquery("pre")
    if not allowances:
        return select(inner.c.id, inner.c.reason).subquery("reasons")
    rank = func.row_number().over(partition_by=[inner.c.sender, inner.c.reason], order_by=inner.c.id)
    left = case(allowances, value=inner.c.sender, else_=literal(None, Integer))
    ranked = select(inner.c.id, inner.c.reason, rank.label("rank"), left.label("left")).subquery("ranked")
    final = case(
        (ranked.c.reason.is_not(None), ranked.c.reason),
        (and_(ranked.c.left.is_not(None), ranked.c.rank > ranked.c.left), literal(reasons.STAFF_LIMIT)),
        else_=literal(None),
    )
    return select(ranked.c.id, final.label("reason")).subquery("reasons")


def _address_sql(
    session: Session, workspace_id: int, channel: Channel, config: DeliveryConfig, contact_id: Any, sender: Any
) -> Any:
    """A condition true when the contact cannot be reached on `channel` (None: always reachable)."""
    if channel is Channel.sandbox:
        return None
    if channel is Channel.webhook:
        return None if config.webhook_url else true()
    if channel is Channel.email:
        if not smtp_configured():
            return true()
        return ~exists().where(
            Identity.contact_id == contact_id, Identity.workspace_id == workspace_id, Identity.type == EMAIL_IDENTITY
        )
    configured = session.scalar(select(WeComSettings.id).where(WeComSettings.workspace_id == workspace_id))
    if configured is None:
        return true()
    has_id = exists().where(
        Identity.contact_id == contact_id, Identity.workspace_id == workspace_id, Identity.type == WECOM_IDENTITY
    )
    has_sender = exists().where(
        Staff.id == sender,
        Staff.workspace_id == workspace_id,
        Staff.is_active.is_(True),
        Staff.wecom_userid.is_not(None),
        Staff.wecom_userid != "",
    )
    return or_(~has_id, ~has_sender)


def _staff_allowances(
    session: Session, workspace_id: int, config: DeliveryConfig, at: dt.datetime, staff_id: int | None
) -> dict[int, int]:
    """Sends left today per staff account that has a limit (all of the workspace's, or just `staff_id`)."""
    ids = (
        [staff_id]
        if staff_id is not None
        else list(session.scalars(select(Staff.id).where(Staff.workspace_id == workspace_id)))
    )
    info = load_staff(session, workspace_id, ids, config)
    day = budget.window(workspace_timezone(session, workspace_id), at, None).today
    sent = staff_sends(session, list(info), day)
    out: dict[int, int] = {}
    for sid, staff in info.items():
        limit = budget.ramped(staff.send_limit, staff.started_on, day, config.staff, staff.warmup_days)
        if limit is not None:
            out[sid] = max(limit - sent.get(sid, 0), 0)
    return out


def plan(
    session: Session,
    workspace_id: int,
    audience: Select[Any],
    *,
    channel: Channel,
    welfare: bool,
    at: dt.datetime,
    staff_id: int | None = None,
) -> AudiencePlan:
    """How many of the audience a send at `at` would reach, and why the rest would not: one set-based
    query over the contacts and the budget counters (no per-contact Python)."""
    reasons_q = _reasons_select(
        session, workspace_id, audience, channel=channel, welfare=welfare, at=at, staff_id=staff_id
    )
    counts = {
        reason: int(n)
        for reason, n in session.execute(select(reasons_q.c.reason, func.count()).group_by(reasons_q.c.reason)).all()
    }
    eligible = counts.pop(None, 0)  # type: ignore[call-overload]
    excluded = {code: counts[code] for code in reasons.CHECK_ORDER if counts.get(code)}
    return AudiencePlan(total=eligible + sum(excluded.values()), eligible=eligible, excluded=excluded)


def eligible_contacts(
    session: Session,
    workspace_id: int,
    audience: Select[Any],
    *,
    channel: Channel,
    welfare: bool,
    at: dt.datetime,
) -> Select[Any]:
    """SELECT of the audience's contact ids that a send at `at` would not skip or hold."""
    reasons_q = _reasons_select(session, workspace_id, audience, channel=channel, welfare=welfare, at=at, staff_id=None)
    return select(reasons_q.c.id).where(reasons_q.c.reason.is_(None))
