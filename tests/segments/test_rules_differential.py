"""The fast path (rules compiled to SQL over the computed properties and the user portraits) agrees
exactly with a plain evaluation of the rule over the raw data, for random contacts, events and rules, on
both databases, today and days later (interest decays)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from segment_population import NOW, build_world, populations, rules, write_events
from sqlalchemy import select

from siyu.auth.principal import Principal
from siyu.computed import service as computed
from siyu.computed.models import ContactEventDay, ContactEventStat
from siyu.events.service import workspace_timezone
from siyu.recommend import portrait
from siyu.segments import service as segments
from siyu.segments.compiler import matching_contacts
from siyu.segments.evaluate import matches
from siyu.segments.explain import load_facts
from siyu.segments.rules import parse_rule

SETTINGS = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@SETTINGS
@given(data=st.data())
def test_compiled_rules_agree_with_plain_evaluation(db, clock, data) -> None:  # type: ignore[no-untyped-def]
    crowd, happenings = data.draw(populations())
    with db.transaction() as session:
        world = build_world(session, crowd)
        ws = world.workspace_id
        principal = Principal(workspace_id=ws, scopes=frozenset())
        half_life = data.draw(st.sampled_from([1.0, 3.5, 14.0]), label="half-life (days)")
        portrait.save_config(session, ws, portrait.RecommendConfig(half_life_days=half_life))
        write_events(session, world, happenings)
        # the computed properties and portraits are built incrementally, in two runs that cut the stream anywhere
        tz = workspace_timezone(session, ws)
        cut = data.draw(st.integers(0, len(happenings)))
        stream = computed.read_events(session, ws)
        for part in (stream[:cut], stream[cut:]):
            computed.apply_events(session, ws, part, tz)
            portrait.apply_content_events(session, ws, part)

        base_rule = data.draw(rules(world.tag_ids, [], world.content_tag_ids), label="saved segment rule")
        base = segments.create_segment(session, principal, name="基础", rule=base_rule)
        catalog = segments.catalog(session, ws)
        ctx = segments.context(session, ws, NOW)
        base_node = parse_rule(base_rule, catalog)

        def plain_in_base(contact_id: int, segment_id: int) -> bool:
            assert segment_id == base.id
            return matches(base_node, plain[contact_id], ctx)

        plain = load_facts(session, ws, world.contact_ids, in_segment=plain_in_base)
        expected_base = {c for c in world.contact_ids if matches(base_node, plain[c], ctx)}
        assert set(segments.list_member_ids(session, base, principal, after=None, limit=100)) == expected_base

        # rules asked now or days later: windows slide and interests decay (segment membership stays as stored)
        later = data.draw(st.sampled_from([0, 0, 1, 4, 30]), label="days later")
        asked = segments.context(session, ws, NOW + dt.timedelta(days=later))
        assert asked.half_life_days == half_life
        for n in range(5):
            rule: dict[str, Any] = data.draw(rules(world.tag_ids, [base.id], world.content_tag_ids), label=f"rule {n}")
            node = parse_rule(rule, catalog)
            fast = set(session.scalars(matching_contacts(session, asked, node)))
            slow = {c for c in world.contact_ids if matches(node, plain[c], asked)}
            assert fast == slow, f"rule {rule}"


@SETTINGS
@given(data=st.data())
def test_incremental_aggregates_equal_a_rebuild(db, clock, data) -> None:  # type: ignore[no-untyped-def]
    crowd, happenings = data.draw(populations())
    with db.transaction() as session:
        world = build_world(session, crowd)
        ws = world.workspace_id
        tz = workspace_timezone(session, ws)
        cuts = sorted(data.draw(st.lists(st.integers(0, len(happenings)), max_size=3)))
        start = applied = 0
        for cut in [*cuts, len(happenings)]:
            write_events(session, world, happenings[start:cut], start=start)
            start = max(start, cut)
            fresh = computed.read_events(session, ws, after_seq=applied)
            computed.apply_events(session, ws, fresh, tz)
            applied = fresh[-1].seq if fresh else applied
        incremental = _aggregates(session, ws)
        computed.rebuild(session, ws, tz)
        assert _aggregates(session, ws) == incremental


def _aggregates(session, ws: int) -> tuple[list[Any], list[Any]]:  # type: ignore[no-untyped-def]
    stats = session.execute(
        select(
            ContactEventStat.contact_id,
            ContactEventStat.event_type,
            ContactEventStat.count,
            ContactEventStat.first_at,
            ContactEventStat.last_at,
            ContactEventStat.amount_cents,
        )
        .where(ContactEventStat.workspace_id == ws)
        .order_by(ContactEventStat.contact_id, ContactEventStat.event_type)
    ).all()
    days = session.execute(
        select(ContactEventDay.contact_id, ContactEventDay.event_type, ContactEventDay.day, ContactEventDay.count)
        .where(ContactEventDay.workspace_id == ws)
        .order_by(ContactEventDay.contact_id, ContactEventDay.event_type, ContactEventDay.day)
    ).all()
    return [tuple(r) for r in stats], [tuple(r) for r in days]
