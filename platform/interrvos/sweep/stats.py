"""Confidence intervals for sweep results: a percentile bootstrap that resamples videos, not
expressions (the expressions of one video share its frames, objects and difficulty, so they are not
independent: resampling them one by one gives intervals that are too narrow).

Every statistic is a weighted mean sum(w * v) / sum(w) over expressions, w = the expression's scored
items, so it equals the means of `interrvos evaluate` (means of item means, an actor-target
expression counting its two items). A resample draws V videos with replacement out of V; its value
is the ratio of the drawn videos' sums. A paired difference subtracts two cells' values expression by
expression first, so a cell compared with itself has every difference exactly 0 and an interval of
exactly [0, 0].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from interrvos.sweep.keys import digest


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    n: int  # expressions
    clusters: int  # videos

    def as_dict(self) -> dict:
        return asdict(self)

    def text(self, digits: int = 1) -> str:
        if math.isnan(self.estimate):
            return "-"
        return f"{self.estimate:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


NAN = Interval(math.nan, math.nan, math.nan, 0, 0)


def _rng(seed: int, name: str) -> np.random.Generator:
    """One stream per statistic, so an interval does not depend on which others were computed first."""
    return np.random.default_rng([seed, int(digest(name)[:12], 16)])


def cluster_sums(values: Sequence[float], weights: Sequence[float], clusters: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per cluster (in first-seen order): sum(w * v) and sum(w)."""
    index: dict[str, int] = {}
    ids = np.array([index.setdefault(c, len(index)) for c in clusters], dtype=np.int64)
    w = np.asarray(weights, dtype=np.float64)
    s = np.bincount(ids, weights=w * np.asarray(values, dtype=np.float64), minlength=len(index))
    return s, np.bincount(ids, weights=w, minlength=len(index))


def bootstrap_mean(values: Sequence[float], weights: Sequence[float], clusters: Sequence[str], *, samples: int = 2000,
                   confidence: float = 0.95, seed: int = 0, name: str = "", estimate: float | None = None) -> Interval:
    """The weighted mean of `values` with its percentile interval, resampling whole clusters.
    `estimate`: the point value to report (e.g. evaluate's exact mean); by default the weighted mean.
    NaN values (expressions that failed) are left out."""
    keep = [i for i, v in enumerate(values) if not math.isnan(v) and weights[i] > 0]
    if not keep:
        return NAN
    v = [values[i] for i in keep]
    w = [float(weights[i]) for i in keep]
    c = [clusters[i] for i in keep]
    point = math.fsum(a * b for a, b in zip(v, w, strict=True)) / math.fsum(w) if estimate is None else estimate
    s, n = cluster_sums(v, w, c)
    k = len(s)
    counts = _rng(seed, name).multinomial(k, np.full(k, 1.0 / k), size=samples).astype(np.float64)  # (samples, k)
    totals = counts @ n
    stats = (counts @ s)[totals > 0] / totals[totals > 0]
    alpha = (1 - confidence) / 2
    low, high = np.quantile(stats, [alpha, 1 - alpha])
    return Interval(float(point), float(low), float(high), len(v), k)


def paired_rows(a: list[dict], b: list[dict], column: str = "JF") -> tuple[list[float], list[float], list[str]]:
    """(differences a - b, weights, videos) over the expressions both cells scored."""
    by_key = {(r["video"], r["expression"]): r for r in b}
    diffs, weights, videos = [], [], []
    for r in a:
        other = by_key.get((r["video"], r["expression"]))
        if other is None or math.isnan(r[column]) or math.isnan(other[column]):
            continue
        diffs.append(r[column] - other[column])
        weights.append(min(r["items"], other["items"]))
        videos.append(r["video"])
    return diffs, weights, videos


def paired_difference(a: list[dict], b: list[dict], *, samples: int = 2000, confidence: float = 0.95, seed: int = 0,
                      name: str = "", column: str = "JF") -> Interval:
    """Mean of a - b (x100 J&F points) per expression with its clustered bootstrap interval."""
    diffs, weights, videos = paired_rows(a, b, column)
    return bootstrap_mean(diffs, weights, videos, samples=samples, confidence=confidence, seed=seed, name=name)
