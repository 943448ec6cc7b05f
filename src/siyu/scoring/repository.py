"""Reads of the facts the built-in models need, and the bulk write of contact_score.

Set-based: one grouped query gives every contact's lifecycle and RFM facts, the stored intention levels
(siyu.scoring.intention) or, for a few contacts, their daily counts, one query per stage trigger the
contacts that met it. A full run reads each
once for the whole workspace; an incremental run filters each by a chunk of contact ids.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterator, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ColumnElement,
    Date,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    bindparam,
    case,
    cast,
    column,
    delete,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    type_coerce,
    update,
    values,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from siyu.computed.models import ContactEventDay, ContactEventStat
from siyu.contacts.models import Contact
from siyu.events.models import Event
from siyu.kit.sql import IdFilter, driver_rows, sqlite_datetime
from siyu.scoring.config import ScoringConfig, StageTrigger
from siyu.scoring.models import ContactIntention, ContactScore
from siyu.scoring.rules import INTENTION_SCALE, Facts, LocalDays, RfmCuts
from siyu.segments.models import Segment, SegmentMember

CHUNK = 5000  # contact ids per IN (...): well under SQLite's bound-variable limit


def chunks(ids: Sequence[int], size: int = CHUNK) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


def _in_workspace(column: Any, workspace_id: int, contact_ids: Collection[int] | None) -> ColumnElement[bool]:
    """With a list of contacts, `+ 0` keeps the planner off the (workspace, type, day) index: walking each
    contact's primary key is far cheaper than scanning the workspace's whole window."""
    return (column + 0 if contact_ids is not None else column) == workspace_id  # type: ignore[no-any-return]


def _only(session: Session, column: Any, contact_ids: Collection[int] | None) -> list[ColumnElement[bool]]:
    """`column IN (the contacts)` with the ids in one parameter (kit.sql.IdFilter): a statement with
    thousands of bound values costs more to compile than to run."""
    return [] if contact_ids is None else [IdFilter(session.get_bind().dialect.name, contact_ids)(column)]


def facts(
    session: Session, workspace_id: int, config: ScoringConfig, contact_ids: Collection[int] | None, days: LocalDays
) -> list[Facts]:
    """Every live (not merged away) contact's facts, or those of `contact_ids` that are live."""
    stat = ContactEventStat
    life, rfm = config.lifecycle, config.rfm
    engagement = list(life.engagement_events)
    advocate = list(life.advocate_events)
    active = sorted({*engagement, *advocate, rfm.order_event})
    is_order = stat.event_type == rfm.order_event
    kind = _event_type_unseekable(session)
    per_contact = (
        select(
            stat.contact_id.label("contact_id"),
            _raw(func.max(case((stat.event_type.in_(active), stat.last_at)))).label("last_active_at"),
            _raw(func.min(case((stat.event_type.in_(engagement), stat.first_at)))).label("first_engaged_at"),
            func.sum(case((stat.event_type.in_(advocate), stat.count), else_=0)).label("advocacy"),
            func.sum(case((is_order, stat.count), else_=0)).label("orders"),
            _raw(func.max(case((is_order, stat.last_at)))).label("last_order_at"),
            func.sum(case((is_order, stat.amount_cents), else_=0)).label("paid_cents"),
            func.sum(case((stat.event_type == rfm.refund_event, stat.amount_cents), else_=0)).label("refunded_cents"),
        )
        .where(
            _in_workspace(stat.workspace_id, workspace_id, contact_ids),
            kind.in_(sorted({*active, rfm.refund_event})),
            *_only(session, stat.contact_id, contact_ids),
        )
        .group_by(stat.contact_id)
        .subquery()
    )
    rows = driver_rows(  # values as the driver returns them: LocalDays and int() take both databases' kinds
        session,
        # Columns in Facts' order: id, added, last active, first engaged, advocacy, orders, last order, paid, refunded.
        select(Contact.id, _raw(Contact.created_at), *[c for c in per_contact.c if c.name != "contact_id"])
        .outerjoin(per_contact, per_contact.c.contact_id == Contact.id)
        .where(
            Contact.workspace_id == workspace_id,
            Contact.merged_into_id.is_(None),
            *_only(session, Contact.id, contact_ids),
        )
        .order_by(Contact.id),
    )
    return [
        Facts(
            row[0],
            days(row[1]),  # type: ignore[arg-type]
            days(row[2]),
            days(row[3]),
            int(row[4] or 0),
            int(row[5] or 0),
            days(row[6]),
            int(row[7] or 0),
            int(row[8] or 0),
        )
        for row in rows
    ]


def _event_type_unseekable(session: Session) -> Any:
    """contact_event_stat.event_type for a filter on SQLite: `|| ''` keeps it from seeking each type of a
    contact in turn; one seek per contact, its few rows filtered (~20% less for a step's 20,000)."""
    stat = ContactEventStat
    return stat.event_type + "" if session.get_bind().dialect.name == "sqlite" else stat.event_type


def _raw(expression: Any) -> Any:
    """A timestamp as the driver returns it (text on SQLite): LocalDays converts it, far cheaper than
    SQLAlchemy making an aware datetime of each of a million values."""
    return type_coerce(expression, String())


def intention_days(
    session: Session, workspace_id: int, config: ScoringConfig, today: int, contact_ids: Collection[int] | None
) -> dict[int, list[tuple[str, int, int]]]:
    """(event type, age in local days, count) per contact for the scored event types within the window."""
    day = ContactEventDay
    types = [r.event_type for r in config.intention.rules]
    out: dict[int, list[tuple[str, int, int]]] = {}
    if not types:
        return out
    since = dt.date.fromordinal(today - config.intention.window_days)
    rows = driver_rows(
        session,
        select(day.contact_id, day.event_type, type_coerce(day.day, String()), day.count).where(
            _in_workspace(day.workspace_id, workspace_id, contact_ids),
            day.event_type.in_(types),
            day.day > since,
            *_only(session, day.contact_id, contact_ids),
        ),
    )
    ages: dict[object, int] = {}
    for contact_id, event_type, on, count in rows:
        age = ages.get(on)
        if age is None:
            ordinal = (dt.date.fromisoformat(on) if isinstance(on, str) else on).toordinal()
            age = ages[on] = today - ordinal
        found = out.get(contact_id)
        if found is None:
            out[contact_id] = [(event_type, age, count)]
        else:
            found.append((event_type, age, count))
    return out


def trigger_hits(
    session: Session, workspace_id: int, trigger: StageTrigger, contact_ids: Collection[int] | None, days: LocalDays
) -> dict[int, int | None]:
    """Contacts that met one stage trigger, with the local day they first did (a segment: entered)."""
    if trigger.segment_id is not None:
        member = SegmentMember
        query = select(member.contact_id, _raw(member.entered_at)).where(
            member.workspace_id == workspace_id,
            member.segment_id == trigger.segment_id,
            *_only(session, member.contact_id, contact_ids),
        )
        return {contact_id: days(since) for contact_id, since in session.execute(query)}
    if trigger.property is None:
        stat = ContactEventStat
        query = select(stat.contact_id, _raw(stat.first_at)).where(
            stat.workspace_id == workspace_id,
            stat.event_type == trigger.event_type,
            *_only(session, stat.contact_id, contact_ids),
        )
        return {contact_id: days(since) for contact_id, since in session.execute(query)}
    # A property condition is not in the computed properties: read the raw events of that type.
    earliest: dict[int, int | None] = {}
    rows = session.execute(
        select(Event.contact_id, Event.occurred_at, Event.properties).where(
            Event.workspace_id == workspace_id,
            Event.type == trigger.event_type,
            *_only(session, Event.contact_id, contact_ids),
        )
    )
    for contact_id, occurred_at, properties in rows:
        value = properties.get(trigger.property, _MISSING) if isinstance(properties, dict) else _MISSING
        if not _json_equal(value, trigger.equals):
            continue
        day = days(occurred_at)
        known = earliest.get(contact_id)
        if known is None or (day is not None and day < known):
            earliest[contact_id] = day
    return earliest


_MISSING = object()


def _json_equal(value: object, expected: object) -> bool:
    # In JSON true is not 1, though in Python True == 1.
    return isinstance(value, bool) == isinstance(expected, bool) and value == expected


def segment_names(session: Session, workspace_id: int, segment_ids: Collection[int]) -> dict[int, str]:
    if not segment_ids:
        return {}
    rows = session.execute(
        select(Segment.id, Segment.name).where(Segment.workspace_id == workspace_id, Segment.id.in_(segment_ids))
    )
    return {segment_id: name for segment_id, name in rows}


# --- writing ------------------------------------------------------------------------------------

# A row as the engine builds it; computed_at is added on insert.
SCORE_COLUMNS = (
    "workspace_id",
    "contact_id",
    "lifecycle_stage",
    "r_score",
    "f_score",
    "m_score",
    "value_tier",
    "intention_score",
    "intention_level",
    "transaction_stage",
    "reasons",
)
_INSERTED = (*SCORE_COLUMNS, "computed_at")
# What a full run compares to leave a row alone when nothing changed.
_VALUES = SCORE_COLUMNS[2:-1]
_SQLITE_INSERT = f"INSERT INTO contact_score ({', '.join(_INSERTED)}) VALUES ({', '.join('?' for _ in _INSERTED)})"


def write_scores(
    session: Session,
    workspace_id: int,
    contact_ids: Collection[int],
    rows: list[tuple[Any, ...]],
    computed_at: dt.datetime,
) -> int:
    """Makes the score rows of `contact_ids` these rows (SCORE_COLUMNS, reasons still a dict; a contact
    without one loses its row). As a full run does, a row whose values did not change is left alone, so
    a touched contact costs a read, not a rewrite of the row and its indexes. Returns rows written."""
    score: Table = ContactScore.__table__  # type: ignore[assignment]
    stored = {
        row[0]: tuple(row[1:])
        for row in driver_rows(
            session,
            select(score.c.contact_id, *[score.c[name] for name in _VALUES]).where(
                _in_workspace(score.c.workspace_id, workspace_id, contact_ids),
                *_only(session, score.c.contact_id, contact_ids),
            ),
        )
    }
    fresh: list[tuple[Any, ...]] = []
    # Changed rows by the columns that changed: an UPDATE rewrites the index entries of every column it
    # sets, so setting only those leaves the other indexes' pages (lifecycle, tier) alone.
    changed: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        before = stored.pop(row[1], None)
        values = row[2:-1]
        if before is None:
            fresh.append(row)
        elif before != values:
            moved = {name: new for name, old, new in zip(_VALUES, before, values, strict=True) if old != new}
            changed.setdefault(tuple(moved), []).append({"cid": row[1], **moved, "computed_at": computed_at})
    if stored:  # merged away or deleted since
        session.execute(delete(score).where(score.c.contact_id.in_(sorted(stored))))
    for names, params in changed.items():
        session.execute(
            update(score)
            .where(score.c.contact_id == bindparam("cid"))
            .values({name: bindparam(name) for name in (*names, "computed_at")}),
            params,
        )
    insert_scores(session, fresh, computed_at)
    return len(fresh) + sum(len(params) for params in changed.values())


def insert_scores(session: Session, rows: list[tuple[Any, ...]], computed_at: dt.datetime) -> None:
    """New rows: SCORE_COLUMNS, reasons still a dict."""
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        # A million rows: one DB-API executemany, values written as SQLAlchemy's SQLite JSON and DATETIME
        # types write them (tests/scoring check the rows read back through the ORM).
        stamp = sqlite_datetime(computed_at)
        connection.exec_driver_sql(_SQLITE_INSERT, [(*row[:-1], orjson.dumps(row[-1]).decode(), stamp) for row in rows])
        return
    connection.execute(
        insert(ContactScore),
        [{**dict(zip(SCORE_COLUMNS, row, strict=True)), "computed_at": computed_at} for row in rows],
    )


# --- the set-based full run ---------------------------------------------------------------------


def customer_values(session: Session, facts: Any) -> list[tuple[int, Any, int]]:
    """(paid orders, last paid order as the driver returns it, net paid cents) of every live customer in
    `facts` (full_facts): the narrow read the quintile cut points are taken from."""
    c = facts.c
    query = select(c.orders, _raw(c.last_order_at), c.net_cents).where(c.orders > 0, c.last_order_at.is_not(None))
    return [(int(n), last, int(net)) for n, last, net in driver_rows(session, query)]


_SQLITE_FACTS = "scoring_facts"
_SQLITE_MULTIPLIERS = "scoring_multipliers"


def full_facts(session: Session, workspace_id: int, config: ScoringConfig, *, materialize: bool = True) -> Any:
    """Every live contact's lifecycle and RFM facts from one grouped read of the computed properties:
    contact_id, added_at, last_active_at, first_engaged_at, advocacy, orders, last_order_at, net_cents.

    With `materialize` on SQLite a temp table keyed by contact (read twice: cut points, then scores;
    drop_full_run_tables drops it), else a subquery."""
    stat, life, rfm = ContactEventStat, config.lifecycle, config.rfm
    engagement, advocate = list(life.engagement_events), list(life.advocate_events)
    active = sorted({*engagement, *advocate, rfm.order_event})
    is_order = stat.event_type == rfm.order_event
    # Each contact joined to its own rows, grouped by contact: the database walks the contacts in id order
    # and each one's rows beside it (clustered on SQLite), with no sort of millions of rows by contact.
    kind = _event_type_unseekable(session)
    query = (
        select(
            Contact.id.label("contact_id"),
            Contact.created_at.label("added_at"),
            func.max(case((stat.event_type.in_(active), stat.last_at))).label("last_active_at"),
            func.min(case((stat.event_type.in_(engagement), stat.first_at))).label("first_engaged_at"),
            func.sum(case((stat.event_type.in_(advocate), stat.count), else_=0)).label("advocacy"),
            func.sum(case((is_order, stat.count), else_=0)).label("orders"),
            func.max(case((is_order, stat.last_at))).label("last_order_at"),
            func.sum(
                case(
                    (is_order, stat.amount_cents),
                    (stat.event_type == rfm.refund_event, -stat.amount_cents),
                    else_=0,
                )
            ).label("net_cents"),
        )
        .select_from(Contact)
        .outerjoin(stat, and_(stat.contact_id == Contact.id, kind.in_(sorted({*active, rfm.refund_event}))))
        .where(Contact.workspace_id == workspace_id, Contact.merged_into_id.is_(None))
        .group_by(Contact.id)
    )
    if not materialize or session.get_bind().dialect.name != "sqlite":
        return query.subquery("facts")
    connection = session.connection()
    connection.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{_SQLITE_FACTS}")
    connection.exec_driver_sql(
        f"CREATE TEMP TABLE {_SQLITE_FACTS} (contact_id INTEGER PRIMARY KEY, added_at DATETIME, "
        "last_active_at DATETIME, first_engaged_at DATETIME, advocacy INTEGER, orders INTEGER, "
        "last_order_at DATETIME, net_cents INTEGER)"
    )
    moment = ContactEventStat.__table__.c.last_at.type
    table = Table(
        _SQLITE_FACTS,
        MetaData(),
        Column("contact_id", BigInteger),
        Column("added_at", moment),
        Column("last_active_at", moment),
        Column("first_engaged_at", moment),
        Column("advocacy", BigInteger),
        Column("orders", BigInteger),
        Column("last_order_at", moment),
        Column("net_cents", BigInteger),
    )
    connection.execute(insert(table).from_select([c.name for c in table.c], query))
    return table


def _count_above(value: Any, bounds: Sequence[Any]) -> Any:
    """How many of `bounds` the value is above, as an SQL integer expression."""
    terms = [case((value > bound, 1), else_=0) for bound in bounds]
    out: Any = literal(0)
    for term in terms:
        out = out + term
    return out


def _half_even(value: Any, dialect: str) -> Any:
    """A double rounded to an integer, halves to even, as Python's round() does: the truncation, and
    the exact remainder (a double minus its truncation loses nothing) decides."""
    whole = cast(value, Integer) if dialect == "sqlite" else cast(func.trunc(value), BigInteger)  # toward zero
    rest = value - whole
    odd = whole % 2 != 0
    return case(
        (rest > 0.5, whole + 1),
        (rest < -0.5, whole - 1),
        (and_(rest == 0.5, odd), whole + 1),
        (and_(rest == -0.5, odd), whole - 1),
        else_=whole,
    )


def insert_all_scores(
    session: Session,
    workspace_id: int,
    config: ScoringConfig,
    facts: Any,
    cuts: RfmCuts,
    bounds: DayBounds,
    multipliers: list[tuple[dt.date, float]],
    today: int,
    computed_at: dt.datetime,
) -> int:
    """Every live contact's row in one INSERT ... SELECT (an upsert; merged contacts' rows go): RFM,
    tier, lifecycle and intention as CASE expressions over one grouped read of the computed properties,
    the cut points and day boundaries as parameters; intention from each contact's stored level
    (contact_intention, which intention.prepare_full_run brought to today's window) decayed by the
    multiplier of its anchor day. Reasons are not stored ({}): service.reasons_for explains a contact
    when asked."""
    dialect = session.get_bind().dialect.name
    life = config.lifecycle
    a = facts.c
    decayed, scored_from = _decayed_levels(session, workspace_id, multipliers, facts)
    orders = a.orders
    customer = and_(orders > 0, a.last_order_at.is_not(None))
    r = 5 - _count_above_time(a.last_order_at, [bounds.start(today - c) for c in cuts.recency_days])
    f = 1 + _count_above(orders, list(cuts.frequency))
    m = 1 + _count_above(a.net_cents, list(cuts.monetary_cents))
    since = func.coalesce(a.last_active_at, a.added_at)
    base = case(
        (and_(customer, a.advocacy >= life.advocate_min_events), "advocate"),
        (and_(customer, orders >= life.repeat_min_orders), "repeat_customer"),
        (customer, "customer"),
        (a.first_engaged_at.is_not(None), "activated"),
        else_="acquired",
    )
    stage = case(
        (since < bounds.start(today - life.churned_after_days + 1), "churned"),
        (since < bounds.start(today - life.at_risk_after_days + 1), "at_risk"),
        else_=base,
    )
    inner = (
        select(
            a.contact_id,
            stage.label("lifecycle_stage"),
            case((customer, r)).label("r_score"),
            case((customer, f)).label("f_score"),
            case((customer, m)).label("m_score"),
            case((customer, None), else_=_half_even(func.coalesce(decayed, 0.0), dialect)).label("cents"),
        )
        .select_from(scored_from)
        .subquery("scored")
    )
    s = inner.c
    tier = case(
        *[
            (
                and_(
                    s.r_score.between(rule.r_min, rule.r_max),
                    s.f_score.between(rule.f_min, rule.f_max),
                    s.m_score.between(rule.m_min, rule.m_max),
                ),
                rule.tier,
            )
            for rule in config.value_tiers
        ],
        else_=None,
    )
    score = cast(s.cents, Float) / literal(100.0, Float)
    level = case(
        (s.cents.is_(None), None),
        (score >= config.intention.strong_threshold, "strong"),
        (score >= config.intention.weak_threshold, "weak"),
        else_="none",
    )
    empty = literal_column("'{}'") if dialect == "sqlite" else cast(literal_column("'{}'"), JSON)
    columns = [*SCORE_COLUMNS, "computed_at"]
    rows = select(
        literal(workspace_id, BigInteger),
        s.contact_id,
        s.lifecycle_stage,
        s.r_score,
        s.f_score,
        s.m_score,
        tier,
        score,
        level,
        literal(None, String),
        empty,
        literal(computed_at, ContactScore.__table__.c.computed_at.type),
    )
    # An upsert that writes only the rows whose values changed (their computed_at moves with them):
    # within a local day an hourly run changes almost nothing, and deleting and inserting a million
    # rows with their index entries is most of the cost of a run.
    upsert = (sqlite_insert if dialect == "sqlite" else pg_insert)(ContactScore)
    statement = upsert.from_select(columns, rows.where(s.contact_id.is_not(None)))  # WHERE: SQLite's upsert
    target, excluded = ContactScore.__table__.c, statement.excluded
    changed = [target[name].is_distinct_from(excluded[name]) for name in _VALUES]
    changed.append(cast(target.reasons, Text).is_distinct_from(cast(excluded.reasons, Text)))
    statement = statement.on_conflict_do_update(
        index_elements=[ContactScore.contact_id],
        set_={name: excluded[name] for name in columns if name != "contact_id"},
        where=or_(*changed),
    )
    session.execute(statement)
    drop_full_run_tables(session)
    # Contacts merged away since the last run lose their row (deleted contacts lost it by cascade).
    merged = select(Contact.id).where(Contact.workspace_id == workspace_id, Contact.merged_into_id.is_not(None))
    session.execute(
        delete(ContactScore).where(ContactScore.contact_id.in_(merged)).execution_options(synchronize_session=False)
    )
    written = session.scalar(select(func.count()).where(ContactScore.workspace_id == workspace_id))
    return int(written or 0)


def _count_above_time(value: Any, starts: Sequence[dt.datetime]) -> Any:
    """How many of the UTC instants `value` is before: a day before local day D is an instant before D's start."""
    out: Any = literal(0)
    for start in starts:
        out = out + case((value < literal(start, ContactEventStat.__table__.c.last_at.type), 1), else_=0)
    return out


def _decayed_levels(
    session: Session, workspace_id: int, multipliers: list[tuple[dt.date, float]], facts: Any
) -> tuple[Any, Any]:
    """(decayed, facts joined to it): each contact's stored total × the multiplier of its anchor day ÷ 10^7,
    in the order and IEEE double arithmetic of rules.decayed_cents (the multipliers are bound parameters,
    exact doubles); NULL without a kept level. Each contact's kept row and its multiplier are looked up by
    key as the facts are walked in contact order (on SQLite the multipliers in a keyed temp table: it
    would scan a VALUES list for every contact)."""
    if not multipliers:
        return literal(None, Float), facts
    kept = ContactIntention
    factors: Any
    if session.get_bind().dialect.name == "sqlite":
        connection = session.connection()
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{_SQLITE_MULTIPLIERS}")
        connection.exec_driver_sql(
            f"CREATE TEMP TABLE {_SQLITE_MULTIPLIERS} (anchor_day DATE PRIMARY KEY, multiplier REAL) WITHOUT ROWID"
        )
        connection.exec_driver_sql(
            f"INSERT INTO {_SQLITE_MULTIPLIERS} VALUES (?, ?)", [(day.isoformat(), m) for day, m in multipliers]
        )
        factors = Table(_SQLITE_MULTIPLIERS, MetaData(), Column("anchor_day", Date), Column("multiplier", Float)).alias(
            "m"
        )
    else:
        factors = values(column("anchor_day", Date), column("multiplier", Float), name="m").data(multipliers).cte("m")
    decayed = cast(kept.total, Float) * factors.c.multiplier / literal(float(INTENTION_SCALE // 100), Float)
    joined = facts.outerjoin(
        kept, and_(kept.contact_id == facts.c.contact_id, kept.workspace_id == workspace_id)
    ).outerjoin(factors, factors.c.anchor_day == kept.anchor_day)
    return decayed, joined


def drop_full_run_tables(session: Session) -> None:
    if session.get_bind().dialect.name == "sqlite":
        session.connection().exec_driver_sql(f"DROP TABLE IF EXISTS temp.{_SQLITE_FACTS}")
        session.connection().exec_driver_sql(f"DROP TABLE IF EXISTS temp.{_SQLITE_MULTIPLIERS}")


def set_transaction_stages(session: Session, workspace_id: int, stages: dict[int, str]) -> None:
    if not stages:
        return
    table = ContactScore.__table__
    session.execute(
        update(table)  # type: ignore[arg-type]
        .where(table.c.workspace_id == workspace_id, table.c.contact_id == bindparam("cid"))
        .values(transaction_stage=bindparam("stage")),
        [{"cid": contact_id, "stage": stage} for contact_id, stage in stages.items()],
    )


class DayBounds:
    """The UTC instant each local day starts, in a time zone (cached)."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self._cache: dict[int, dt.datetime] = {}

    def start(self, ordinal: int) -> dt.datetime:
        found = self._cache.get(ordinal)
        if found is None:
            local = dt.datetime.combine(dt.date.fromordinal(ordinal), dt.time(0), tzinfo=self.tz)
            found = self._cache[ordinal] = local.astimezone(dt.UTC)
        return found
