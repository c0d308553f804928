"""`interrvos sweep --dry-run`: the cells, what of each is already cached, and the resources each needs,
without starting Ray or loading a model (content hashes are read, and remembered in the cache)."""

from __future__ import annotations

from typing import Any

from interrvos.config import TaskPoolConfig
from interrvos.stages import Stage, format_plan, plan_rows
from interrvos.sweep.cache import PredictionCache
from interrvos.sweep.cells import Cell, resolve_grid
from interrvos.sweep.config import SweepConfig
from interrvos.sweep.predict import group_stage


def _status(cell: Cell, cached: int) -> str:
    if cell.problem:
        return f"fails: {cell.problem}"
    if cell.checkpoint.content_hash is None:
        return "training checkpoint: exported when run"
    if cached == len(cell.keys):
        return "cached (scored only)"
    return "partly cached" if cached else "to predict"


def stages(cfg: SweepConfig, cells: list[Cell], present: set[str]) -> list[Stage]:
    """One actor pool per model group with something to predict, then the scoring."""
    from interrvos.runtime import cluster_address

    groups: dict[tuple, list[Cell]] = {}
    for c in cells:
        if not c.problem and (not c.keys or any(k not in present for k in c.keys)):
            groups.setdefault(c.model_group, []).append(c)
    out = [group_stage(g[0].checkpoint.id, cfg.predict, len(g)) for g in groups.values()]
    local = cfg.scoring.executor == "auto" and not groups and not cluster_address(cfg.ray)[0]
    if cfg.scoring.executor == "local" or local:
        out.append(Stage("score", "driver", note="in the driver, one cell after another"))
    else:
        out.append(Stage.tasks("score", TaskPoolConfig(num_cpus=cfg.scoring.num_cpus), note="one Ray task per cell"))
    return out


def plan_sweep(cfg: SweepConfig) -> dict[str, Any]:
    """{"cells": one row per cell, "stages": the Ray stages that would run}."""
    cache = PredictionCache(cfg.cache)
    try:
        cells = resolve_grid(cfg, cache, export=False)
        present = cache.present({k for c in cells for k in c.keys})
    finally:
        cache.close()
    w = cfg.predict.workers
    needs = (f"{w.min_size}-{w.max_size} actor(s) x {w.num_cpus:g} CPU" + (f" {w.num_gpus:g} GPU" if w.num_gpus else "")
             + (f" {w.memory_mb} MB" if w.memory_mb else "") + f"; scoring {cfg.scoring.num_cpus:g} CPU")
    rows = []
    for c in cells:
        cached = sum(k in present for k in c.keys)
        rows.append({"cell": c.id, "label": c.label, "expressions": len(c.dataset.rows), "cached": cached,
                     "to_predict": len(c.keys) - cached if c.keys else len(c.dataset.rows) * (not c.problem),
                     "status": _status(c, cached), "needs": needs})  # fmt: skip
    return {"cells": rows, "stages": stages(cfg, cells, present)}


def format_dry_run(plan: dict[str, Any]) -> str:
    header = ["cell", "label", "expressions", "cached", "to_predict", "status", "needs"]
    cells = [[str(r[h]) for h in header] for r in plan["cells"]]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    lines = [f"{len(cells)} cells ({sum(r['to_predict'] for r in plan['cells'])} expressions to predict, "
             f"{sum(r['cached'] for r in plan['cells'])} cached):",
             "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines) + "\n\n" + format_plan("sweep", plan_rows(plan["stages"]))
