"""Conversion of the treated against the holdout, with confidence intervals.

Each group's rate gets a Wilson score interval (good at small counts and rates near 0 or 1, unlike the
normal approximation). The difference of the two rates (treated - holdout, the lift in points) gets
Newcombe's hybrid score interval (Newcombe 1998, method 10), built from the two Wilson intervals:

    d = p1 - p2
    low  = d - sqrt((p1 - l1)^2 + (u2 - p2)^2)
    high = d + sqrt((u1 - p1)^2 + (p2 - l2)^2)

An interval of the difference that excludes 0 means the journey changed the conversion at that level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054  # two-sided 95 %


@dataclass(frozen=True)
class Rate:
    n: int
    converted: int
    rate: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class Lift:
    difference: float | None  # treated rate - holdout rate
    low: float | None
    high: float | None
    significant: bool  # the interval excludes 0


def wilson(converted: int, n: int, z: float = Z95) -> Rate:
    if n <= 0:
        return Rate(0, 0, None, None, None)
    p = converted / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return Rate(n, converted, p, max(0.0, centre - half), min(1.0, centre + half))


def newcombe(treated: Rate, holdout: Rate) -> Lift:
    if treated.rate is None or holdout.rate is None:
        return Lift(None, None, None, False)
    assert treated.low is not None and treated.high is not None
    assert holdout.low is not None and holdout.high is not None
    p1, p2 = treated.rate, holdout.rate
    d = p1 - p2
    low = d - math.sqrt((p1 - treated.low) ** 2 + (holdout.high - p2) ** 2)
    high = d + math.sqrt((treated.high - p1) ** 2 + (p2 - holdout.low) ** 2)
    return Lift(d, low, high, low > 0 or high < 0)
