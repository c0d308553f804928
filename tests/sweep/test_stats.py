"""Clustered bootstrap: a cell against itself is exactly 0; coverage of a known difference; clustering matters."""

from __future__ import annotations

import math

import numpy as np

from interrvos.sweep.stats import bootstrap_mean, paired_difference


def _rows(jf: list[float], videos: list[str], items: list[int] | None = None) -> list[dict]:
    items = items or [1] * len(jf)
    return [{"video": v, "expression": str(i), "JF": x, "items": n} for i, (x, v, n) in enumerate(zip(jf, videos, items))]


def test_a_cell_compared_with_itself_has_an_interval_of_exactly_zero():
    rng = np.random.default_rng(3)
    jf = list(rng.uniform(0, 100, 60))
    videos = [f"v{i // 4}" for i in range(60)]
    rows = _rows(jf, videos, items=list(rng.integers(1, 3, 60)))
    iv = paired_difference(rows, [dict(r) for r in rows], samples=500, name="self")
    assert (iv.estimate, iv.low, iv.high) == (0.0, 0.0, 0.0) and iv.n == 60 and iv.clusters == 15


def test_the_weighted_mean_is_the_mean_over_items():
    # an actor-target expression counts its two items, like interrvos evaluate's means of item means
    iv = bootstrap_mean([10.0, 40.0], [2, 1], ["a", "b"], samples=200)
    assert math.isclose(iv.estimate, 20.0) and iv.low <= iv.estimate <= iv.high
    assert math.isnan(bootstrap_mean([math.nan], [1], ["a"]).estimate)  # failed expressions are left out


def _coverage(clustered: bool, reps: int = 300, videos: int = 40, per_video: int = 5, delta: float = 2.0) -> float:
    """Share of 95% intervals that contain the true mean difference, on data where the expressions of a
    video share a video effect (sd 3) beside their own noise (sd 1)."""
    rng = np.random.default_rng(0)
    hits = 0
    names = [f"v{i}" for i in range(videos) for _ in range(per_video)]
    for rep in range(reps):
        d = delta + np.repeat(rng.normal(0, 3, videos), per_video) + rng.normal(0, 1, videos * per_video)
        clusters = names if clustered else [str(i) for i in range(len(names))]
        iv = bootstrap_mean(list(d), [1] * len(d), clusters, samples=1000, seed=rep, name="coverage")
        hits += iv.low <= delta <= iv.high
    return hits / reps


def test_clustered_intervals_cover_a_known_difference_about_95_percent_of_the_time():
    assert 0.88 <= _coverage(clustered=True) <= 0.99


def test_intervals_that_ignore_videos_cover_too_rarely():
    assert _coverage(clustered=False, reps=100) < 0.8  # ~0.66: resampling expressions one by one is too narrow
