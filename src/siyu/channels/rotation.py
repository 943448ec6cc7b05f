"""Picking the staff member for an add: pure functions over the pool, so every rule is testable alone.

- round_robin: pool order, starting after the last member picked; members who cannot take the add
  (capped, outside their hours, deactivated) are skipped, and the turn passes on.
- weighted: smooth weighted round robin (nginx's algorithm): over any run of sum(weights) adds by
  eligible members, each gets exactly `weight` of them, interleaved rather than in bursts.
- least_loaded: the eligible member with the fewest adds today (through every code of the workspace);
  ties go to the earlier pool position.
If nobody is eligible, the code's backup staff member takes the add (see attribution.record_add).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from siyu.channels.models import Rotation


@dataclass(slots=True)
class Candidate:
    staff_id: int
    position: int
    weight: int = 1
    daily_cap: int | None = None
    adds_today: int = 0  # through this code, today (what the cap counts)
    load_today: int = 0  # through every code of the workspace, today (what least_loaded compares)
    hours_start: str | None = None
    hours_end: str | None = None
    active: bool = True
    wrr_current: int = 0

    def capped(self) -> bool:
        return self.daily_cap is not None and self.adds_today >= self.daily_cap

    def online(self, local_time: dt.time) -> bool:
        return in_hours(self.hours_start, self.hours_end, local_time)

    def eligible(self, local_time: dt.time) -> bool:
        return self.active and not self.capped() and self.online(local_time)


def in_hours(start: str | None, end: str | None, local_time: dt.time) -> bool:
    """`start`/`end` are "HH:MM" (end may be "24:00"); start after end spans midnight."""
    if start is None or end is None:
        return True
    now = local_time.strftime("%H:%M")
    if start < end:
        return start <= now < end
    return now >= start or now < end


@dataclass(slots=True)
class Pick:
    staff_id: int | None
    rr_next: int
    # New smooth-weighted state per staff id (weighted rotation only).
    wrr: dict[int, int] = field(default_factory=dict)


def pick(rotation: Rotation, pool: list[Candidate], *, rr_next: int, local_time: dt.time) -> Pick:
    """Chooses from `pool` (in pool order); staff_id None when nobody can take the add."""
    members = sorted(pool, key=lambda c: c.position)
    if not members:
        return Pick(None, rr_next)
    eligible = [c for c in members if c.eligible(local_time)]
    if rotation is Rotation.round_robin:
        n = len(members)
        for step in range(n):
            index = (rr_next + step) % n
            if members[index].eligible(local_time):
                return Pick(members[index].staff_id, (index + 1) % n)
        return Pick(None, rr_next)
    if not eligible:
        return Pick(None, rr_next)
    if rotation is Rotation.weighted:
        total = sum(c.weight for c in eligible)
        current = {c.staff_id: c.wrr_current + c.weight for c in eligible}
        best = max(eligible, key=lambda c: (current[c.staff_id], -c.position))
        current[best.staff_id] -= total
        return Pick(best.staff_id, rr_next, current)
    best = min(eligible, key=lambda c: (c.load_today, c.position))
    return Pick(best.staff_id, rr_next)
