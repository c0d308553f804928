"""`interrvos annotate`: the clips table of `interrvos extract` -> an InterRVOS dataset, on Ray Data.

    clips table (driver) -> prepare (CPU actor pool: tracks, measured evidence, highlighted frames)
    -> stage 1 -> stage 2 -> stage 3 -> stage 4 (one autoscaling actor pool each; an actor keeps
       `clips_in_flight` clips going and, through its backend, a bounded number of requests)
    -> write the clip's record (annotations/<clip>.json) -> finalise (driver: assemble, split, stats)

Rows are clips, streaming end to end. Exactly-once: every answer is cached durably under its key
before it is used; a clip's record is written last and only when no item of it failed; a re-run
skips clips with a record and re-asks only what is not cached. The final dataset is rebuilt from
the records, so it is the same however many runs and kills it took. A vLLM stage runs as a Ray Data
LLM processor over the stage's requests instead (a barrier per stage; see backends/vllm_backend.py).
"""

from __future__ import annotations

import asyncio
import json
import pickle
import threading
import time
from collections.abc import Callable
from typing import Any

from interrvos.annotate import stages
from interrvos.annotate.answers import merge_stats
from interrvos.annotate.cache import AnswerCache
from interrvos.annotate.config import STAGES, AnnotateConfig
from interrvos.annotate.layout import AnnotateLayout
from interrvos.annotate.prepare import prepare_clip, signature
from interrvos.data import storage
from interrvos.data.records import ClipRecord
from interrvos.errors import InterRVOSError


def _row(clip_id: str, status: str, state: dict | None = None, images: dict | None = None, **extra: Any) -> dict:
    # Every row has the same columns so Ray Data blocks share one schema.
    return {"clip_id": clip_id, "status": status, "state": json.dumps(state) if state is not None else "",
            "images": pickle.dumps(images) if images else b"", "error": extra.get("error", "")}


class PrepareClip:
    """Ray Data actor (CPU): skip finished clips, measure evidence, render the frames still needed."""

    def __init__(self, cfg: AnnotateConfig):
        self.cfg, self.layout, self.cache = cfg, AnnotateLayout(cfg.out), AnswerCache(cfg.out)
        self.signature = signature(cfg)

    def __call__(self, row: dict) -> dict:
        clip = ClipRecord.model_validate_json(row["clip"])
        record_path = self.layout.record(clip.clip_id)
        if storage.exists(record_path) and storage.read_json(record_path).get("signature") == self.signature:
            return _row(clip.clip_id, "done")
        try:
            status, state, images = prepare_clip(self.cfg.dataset, clip, self.cfg, self.cache)
        except Exception as err:  # a bad clip is reported, never fatal
            return _row(clip.clip_id, "error", error=f"prepare: {type(err).__name__}: {err}")
        return _row(clip.clip_id, status, state, images)


class AnswerStage:
    """Ray Data actor for one LLM stage: its backend and an event loop; several clips at once
    (threads hand their clip to the loop, where the backend bounds requests in flight and qps)."""

    def __init__(self, stage: str, cfg: AnnotateConfig):
        from interrvos.annotate.backends.base import build_backend

        self.stage, self.cfg, self.cache = stage, cfg, AnswerCache(cfg.out)
        self.backend = build_backend(cfg, stage)
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True, name=f"{stage}-loop").start()

    def __call__(self, row: dict) -> dict:
        if row["status"] != "todo":
            return row
        state = json.loads(row["state"])
        images = pickle.loads(row["images"]) if row["images"] else {}
        try:
            work = stages.run_stage(self.stage, state, self.cfg, self.backend, self.cache, images)
            asyncio.run_coroutine_threadsafe(work, self.loop).result()
        except Exception as err:  # a bug in one clip's handling must not stop the others
            return _row(row["clip_id"], "error", error=f"{self.stage}: {type(err).__name__}: {err}")
        return _row(row["clip_id"], "todo", state, frames_still_needed(images, self.stage))


class WriteRecord:
    """Ray Data actor (light): the clip's record, written last, when none of its items failed."""

    def __init__(self, cfg: AnnotateConfig):
        self.layout, self.signature = AnnotateLayout(cfg.out), signature(cfg)

    def __call__(self, row: dict) -> dict:
        if row["status"] not in ("todo", "no_objects"):
            return {**row, "images": b""}
        state = json.loads(row["state"])
        failed = failed_items(state)
        if failed:
            return {**_row(row["clip_id"], "incomplete", state), "error": "; ".join(failed[:3])}
        storage.write_json(self.layout.record(row["clip_id"]), {"signature": self.signature, **state,
                                                                "status": row["status"]})
        return _row(row["clip_id"], "annotated" if row["status"] == "todo" else "no_objects", state)


def frames_still_needed(images: dict[str, list[bytes]], done_stage: str) -> dict[str, list[bytes]]:
    """Only stage 3's frames travel on after stage 1 (cache keys start with their stage)."""
    return {k: v for k, v in images.items() if k.startswith("stage3/")} if done_stage in ("stage1", "stage2") else {}


def failed_items(state: dict) -> list[str]:
    """'stage item: reason' of every item whose answer could not be fetched (not cached; re-asked next run)."""
    out = []
    for outcome in all_outcomes(state):
        if outcome and outcome["status"] == "failed":
            out.append(f"{outcome['stage']} {outcome['item']}: {outcome['reason']}")
    return out


def all_outcomes(state: dict) -> list[dict]:
    return ([*state["stage1"].values(), *state["stage2"]["objects"].values(), state["stage2"]["merge"],
             state["stage3"]] + [e["outcome"] for e in state["stage4"]])


def _llm_stage(ds, stage: str, cfg: AnnotateConfig):
    import ray

    if cfg.backend_for(stage) == "vllm":
        from interrvos.annotate.backends.vllm_backend import run_vllm_stage

        rows = run_vllm_stage(stage, ds.take_all(), cfg)
        return ray.data.from_items(rows, override_num_blocks=max(1, len(rows)))
    pool = getattr(cfg.pools, stage)
    return ds.map(AnswerStage, fn_constructor_kwargs={"stage": stage, "cfg": cfg}, num_cpus=pool.num_cpus,
                  compute=ray.data.ActorPoolStrategy(min_size=pool.min_size, max_size=pool.max_size,
                                                     max_tasks_in_flight_per_actor=pool.clips_in_flight,
                                                     max_concurrent_calls_per_actor=pool.clips_in_flight,
                                                     enable_true_multi_threading=True))


def run_annotate(cfg: AnnotateConfig, progress: Callable[[dict, dict], None] | None = None) -> dict[str, Any]:
    """Run the four stages over every clip of `cfg.dataset` and write the dataset to `cfg.out`.
    `progress(row, totals)` is called per finished clip with the run's per-stage counters so far."""
    import ray

    from interrvos.annotate.finalize import finalize_annotation
    from interrvos.clips.finalize import read_clips_table
    from interrvos.runtime import ensure_ray

    layout = AnnotateLayout(cfg.out)
    if not storage.exists(storage.join(cfg.dataset, "clips.parquet")):
        raise InterRVOSError(f"{cfg.dataset}: no clips.parquet; run `interrvos extract --out {cfg.dataset}` first")
    ensure_ray(cfg.ray)
    started = time.perf_counter()
    clips = read_clips_table(cfg.dataset)
    storage.makedirs(cfg.out)
    storage.sweep_temporaries(layout.records_dir)
    totals: dict[str, Any] = {"clips": {}, "stages": {s: {} for s in STAGES}, "errors": []}
    if clips:
        ds = ray.data.from_items([{"clip": c.model_dump_json()} for c in clips], override_num_blocks=len(clips))
        pool = cfg.pools.prepare
        ds = ds.map(PrepareClip, fn_constructor_kwargs={"cfg": cfg}, num_cpus=pool.num_cpus,
                    compute=ray.data.ActorPoolStrategy(min_size=pool.min_size, max_size=pool.max_size))
        for stage in STAGES:
            ds = _llm_stage(ds, stage, cfg)
        pool = cfg.pools.write
        ds = ds.map(WriteRecord, fn_constructor_kwargs={"cfg": cfg}, num_cpus=pool.num_cpus,
                    compute=ray.data.ActorPoolStrategy(min_size=pool.min_size, max_size=pool.max_size))
        for row in ds.iter_rows():
            _count(totals, row)
            if progress:
                progress(row, totals)
    return finalize_annotation(cfg, clips, totals, time.perf_counter() - started)


def _count(totals: dict[str, Any], row: dict) -> None:
    totals["clips"][row["status"]] = totals["clips"].get(row["status"], 0) + 1
    if row["state"]:
        for stage, stats in json.loads(row["state"]).get("stats", {}).items():
            merge_stats(totals["stages"][stage], stats)
    if row["error"]:
        totals["errors"].append({"clip_id": row["clip_id"], "status": row["status"], "error": row["error"]})
