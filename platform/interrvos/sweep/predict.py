"""Predicting the missing expressions of a model group (the cells that share a loaded checkpoint) on
Ray Data: one autoscaling actor pool per group, one model per actor (model/predict.py's loader and
segmentation), rows of several cells, datasets and inference settings in one stream.

Rows arrive grouped by cell and video, so a batch's rows of one (video, settings) share one model
call and SAM2's frame encoding. Each output row carries the predictions-format line back to the
driver, which commits it to the cache at once (workers never write the cache), and how many model
calls it took (`model_calls`: the test of a metric-only re-run counts them).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import numpy as np

from interrvos.errors import InterRVOSError
from interrvos.model.predictions_io import dumps_line, prediction_line
from interrvos.stages import Stage
from interrvos.sweep.config import PredictSettings

OUTPUT = ("key", "status", "error", "line", "model_calls")


class SweepPredictWorker:
    """Ray Data callable class: the group's checkpoint loaded once per actor; datasets opened on first use."""

    def __init__(self, checkpoint: str, model_overrides: list[str], device: str, dtype: str, num_threads: int = 1):
        from interrvos.model.predict import load_predict_model

        self.model, self.device, self.dtype = load_predict_model(checkpoint, device, dtype, num_threads, model_overrides)
        self.datasets: dict[str, Any] = {}

    def _dataset(self, root: str):
        from interrvos.data.mevis import load_dataset

        if root not in self.datasets:
            self.datasets[root] = load_dataset(root)
        return self.datasets[root]

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        from interrvos.model.config import InferenceSettings
        from interrvos.model.predict import segment_dataset_video

        out: dict[str, list] = {k: [] for k in OUTPUT}
        calls: dict[tuple[str, str, str], list[tuple[str, str, str]]] = {}  # (dataset, video, settings) -> rows
        for key, root, vid, exp, text, settings in zip(batch["key"], batch["dataset"], batch["video"],
                                                       batch["expression"], batch["text"], batch["settings"], strict=True):
            calls.setdefault((str(root), str(vid), str(settings)), []).append((str(key), str(exp), str(text)))
        for (root, vid, settings), rows in calls.items():
            try:
                results = segment_dataset_video(self.model, self._dataset(root), vid, [t for _, _, t in rows],
                                                InferenceSettings.model_validate_json(settings), self.device, self.dtype)
                for n, ((key, exp, _), r) in enumerate(zip(rows, results, strict=True)):
                    line = prediction_line(vid, exp, r.actor, r.target, " | ".join(r.answers))
                    _append(out, key, "written", "", dumps_line(line), int(n == 0))
            except (InterRVOSError, OSError, ValueError, RuntimeError) as err:
                for n, (key, _, _) in enumerate(rows):
                    _append(out, key, "error", f"video {vid!r}: {type(err).__name__}: {err}", "", int(n == 0))
        return out


def _append(out: dict[str, list], *values: Any) -> None:
    for column, value in zip(OUTPUT, values, strict=True):
        out[column].append(value)


def group_stage(name: str, settings: PredictSettings, cells: int) -> Stage:
    return Stage.actor_pool(f"predict {name}", settings.workers,
                            note=f"{cells} cell(s); one model per actor, {settings.batch_size} expressions a call")


def predict_rows(checkpoint: str, name: str, model_overrides: list[str], device: str, dtype: str,
                 rows: list[dict[str, Any]], settings: PredictSettings, cells: int) -> Iterable[dict[str, Any]]:  # fmt: skip
    """Stream the output rows of predicting `rows` (key, dataset, video, expression, text, settings JSON)."""
    import ray

    stage = group_stage(name, settings, cells)
    data = ray.data.from_items(rows).map_batches(
        SweepPredictWorker,
        fn_constructor_kwargs={"checkpoint": checkpoint, "model_overrides": model_overrides, "device": device,
                               "dtype": dtype, "num_threads": max(1, int(settings.workers.num_cpus))},
        batch_size=settings.batch_size,
        **stage.ray_args(),
    )
    yield from data.iter_rows()


def settings_json(inference: dict[str, Any]) -> str:
    return json.dumps(inference, sort_keys=True)

