"""The sweep report's PNGs (matplotlib, Agg): Overall J&F against each numeric axis with its intervals,
one line per checkpoint (and per value of the other axes); for compared pairs, the per-expression
J&F of cell A against cell B and the histogram of their differences."""

from __future__ import annotations

import io
import math
import re
from typing import Any

from interrvos.data import storage
from interrvos.sweep.cells import short_name
from interrvos.sweep.config import SweepConfig
from interrvos.sweep.stats import paired_rows


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, uri: str) -> None:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    _pyplot().close(fig)
    storage.write_bytes(uri, buf.getvalue())


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:60]


def numeric_axes(cfg: SweepConfig) -> list[str]:
    return [n for n, a in cfg.axes.items()
            if len(a.values) > 1 and all(isinstance(v, int | float) and not isinstance(v, bool) for v in a.values)]


def jf_against_axis(cfg: SweepConfig, done: list, piv: list[dict], axis: str, dataset: str, uri: str) -> bool:
    """Overall J&F vs the axis, error bars = the intervals; False when there is nothing to draw."""
    by_cell = {r["cell"]: r for r in piv}
    series: dict[str, list[tuple[float, float, float, float]]] = {}
    for o in done:
        if o.cell.dataset.id != dataset:
            continue
        others = [f"{short_name(n)}={v}" for n, v in o.cell.coords.items() if n != axis]
        r = by_cell[o.cell.id]
        series.setdefault(" ".join([o.cell.checkpoint.id, *others]), []).append(
            (o.cell.coords[axis], r["overall_JF"], r["overall_low"], r["overall_high"]))
    if not series:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    values = sorted(cfg.axes[axis].values)
    dodge = 0.015 * ((values[-1] - values[0]) or 1)  # overlapping error bars side by side
    for i, (name, points) in enumerate(sorted(series.items())):
        points.sort()
        x = [p[0] + (i - (len(series) - 1) / 2) * dodge for p in points]
        y = [p[1] for p in points]
        err = [[max(0.0, p[1] - p[2]) for p in points], [max(0.0, p[3] - p[1]) for p in points]]
        ax.errorbar(x, y, yerr=err, marker="o", capsize=4, label=name, color=f"C{i % 10}")
    ax.set_xlabel(f"{axis} ({cfg.axes[axis].field})")
    ax.set_ylabel("Overall J&F (x100)")
    ax.set_xticks(values)
    ax.set_title(f"J&F against {axis} on {dataset} ({round(100 * cfg.stats.confidence)}% intervals)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, uri)
    return True


def paired_scatter(a, b, uri: str) -> None:
    by_key = {(r["video"], r["expression"]): r["JF"] for r in b.rows}
    pts = [(by_key[(r["video"], r["expression"])], r["JF"]) for r in a.rows
           if (r["video"], r["expression"]) in by_key and not math.isnan(r["JF"])]
    pts = [p for p in pts if not math.isnan(p[0])]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.8, 4.8))
    ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=14, alpha=0.6)
    ax.plot([0, 100], [0, 100], color="grey", linewidth=1, linestyle="--")
    ax.set_xlim(-2, 102)
    ax.set_ylim(-2, 102)
    ax.set_xlabel(f"B: {b.cell.label} (J&F per expression)", fontsize=8)
    ax.set_ylabel(f"A: {a.cell.label}", fontsize=8)
    ax.set_title(f"{len(pts)} expressions; above the line: A better", fontsize=9)
    _save(fig, uri)


def difference_histogram(a, b, diff: dict[str, Any], uri: str) -> None:
    values, _, _ = paired_rows(a.rows, b.rows)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    ax.hist(values, bins=min(40, max(5, len(values) // 3)), color="#4c72b0", alpha=0.8)
    ax.axvline(0, color="grey", linewidth=1)
    ax.axvline(diff["overall_diff"], color="C3", label=f"mean {diff['overall_diff']:.1f}")
    ax.axvspan(diff["overall_low"], diff["overall_high"], color="C3", alpha=0.15, label="interval")
    ax.set_xlabel(f"J&F of A minus B per expression\nA: {a.cell.label}   B: {b.cell.label}", fontsize=8)
    ax.set_ylabel("expressions")
    ax.legend(fontsize=8)
    _save(fig, uri)


def draw_plots(cfg: SweepConfig, done: list, piv: list[dict], pairs: list, diffs: list[dict] | None = None,
               ) -> list[tuple[str, str]]:  # fmt: skip
    """Every plot; returns (path relative to out, title)."""
    written = []
    for axis in numeric_axes(cfg):
        for dataset in dict.fromkeys(o.cell.dataset.id for o in done):
            rel = f"plots/jf_vs_{_safe(axis)}__{_safe(dataset)}.png"
            if jf_against_axis(cfg, done, piv, axis, dataset, storage.join(cfg.out, rel)):
                written.append((rel, f"Overall J&F against {axis} on {dataset}"))
    for n, ((a, b), diff) in enumerate(zip(pairs, diffs or [], strict=False)):
        rel = f"plots/pair{n:02d}_scatter.png"
        paired_scatter(a, b, storage.join(cfg.out, rel))
        written.append((rel, f"per expression: {a.cell.label} vs {b.cell.label}"))
        rel = f"plots/pair{n:02d}_differences.png"
        difference_histogram(a, b, diff, storage.join(cfg.out, rel))
        written.append((rel, f"differences: {a.cell.label} minus {b.cell.label}"))
    return written
