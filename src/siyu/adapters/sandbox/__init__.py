"""The sandbox channel's simulated engagement (demo): whether and when a message is opened and its link
clicked, decided by a seed and the delivery id alone, so a rerun of the demo gives the same numbers."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Protocol


class Simulation(Protocol):
    open_rate: float
    click_rate: float
    seed: int
    delay_minutes: int


def uniforms(seed: int, delivery_id: int) -> tuple[float, float, float, float]:
    """Four numbers in [0, 1) that depend only on (seed, delivery id)."""
    digest = hashlib.blake2b(f"siyu-sandbox:{seed}:{delivery_id}".encode(), digest_size=32).digest()
    return tuple(int.from_bytes(digest[i : i + 8], "big") / 2**64 for i in range(0, 32, 8))  # type: ignore[return-value]


def simulate(
    sim: Simulation, delivery_id: int, sent_at: dt.datetime, *, has_link: bool
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """(opens_at, clicks_at): None when the message is not opened / its link not clicked."""
    if sim.open_rate <= 0:
        return None, None
    u_open, u_open_delay, u_click, u_click_delay = uniforms(sim.seed, delivery_id)
    if u_open >= sim.open_rate:
        return None, None
    # delays spread over 0..2x the mean, whole seconds
    opens_at = sent_at + dt.timedelta(seconds=round(u_open_delay * 2 * sim.delay_minutes * 60))
    if not has_link or u_click >= sim.click_rate:
        return opens_at, None
    return opens_at, opens_at + dt.timedelta(seconds=round(u_click_delay * 2 * 60))
