"""Intention kept as a decayed level per contact, so a full scoring run reads one row per contact.

The score is defined in `siyu.scoring.rules.Decay`: exact integer billionths of a point as of the
contact's last day with a scored event (the anchor), decayed to today by one multiplication.
`contact_intention` holds (anchor_day, total) per contact, over the daily counts of the scored types
from the workspace's floor day (`intention_basis`) on:

- whatever changes the daily counts (computed.apply_events, rebuild, forget) folds the contacts it
  touched again from their counts, in the same transaction (`refold`, `forget`, `reset`);
- a full run (`prepare_full_run`) first moves the floor up to the window's first day, subtracting from
  each contact the terms of the days that left the window: the very integers the fold added, since
  the anchor is the contact's last day, which leaves only when all its days have (then the row goes);
- different settings (points, half-life, window), a window starting before the floor (a clock set
  back) or no basis yet: the full run folds every contact again.

So the row read equals the plain evaluation over the window's daily counts (rules.intention), which
the incremental run and the reasons use; tests/scoring hold them together.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from sqlalchemy import String, bindparam, delete, func, insert, select, type_coerce, update
from sqlalchemy.orm import Session

from siyu.computed.models import ContactEventDay
from siyu.contacts.models import Contact
from siyu.events.service import workspace_timezone
from siyu.kit.sql import IdFilter, dialect_insert, driver_rows
from siyu.kit.time import utcnow
from siyu.scoring.config import IntentionConfig, parse_config
from siyu.scoring.models import ContactIntention, IntentionBasis, ScoringSettings
from siyu.scoring.rules import Decay, intention_fingerprint, local_day

FOLD_CONTACTS = 20_000  # contacts folded per read of their daily counts


def settings(session: Session, workspace_id: int) -> IntentionConfig:
    row = session.get(ScoringSettings, workspace_id)
    return parse_config(row.config if row is not None and row.config is not None else {}).intention


def _basis(session: Session, workspace_id: int, *, exclusive: bool) -> IntentionBasis | None:
    """The basis row, locked on PostgreSQL: shared by writers folding contacts, exclusive for a full run
    moving the floor, so neither sees the other half done."""
    return session.scalars(
        select(IntentionBasis)
        .where(IntentionBasis.workspace_id == workspace_id)
        .with_for_update(read=not exclusive)
        .execution_options(populate_existing=True)
    ).one_or_none()


def share_basis(session: Session, workspace_id: int) -> None:
    """Takes the basis row's shared lock (PostgreSQL) for this transaction, as the first of its locks."""
    _basis(session, workspace_id, exclusive=False)


def _set_basis(session: Session, workspace_id: int, floor: int, fingerprint: str) -> None:
    insert_ = dialect_insert(session)
    values = {"floor_day": dt.date.fromordinal(floor), "fingerprint": fingerprint, "updated_at": utcnow()}
    statement = insert_(IntentionBasis).values(workspace_id=workspace_id, **values)
    session.execute(statement.on_conflict_do_update(index_elements=[IntentionBasis.workspace_id], set_=values))


class _Ordinals:
    """Dates as the driver returns them (text on SQLite) -> date ordinals, cached."""

    def __init__(self) -> None:
        self._cache: dict[object, int] = {}

    def __call__(self, value: str | dt.date) -> int:
        found = self._cache.get(value)
        if found is None:
            day = dt.date.fromisoformat(value) if isinstance(value, str) else value
            found = self._cache[value] = day.toordinal()
        return found


# --- the writers of the daily counts ---------------------------------------------------------------


def refold(session: Session, workspace_id: int, changed: Iterable[tuple[int, str]]) -> None:
    """After the daily counts of these (contact, event type) pairs changed: folds the contacts with a
    scored type among them again. Nothing to keep before the first full run made a basis, or after the
    settings changed (the next full run folds everyone)."""
    pairs = list(changed)
    if not pairs:
        return
    config = settings(session, workspace_id)
    contacts = {contact_id for contact_id, event_type in pairs if event_type in config.points}
    if not contacts:
        return
    basis = _basis(session, workspace_id, exclusive=False)
    if basis is None or basis.fingerprint != intention_fingerprint(config):
        return
    _fold(session, workspace_id, Decay(config), basis.floor_day.toordinal(), ids=sorted(contacts))


def forget(session: Session, contact_ids: Collection[int]) -> None:
    if contact_ids:
        only = IdFilter(session.get_bind().dialect.name, contact_ids)
        session.execute(delete(ContactIntention).where(only(ContactIntention.contact_id)))


def reset(session: Session, workspace_id: int, now: dt.datetime | None = None) -> None:
    """Before the daily counts of the whole workspace are rebuilt: no rows, and a basis for today's
    window, so the rebuild's folds (`refold`) leave every contact's row in place."""
    config = settings(session, workspace_id)
    today = local_day(now or utcnow(), workspace_timezone(session, workspace_id)).toordinal()
    session.execute(delete(ContactIntention).where(ContactIntention.workspace_id == workspace_id))
    _set_basis(session, workspace_id, today - config.window_days + 1, intention_fingerprint(config))


# --- reading the kept levels ------------------------------------------------------------------------


def kept_levels(
    session: Session, workspace_id: int, config: IntentionConfig, today: int, contact_ids: Sequence[int]
) -> dict[int, tuple[int, int]] | None:
    """(anchor day ordinal, total) per contact with scored events, from the kept rows, when they hold
    exactly the window ending `today`: the floor is the window's first day and the settings are the
    ones folded with. None otherwise (a new day before the hourly full run moved the floor, changed
    settings, no full run yet): then the caller reads the daily counts. A contact without a row has
    no scored event in the window."""
    basis = _basis(session, workspace_id, exclusive=False)
    if (
        basis is None
        or basis.fingerprint != intention_fingerprint(config)
        or basis.floor_day.toordinal() != today - config.window_days + 1
    ):
        return None
    kept = ContactIntention
    dialect = session.get_bind().dialect.name
    ordinal = _Ordinals()
    rows = driver_rows(
        session,
        select(kept.contact_id, type_coerce(kept.anchor_day, String()), kept.total).where(
            kept.workspace_id == workspace_id, IdFilter(dialect, contact_ids)(kept.contact_id)
        ),
    )
    return {contact_id: (ordinal(anchor), int(total)) for contact_id, anchor, total in rows}


# --- the full run ----------------------------------------------------------------------------------


def prepare_full_run(session: Session, workspace_id: int, config: IntentionConfig, today: int) -> None:
    """Makes contact_intention hold exactly the daily counts of the window ending `today` (an ordinal)."""
    fingerprint = intention_fingerprint(config)
    first = today - config.window_days + 1
    basis = _basis(session, workspace_id, exclusive=True)
    floor = basis.floor_day.toordinal() if basis is not None else None
    decay = Decay(config)
    if (
        basis is None
        or floor is None
        or basis.fingerprint != fingerprint
        or first < floor
        or first - floor > config.window_days
    ):
        _refold_workspace(session, workspace_id, decay, first, fingerprint)
    elif first > floor:
        _drop_days(session, workspace_id, decay, floor, first)
        _set_basis(session, workspace_id, first, fingerprint)


def multipliers(
    session: Session, workspace_id: int, config: IntentionConfig, today: int
) -> list[tuple[dt.date, float]]:
    """(anchor day, multiplier) for every anchor a row can have in the window ending `today`."""
    latest = session.scalar(
        select(func.max(ContactIntention.anchor_day)).where(ContactIntention.workspace_id == workspace_id)
    )
    if latest is None:
        return []
    last = max(_Ordinals()(latest), today)
    decay = Decay(config)
    return [
        (dt.date.fromordinal(anchor), decay.multiplier(today - anchor))
        for anchor in range(today - config.window_days + 1, last + 1)
    ]


def _refold_workspace(session: Session, workspace_id: int, decay: Decay, floor: int, fingerprint: str) -> None:
    session.execute(delete(ContactIntention).where(ContactIntention.workspace_id == workspace_id))
    _set_basis(session, workspace_id, floor, fingerprint)
    ids = list(session.scalars(select(Contact.id).where(Contact.workspace_id == workspace_id).order_by(Contact.id)))
    for start in range(0, len(ids), FOLD_CONTACTS):
        _fold(session, workspace_id, decay, floor, id_range=(ids[start], ids[min(start + FOLD_CONTACTS, len(ids)) - 1]))


def _drop_days(session: Session, workspace_id: int, decay: Decay, floor: int, first: int) -> None:
    """Subtracts the daily counts of [floor, first) from each contact's total; rows whose anchor is
    before `first` (nothing left in the window) go."""
    day, kept = ContactEventDay, ContactIntention
    types = sorted(decay.points)
    ordinal = _Ordinals()
    minus: dict[int, int] = {}
    if types:
        rows = session.execute(
            select(
                day.contact_id,
                day.event_type,
                type_coerce(day.day, String()),
                day.count,
                type_coerce(kept.anchor_day, String()),
            )
            .join(kept, kept.contact_id == day.contact_id)
            .where(
                day.workspace_id == workspace_id,
                day.event_type.in_(types),
                day.day >= dt.date.fromordinal(floor),
                day.day < dt.date.fromordinal(first),
            )
        )
        for contact_id, event_type, on, count, anchor in rows:
            anchored = ordinal(anchor)
            if anchored >= first:
                minus[contact_id] = minus.get(contact_id, 0) + count * decay.factor(event_type, anchored - ordinal(on))
    if minus:
        table = ContactIntention.__table__
        session.execute(
            update(table)  # type: ignore[arg-type]
            .where(table.c.contact_id == bindparam("cid"))
            .values(total=table.c.total - bindparam("minus")),
            [{"cid": contact_id, "minus": value} for contact_id, value in minus.items()],
        )
    session.execute(
        delete(ContactIntention)
        .where(ContactIntention.workspace_id == workspace_id, ContactIntention.anchor_day < dt.date.fromordinal(first))
        .execution_options(synchronize_session=False)
    )


def _fold(
    session: Session,
    workspace_id: int,
    decay: Decay,
    floor: int,
    *,
    ids: Sequence[int] | None = None,
    id_range: tuple[int, int] | None = None,
) -> None:
    """Replaces the rows of these contacts (a list, or an id range) with their fold of the daily counts
    of the scored types from `floor` on."""
    day = ContactEventDay
    dialect = session.get_bind().dialect.name
    if ids is not None:
        for start in range(0, len(ids), FOLD_CONTACTS):
            chunk = ids[start : start + FOLD_CONTACTS]
            only = IdFilter(dialect, chunk)
            _replace(session, workspace_id, decay, floor, only(day.contact_id), only(ContactIntention.contact_id))
        return
    assert id_range is not None
    low, high = id_range
    _replace(
        session,
        workspace_id,
        decay,
        floor,
        day.contact_id.between(low, high),
        ContactIntention.contact_id.between(low, high) & (ContactIntention.workspace_id == workspace_id),
    )


def _replace(session: Session, workspace_id: int, decay: Decay, floor: int, counts_of: Any, rows_of: Any) -> None:
    day = ContactEventDay
    session.execute(delete(ContactIntention).where(rows_of).execution_options(synchronize_session=False))
    types = sorted(decay.points)
    if not types:
        return
    # "+ 0": SQLite walks each contact's primary key instead of the workspace's (type, day) index.
    workspace = day.workspace_id + 0 if session.get_bind().dialect.name == "sqlite" else day.workspace_id
    rows = driver_rows(  # ~25 rows a contact
        session,
        select(day.contact_id, day.event_type, type_coerce(day.day, String()), day.count)
        .where(workspace == workspace_id, day.event_type.in_(types), day.day >= dt.date.fromordinal(floor), counts_of)
        .order_by(day.contact_id, day.day.desc()),  # each contact's anchor (its last day) comes first
    )
    ordinal, factor = _Ordinals(), decay.factor
    folded: list[tuple[int, int, dt.date, int]] = []
    contact, anchor, total = None, 0, 0
    for contact_id, event_type, on, count in rows:
        if contact_id != contact:
            if contact is not None:
                folded.append(_kept_row(contact, workspace_id, anchor, total))
            contact, anchor, total = contact_id, ordinal(on), 0
        total += count * factor(event_type, anchor - ordinal(on))
    if contact is not None:
        folded.append(_kept_row(contact, workspace_id, anchor, total))
    if not folded:
        return
    if session.get_bind().dialect.name == "sqlite":  # the pipeline's hot path: no ORM bulk insert
        session.connection().exec_driver_sql(_SQLITE_INSERT, [(*row[:2], row[2].isoformat(), row[3]) for row in folded])
    else:
        session.execute(insert(ContactIntention), [dict(zip(_COLUMNS, row, strict=True)) for row in folded])


_COLUMNS = ("contact_id", "workspace_id", "anchor_day", "total")
_SQLITE_INSERT = f"INSERT INTO contact_intention ({', '.join(_COLUMNS)}) VALUES (?, ?, ?, ?)"


def _kept_row(contact_id: int, workspace_id: int, anchor: int, total: int) -> tuple[int, int, dt.date, int]:
    return (contact_id, workspace_id, dt.date.fromordinal(anchor), total)


__all__ = ["forget", "kept_levels", "multipliers", "prepare_full_run", "refold", "reset", "settings", "share_basis"]
