"""Scoring a cell: its predictions from the cache through `interrvos evaluate`'s own code (validation,
J and F, Table 5 / Table 4 means), on its dataset's filtered view; so a cell's numbers are exactly
those of `interrvos predict` + `interrvos evaluate` by hand. Runs as a Ray task per cell (CPU work
beside the prediction actors) or in the driver; then the per-expression rows of the results table.
"""

from __future__ import annotations

import math
import os
import tempfile
from typing import Any

from interrvos.data.mevis import Dataset
from interrvos.sweep.config import DatasetEntry, ScoringSettings


def score_cell(entry: dict[str, Any], lines: list[dict[str, Any]], scoring: dict[str, Any], label: str) -> dict:
    """The metrics of `interrvos evaluate` (run.build_metrics) for a cell's prediction lines."""
    from interrvos.data.mevis import load_dataset
    from interrvos.evaluate.config import EvaluateConfig, OverlayConfig
    from interrvos.evaluate.run import evaluate
    from interrvos.model.predictions_io import write_predictions
    from interrvos.sweep.cells import filtered_dataset

    spec, how = DatasetEntry.model_validate(entry), ScoringSettings.model_validate(scoring)
    ds = filtered_dataset(load_dataset(spec.path), spec)
    with tempfile.TemporaryDirectory(prefix="interrvos-sweep-") as tmp:
        path = os.path.join(tmp, "predictions.jsonl")
        write_predictions(path, lines)
        cfg = EvaluateConfig(dataset=spec.path, predictions=path, name=label, executor="local",
                             frame_averaging=how.frame_averaging, unpaired_interactions=how.unpaired_interactions,
                             sensitivity_pairs=how.sensitivity_pairs, overlays=OverlayConfig(samples=0))  # fmt: skip
        metrics = evaluate(cfg, dataset=ds).metrics
    metrics["predictions"] = None  # the temporary file; the sweep names its own copy
    return metrics


def expression_rows(cell, metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per scored expression: J, F, J&F (x100, the mean of its items), its setting, caption
    type and the metadata slices are cut by (interaction, number of objects, clip length)."""
    ds: Dataset = cell.dataset.ds
    rows = []
    for e in metrics["expressions"]:
        items = [i for i in e["items"] if i["J"] is not None]
        video = ds.videos[e["video"]]
        x = video.expressions[e["expression"]]
        j = e["J"] if e["J"] is not None else math.nan
        f = e["F"] if e["F"] is not None else math.nan
        rows.append({
            "cell_id": cell.id, "label": cell.label, "checkpoint": cell.checkpoint.id, "dataset": cell.dataset.id,
            **{f"axis:{name}": value for name, value in cell.coords.items()},
            "video": e["video"], "expression": e["expression"], "exp": x.exp,
            "setting": e["items"][0]["setting"] if e["items"] else "", "caption_type": x.caption_type,
            "interaction": x.interaction, "num_objects": len(set(x.obj_id)), "clip_length": len(video.frames),
            "J": j, "F": f, "JF": (j + f) / 2, "items": len(items),
        })  # fmt: skip
    return rows


def submit(cell, lines: list[dict[str, Any]], how: ScoringSettings):
    """Start scoring a cell; returns something `result` turns into its metrics."""
    args = (cell.dataset.entry.model_dump(mode="json"), lines, how.model_dump(mode="json"), cell.label)
    if how.executor == "local":
        return ("local", args)
    import ray

    return ("task", ray.remote(num_cpus=how.num_cpus, max_retries=1)(score_cell).remote(*args))


def result(handle) -> dict[str, Any]:
    kind, value = handle
    if kind == "local":
        return score_cell(*value)
    import ray

    return ray.get(value)
