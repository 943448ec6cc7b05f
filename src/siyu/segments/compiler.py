"""Rules to SQL: one boolean clause over `contact`, read from the computed properties where they answer.

Every clause is two-valued (true or false, never NULL), so `not` means what it says: a comparison on
an unset value is false, and its negation is true, exactly as `siyu.segments.evaluate` decides it.
Counting conditions are written as "contact in the set of contacts with at least k": at least k is
`IN G(k)`, at most k is `NOT IN G(k+1)`, exactly k is both; the sets are uncorrelated subqueries a
database computes once. Asked about a few contacts only (`among`, the pipeline's touched contacts), each
set is cut down to them first, so its cost follows the contacts asked about, not the workspace's size.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Collection
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, func, not_, or_, select, true
from sqlalchemy.orm import Session

from siyu.channels.models import ChannelTouch
from siyu.computed.models import ContactEventDay, ContactEventStat
from siyu.contacts.models import Contact, Identity
from siyu.events.models import Event
from siyu.kit.sql import IdFilter
from siyu.recommend.portrait import affinity_at_least
from siyu.scoring.models import ContactScore
from siyu.segments.context import RuleContext, anniversary_days, relative_range
from siyu.segments.models import SegmentMember
from siyu.segments.rules import (
    And,
    AttributeCond,
    ChannelCodeCond,
    ComputedCond,
    EventCountCond,
    EventTimeCond,
    IdentityCond,
    InterestCond,
    Node,
    Not,
    Or,
    PropertyFilter,
    SegmentCond,
    TagsCond,
)
from siyu.tags.models import ContactTag

ORDER_EVENT = "order.paid"
REFUND_EVENT = "order.refunded"
SCORE_COLUMNS = {
    "r_score": ContactScore.r_score,
    "f_score": ContactScore.f_score,
    "m_score": ContactScore.m_score,
    "intention_score": ContactScore.intention_score,
    "lifecycle_stage": ContactScore.lifecycle_stage,
    "value_tier": ContactScore.value_tier,
    "intention_level": ContactScore.intention_level,
    "transaction_stage": ContactScore.transaction_stage,
}

Clause = ColumnElement[bool]


class Compiler:
    """`among`: a condition on a contact id column that keeps only the contacts asked about (kit.sql.IdFilter);
    None: every contact of the workspace."""

    def __init__(self, ctx: RuleContext, dialect: str, among: IdFilter | None = None) -> None:
        self.ctx = ctx
        self.ws = ctx.workspace_id
        self.postgres = dialect == "postgresql"
        self.among = among

    def _workspace(self, column: Any) -> Any:
        """The workspace column of a set's table. Cut to a few contacts on SQLite, "+ 0" keeps the planner
        (which has no statistics) off the workspace-led indexes, onto the contact key."""
        return column + 0 if self.among is not None and not self.postgres else column

    def _in(self, contacts: Select[Any]) -> Clause:
        """Contact.id IN the set of contacts `contacts` selects. With `among`, the set is cut to those
        contacts, so the database walks their rows by contact (every table here has a contact index)
        instead of computing the set for the whole workspace; the answer for them is the same."""
        if self.among is not None:
            contacts = contacts.where(self.among(contacts.selected_columns[0]))
        return Contact.id.in_(contacts)

    # ----------------------------------------------------------------- entry

    def clause(self, node: Node) -> Clause:
        if isinstance(node, And):
            return and_(*(self.clause(child) for child in node.children))
        if isinstance(node, Or):
            return or_(*(self.clause(child) for child in node.children))
        if isinstance(node, Not):
            return not_(self.clause(node.child))
        if isinstance(node, AttributeCond):
            return self._attribute(node)
        if isinstance(node, IdentityCond):
            has = self._in(
                select(Identity.contact_id).where(
                    self._workspace(Identity.workspace_id) == self.ws, Identity.type == node.type
                )
            )
            return has if node.present else not_(has)
        if isinstance(node, TagsCond):
            return self._tags(node)
        if isinstance(node, ChannelCodeCond):
            touches = select(ChannelTouch.contact_id).where(
                self._workspace(ChannelTouch.workspace_id) == self.ws, ChannelTouch.code_id.in_(node.code_ids)
            )
            if node.touch == "first":
                touches = touches.where(ChannelTouch.first.is_(True))
            return self._in(touches)
        if isinstance(node, EventCountCond):
            return self._event_count(node)
        if isinstance(node, EventTimeCond):
            return self._event_time(node)
        if isinstance(node, ComputedCond):
            return self._computed(node)
        if isinstance(node, SegmentCond):
            return self._in(select(SegmentMember.contact_id).where(SegmentMember.segment_id == node.segment_id))
        if isinstance(node, InterestCond):
            # the stored affinity decayed to the context's today (an index range on level)
            return self._in(
                affinity_at_least(
                    self.ws,
                    node.content_tag_id,
                    node.at_least,
                    self.ctx.today,
                    self.ctx.half_life_days,
                    by_contact=self.among is not None and not self.postgres,
                )
            )
        raise TypeError(f"unknown rule node {node!r}")

    # ----------------------------------------------------------------- profile fields

    def _attribute(self, node: AttributeCond) -> Clause:
        if node.field.startswith("attributes."):
            key = node.field.removeprefix("attributes.")
            element = Contact.attributes[key]
            column: Any = element.as_float() if node.kind == "number" else element.as_string()
        else:
            column = getattr(Contact, node.field)
        op, value = node.op, node.value
        if op == "is_set":
            return column.is_not(None)  # type: ignore[no-any-return]
        if op == "is_not_set":
            return column.is_(None)  # type: ignore[no-any-return]
        if node.field == "birthday" and op == "within_next_days":
            assert node.days is not None
            pairs = anniversary_days(self.ctx.today, node.days)
            return and_(Contact.birthday_mmdd.is_not(None), Contact.birthday_mmdd.in_([m * 100 + d for m, d in pairs]))
        if node.kind == "datetime":
            return and_(column.is_not(None), self._datetime_compare(column, op, value, node.days))
        if node.kind == "date":
            low, high, negate = _date_bounds(op, value, node.days, self.ctx.today)
            if node.field.startswith("attributes."):
                compare = _range(column, _iso(low), _iso(high))
            else:
                compare = _range(column, low, high)
            return and_(column.is_not(None), not_(compare) if negate else compare)
        return and_(column.is_not(None), self._compare(column, op, value))

    def _compare(self, column: Any, op: str, value: Any) -> Clause:
        if op == "eq":
            return column == value  # type: ignore[no-any-return]
        if op == "ne":
            return column != value  # type: ignore[no-any-return]
        if op == "in":
            return column.in_(value)  # type: ignore[no-any-return]
        if op == "not_in":
            return column.not_in(value)  # type: ignore[no-any-return]
        if op == "contains":
            position = func.strpos(column, value) if self.postgres else func.instr(column, value)
            return position > 0  # type: ignore[no-any-return]
        if op == "starts_with":
            return func.substr(column, 1, len(value)) == value  # type: ignore[no-any-return]
        if op == "gt":
            return column > value  # type: ignore[no-any-return]
        if op == "gte":
            return column >= value  # type: ignore[no-any-return]
        if op == "lt":
            return column < value  # type: ignore[no-any-return]
        if op == "lte":
            return column <= value  # type: ignore[no-any-return]
        if op == "between":
            return and_(column >= value[0], column <= value[1])
        raise ValueError(f"operator {op!r}")

    def _datetime_compare(self, column: Any, op: str, value: Any, days: int | None) -> Clause:
        low, high, negate = _date_bounds(op, value, days, self.ctx.today)
        compare = self._moment_range(column, low, high)
        return not_(compare) if negate else compare

    def _moment_range(self, column: Any, low: dt.date | None, high: dt.date | None) -> Clause:
        """Moments whose local date lies in [low, high]."""
        parts = []
        if low is not None:
            parts.append(column >= self.ctx.day_start(low))
        if high is not None:
            parts.append(column < self.ctx.day_start(high + dt.timedelta(days=1)))
        return and_(true(), *parts)

    # ----------------------------------------------------------------- tags

    def _tags(self, node: TagsCond) -> Clause:
        def holders(tag_ids: Collection[int]) -> Clause:
            return self._in(select(ContactTag.contact_id).where(ContactTag.tag_id.in_(list(tag_ids))))

        if node.match == "any":
            return holders(node.tag_ids)
        if node.match == "none":
            return not_(holders(node.tag_ids))
        return and_(*(holders([tag_id]) for tag_id in node.tag_ids))

    # ----------------------------------------------------------------- behaviour

    def _at_least(self, node: EventCountCond, k: int) -> Clause:
        """Contacts who did it at least k (>= 1) times."""
        if not node.where and node.window is None:
            return self._in(
                select(ContactEventStat.contact_id).where(
                    self._workspace(ContactEventStat.workspace_id) == self.ws,
                    ContactEventStat.event_type == node.type,
                    ContactEventStat.count >= k,
                )
            )
        if not node.where:
            assert node.window is not None
            low, high = self._window(node)
            days = select(ContactEventDay.contact_id).where(
                self._workspace(ContactEventDay.workspace_id) == self.ws,
                ContactEventDay.event_type == node.type,
                ContactEventDay.day >= low,
            )
            if high is not None:
                days = days.where(ContactEventDay.day <= high)
            if k > 1:
                days = days.group_by(ContactEventDay.contact_id).having(func.sum(ContactEventDay.count) >= k)
            return self._in(days)
        raw = self._raw_events(node.type, node.where)
        if node.window is not None:
            low, high = self._window(node)
            raw = raw.where(Event.occurred_at >= self.ctx.day_start(low))
            if high is not None:
                raw = raw.where(Event.occurred_at < self.ctx.day_start(high + dt.timedelta(days=1)))
        if k > 1:
            raw = raw.group_by(Event.contact_id).having(func.count() >= k)
        return self._in(raw)

    def _window(self, node: EventCountCond) -> tuple[dt.date, dt.date | None]:
        window = node.window
        assert window is not None
        if window.last_days is not None:
            # The last N days end today; events dated later (clock skew) still count as recent.
            return self.ctx.today - dt.timedelta(days=window.last_days - 1), None
        assert window.start is not None and window.end is not None
        return window.start, window.end

    def _event_count(self, node: EventCountCond) -> Clause:
        k = node.count
        if node.op == "gte":
            return true() if k == 0 else self._at_least(node, k)
        if node.op == "lte":
            return not_(self._at_least(node, k + 1))
        if k == 0:
            return not_(self._at_least(node, 1))
        return and_(self._at_least(node, k), not_(self._at_least(node, k + 1)))

    def _event_time(self, node: EventTimeCond) -> Clause:
        if node.date is not None:
            boundary = self.ctx.day_start(node.date)
        else:
            assert node.days_ago is not None
            boundary = self.ctx.day_start(self.ctx.today - dt.timedelta(days=node.days_ago))
        if not node.where:
            column: Any = ContactEventStat.first_at if node.which == "first" else ContactEventStat.last_at
            compare = column < boundary if node.op == "before" else column >= boundary
            return self._in(
                select(ContactEventStat.contact_id).where(
                    self._workspace(ContactEventStat.workspace_id) == self.ws,
                    ContactEventStat.event_type == node.type,
                    compare,
                )
            )
        moment = func.min(Event.occurred_at) if node.which == "first" else func.max(Event.occurred_at)
        having = moment < boundary if node.op == "before" else moment >= boundary
        return self._in(self._raw_events(node.type, node.where).group_by(Event.contact_id).having(having))

    def _raw_events(self, event_type: str, where: tuple[PropertyFilter, ...]) -> Select[Any]:
        q = select(Event.contact_id).where(self._workspace(Event.workspace_id) == self.ws, Event.type == event_type)
        for item in where:
            q = q.where(self._property(item))
        return q

    def _json_type(self, key: str) -> Any:
        if self.postgres:
            return func.coalesce(func.json_typeof(Event.properties.op("->")(key)), "")
        return func.coalesce(func.json_type(Event.properties, f"$.{key}"), "")

    def _property(self, item: PropertyFilter) -> Clause:
        """An event property compared the way evaluate._property_matches does: text with text, numbers with numbers."""
        kind = self._json_type(item.property)
        element = Event.properties[item.property]
        numeric = kind.in_(["number"] if self.postgres else ["integer", "real"])
        boolean = kind.in_(["boolean"] if self.postgres else ["true", "false"])
        text = kind == ("string" if self.postgres else "text")
        op, value = item.op, item.value
        if op == "is_set":
            return and_(kind != "", kind != "null")
        if op == "is_not_set":
            return or_(kind == "", kind == "null")

        def equal(one: Any) -> Clause:
            if isinstance(one, bool):
                spelled = "true" if one else "false"
                # SQLite names the JSON type true/false; PostgreSQL says boolean and spells the value
                return and_(boolean, element.as_string() == spelled) if self.postgres else kind == spelled
            if isinstance(one, float):
                return and_(numeric, element.as_float() == one)
            return and_(text, element.as_string() == one)

        if op in ("eq", "in"):
            values = [value] if op == "eq" else list(value)
            return or_(*(equal(v) for v in values))
        if op in ("ne", "not_in"):
            values = [value] if op == "ne" else list(value)
            return and_(kind != "", kind != "null", not_(or_(*(equal(v) for v in values))))
        if op == "contains":
            column = element.as_string()
            position = func.strpos(column, value) if self.postgres else func.instr(column, value)
            return and_(text, position > 0)
        return and_(numeric, self._compare(element.as_float(), op, value))

    # ----------------------------------------------------------------- computed properties

    def _stat(self, event_type: str, column: Any) -> Any:
        return (
            select(column)
            .where(ContactEventStat.contact_id == Contact.id, ContactEventStat.event_type == event_type)
            .correlate(Contact)
            .scalar_subquery()
        )

    def _computed(self, node: ComputedCond) -> Clause:
        name, op, value = node.name, node.op, node.value
        if name == "order_count":
            return self._number_compare(func.coalesce(self._stat(ORDER_EVENT, ContactEventStat.count), 0), op, value)
        if name == "total_paid":
            paid = func.coalesce(self._stat(ORDER_EVENT, ContactEventStat.amount_cents), 0)
            refunded = func.coalesce(self._stat(REFUND_EVENT, ContactEventStat.amount_cents), 0)
            return self._number_compare(paid - refunded, op, _cents(value))
        if name == "days_since_last_order":
            return self._days_since_last_order(op, value)
        column = SCORE_COLUMNS[name]
        scored = select(ContactScore.contact_id).where(self._workspace(ContactScore.workspace_id) == self.ws)
        if op == "is_not_set":
            return not_(self._in(scored.where(column.is_not(None))))
        if op == "is_set":
            return self._in(scored.where(column.is_not(None)))
        return self._in(scored.where(column.is_not(None), self._compare(column, op, value)))

    def _number_compare(self, expression: Any, op: str, value: Any) -> Clause:
        if op == "is_set":
            return true()
        if op == "is_not_set":
            return false()
        return self._compare(expression, op, value)

    def _days_since_last_order(self, op: str, value: Any) -> Clause:
        has_order = select(ContactEventStat.contact_id).where(
            self._workspace(ContactEventStat.workspace_id) == self.ws, ContactEventStat.event_type == ORDER_EVENT
        )
        if op == "is_set":
            return self._in(has_order)
        if op == "is_not_set":
            return not_(self._in(has_order))
        # days = today - local date of the last order, a whole number: turn the test into date ranges.
        intervals, negate = _day_intervals(op, value)
        today = self.ctx.today
        parts = []
        for low, high in intervals:
            # days in [low, high]  <=>  local date in [today - high, today - low]
            first = None if high is None else today - dt.timedelta(days=high)
            last = None if low is None else today - dt.timedelta(days=low)
            parts.append(self._moment_range(ContactEventStat.last_at, first, last))
        matched = or_(false(), *parts)
        return self._in(has_order.where(not_(matched) if negate else matched))


def _cents(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, tuple):
        return tuple(round(v * 100) for v in value)
    return round(value * 100)


def _iso(day: dt.date | None) -> str | None:
    return None if day is None else day.isoformat()


def _range(column: Any, low: Any, high: Any) -> Clause:
    parts = []
    if low is not None:
        parts.append(column >= low)
    if high is not None:
        parts.append(column <= high)
    return and_(true(), *parts)


def _date_bounds(op: str, value: Any, days: int | None, today: dt.date) -> tuple[dt.date | None, dt.date | None, bool]:
    """(low, high, negate): the inclusive local-date range a date test means, maybe negated."""
    one_day = dt.timedelta(days=1)
    if op in ("within_last_days", "within_next_days", "more_than_days_ago"):
        assert days is not None
        low, high = relative_range(op, days, today)
        return low, high, False
    if op == "eq":
        return value, value, False
    if op == "ne":
        return value, value, True
    if op == "gt":
        return value + one_day, None, False
    if op == "gte":
        return value, None, False
    if op == "lt":
        return None, value - one_day, False
    if op == "lte":
        return None, value, False
    if op == "between":
        return value[0], value[1], False
    raise ValueError(f"operator {op!r} on a date")


def _day_intervals(op: str, value: Any) -> tuple[list[tuple[int | None, int | None]], bool]:
    """Whole-day counts satisfying `days op value`, as inclusive intervals (None: open), maybe negated."""
    if op in ("eq", "ne", "in", "not_in"):
        values = [value] if op in ("eq", "ne") else list(value)
        whole = [int(v) for v in values if float(v).is_integer()]
        return [(v, v) for v in whole], op in ("ne", "not_in")
    if op == "gt":
        return [(math.floor(value) + 1, None)], False
    if op == "gte":
        return [(math.ceil(value), None)], False
    if op == "lt":
        return [(None, math.ceil(value) - 1)], False
    if op == "lte":
        return [(None, math.floor(value))], False
    if op == "between":
        return [(math.ceil(value[0]), math.floor(value[1]))], False
    raise ValueError(f"operator {op!r} on days_since_last_order")


def matching_contacts(
    session: Session, ctx: RuleContext, node: Node, *, among: Collection[int] | Select[Any] | None = None
) -> Select[Any]:
    """SELECT contact.id of the live (not merged away) contacts the rule matches, optionally only `among`."""
    dialect = session.get_bind().dialect.name
    only = IdFilter(dialect, among) if among is not None else None
    compiler = Compiler(ctx, dialect, among=only)
    q = select(Contact.id).where(
        Contact.workspace_id == ctx.workspace_id, Contact.merged_into_id.is_(None), compiler.clause(node)
    )
    if only is not None:
        q = q.where(only(Contact.id))
    return q


def count_matching(session: Session, ctx: RuleContext, node: Node) -> int:
    inner = matching_contacts(session, ctx, node).subquery()
    return int(session.scalar(select(func.count()).select_from(inner)) or 0)


__all__ = ["Compiler", "count_matching", "matching_contacts"]
