"""The offline evaluation: on a fixed seed, siyu's ranking beats the popularity baseline and random."""

from __future__ import annotations

from siyu.recommend.evaluation import World, evaluate


def test_ranking_beats_popularity_and_random_on_a_fixed_seed() -> None:
    result = evaluate(World(people=1_500, items=200, seed=20261123), k=5)
    rates = result.hit_rate
    assert rates["siyu"] > rates["popularity"] > rates["random"]
    assert rates["siyu"] > 1.5 * rates["popularity"]
