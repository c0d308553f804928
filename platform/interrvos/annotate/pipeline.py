"""`interrvos annotate`: the clips table of `interrvos extract` -> an InterRVOS dataset, on Ray Data.

    clips table (driver) -> prepare (CPU actor pool: tracks, measured evidence, highlighted frames)
    -> stage 1 -> stage 2 -> stage 3 -> stage 4 (one autoscaling actor pool each; an actor keeps
       `clips_in_flight` clips going and, through its backend, a bounded number of requests)
    -> write the clip's record (annotations/<clip>.json) -> finalise (driver: assemble, split, stats)

Rows are clips, streaming end to end. Exactly-once: every answer is cached durably under its key
before it is used; a clip's record is written last and only when no item of it failed; a re-run
skips clips with a record and re-asks only what is not cached. The final dataset is rebuilt from
the records, so it is the same however many runs and kills it took. A vLLM stage runs as a Ray Data
LLM processor over the stream of the stage's requests instead (a barrier per stage; see vllm_stage.py).
Every stage's resources come from `stage_plan(cfg)` (`interrvos annotate --show-plan` prints it).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from interrvos.annotate import stages, vllm_stage
from interrvos.annotate.answers import merge_stats
from interrvos.annotate.backends.base import model_id
from interrvos.annotate.backends.factory import build_backend
from interrvos.annotate.cache import AnswerCache
from interrvos.annotate.config import STAGES, AnnotateConfig
from interrvos.annotate.layout import AnnotateLayout
from interrvos.annotate.prepare import prepare_clip, signature
from interrvos.annotate.rows import clip_row, failed_items, frames_still_needed, row_images, with_node
from interrvos.data import storage
from interrvos.data.records import ClipRecord
from interrvos.errors import InterRVOSError
from interrvos.stages import Stage


class PrepareClip:
    """Ray Data actor (CPU): skip finished clips, measure evidence, render the frames still needed."""

    def __init__(self, cfg: AnnotateConfig):
        self.cfg, self.layout, self.cache = cfg, AnnotateLayout(cfg.out), AnswerCache(cfg.out)
        self.signature = signature(cfg)

    def __call__(self, row: dict) -> dict:
        clip = ClipRecord.model_validate_json(row["clip"])
        record_path = self.layout.record(clip.clip_id)
        if storage.exists(record_path) and storage.read_json(record_path).get("signature") == self.signature:
            return clip_row(clip.clip_id, "done")
        try:
            status, state, images = prepare_clip(self.cfg.dataset, clip, self.cfg, self.cache)
        except Exception as err:  # a bad clip is reported, never fatal
            return clip_row(clip.clip_id, "error", error=f"prepare: {type(err).__name__}: {err}")
        return clip_row(clip.clip_id, status, state, images, nodes=with_node({}, "prepare"))


class AnswerStage:
    """Ray Data actor for one LLM stage: its backend and an event loop; several clips at once
    (threads hand their clip to the loop, where the backend bounds requests in flight and qps)."""

    def __init__(self, stage: str, cfg: AnnotateConfig):
        self.stage, self.cfg, self.cache = stage, cfg, AnswerCache(cfg.out)
        self.backend = build_backend(cfg, stage)
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True, name=f"{stage}-loop").start()

    def __call__(self, row: dict) -> dict:
        if row["status"] != "todo":
            return row
        state = json.loads(row["state"])
        images = row_images(row)
        try:
            work = stages.run_stage(self.stage, state, self.cfg, self.backend, self.cache, images)
            asyncio.run_coroutine_threadsafe(work, self.loop).result()
        except Exception as err:  # a bug in one clip's handling must not stop the others
            return clip_row(row["clip_id"], "error", error=f"{self.stage}: {type(err).__name__}: {err}",
                            nodes=row.get("nodes", ""))
        return clip_row(row["clip_id"], "todo", state, frames_still_needed(images, self.stage),
                        nodes=with_node(row, self.stage))


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
            return {**clip_row(row["clip_id"], "incomplete", state, nodes=row.get("nodes", "")),
                    "error": "; ".join(failed[:3])}
        storage.write_json(self.layout.record(row["clip_id"]), {"signature": self.signature, **state,
                                                                "status": row["status"]})
        return clip_row(row["clip_id"], "annotated" if row["status"] == "todo" else "no_objects", state,
                        nodes=with_node(row, "write"))


def stage_plan(cfg: AnnotateConfig) -> list[Stage]:
    """The Ray Data stages of `interrvos annotate` and what each reserves (`--show-plan`)."""
    plan = [Stage.actor_pool("prepare", cfg.pools.prepare, note="tracks, measured evidence, highlighted frames")]
    for stage in STAGES:
        if cfg.backend_for(stage) == "vllm":
            plan += vllm_stage.stage_plan(cfg, stage)
            continue
        pool = getattr(cfg.pools, stage)
        # Twice as many clips queued per actor as it works on: Ray Data adds an actor when a pool's tasks in
        # flight exceed 175% of (actors x concurrent calls); with queue == concurrency that never happens and
        # the pool would stay at min_size whatever the demand (measured: bench/bench_autoscale.py).
        plan.append(Stage.actor_pool(stage, pool, note=f"{model_id(cfg, stage)}, {pool.clips_in_flight} clips an actor",
                                     max_tasks_in_flight_per_actor=2 * pool.clips_in_flight,
                                     max_concurrent_calls_per_actor=pool.clips_in_flight,
                                     enable_true_multi_threading=True))
    plan.append(Stage.actor_pool("write", cfg.pools.write, note="the clip's record, written last"))
    return plan


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
    totals: dict[str, Any] = {"clips": {}, "stages": {s: {} for s in STAGES}, "errors": [], "nodes": {},
                              "nodes_by_step": {}}
    if clips:
        plan = {s.name: s for s in stage_plan(cfg)}
        ds = ray.data.from_items([{"clip": c.model_dump_json()} for c in clips], override_num_blocks=len(clips))
        ds = ds.map(PrepareClip, fn_constructor_kwargs={"cfg": cfg}, **plan["prepare"].ray_args())
        for stage in STAGES:
            if cfg.backend_for(stage) == "vllm":
                ds = vllm_stage.run_vllm_stage(stage, ds, cfg)
            else:
                ds = ds.map(AnswerStage, fn_constructor_kwargs={"stage": stage, "cfg": cfg}, **plan[stage].ray_args())
        ds = ds.map(WriteRecord, fn_constructor_kwargs={"cfg": cfg}, **plan["write"].ray_args())
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
    # Which node ran which step of this clip: {node: clip-steps} and {step: {node: clips}}.
    for step, node in (json.loads(row["nodes"]) if row.get("nodes") else {}).items():
        if node:
            totals["nodes"][node] = totals["nodes"].get(node, 0) + 1
            by_step = totals["nodes_by_step"].setdefault(step, {})
            by_step[node] = by_step.get(node, 0) + 1
