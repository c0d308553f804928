"""`interrvos sweep`: the recipe. Resolve the grid (cells.py), look every expression up in the cache,
predict what is missing on Ray (one actor pool per model group, groups concurrently as far as the
cluster's resources allow), score each cell as soon as its last expression is in (a Ray task beside
the predictions), then the statistics and the report.

A checkpoint that does not load, a dataset that does not read, an expression that cannot be
predicted or a cell that cannot be scored fails that cell with the reason; every other cell
finishes. Every prediction is committed to the cache as it arrives, so a killed sweep re-run
predicts only what was not finished, and its results equal those of one clean run.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from interrvos.data import storage
from interrvos.errors import InterRVOSError
from interrvos.sweep import scoring
from interrvos.sweep.cache import PredictionCache
from interrvos.sweep.cells import Cell, resolve_grid
from interrvos.sweep.config import SweepConfig
from interrvos.sweep.predict import predict_rows, settings_json

Progress = Callable[[dict[str, Any]], None]


@dataclass
class Outcome:
    """What became of a cell in this run."""

    cell: Cell
    cached: int = 0  # expressions already in the cache when the run started
    predicted: int = 0  # expressions predicted by this run
    remaining: set[str] = field(default_factory=set)  # keys still being predicted
    errors: list[str] = field(default_factory=list)
    reason: str | None = None  # set: the cell failed
    handle: Any = None  # its scoring, once started
    metrics: dict[str, Any] | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)  # per expression

    @property
    def status(self) -> str:
        return "failed" if self.reason else ("done" if self.metrics is not None else "pending")


def cell_lines(cell: Cell, cache: PredictionCache) -> list[dict[str, Any]]:
    """The cell's predictions in dataset order, named by its own video and expression ids (a cached line
    may come from another dataset holding the same video)."""
    found = cache.lines(cell.keys)
    return [{**found[k], "video": r["video"], "expression": r["expression"]}
            for k, r in zip(cell.keys, cell.dataset.rows, strict=True)]


def _reason(err: BaseException) -> str:
    """One line: the original error (a Ray task's error carries it; an actor that died in its
    constructor names it only in its message's traceback: the last `XError: ...` line)."""
    cause = getattr(err, "cause", None)
    err = cause if isinstance(cause, BaseException) else err
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(err).splitlines()]
    raised = [line for line in lines[1:] if re.match(r"^[\w.]+(Error|Exception)\b.*: ", line)]
    return raised[-1] if raised else f"{type(err).__name__}: {next((line for line in lines if line), '')}"


class Sweep:
    """One run of a config: the bookkeeping shared by the prediction threads."""

    def __init__(self, cfg: SweepConfig, progress: Progress | None = None):
        self.cfg, self.progress = cfg, progress or (lambda event: None)
        self.cache = PredictionCache(cfg.cache)
        self.lock = threading.Lock()
        self.model_calls = self.written = 0
        self.cells = resolve_grid(cfg, self.cache)
        present = self.cache.present({k for c in self.cells for k in c.keys})
        self.outcomes = {c.id: Outcome(c, cached=sum(k in present for k in c.keys),
                                       remaining={k for k in c.keys if k not in present}) for c in self.cells}
        self.waiting: dict[str, list[Outcome]] = {}  # key -> cells that need it
        for o in self.outcomes.values():
            o.reason = o.cell.problem
            for k in o.remaining:
                self.waiting.setdefault(k, []).append(o)

    # ---- cells finishing -----------------------------------------------------------------------

    def _predicted_all(self, o: Outcome) -> None:
        """Every expression of the cell is in (or failed): score it, or fail it."""
        if o.reason:
            return
        if o.errors:
            o.reason = f"{len(o.errors)} expression(s) could not be predicted; first: {o.errors[0]}"
            self.progress({"event": "failed", "cell": o.cell.label, "reason": o.reason})
            return
        lines = cell_lines(o.cell, self.cache)
        if self.cfg.report.keep_predictions:
            from interrvos.model.predictions_io import write_predictions

            write_predictions(storage.join(self.cfg.out, "cells", o.cell.id, "predictions.jsonl"), lines)
        o.handle = scoring.submit(o.cell, lines, self.scoring)

    def _on_row(self, row: dict[str, Any]) -> None:
        key = row["key"]
        if row["status"] == "written":
            self.cache.put(key, row["line"])
        with self.lock:
            self.model_calls += int(row["model_calls"])
            self.written += row["status"] == "written"
            finished = []
            for o in self.waiting.pop(key, []):
                o.remaining.discard(key)
                if row["status"] == "written":
                    o.predicted += 1
                else:
                    o.errors.append(row["error"])
                if not o.remaining:
                    finished.append(o)
                self.progress({"event": "predicted", "cell": o.cell.label, "done": len(o.cell.keys) - len(o.remaining),
                               "total": len(o.cell.keys)})
        for o in finished:
            self._predicted_all(o)

    # ---- prediction ----------------------------------------------------------------------------

    def groups(self) -> list[list[Outcome]]:
        """Cells with something to predict, by model group (one actor pool each), in grid order."""
        groups: dict[tuple, list[Outcome]] = {}
        for o in self.outcomes.values():
            if o.remaining and not o.reason:
                groups.setdefault(o.cell.model_group, []).append(o)
        return list(groups.values())

    @staticmethod
    def group_rows(groups: list[list[Outcome]]) -> list[list[dict[str, Any]]]:
        """Per group, the rows to predict, by cell then video; a key two cells share is predicted once."""
        claimed: set[str] = set()
        out = []
        for group in groups:
            rows = []
            for o in group:
                for key, r in zip(o.cell.keys, o.cell.dataset.rows, strict=True):
                    if key in o.remaining and key not in claimed:
                        claimed.add(key)
                        rows.append({"key": key, "dataset": o.cell.dataset.entry.path, "video": r["video"],
                                     "expression": r["expression"], "text": r["text"],
                                     "settings": settings_json(o.cell.settings["inference"])})
            out.append(rows)
        return out

    def _predict_group(self, group: list[Outcome], rows: list[dict[str, Any]]) -> None:
        cell = group[0].cell
        if not rows:
            return
        s = cell.settings
        try:
            for row in predict_rows(cell.checkpoint.path, cell.checkpoint.id, s["model_overrides"], s["device"],
                                    s["dtype"], rows, self.cfg.predict, len(group)):  # fmt: skip
                self._on_row(row)
        except Exception as err:  # noqa: BLE001 - a group that cannot run (e.g. weights that do not load) fails its cells
            reason = f"prediction with checkpoint {cell.checkpoint.id!r} failed: {_reason(err)}"
            with self.lock:
                for o in group:
                    if o.remaining and not o.reason:
                        o.reason = reason
            self.progress({"event": "failed", "cell": cell.checkpoint.id, "reason": reason})

    def executor(self, predicting: bool) -> str:
        """Where cells are scored: `auto` scores in this process when no Ray is needed (all cached, no
        cluster running or addressed): starting one would cost more than it saves."""
        import ray

        from interrvos.runtime import cluster_address

        chosen = self.cfg.scoring.executor
        if chosen != "auto":
            return chosen
        return "task" if predicting or ray.is_initialized() or cluster_address(self.cfg.ray)[0] else "local"

    def concurrency(self, groups: int) -> int:
        if self.cfg.max_concurrent_groups:
            return max(1, min(groups, self.cfg.max_concurrent_groups))
        import ray

        res, w = ray.cluster_resources(), self.cfg.predict.workers
        fits = [res.get("CPU", 0) // (w.num_cpus * w.min_size)]
        if w.num_gpus:
            fits.append(res.get("GPU", 0) // (w.num_gpus * w.min_size))
        return int(max(1, min(groups, *fits)))

    def run(self) -> dict[str, Any]:
        from interrvos.runtime import ensure_ray

        started = time.perf_counter()
        groups = self.groups()
        self.scoring = self.cfg.scoring.model_copy(update={"executor": self.executor(bool(groups))})
        if groups or self.scoring.executor == "task":
            ensure_ray(self.cfg.ray)
        for o in self.outcomes.values():
            if not o.remaining:
                self._predicted_all(o)  # all cached: scored at once, beside the predictions of the others
        if groups:
            with ThreadPoolExecutor(self.concurrency(len(groups)), thread_name_prefix="sweep-group") as pool:
                list(pool.map(self._predict_group, groups, self.group_rows(groups)))
        predicted_at = time.perf_counter()
        for o in self.outcomes.values():
            if o.remaining and not o.reason:
                o.reason = "not predicted (its model group did not run)"
            if o.handle is not None and not o.reason:
                try:
                    o.metrics = scoring.result(o.handle)
                    o.rows = scoring.expression_rows(o.cell, o.metrics)
                    self.progress({"event": "scored", "cell": o.cell.label})
                except (InterRVOSError, Exception) as err:  # noqa: BLE001 - e.g. predictions that do not fit the dataset
                    o.reason = f"scoring failed: {_reason(err)}"
        return self.finish(started, predicted_at)

    def finish(self, started: float, predicted_at: float) -> dict[str, Any]:
        from interrvos.sweep.report import write_report

        outcomes = list(self.outcomes.values())
        summary = {
            "name": self.cfg.name, "out": self.cfg.out, "cache": self.cache.path,
            "cells": len(outcomes), "done": sum(o.status == "done" for o in outcomes),
            "failed": [{"cell": o.cell.id, "label": o.cell.label, "reason": o.reason} for o in outcomes if o.reason],
            "expressions_cached": sum(o.cached for o in outcomes),
            "expressions_predicted": self.written, "model_calls": self.model_calls,
            "predict_seconds": round(predicted_at - started, 2),
        }  # fmt: skip
        summary["report"] = write_report(self.cfg, outcomes, summary)
        summary["seconds"] = round(time.perf_counter() - started, 2)
        storage.write_json(storage.join(self.cfg.out, "sweep_summary.json"), summary, indent=2)
        if self.cfg.leaderboard.url:
            from interrvos.sweep.leaderboard import send_results

            summary["leaderboard"] = send_results(self.cfg, outcomes)
        self.cache.close()
        return summary


def run_sweep(cfg: SweepConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Run (or resume) a sweep; returns its summary (also `<out>/sweep_summary.json`)."""
    return Sweep(cfg, progress).run()


def summary_line(summary: dict[str, Any]) -> str:
    return json.dumps({k: summary[k] for k in ("cells", "done", "expressions_cached", "expressions_predicted",
                                               "model_calls", "seconds")})
