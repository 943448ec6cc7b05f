"""The built-in models' engine: settings, and recomputing contact_score with its reasons.

`recompute(session, workspace_id, contact_ids=None, now=...)` scores the whole workspace and refreshes
the RFM cut points; with contact ids it scores only those (the pipeline passes the contacts an event
batch touched) against the cut points the last full run stored, so scores stay comparable between
runs. Either way a contact's row is replaced as a whole. Callers commit (commit at the edge).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.contacts.models import Contact
from siyu.db import sqlite_cache
from siyu.errors import ValidationFailed
from siyu.events.service import workspace_timezone
from siyu.kit.time import ensure_utc, utcnow
from siyu.scoring import intention, repository, rules
from siyu.scoring.config import ScoringConfig, parse_config
from siyu.scoring.models import ContactScore, ScoringSettings
from siyu.scoring.rules import Facts, LocalDays, RfmCuts, StageHit
from siyu.segments.models import Segment

RECOMPUTE_JOB = "scoring.recompute"
# A full run reads and upserts a row per contact all over tables of millions of rows: a bigger SQLite
# page cache for its connection while it runs keeps those pages in memory.
FULL_RUN_CACHE_MB = 1024
REFRESH_CRON = "scoring.refresh"


# --- settings -----------------------------------------------------------------------------------


def load_config(session: Session, workspace_id: int) -> ScoringConfig:
    row = session.get(ScoringSettings, workspace_id)
    return parse_config(row.config if row is not None and row.config is not None else {})


def settings_row(session: Session, workspace_id: int) -> ScoringSettings | None:
    return session.get(ScoringSettings, workspace_id)


def save_config(session: Session, workspace_id: int, config: ScoringConfig) -> ScoringSettings:
    """Stores the settings after checking what the schema cannot (segments belong to this workspace).

    Changing which events count as orders or refunds drops the stored RFM cut points: the next run
    computes them again. The caller enqueues a recompute (RECOMPUTE_JOB) so scores follow the settings.
    """
    _check_segments(session, workspace_id, config)
    row = session.get(ScoringSettings, workspace_id, with_for_update=True)
    stored = config.model_dump(mode="json")
    if row is None:
        row = ScoringSettings(workspace_id=workspace_id, config=stored, updated_at=utcnow())
        session.add(row)
    else:
        before = parse_config(row.config or {})
        if (before.rfm.order_event, before.rfm.refund_event) != (config.rfm.order_event, config.rfm.refund_event):
            row.rfm_cuts, row.rfm_cuts_at = None, None
        row.config = stored
        row.updated_at = utcnow()
    session.flush()
    return row


def _check_segments(session: Session, workspace_id: int, config: ScoringConfig) -> None:
    wanted = config.segment_ids()
    if not wanted:
        return
    found = set(session.scalars(select(Segment.id).where(Segment.workspace_id == workspace_id, Segment.id.in_(wanted))))
    problems = [
        {"field": f"transaction_stages[{i}].moved_by[{j}].segment_id", "reason": f"segment {t.segment_id} not found"}
        for i, stage in enumerate(config.transaction_stages)
        for j, t in enumerate(stage.moved_by)
        if t.segment_id is not None and t.segment_id not in found
    ]
    if problems:
        first = problems[0]
        raise ValidationFailed(
            f"scoring settings refused: {first['field']}: {first['reason']} in this workspace", details=problems
        )


# --- recompute ---------------------------------------------------------------------------------


def recompute(session: Session, workspace_id: int, *, contact_ids: Collection[int] | None, now: dt.datetime) -> int:
    """Scores the whole workspace (contact_ids None; also refreshes the RFM cut points) or only the
    given contacts. Ids merged away lose their row and their survivor is scored. Returns rows written.

    A full run is set-based: the cut points from one narrow read of the customers, then one
    INSERT ... SELECT (repository.insert_all_scores) that reads each contact's stored intention level
    (siyu.scoring.intention), first brought to today's window. An incremental run scores its contacts in Python
    with the rules the explanation uses; tests/scoring hold the two to the same rows. Neither stores
    the reasons (`reasons` is {}): reasons_for explains a contact when the API or the console asks.
    """
    run = _Run(session, workspace_id, now)
    if contact_ids is None:
        with sqlite_cache(session, FULL_RUN_CACHE_MB):
            return _recompute_all(run)

    ids = _with_survivors(session, workspace_id, contact_ids)
    cuts: RfmCuts | None = stored_cuts(session, workspace_id)
    written = 0
    for chunk in repository.chunks(sorted(ids)):
        facts = repository.facts(session, workspace_id, run.config, chunk, run.days)
        if cuts is None and any(f.orders for f in facts):
            # No full run yet: the cut points come from the whole population once, and are kept.
            cuts = _store_cuts(run, _population_cuts(run))
        rows = run.score(cuts, facts, chunk, explain=False)
        written += repository.write_scores(session, workspace_id, chunk, rows, run.now)
    return written


def _recompute_all(run: _Run) -> int:
    session, workspace_id = run.session, run.workspace_id
    intention.prepare_full_run(session, workspace_id, run.config.intention, run.today)
    facts = repository.full_facts(session, workspace_id, run.config)
    full_cuts = _store_cuts(run, _population_cuts(run, facts))
    written = repository.insert_all_scores(
        session,
        workspace_id,
        run.config,
        facts,
        full_cuts.with_fixed(run.config.rfm),
        run.bounds,
        intention.multipliers(session, workspace_id, run.config.intention, run.today),
        run.today,
        run.now,
    )
    if run.config.transaction_stages:
        stages = {contact_id: key for contact_id, (key, _) in run.stages(None).items() if key is not None}
        repository.set_transaction_stages(session, workspace_id, stages)
    return written


def evaluate(session: Session, workspace_id: int, contact_id: int, *, now: dt.datetime) -> dict[str, Any] | None:
    """One contact's scores as recompute would write them, with the reasons, without writing."""
    run = _Run(session, workspace_id, now)
    facts = repository.facts(session, workspace_id, run.config, [contact_id], run.days)
    cuts = stored_cuts(session, workspace_id)
    if cuts is None and any(f.orders for f in facts):
        cuts = _population_cuts(run)
    rows = run.score(cuts, facts, [contact_id], explain=True)
    if not rows:
        return None
    return {**dict(zip(repository.SCORE_COLUMNS, rows[0], strict=True)), "computed_at": run.now}


def reasons_for(
    session: Session, workspace_id: int, contact_id: int, now: dt.datetime | None = None
) -> dict[str, list[str]]:
    """Why the models say what they say of one contact, per model, in plain words:
    {"lifecycle": [...], "rfm": [...], "value_tier": [...], "intention": [...], "transaction_stage": [...]}.

    Built on read by evaluate() (runs store only the numbers). `now` None: as of the contact's stored
    row (its computed_at), so the reasons explain the stored scores; without a row, as of now.
    {} for a contact that is not a live contact of the workspace.
    """
    if now is None:
        row = session.get(ContactScore, contact_id)
        stored = row is not None and row.workspace_id == workspace_id
        now = row.computed_at if stored and row is not None else utcnow()
    found = evaluate(session, workspace_id, contact_id, now=now)
    return dict(found["reasons"]) if found is not None else {}


def stored_cuts(session: Session, workspace_id: int) -> RfmCuts | None:
    row = session.get(ScoringSettings, workspace_id)
    cuts = RfmCuts.from_json(row.rfm_cuts) if row is not None else None
    return cuts if cuts is not None and cuts.customers else None


def scores(session: Session, contact_id: int) -> ContactScore | None:
    return session.get(ContactScore, contact_id)


def _with_survivors(session: Session, workspace_id: int, contact_ids: Collection[int]) -> set[int]:
    ids = set(contact_ids)
    for chunk in repository.chunks(sorted(ids)):
        ids.update(
            session.scalars(
                select(Contact.merged_into_id).where(
                    Contact.workspace_id == workspace_id, Contact.id.in_(chunk), Contact.merged_into_id.is_not(None)
                )
            )
        )
    return ids


def _cuts_of(customers: list[Facts], today: int) -> RfmCuts:
    """The quintile cut points of these customers (the plain definition; _population_cuts reads them
    from the database the same way)."""
    return RfmCuts(
        recency_days=rules.quintile_cuts([today - f.last_order_day for f in customers if f.last_order_day]),
        frequency=rules.quintile_cuts([f.orders for f in customers]),
        monetary_cents=rules.quintile_cuts([f.net_cents for f in customers]),
        customers=len(customers),
    )


def _population_cuts(run: _Run, facts: Any = None) -> RfmCuts:
    """Quintile cut points of every live customer from one narrow read. Recency sorts the last-order
    timestamps newest first (local days follow UTC time), so only the four picked ones are converted."""
    if facts is None:
        facts = repository.full_facts(run.session, run.workspace_id, run.config, materialize=False)
    customers = repository.customer_values(run.session, facts)
    ranks = rules.quintile_ranks(len(customers))
    orders = sorted(c[0] for c in customers)
    nets = sorted(c[2] for c in customers)
    latest = sorted((c[1] for c in customers), reverse=True)
    return RfmCuts(
        recency_days=tuple(run.today - run.days(latest[k]) for k in ranks),  # type: ignore[operator]
        frequency=tuple(orders[k] for k in ranks),
        monetary_cents=tuple(nets[k] for k in ranks),
        customers=len(customers),
    )


def _store_cuts(run: _Run, cuts: RfmCuts) -> RfmCuts:
    row = run.session.get(ScoringSettings, run.workspace_id)
    if row is None:
        row = ScoringSettings(workspace_id=run.workspace_id, config=None, updated_at=run.now)
        run.session.add(row)
    row.rfm_cuts, row.rfm_cuts_at = cuts.to_json(), run.now
    run.session.flush()
    return cuts


class _Run:
    """What one run needs besides the facts: the settings, today's local day, the intention decay."""

    def __init__(self, session: Session, workspace_id: int, now: dt.datetime) -> None:
        self.session, self.workspace_id, self.now = session, workspace_id, ensure_utc(now)
        tz: ZoneInfo = workspace_timezone(session, workspace_id)
        self.config = load_config(session, workspace_id)
        self.days = LocalDays(tz)
        self.bounds = repository.DayBounds(tz)
        self.today = rules.local_day(self.now, tz).toordinal()
        self.decay = rules.Decay(self.config.intention)

    def stages(self, contact_ids: Collection[int] | None) -> dict[int, tuple[str | None, list[str]]]:
        """Each contact that met a trigger: its furthest transaction stage and the reason."""
        session, workspace_id, config = self.session, self.workspace_id, self.config
        names = repository.segment_names(session, workspace_id, config.segment_ids())
        hits: dict[int, list[StageHit]] = {}
        for index, stage in enumerate(config.transaction_stages):
            for trigger in stage.moved_by:
                described = trigger.describe(names)
                met = repository.trigger_hits(session, workspace_id, trigger, contact_ids, self.days)
                for contact_id, since in met.items():
                    hits.setdefault(contact_id, []).append(StageHit(index, described, since))
        return {contact_id: rules.transaction_stage(found, config, names) for contact_id, found in hits.items()}

    def score(
        self, cuts: RfmCuts | None, facts: list[Facts], contact_ids: Collection[int] | None, *, explain: bool
    ) -> list[tuple[Any, ...]]:
        """One contact_score row per contact (repository.SCORE_COLUMNS order); reasons as a dict when
        `explain`, else {} (what runs store)."""
        session, workspace_id, config, today = self.session, self.workspace_id, self.config, self.today
        effective = cuts.with_fixed(config.rfm) if cuts is not None else None
        # Runs store no reasons, so the kept level serves (one row per contact) when it holds today's
        # window; the reasons need the daily counts.
        unbought = [f.contact_id for f in facts if not (f.orders and effective is not None)]
        kept = None if explain else intention.kept_levels(session, workspace_id, config.intention, today, unbought)
        days = {} if kept is not None else repository.intention_days(session, workspace_id, config, today, contact_ids)
        stages = self.stages(contact_ids) if config.transaction_stages else {}
        no_stage: tuple[str | None, list[str]] | None = None
        if config.transaction_stages:
            names = repository.segment_names(session, workspace_id, config.segment_ids())
            no_stage = rules.transaction_stage([], config, names)
        no_rfm = [f"no RFM scores: no {config.rfm.order_event} yet"]
        lifecycle, points_model, tiers = config.lifecycle, config.intention, config.value_tiers

        rows: list[tuple[Any, ...]] = []
        for f in facts:
            life_stage, life_why = rules.lifecycle(f, lifecycle, today)
            reasons: dict[str, list[str]] = {"lifecycle": [life_why]}
            r = fs = m = None
            tier: str | None = None
            score: float | None = None
            level: str | None = None
            if f.orders and effective is not None:
                r, fs, m, reasons["rfm"] = rules.rfm(f, effective, today)
                tier, tier_why = rules.value_tier(r, fs, m, tiers)
                reasons["value_tier"] = [tier_why]
                reasons["intention"] = rules.bought(f, config.rfm.order_event)
            else:
                reasons["rfm"] = no_rfm
                if kept is not None:
                    score, level = rules.kept_intention(kept.get(f.contact_id), points_model, self.decay, today)
                else:
                    score, level, reasons["intention"] = rules.intention(
                        days.get(f.contact_id, ()), points_model, self.decay
                    )
            transaction_stage = None
            if no_stage is not None:
                transaction_stage, reasons["transaction_stage"] = stages.get(f.contact_id, no_stage)
            rows.append(
                (
                    workspace_id,
                    f.contact_id,
                    life_stage,
                    r,
                    fs,
                    m,
                    tier,
                    score,
                    level,
                    transaction_stage,
                    reasons if explain else {},
                )
            )
        return rows


__all__ = [
    "RECOMPUTE_JOB",
    "REFRESH_CRON",
    "evaluate",
    "load_config",
    "reasons_for",
    "recompute",
    "save_config",
    "scores",
    "settings_row",
    "stored_cuts",
]
