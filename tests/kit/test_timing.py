"""PhaseTimer: seconds per phase, nested phases counted once."""

from __future__ import annotations

import time

from siyu.kit.timing import PhaseTimer


def test_nested_phases_add_up_to_the_whole_and_each_counts_only_its_own_time() -> None:
    timer = PhaseTimer()
    started = time.perf_counter()
    with timer("outer"):
        time.sleep(0.02)
        with timer("inner"):
            time.sleep(0.03)
        time.sleep(0.01)
    with timer("inner"):  # a phase run again adds up
        time.sleep(0.01)
    whole = time.perf_counter() - started
    assert timer.seconds["inner"] >= 0.04
    assert 0.03 <= timer.seconds["outer"] < 0.03 + (whole - 0.07)  # without the inner 0.03
    assert abs(sum(timer.seconds.values()) - whole) < 0.005
    assert timer.summary().startswith("inner ")  # longest first


def test_a_phase_that_raises_is_still_counted() -> None:
    timer = PhaseTimer()
    try:
        with timer("failing"):
            time.sleep(0.01)
            raise ValueError("boom")
    except ValueError:
        pass
    assert timer.seconds["failing"] >= 0.01
    other = PhaseTimer()
    other.add(timer)
    other.add(timer)
    assert other.seconds["failing"] == 2 * timer.seconds["failing"]
