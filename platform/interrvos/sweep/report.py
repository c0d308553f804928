"""The sweep's results, for people and machines, under `<out>/`:

    expressions.parquet    one row per (cell, expression): J, F, J&F x100, setting, caption type, video,
                           cell id, the axes, interaction, number of objects, clip length
    cells.csv / .json      every cell: id, label, coordinates, status (failed: the reason), counts, J&F
    pivot.csv / .json      cells x settings (Referring, Actor-Target, Overall): J&F and its 95% interval
    differences.csv/.json  paired comparisons: mean J&F difference per expression, clustered interval
    slices.csv / .json     J&F per cell by caption type, interaction, number of objects, clip length
    cells/<id>/            metrics.json and metrics.md (`interrvos evaluate`'s, Tables 5 and 4 layouts)
    plots/*.png, report.md (links all of it)
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from interrvos.data import storage
from interrvos.evaluate.protocol import SETTING_TITLES
from interrvos.evaluate.report import markdown_tables
from interrvos.sweep.config import SweepConfig
from interrvos.sweep.stats import Interval, bootstrap_mean, paired_difference

SETTINGS = tuple(SETTING_TITLES)  # referring, actor_target, overall


def _in_setting(row: dict, setting: str) -> bool:
    return setting == "overall" or row["setting"] == setting


def interval(cfg: SweepConfig, rows: list[dict], name: str, estimate: float | None = None) -> Interval:
    """`name` picks the resampling stream: cells of one dataset share it (common random numbers), so
    cells with the same per-expression scores get the same interval."""
    st = cfg.stats
    return bootstrap_mean([r["JF"] for r in rows], [r["items"] for r in rows], [r["video"] for r in rows],
                          samples=st.samples, confidence=st.confidence, seed=st.seed, name=name, estimate=estimate)


def pivot(cfg: SweepConfig, done: list) -> list[dict[str, Any]]:
    """Cells x settings: the J&F of `interrvos evaluate` and its interval (bootstrap over videos)."""
    out = []
    for o in done:
        row: dict[str, Any] = {"cell": o.cell.id, "label": o.cell.label, "dataset": o.cell.dataset.id}
        for s in SETTINGS:
            value = o.metrics["settings"][s]["JF"]
            iv = interval(cfg, [r for r in o.rows if _in_setting(r, s)], f"{o.cell.dataset.id}/{s}", value)
            row.update({f"{s}_JF": iv.estimate, f"{s}_low": iv.low, f"{s}_high": iv.high, f"{s}_expressions": iv.n})
        out.append(row)
    return out


def _coords(o) -> dict[str, Any]:
    return {"checkpoint": o.cell.checkpoint.id, "dataset": o.cell.dataset.id, **o.cell.coords}


def comparison_pairs(cfg: SweepConfig, done: list) -> list[tuple[Any, Any]]:
    """(a, b) pairs: the configured ones, else every cell against the cell that differs from it only by
    taking the first value of one dimension (the first checkpoint, or an axis's first value)."""
    if cfg.compare is not None:
        by = {k: o for o in done for k in (o.cell.id, o.cell.label)}
        return [(by[c.a], by[c.b]) for c in cfg.compare if c.a in by and c.b in by]
    firsts = {"checkpoint": done[0].cell.checkpoint.id if done else None,
              **{n: a.values[0] for n, a in cfg.axes.items()}}
    index = {json.dumps(_coords(o), sort_keys=True, default=str): o for o in done}
    pairs = []
    for o in done:
        for dim, first in firsts.items():
            c = _coords(o)
            if c[dim] == first:
                continue
            ref = index.get(json.dumps({**c, dim: first}, sort_keys=True, default=str))
            if ref is not None:
                pairs.append((o, ref))
    return pairs


def differences(cfg: SweepConfig, pairs: list) -> list[dict[str, Any]]:
    st, out = cfg.stats, []
    for a, b in pairs:
        row: dict[str, Any] = {"a": a.cell.id, "b": b.cell.id, "label_a": a.cell.label, "label_b": b.cell.label,
                               "dataset": a.cell.dataset.id}
        for s in SETTINGS:
            iv = paired_difference([r for r in a.rows if _in_setting(r, s)], [r for r in b.rows if _in_setting(r, s)],
                                   samples=st.samples, confidence=st.confidence, seed=st.seed,
                                   name=f"{a.cell.dataset.id}/difference/{s}")  # fmt: skip
            row.update({f"{s}_diff": iv.estimate, f"{s}_low": iv.low, f"{s}_high": iv.high, f"{s}_expressions": iv.n})
        out.append(row)
    return out


def slice_value(row: dict, dim: str, bins: list[int] | None) -> str:
    if dim != "clip_length" or not bins:
        return str(row[dim])
    n = row["clip_length"]
    for lo, hi in zip([0, *bins], [*bins, None], strict=True):
        if hi is None or n <= hi:
            return f"> {lo} frames" if hi is None else f"{lo + 1}-{hi} frames"
    return str(n)


def clip_bins(rows: list[dict]) -> list[int] | None:
    """Tertile edges of clip length when there are more than 4 distinct lengths (else each length)."""
    lengths = sorted({r["clip_length"] for r in rows})
    if len(lengths) <= 4:
        return None
    every = sorted(r["clip_length"] for r in rows)
    return sorted({every[len(every) // 3], every[2 * len(every) // 3]})


def slices(cfg: SweepConfig, done: list) -> list[dict[str, Any]]:
    out = []
    for dim in cfg.report.slices:
        for o in done:
            bins = clip_bins(o.rows) if dim == "clip_length" else None
            groups: dict[str, list[dict]] = {}
            for r in o.rows:
                groups.setdefault(slice_value(r, dim, bins), []).append(r)
            for value, rows in sorted(groups.items()):
                iv = interval(cfg, rows, f"{o.cell.dataset.id}/{dim}={value}")
                out.append({"slice": dim, "value": value, "cell": o.cell.id, "label": o.cell.label,
                            "JF": iv.estimate, "low": iv.low, "high": iv.high, "expressions": iv.n, "videos": iv.clusters})
    return out


def cell_rows(outcomes: list) -> list[dict[str, Any]]:
    rows = []
    for o in outcomes:
        m = o.metrics or {}
        rows.append({"cell": o.cell.id, "label": o.cell.label, **_coords(o), "status": o.status, "reason": o.reason or "",
                     "expressions": len(o.cell.keys), "cached": o.cached, "predicted": o.predicted,
                     **{f"{s}_JF": m["settings"][s]["JF"] if m else None for s in SETTINGS},
                     "checkpoint_path": o.cell.checkpoint.path, "checkpoint_hash": o.cell.checkpoint.content_hash,
                     "dataset_path": o.cell.dataset.entry.path, "dataset_hash": o.cell.dataset.content_hash,
                     "settings": json.dumps(o.cell.settings, sort_keys=True)})  # fmt: skip
    return rows


# ---- writing -----------------------------------------------------------------------------------------


def _clean(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def write_table(out: str, name: str, rows: list[dict[str, Any]]) -> None:
    """<name>.csv and <name>.json (NaN as empty / null)."""
    rows = [{k: _clean(v) for k, v in r.items()} for r in rows]
    storage.write_json(storage.join(out, f"{name}.json"), rows, indent=1)
    buf = io.StringIO()
    columns = list(dict.fromkeys(k for r in rows for k in r))
    writer = csv.DictWriter(buf, columns)
    writer.writeheader()
    writer.writerows(rows)
    storage.write_bytes(storage.join(out, f"{name}.csv"), buf.getvalue().encode())


def write_parquet(uri: str, rows: list[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = list(dict.fromkeys(k for r in rows for k in r))
    table = pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in rows]) if rows else pa.table({})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    storage.write_bytes(uri, sink.getvalue().to_pybytes())


def _md_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


def _iv(row: dict, prefix: str, value: str = "JF") -> str:
    return Interval(row[f"{prefix}_{value}"], row[f"{prefix}_low"], row[f"{prefix}_high"], 0, 0).text()


def pivot_markdown(cfg: SweepConfig, piv: list[dict]) -> str:
    """The pivot (cells x settings, J&F [interval]) as a Markdown table with a line on the intervals."""
    return (f"Intervals: percentile bootstrap over videos ({cfg.stats.samples} resamples; the expressions of a "
            "video are not independent).\n\n"
            + _md_table(["Cell", "id"] + [SETTING_TITLES[s] for s in SETTINGS] + ["expressions"],
                        [[r["label"], r["cell"]] + [_iv(r, s) for s in SETTINGS] + [r["overall_expressions"]]
                         for r in piv]))  # fmt: skip


def markdown(cfg: SweepConfig, summary: dict, cells: list[dict], piv: list[dict], diffs: list[dict],
             sl: list[dict], plots: list[tuple[str, str]], done: list) -> str:  # fmt: skip
    pct = round(100 * cfg.stats.confidence)
    parts = [f"# Sweep `{cfg.name}`",
             f"{summary['cells']} cells, {summary['done']} done, {len(summary['failed'])} failed; "
             f"{summary['expressions_predicted']} expressions predicted in this run, {summary['expressions_cached']} "
             f"from the cache ({summary['model_calls']} model calls); prediction {summary['predict_seconds']} s.",
             f"## J&F x100 with {pct}% intervals\n\n" + pivot_markdown(cfg, piv)]
    if diffs:
        parts.append(f"## Paired differences (J&F of A minus B, x100, {pct}% intervals)\n\nPer expression both cells "
                     "scored, bootstrap over videos; an interval that excludes 0 is a difference the data support.\n\n"
                     + _md_table(["A", "B", "expressions"] + [SETTING_TITLES[s] for s in SETTINGS],
                                 [[r["label_a"], r["label_b"], r["overall_expressions"]]
                                  + [_iv(r, s, "diff") for s in SETTINGS] for r in diffs]))  # fmt: skip
    if plots:
        parts.append("## Plots\n\n" + "\n\n".join(f"![{title}]({path})" for path, title in plots))
    for dim in dict.fromkeys(r["slice"] for r in sl):
        rows = [r for r in sl if r["slice"] == dim]
        values = list(dict.fromkeys(r["value"] for r in rows))
        table = {(r["label"], r["value"]): f"{Interval(r['JF'], r['low'], r['high'], 0, 0).text()} ({r['expressions']})"
                 for r in rows}  # fmt: skip
        labels = list(dict.fromkeys(r["label"] for r in rows))
        parts.append(f"### By {dim.replace('_', ' ')} (J&F x100 [{pct}% interval] (expressions))\n\n"
                     + _md_table(["Cell", *values], [[lab] + [table.get((lab, v), "-") for v in values] for lab in labels]))
    for dataset in dict.fromkeys(o.cell.dataset.id for o in done):
        results = {o.cell.label: o.metrics for o in done if o.cell.dataset.id == dataset}
        parts.append(f"## Tables 5 and 4 layouts, dataset `{dataset}`\n\n" + markdown_tables(results, heading="###"))
    failed = [r for r in cells if r["status"] == "failed"]
    if failed:
        parts.append(f"## Failed cells ({len(failed)})\n\n" + "\n".join(f"- {r['label']} (`{r['cell']}`): {r['reason']}"
                                                                       for r in failed))
    parts.append("## Files\n\n`expressions.parquet` (one row per cell and expression), `cells.csv`/`.json`, "
                 "`pivot.csv`/`.json`, `differences.csv`/`.json`, `slices.csv`/`.json`, `sweep_summary.json`, "
                 "`cells/<id>/metrics.json` and `metrics.md`.")
    return "\n\n".join(parts) + "\n"


def write_report(cfg: SweepConfig, outcomes: list, summary: dict) -> str:
    """Every output file; returns the path of report.md."""
    out = cfg.out
    done = [o for o in outcomes if o.status == "done"]
    for o in done:
        folder = storage.join(out, "cells", o.cell.id)
        storage.write_json(storage.join(folder, "metrics.json"), o.metrics, indent=1)
        storage.write_bytes(storage.join(folder, "metrics.md"),
                            (f"# {o.cell.label}\n\n" + markdown_tables({o.cell.label: o.metrics}, "##") + "\n").encode())
    write_parquet(storage.join(out, "expressions.parquet"), [r for o in done for r in o.rows])
    cells = cell_rows(outcomes)
    piv = pivot(cfg, done)
    pairs = comparison_pairs(cfg, done)
    diffs = differences(cfg, pairs)
    sl = slices(cfg, done)
    for name, rows in (("cells", cells), ("pivot", piv), ("differences", diffs), ("slices", sl)):
        write_table(out, name, rows)
    plots: list[tuple[str, str]] = []
    if cfg.report.plots and done:
        from interrvos.sweep.plots import draw_plots

        k = cfg.report.pair_plots
        plots = draw_plots(cfg, done, piv, pairs[:k], diffs[:k])
    path = storage.join(out, "report.md")
    storage.write_bytes(path, markdown(cfg, summary, cells, piv, diffs, sl, plots, done).encode())
    return path
