"""Groups, members, group codes and the numbers of each group. Services never commit.

Group codes (群活码): a code shows the first group in its order that is in rotation (active, or pending
creation in WeCom) and not full; a group is full when its members reach its *limit*, min(capacity,
code threshold). When every group is full and the code has a template, a new group is opened from it
("考试冲刺 {n} 群"): siyu records the group as `pending` and shows it as a task, because siyu does not
create WeCom groups itself; staff create it in WeCom and fill in its chat id and join link.
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
import secrets
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from siyu.channels.service import bump, local_day_bounds, resolve_range
from siyu.errors import NotFound, validation_error
from siyu.events.service import workspace_timezone
from siyu.groups import repository
from siyu.groups.models import (
    ChatGroup,
    ChatGroupHelper,
    ChatGroupMember,
    GroupCode,
    GroupCodeDay,
    GroupCodeStatus,
    GroupPurpose,
    GroupStatus,
)
from siyu.groups.schemas import (
    CodeDay,
    CodeGroupRead,
    GroupCodeCreate,
    GroupCodeRead,
    GroupCodeStats,
    GroupCodeUpdate,
    GroupCreate,
    GroupKpis,
    GroupRead,
    GroupUpdate,
    KpiDay,
    KpiTotals,
    MemberRead,
    TemplateIn,
    TemplateRead,
)
from siyu.kit.repository import get_in_workspace
from siyu.kit.time import utcnow
from siyu.staff.models import Staff

SLUG_BYTES = 12
IN_ROTATION = (GroupStatus.active, GroupStatus.pending)
ANSWER_WINDOW = dt.timedelta(minutes=30)
# A member message is a question when it has a question mark or a Chinese question word.
QUESTION = re.compile(
    r"[?？]|吗|怎么|怎样|如何|为什么|为啥|什么|哪里|哪个|哪些|哪儿|多少|能不能|可不可以|是不是|有没有|请问"
)
PARTICIPATION_TYPES = ("form.submitted", "live.attended", "referral.invited", "coupon.redeemed")
KPI_TYPES = ("message.received", "message.sent", "content.viewed", "order.paid", *PARTICIPATION_TYPES)
HEADLINE = {
    GroupPurpose.broadcast: "open_rate",
    GroupPurpose.welfare: "participation",
    GroupPurpose.training: "answer_rate",
    GroupPurpose.activity: "activity",
    GroupPurpose.custom: "activity",
}


def is_question(text: object) -> bool:
    return isinstance(text, str) and QUESTION.search(text) is not None


# --- groups ----------------------------------------------------------------------------------------


def get_group(session: Session, workspace_id: int, group_id: int) -> ChatGroup:
    return get_in_workspace(session, ChatGroup, workspace_id, group_id, "group")


def _check_staff(session: Session, workspace_id: int, staff_id: int, field: str) -> None:
    staff = session.get(Staff, staff_id)
    if staff is None or staff.workspace_id != workspace_id:
        raise validation_error(field, f"staff {staff_id} does not exist in this workspace")
    if not staff.is_active:
        raise validation_error(field, f"staff {staff_id} is deactivated; pick an active staff member")


def _check_chat_id(session: Session, workspace_id: int, chat_id: str, group_id: int | None) -> None:
    other = session.scalar(
        select(ChatGroup).where(ChatGroup.workspace_id == workspace_id, ChatGroup.wecom_chat_id == chat_id)
    )
    if other is not None and other.id != group_id:
        raise validation_error("wecom_chat_id", f"group {other.id} ({other.name!r}) already has this WeCom chat id")


def _set_helpers(session: Session, group: ChatGroup, staff_ids: Sequence[int]) -> None:
    for n, staff_id in enumerate(staff_ids):
        _check_staff(session, group.workspace_id, staff_id, f"helper_staff_ids[{n}]")
    session.execute(delete(ChatGroupHelper).where(ChatGroupHelper.group_id == group.id))
    for staff_id in staff_ids:
        session.add(ChatGroupHelper(workspace_id=group.workspace_id, group_id=group.id, staff_id=staff_id))


def create_group(session: Session, workspace_id: int, data: GroupCreate) -> ChatGroup:
    if data.owner_staff_id is not None:
        _check_staff(session, workspace_id, data.owner_staff_id, "owner_staff_id")
    if data.wecom_chat_id is not None:
        _check_chat_id(session, workspace_id, data.wecom_chat_id, None)
    group = ChatGroup(
        workspace_id=workspace_id,
        name=data.name,
        purpose=data.purpose,
        purpose_label=data.purpose_label if data.purpose is GroupPurpose.custom else None,
        status=data.status,
        owner_staff_id=data.owner_staff_id,
        capacity=data.capacity,
        wecom_chat_id=data.wecom_chat_id,
        join_url=data.join_url,
        code_position=0,
        member_count=0,
        from_template=False,
    )
    session.add(group)
    session.flush()
    _set_helpers(session, group, data.helper_staff_ids)
    session.flush()
    return group


def update_group(session: Session, workspace_id: int, group_id: int, data: GroupUpdate) -> ChatGroup:
    group = get_group(session, workspace_id, group_id)
    fields = data.model_dump(exclude_unset=True, exclude={"helper_staff_ids"})
    for name in ("name", "purpose", "capacity", "status"):
        if name in fields and fields[name] is None:
            raise validation_error(name, "cannot be null; leave it out to keep the current value")
    if fields.get("owner_staff_id") is not None:
        _check_staff(session, workspace_id, fields["owner_staff_id"], "owner_staff_id")
    if fields.get("wecom_chat_id") is not None:
        _check_chat_id(session, workspace_id, fields["wecom_chat_id"], group.id)
    purpose = fields.get("purpose", group.purpose)
    label = fields.get("purpose_label", group.purpose_label)
    if purpose is GroupPurpose.custom and not label:
        raise validation_error("purpose_label", "a custom purpose needs a label, e.g. 读书会")
    for name, value in fields.items():
        setattr(group, name, value)
    if purpose is not GroupPurpose.custom:
        group.purpose_label = None
    # A group opened from a template becomes active once staff have created it in WeCom.
    if group.status is GroupStatus.pending and "status" not in fields and (group.wecom_chat_id or group.join_url):
        group.status = GroupStatus.active
    if data.helper_staff_ids is not None:
        _set_helpers(session, group, data.helper_staff_ids)
    session.flush()
    return group


def groups_read(session: Session, groups: Sequence[ChatGroup]) -> list[GroupRead]:
    helpers = repository.helpers_of(session, [g.id for g in groups])
    return [
        GroupRead(
            id=g.id,
            name=g.name,
            purpose=g.purpose,
            purpose_label=g.purpose_label,
            status=g.status,
            owner_staff_id=g.owner_staff_id,
            helper_staff_ids=helpers[g.id],
            capacity=g.capacity,
            member_count=g.member_count,
            wecom_chat_id=g.wecom_chat_id,
            join_url=g.join_url,
            code_id=g.code_id,
            from_template=g.from_template,
            created_at=g.created_at,
        )
        for g in groups
    ]


def members_read(session: Session, workspace_id: int, group_id: int, current: bool | None) -> list[MemberRead]:
    group = get_group(session, workspace_id, group_id)
    return [
        MemberRead(contact_id=m.contact_id, name=name, joined_at=m.joined_at, left_at=m.left_at)
        for m, name in repository.members(session, group.id, current=current)
    ]


# --- membership ------------------------------------------------------------------------------------


def recount(session: Session, group_ids: Iterable[int]) -> None:
    for group_id in sorted(set(group_ids)):
        count = session.scalar(
            select(func.count())
            .select_from(ChatGroupMember)
            .where(ChatGroupMember.group_id == group_id, ChatGroupMember.left_at.is_(None))
        )
        session.execute(update(ChatGroup).where(ChatGroup.id == group_id).values(member_count=int(count or 0)))


def joined(session: Session, group: ChatGroup, contact_id: int, at: dt.datetime) -> None:
    """The contact joined at `at`. The latest event in time wins: an older join changes nothing."""
    row = session.get(ChatGroupMember, (group.id, contact_id))
    if row is None:
        session.add(
            ChatGroupMember(
                workspace_id=group.workspace_id, group_id=group.id, contact_id=contact_id, joined_at=at, left_at=None
            )
        )
    elif row.left_at is not None and at >= row.left_at:
        row.joined_at, row.left_at = at, None
    elif row.left_at is None and at < row.joined_at:
        row.joined_at = at  # the same stay, known from an earlier time
    session.flush()


def left(session: Session, group: ChatGroup, contact_id: int, at: dt.datetime) -> None:
    row = session.get(ChatGroupMember, (group.id, contact_id))
    if row is None:
        # Left a group siyu had not seen them join: they were in it until now.
        session.add(
            ChatGroupMember(
                workspace_id=group.workspace_id, group_id=group.id, contact_id=contact_id, joined_at=at, left_at=at
            )
        )
    elif row.left_at is None and at >= row.joined_at:
        row.left_at = at
    elif row.left_at is not None and row.left_at < at and row.joined_at <= row.left_at:
        row.left_at = max(row.left_at, at)
    session.flush()


def move_memberships(session: Session, merged_id: int, survivor_id: int) -> set[int]:
    """A contact merge: the survivor is in every group the merged profile was in (spans united)."""
    touched: set[int] = set()
    for row in list(session.scalars(select(ChatGroupMember).where(ChatGroupMember.contact_id == merged_id))):
        touched.add(row.group_id)
        other = session.get(ChatGroupMember, (row.group_id, survivor_id))
        if other is None:
            session.add(
                ChatGroupMember(
                    workspace_id=row.workspace_id,
                    group_id=row.group_id,
                    contact_id=survivor_id,
                    joined_at=row.joined_at,
                    left_at=row.left_at,
                )
            )
        else:
            other.joined_at = min(other.joined_at, row.joined_at)
            other.left_at = None if other.left_at is None or row.left_at is None else max(other.left_at, row.left_at)
        session.delete(row)
    session.flush()
    return touched


def group_for_key(
    session: Session, workspace_id: int, key: str, name: str | None = None, *, register: bool = True
) -> ChatGroup | None:
    """The group an event names; an unknown id is registered as a custom group so no member is lost."""
    group = repository.group_by_key(session, workspace_id, key)
    if group is None and register:
        group = ChatGroup(
            workspace_id=workspace_id,
            name=(name or f"群 {key}")[:100],
            purpose=GroupPurpose.custom,
            purpose_label="未分类",
            status=GroupStatus.active,
            capacity=200,
            wecom_chat_id=key[:64],
            code_position=0,
            member_count=0,
            from_template=False,
        )
        session.add(group)
        session.flush()
    return group


# --- group codes -----------------------------------------------------------------------------------


def get_code(session: Session, workspace_id: int, code_id: int, *, for_update: bool = False) -> GroupCode:
    if not for_update:
        return get_in_workspace(session, GroupCode, workspace_id, code_id, "group code")
    code = session.scalar(
        select(GroupCode)
        .where(GroupCode.id == code_id, GroupCode.workspace_id == workspace_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if code is None:
        raise NotFound(f"group code {code_id} not found in this workspace")
    return code


def limit_of(group: ChatGroup, code: GroupCode) -> int:
    return min(group.capacity, code.threshold) if code.threshold else group.capacity


def is_full(group: ChatGroup, code: GroupCode) -> bool:
    return group.member_count >= limit_of(group, code)


def current_of(groups: Sequence[ChatGroup], code: GroupCode) -> ChatGroup | None:
    """The first group in the code's order that is in rotation and not full."""
    for group in groups:
        if group.status in IN_ROTATION and not is_full(group, code):
            return group
    return None


def _set_template(code: GroupCode, template: TemplateIn | None, default_next: int) -> None:
    if template is None:
        code.template_name = code.template_purpose = code.template_label = code.template_owner_staff_id = None
        return
    code.template_name = template.name_pattern
    code.template_purpose = template.purpose
    code.template_label = template.purpose_label if template.purpose is GroupPurpose.custom else None
    code.template_owner_staff_id = template.owner_staff_id
    code.template_capacity = template.capacity
    code.next_number = template.next_number or (code.next_number if code.id and code.next_number > 1 else default_next)


def _set_groups(session: Session, code: GroupCode, group_ids: Sequence[int]) -> None:
    groups = []
    for n, group_id in enumerate(group_ids):
        group = session.get(ChatGroup, group_id)
        if group is None or group.workspace_id != code.workspace_id:
            raise validation_error(f"group_ids[{n}]", f"group {group_id} does not exist in this workspace")
        if group.code_id is not None and group.code_id != code.id:
            raise validation_error(
                f"group_ids[{n}]", f"group {group_id} ({group.name!r}) already belongs to group code {group.code_id}"
            )
        if group.status in (GroupStatus.archived, GroupStatus.dismissed):
            raise validation_error(
                f"group_ids[{n}]", f"group {group_id} is {group.status.value}; it cannot take members"
            )
        groups.append(group)
    session.execute(update(ChatGroup).where(ChatGroup.code_id == code.id).values(code_id=None, code_position=0))
    for n, group in enumerate(groups):
        group.code_id, group.code_position = code.id, n


def create_code(session: Session, workspace_id: int, data: GroupCodeCreate) -> GroupCode:
    if data.template is not None and data.template.owner_staff_id is not None:
        _check_staff(session, workspace_id, data.template.owner_staff_id, "template.owner_staff_id")
    code = GroupCode(
        workspace_id=workspace_id,
        name=data.name,
        slug=secrets.token_urlsafe(SLUG_BYTES),
        status=GroupCodeStatus.active,
        threshold=data.threshold,
        template_capacity=200,
        next_number=1,
    )
    _set_template(code, data.template, len(data.group_ids) + 1)
    session.add(code)
    session.flush()
    _set_groups(session, code, data.group_ids)
    session.flush()
    return code


def update_code(session: Session, workspace_id: int, code_id: int, data: GroupCodeUpdate) -> GroupCode:
    code = get_code(session, workspace_id, code_id, for_update=True)
    fields = data.model_dump(exclude_unset=True)
    if "name" in fields:
        if fields["name"] is None:
            raise validation_error("name", "cannot be null; leave it out to keep the current value")
        code.name = fields["name"]
    if "threshold" in fields:
        code.threshold = fields["threshold"]
    if "template" in fields:
        if data.template is not None and data.template.owner_staff_id is not None:
            _check_staff(session, workspace_id, data.template.owner_staff_id, "template.owner_staff_id")
        count = session.scalar(select(func.count()).select_from(ChatGroup).where(ChatGroup.code_id == code.id)) or 0
        _set_template(code, data.template, int(count) + 1)
    if data.group_ids is not None:
        _set_groups(session, code, data.group_ids)
    session.flush()
    return code


def set_code_status(session: Session, workspace_id: int, code_id: int, status: GroupCodeStatus) -> GroupCode:
    code = get_code(session, workspace_id, code_id, for_update=True)
    code.status = status
    session.flush()
    return code


def open_from_template(session: Session, code: GroupCode) -> ChatGroup:
    """A new group from the code's template, last in its order, pending creation in WeCom."""
    if not code.template_name or code.template_purpose is None:
        raise validation_error("template", "this group code has no template; give it one to open groups from")
    number = code.next_number
    code.next_number = number + 1
    last = session.scalar(select(func.max(ChatGroup.code_position)).where(ChatGroup.code_id == code.id))
    group = ChatGroup(
        workspace_id=code.workspace_id,
        name=code.template_name.replace("{n}", str(number))[:100],
        purpose=code.template_purpose,
        purpose_label=code.template_label,
        status=GroupStatus.pending,
        owner_staff_id=code.template_owner_staff_id,
        capacity=code.template_capacity,
        code_id=code.id,
        code_position=(last + 1) if last is not None else 0,
        member_count=0,
        from_template=True,
    )
    session.add(group)
    session.flush()
    return group


def serve(session: Session, code: GroupCode, *, open_new: bool = True) -> ChatGroup | None:
    """The group the code shows now; opens one from the template when every group is full.

    The caller holds the code's row lock (get_code(for_update=True)), so two scans never open two groups.
    """
    current = current_of(repository.groups_of_code(session, code.id), code)
    if current is None and open_new and code.status is GroupCodeStatus.active and code.template_name:
        current = open_from_template(session, code)
    return current


def count_scan(session: Session, code: GroupCode, at: dt.datetime) -> None:
    day = at.astimezone(workspace_timezone(session, code.workspace_id)).date()
    bump(session, GroupCodeDay, {"workspace_id": code.workspace_id, "code_id": code.id, "day": day}, scans=1)


def code_groups_read(groups: Sequence[ChatGroup], code: GroupCode) -> list[CodeGroupRead]:
    current = current_of(groups, code)
    rows = []
    for g in groups:
        limit = limit_of(g, code)
        rows.append(
            CodeGroupRead(
                id=g.id,
                name=g.name,
                status=g.status,
                member_count=g.member_count,
                capacity=g.capacity,
                limit=limit,
                fill=round(g.member_count / limit, 4) if limit else 1.0,
                full=g.member_count >= limit,
                current=current is not None and g.id == current.id,
            )
        )
    return rows


def codes_read(session: Session, codes: Sequence[GroupCode]) -> list[GroupCodeRead]:
    result = []
    for c in codes:
        groups = repository.groups_of_code(session, c.id)
        current = current_of(groups, c)
        template = (
            TemplateRead(
                name_pattern=c.template_name,
                purpose=c.template_purpose,
                purpose_label=c.template_label,
                owner_staff_id=c.template_owner_staff_id,
                capacity=c.template_capacity,
                next_number=c.next_number,
            )
            if c.template_name and c.template_purpose is not None
            else None
        )
        result.append(
            GroupCodeRead(
                id=c.id,
                name=c.name,
                status=c.status,
                threshold=c.threshold,
                template=template,
                groups=code_groups_read(groups, c),
                current_group_id=current.id if current else None,
                pending_group_ids=[g.id for g in groups if g.status is GroupStatus.pending],
                slug=c.slug,
                link_path=f"/g/{c.slug}",
                created_at=c.created_at,
            )
        )
    return result


def code_stats(
    session: Session, workspace_id: int, code_id: int, date_from: dt.date | None, date_to: dt.date | None
) -> GroupCodeStats:
    code = get_code(session, workspace_id, code_id)
    tz = workspace_timezone(session, workspace_id)
    date_from, date_to = resolve_range(date_from, date_to, tz)
    start, end = local_day_bounds(date_from, date_to, tz)
    scans = {
        row.day: row.scans
        for row in session.scalars(
            select(GroupCodeDay).where(
                GroupCodeDay.code_id == code.id, GroupCodeDay.day >= date_from, GroupCodeDay.day <= date_to
            )
        )
    }
    groups = repository.groups_of_code(session, code.id)
    joins: dict[dt.date, int] = defaultdict(int)
    for m in repository.members_overlapping(session, [g.id for g in groups], start, end):
        if start <= m.joined_at < end:
            joins[m.joined_at.astimezone(tz).date()] += 1
    per_day = [CodeDay(day=d, scans=scans.get(d, 0), joins=joins.get(d, 0)) for d in _days(date_from, date_to)]
    return GroupCodeStats(
        code_id=code.id,
        date_from=date_from,
        date_to=date_to,
        scans=sum(d.scans for d in per_day),
        joins=sum(d.joins for d in per_day),
        per_day=per_day,
        groups=code_groups_read(groups, code),
    )


def _days(date_from: dt.date, date_to: dt.date) -> list[dt.date]:
    return [date_from + dt.timedelta(days=n) for n in range((date_to - date_from).days + 1)]


# --- KPIs ------------------------------------------------------------------------------------------


@dataclass
class _Tally:
    members: dict[int, tuple[dt.datetime, dt.datetime | None]]
    speakers: set[int] = field(default_factory=set)
    first_view: dict[int, dt.datetime] = field(default_factory=dict)
    participants: set[int] = field(default_factory=set)
    questions: list[tuple[dt.datetime, dt.date]] = field(default_factory=list)
    replies: list[dt.datetime] = field(default_factory=list)
    orders: dict[int, list[tuple[dt.datetime, float]]] = field(default_factory=lambda: defaultdict(list))
    day_speakers: dict[dt.date, set[int]] = field(default_factory=lambda: defaultdict(set))
    day_viewers: dict[dt.date, set[int]] = field(default_factory=lambda: defaultdict(set))
    day_participants: dict[dt.date, set[int]] = field(default_factory=lambda: defaultdict(set))

    def member_at(self, contact_id: int, at: dt.datetime) -> bool:
        span = self.members.get(contact_id)
        return span is not None and span[0] <= at and (span[1] is None or at <= span[1])


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def group_kpis(
    session: Session, workspace_id: int, groups: Sequence[ChatGroup], date_from: dt.date, date_to: dt.date
) -> dict[int, GroupKpis]:
    """Every KPI of each group over [date_from, date_to] (workspace days), with a per-day series.

    Read from the raw events of the groups' members (one indexed range per contact), so the numbers
    are right for any range without counters to keep. The formulas are in docs/en/groups.md.
    """
    tz = workspace_timezone(session, workspace_id)
    start, end = local_day_bounds(date_from, date_to, tz)
    tallies: dict[int, _Tally] = {g.id: _Tally(members={}) for g in groups}
    for m in repository.members_overlapping(session, [g.id for g in groups], start, end):
        tallies[m.group_id].members[m.contact_id] = (m.joined_at, m.left_at)
    keys: dict[str, int] = {}
    for g in groups:
        keys[str(g.id)] = g.id
        if g.wecom_chat_id:
            keys[g.wecom_chat_id] = g.id
    member_groups: dict[int, list[int]] = defaultdict(list)
    for gid, tally in tallies.items():
        for contact_id in tally.members:
            member_groups[contact_id].append(gid)
    events = repository.events_of(session, workspace_id, member_groups, KPI_TYPES, start, end + ANSWER_WINDOW)
    for kind, contact_id, at, props in events:
        raw = props.get("group_id")
        named = keys.get(str(raw)) if raw is not None else None
        inside = at < end
        day = at.astimezone(tz).date()
        if kind == "message.sent":
            if named is not None:
                tallies[named].replies.append(at)
            continue
        if not inside:
            continue
        for gid in member_groups[contact_id]:
            tally = tallies[gid]
            here = named == gid
            if kind == "message.received" and here:
                tally.speakers.add(contact_id)
                tally.day_speakers[day].add(contact_id)
                if is_question(props.get("text")):
                    tally.questions.append((at, day))
            elif kind == "content.viewed" and (
                here or (raw is None and props.get("channel") == "group" and tally.member_at(contact_id, at))
            ):
                tally.first_view.setdefault(contact_id, at)
                tally.day_viewers[day].add(contact_id)
            elif kind == "order.paid":
                amount = props.get("amount")
                tally.orders[contact_id].append((at, float(amount) if isinstance(amount, int | float) else 0.0))
            elif kind in PARTICIPATION_TYPES and (
                here or (kind == "coupon.redeemed" and raw is None and tally.member_at(contact_id, at))
            ):
                tally.participants.add(contact_id)
                tally.day_participants[day].add(contact_id)
    days = _days(date_from, date_to)
    bounds = [local_day_bounds(d, d, tz) for d in days]
    result = {}
    for g in groups:
        tally = tallies[g.id]
        replies = sorted(tally.replies)
        answered_days: dict[dt.date, int] = defaultdict(int)
        asked_days: dict[dt.date, int] = defaultdict(int)
        for asked, day in tally.questions:
            asked_days[day] += 1
            n = bisect.bisect_right(replies, asked)
            if n < len(replies) and replies[n] <= asked + ANSWER_WINDOW:
                answered_days[day] += 1
        orders = amount = 0
        buyers = 0
        for contact_id, first in tally.first_view.items():
            after = [(at, a) for at, a in tally.orders.get(contact_id, []) if at > first]
            if after:
                buyers += 1
                orders += len(after)
                amount += sum(a for _, a in after)
        members = len(tally.members)
        questions, answered = sum(asked_days.values()), sum(answered_days.values())
        totals = KpiTotals(
            members=members,
            speakers=len(tally.speakers),
            activity=_rate(len(tally.speakers), members),
            viewers=len(tally.first_view),
            open_rate=_rate(len(tally.first_view), members),
            orders=orders,
            order_amount=round(float(amount), 2),
            buyers=buyers,
            participants=len(tally.participants),
            participation=_rate(len(tally.participants), members),
            questions=questions,
            answered=answered,
            answer_rate=_rate(answered, questions),
        )
        per_day = [
            KpiDay(
                day=d,
                members=sum(
                    1 for j, lft in tally.members.values() if j < day_end and (lft is None or lft >= day_start)
                ),
                speakers=len(tally.day_speakers.get(d, ())),
                viewers=len(tally.day_viewers.get(d, ())),
                participants=len(tally.day_participants.get(d, ())),
                questions=asked_days.get(d, 0),
                answered=answered_days.get(d, 0),
            )
            for d, (day_start, day_end) in zip(days, bounds, strict=True)
        ]
        result[g.id] = GroupKpis(
            group_id=g.id,
            purpose=g.purpose,
            headline=HEADLINE[g.purpose],
            date_from=date_from,
            date_to=date_to,
            totals=totals,
            per_day=per_day,
        )
    return result


def kpis(
    session: Session, workspace_id: int, group_id: int, date_from: dt.date | None, date_to: dt.date | None
) -> GroupKpis:
    group = get_group(session, workspace_id, group_id)
    tz = workspace_timezone(session, workspace_id)
    date_from, date_to = resolve_range(date_from, date_to, tz)
    return group_kpis(session, workspace_id, [group], date_from, date_to)[group.id]


def headline_value(k: GroupKpis) -> float | None:
    value: Any = getattr(k.totals, k.headline)
    return value if value is None else float(value)


def now() -> dt.datetime:
    return utcnow()
