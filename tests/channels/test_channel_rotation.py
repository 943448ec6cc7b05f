"""Rotation rules alone (pure functions): order, proportions, least-loaded, caps, hours."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from siyu.channels.models import Rotation
from siyu.channels.rotation import Candidate, in_hours, pick

NOON = dt.time(12, 0)


def run(rotation: Rotation, pool: list[Candidate], adds: int, at: dt.time = NOON) -> list[int | None]:
    """Simulates `adds` adds, updating state and counts as record_add does."""
    rr_next = 0
    out: list[int | None] = []
    by_id = {c.staff_id: c for c in pool}
    for _ in range(adds):
        chosen = pick(rotation, pool, rr_next=rr_next, local_time=at)
        out.append(chosen.staff_id)
        if chosen.staff_id is None:
            continue
        rr_next = chosen.rr_next
        for staff_id, current in chosen.wrr.items():
            by_id[staff_id].wrr_current = current
        by_id[chosen.staff_id].adds_today += 1
        by_id[chosen.staff_id].load_today += 1
    return out


def test_round_robin_goes_in_pool_order_and_skips_who_cannot_take_the_add() -> None:
    pool = [Candidate(1, 0), Candidate(2, 1), Candidate(3, 2)]
    assert run(Rotation.round_robin, pool, 7) == [1, 2, 3, 1, 2, 3, 1]
    pool = [Candidate(1, 0), Candidate(2, 1, daily_cap=1), Candidate(3, 2, active=False)]
    assert run(Rotation.round_robin, pool, 5) == [1, 2, 1, 1, 1]


def test_weighted_gives_exact_shares_interleaved() -> None:
    pool = [Candidate(1, 0, weight=5), Candidate(2, 1, weight=1), Candidate(3, 2, weight=1)]
    picks = run(Rotation.weighted, pool, 7)
    assert picks == [1, 1, 2, 1, 3, 1, 1]  # nginx's smooth weighted round robin
    assert Counter(run(Rotation.weighted, pool, 700)) == {1: 500, 2: 100, 3: 100}
    pool = [Candidate(1, 0, weight=3), Candidate(2, 1, weight=2), Candidate(3, 2, weight=1)]
    assert Counter(run(Rotation.weighted, pool, 6000)) == {1: 3000, 2: 2000, 3: 1000}


@settings(max_examples=60, deadline=None)
@given(weights=st.lists(st.integers(1, 9), min_size=1, max_size=6), cycles=st.integers(1, 20))
def test_weighted_shares_are_exact_over_whole_cycles(weights: list[int], cycles: int) -> None:
    pool = [Candidate(i + 1, i, weight=w) for i, w in enumerate(weights)]
    counts = Counter(run(Rotation.weighted, pool, sum(weights) * cycles))
    assert counts == {i + 1: w * cycles for i, w in enumerate(weights)}


def test_least_loaded_takes_the_member_with_fewest_adds_today() -> None:
    pool = [Candidate(1, 0, load_today=5), Candidate(2, 1, load_today=2), Candidate(3, 2, load_today=2)]
    assert run(Rotation.least_loaded, pool, 7) == [2, 3, 2, 3, 2, 3, 1]


@settings(max_examples=120, deadline=None)
@given(
    rule=st.sampled_from(list(Rotation)),
    members=st.lists(
        st.tuples(st.integers(1, 5), st.one_of(st.none(), st.integers(0, 6)), st.integers(0, 4)),
        min_size=1,
        max_size=5,
    ),
    adds=st.integers(0, 60),
)
def test_caps_are_never_exceeded_and_nobody_is_refused_while_someone_has_room(
    rule: Rotation, members: list[tuple[int, int | None, int]], adds: int
) -> None:
    pool = [Candidate(i + 1, i, weight=w, daily_cap=cap, load_today=load) for i, (w, cap, load) in enumerate(members)]
    picks = run(rule, pool, adds)
    counts = Counter(p for p in picks if p is not None)
    for c in pool:
        assert c.daily_cap is None or counts[c.staff_id] <= c.daily_cap
    # Refusals (None) only once every member is full: exactly the adds beyond the pool's room.
    if all(c.daily_cap is not None for c in pool):
        room = sum(c.daily_cap or 0 for c in pool)
        assert picks.count(None) == max(0, adds - room)
    else:
        assert None not in picks


def test_online_hours() -> None:
    assert in_hours(None, None, dt.time(3, 0))
    assert in_hours("09:00", "18:00", dt.time(9, 0))
    assert not in_hours("09:00", "18:00", dt.time(18, 0))
    assert not in_hours("09:00", "18:00", dt.time(8, 59))
    assert in_hours("22:00", "06:00", dt.time(23, 30)) and in_hours("22:00", "06:00", dt.time(5, 59))
    assert not in_hours("22:00", "06:00", dt.time(12, 0))
    assert in_hours("00:00", "24:00", dt.time(23, 59))
    pool = [Candidate(1, 0, hours_start="09:00", hours_end="12:00"), Candidate(2, 1)]
    assert run(Rotation.round_robin, pool, 3, at=dt.time(14, 0)) == [2, 2, 2]
