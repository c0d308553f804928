"""`interrvos predict`: a checkpoint over a dataset on Ray Data, written as a predictions file.

Pipeline: plan one row per (video, expression) (driver) -> an autoscaling actor pool, one model per
actor (`PredictWorker`; the rows of one video in a batch share SAM2's frame encoding) -> each
finished expression is written at once as a part file `<out>.parts/<key>.json` -> the driver merges
the parts in dataset order into `<out>` (JSON lines, predictions_io) and `<out>.summary.json`.
Resumable: rows already in `<out>` or in a part file are skipped; a failing video is recorded
(video, expression, reason) and the rest finishes; a re-run retries only what failed.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from functools import lru_cache

import numpy as np

from interrvos.data import storage
from interrvos.data.mevis import Dataset, load_dataset
from interrvos.errors import DatasetError, InterRVOSError
from interrvos.model.config import InferenceSettings, PredictConfig
from interrvos.model.predictions_io import (
    PredictionsError,
    dumps_line,
    prediction_line,
    read_predictions,
    write_predictions,
)
from interrvos.placement import count_nodes, current_node_id
from interrvos.stages import Stage


def part_name(video: str, expression: str) -> str:
    return hashlib.sha1(f"{video}\0{expression}".encode()).hexdigest()[:20] + ".json"


def plan_rows(ds: Dataset, cfg: PredictConfig) -> list[dict]:
    """Every (video, expression) to predict, in dataset order, grouped by video."""
    rows = [
        {"video": vid, "expression": exp_id, "text": e.exp, "order": i}
        for i, (vid, exp_id, e) in enumerate(ds.all_expressions())
        if cfg.videos is None or vid in cfg.videos
    ]
    return rows[: cfg.limit] if cfg.limit else rows


class DatasetFrames:
    """A video of a dataset as a lazy FrameSource (frames decoded on demand, a few kept)."""

    def __init__(self, ds: Dataset, vid: str):
        self.ds, self.vid, self.names = ds, vid, ds.videos[vid].frames
        self._read = lru_cache(maxsize=8)(self._load)

    def _load(self, i: int) -> np.ndarray:
        return self.ds.read_frame(self.vid, self.names[i])

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> np.ndarray:
        return self._read(int(i))


def resolve_device(device: str, dtype: str):
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dtype == "auto":
        dt = torch.bfloat16 if dev.type == "cuda" else torch.float32
    else:
        dt = getattr(torch, dtype)
    return dev, dt


def load_predict_model(checkpoint: str, device: str, dtype: str, num_threads: int = 1,
                       model_overrides: list[str] | None = None):
    """(model, device, dtype): a checkpoint's model in eval mode, as each predict actor holds it (also the
    sweep's actors). model_overrides: dotted settings of its model config that keep the weights."""
    import torch

    from interrvos.model.checkpoint import load_checkpoint

    torch.set_num_threads(max(1, num_threads))
    dev, dt = resolve_device(device, dtype)
    return load_checkpoint(checkpoint, model_overrides or None).to(dev, dt).eval(), dev, dt


def segment_dataset_video(model, ds: Dataset, vid: str, texts: list[str], settings: InferenceSettings, device, dtype):
    """segment_video over one video of a dataset (frames decoded lazily): one model call for `texts`."""
    from interrvos.model.inference import inference_context, segment_video

    if vid not in ds.videos:
        raise DatasetError(f"video {vid!r} is not in the dataset")
    with inference_context(device, dtype):
        return segment_video(model, DatasetFrames(ds, vid), texts, settings)


class PredictWorker:
    """One model per actor: loads the checkpoint once, then segments batches of expression rows."""

    def __init__(self, checkpoint: str, dataset: str, parts: str, inference: dict | None, device: str, dtype: str,
                 num_threads: int = 1, model_overrides: list[str] | None = None):  # fmt: skip
        self.model, self.device, self.dtype = load_predict_model(checkpoint, device, dtype, num_threads, model_overrides)
        self.settings = InferenceSettings(**inference) if inference else self.model.cfg.inference
        self.ds = load_dataset(dataset)
        self.parts = parts

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        out: dict[str, list] = {"video": [], "expression": [], "status": [], "error": [], "frames": [], "node": []}
        by_video: dict[str, list[tuple[str, str]]] = {}
        for vid, exp_id, text in zip(batch["video"], batch["expression"], batch["text"], strict=True):
            by_video.setdefault(str(vid), []).append((str(exp_id), str(text)))
        for vid, items in by_video.items():
            todo = [(e, t) for e, t in items if not storage.exists(storage.join(self.parts, part_name(vid, e)))]
            pending = {e for e, _ in todo}
            for e, _ in items:
                if e not in pending:  # written by an earlier attempt
                    self._record(out, vid, e, "done", "", 0)
            if not todo:
                continue
            try:
                results = self._segment(vid, [t for _, t in todo])
                for (e, _), r in zip(todo, results, strict=True):
                    line = prediction_line(vid, e, r.actor, r.target, " | ".join(r.answers))
                    storage.write_bytes(storage.join(self.parts, part_name(vid, e)), dumps_line(line).encode())
                    self._record(out, vid, e, "written", "", len(r.actor))
            except (InterRVOSError, OSError, ValueError, RuntimeError) as err:
                for e, _ in todo:
                    self._record(out, vid, e, "error", f"{type(err).__name__}: {err}", 0)
        return out

    def _segment(self, vid: str, texts: list[str]):
        return segment_dataset_video(self.model, self.ds, vid, texts, self.settings, self.device, self.dtype)

    @staticmethod
    def _record(out: dict, vid: str, exp: str, status: str, error: str, frames: int) -> None:
        row = {"video": vid, "expression": exp, "status": status, "error": error, "frames": frames,
               "node": current_node_id()}
        for key, value in row.items():
            out[key].append(value)


def _existing(out: str) -> dict[tuple[str, str], dict]:
    if not storage.exists(out):
        return {}
    try:
        return read_predictions(out)
    except PredictionsError:
        return {}  # a damaged file is rebuilt from the parts and by predicting again


def stage_plan(cfg: PredictConfig) -> list[Stage]:
    """The Ray Data stage of `interrvos predict` and what each actor reserves (`--show-plan`)."""
    return [Stage.actor_pool("predict", cfg.workers, note=f"one model per actor, {cfg.batch_size} expressions a call")]


def run_predict(cfg: PredictConfig, progress: Callable[[dict], None] | None = None) -> dict:
    """Predict every planned expression; returns the summary (also written to <out>.summary.json)."""
    import ray

    from interrvos.runtime import ensure_ray

    started = time.perf_counter()
    ds = load_dataset(cfg.dataset)
    rows = plan_rows(ds, cfg)
    parts = f"{cfg.out}.parts"
    previous = _existing(cfg.out)
    for key, line in previous.items():  # finished in an earlier run: keep them as parts
        path = storage.join(parts, part_name(*key))
        if not storage.exists(path):
            storage.write_bytes(path, dumps_line(line).encode())
    todo = [r for r in rows if not storage.exists(storage.join(parts, part_name(r["video"], r["expression"])))]
    statuses: list[dict] = []
    if todo:
        ensure_ray(cfg.ray)
        workers = cfg.workers
        (stage,) = stage_plan(cfg)
        pipeline = ray.data.from_items(todo).map_batches(
            PredictWorker,
            fn_constructor_kwargs={
                "checkpoint": cfg.checkpoint, "dataset": cfg.dataset, "parts": parts,
                "inference": cfg.inference.model_dump() if cfg.inference else None, "device": cfg.device,
                "dtype": cfg.dtype, "num_threads": max(1, int(workers.num_cpus)), "model_overrides": cfg.model_overrides,
            },  # fmt: skip
            batch_size=cfg.batch_size,
            **stage.ray_args(),
        )
        for row in pipeline.iter_rows():
            statuses.append(row)
            if progress:
                progress(row)
    lines = []
    for r in rows:
        path = storage.join(parts, part_name(r["video"], r["expression"]))
        if storage.exists(path):
            lines.append(json.loads(storage.read_bytes(path)))
    write_predictions(cfg.out, lines)
    errors = [{"video": s["video"], "expression": s["expression"], "error": s["error"]} for s in statuses
              if s["status"] == "error"]  # fmt: skip
    if not errors and len(lines) == len(rows):
        storage.remove_tree(parts)
    seconds = time.perf_counter() - started
    frames = int(sum(s["frames"] for s in statuses))
    summary = {
        "out": cfg.out, "checkpoint": cfg.checkpoint, "dataset": cfg.dataset, "expressions": len(rows),
        "written": sum(s["status"] == "written" for s in statuses), "already_done": len(rows) - len(todo),
        "predictions": len(lines), "errors": errors, "seconds": round(seconds, 2),
        "frames_segmented": frames, "frames_per_s": round(frames / seconds, 2) if frames else 0.0,
        "nodes": count_nodes(s["node"] for s in statuses if s["status"] == "written"),  # expressions per Ray node
    }  # fmt: skip
    storage.write_json(f"{cfg.out}.summary.json", summary, indent=2)
    return summary
