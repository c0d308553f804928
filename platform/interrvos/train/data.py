"""Training data on Ray Data: the run's sample plan (train/plan.py) becomes one dataset per Train rank
(its shard: exactly the samples of its slots, in step order), streamed through an actor pool that
decodes frames and masks and runs the model's processor (`BuildSamples`), off the training step's
critical path; the worker iterates it with `iter_torch_batches` (collation in prefetch threads).

Each rank's dataset is built by a callable that Ray Train calls whenever it (re)starts the worker group,
so after a failure, or on a re-run with the same name, the pipeline starts at the step of the
checkpoint being resumed instead of decoding trained samples again.
"""

from __future__ import annotations

from typing import Any

from interrvos.config import ActorPoolConfig
from interrvos.data.mevis import load_dataset
from interrvos.stages import Stage
from interrvos.train.checkpointing import resume_step_hint
from interrvos.train.config import TrainConfig
from interrvos.train.plan import SamplePlan, SourceInfo, source_info
from interrvos.train.task import BuildSamples, TrainTask


def load_sources(cfg: TrainConfig) -> list[SourceInfo]:
    """Every source's videos and expressions (meta_expressions.json only; masks are read by the decoders)."""
    return [source_info(load_dataset(s.path), s.ratio, s.videos) for s in cfg.data.sources]


def make_plan(cfg: TrainConfig, sources: list[SourceInfo], world_size: int) -> SamplePlan:
    d, o = cfg.data, cfg.optim
    return SamplePlan(sources, frames=d.frames_per_sample, expressions=d.expressions_per_sample,
                      samples_per_epoch=d.samples_per_epoch, batch_size=o.batch_size, grad_accum=o.grad_accum,
                      world_size=world_size, seed=cfg.seed)  # fmt: skip


def stage_plan(cfg: TrainConfig) -> list[Stage]:
    """The Ray Data stage feeding each training worker and what each of its actors reserves."""
    return [Stage.actor_pool("decode", cfg.data.decoders,
                             note=f"per training worker ({cfg.workers.num_workers}): frames, masks, processor")]


def rank_dataset(plan: SamplePlan, task: TrainTask, rank: int, start_step: int, total_steps: int,
                 decoders: ActorPoolConfig):  # fmt: skip
    """Rank's samples for steps [start_step, total_steps) as a streaming Ray Dataset of training rows."""
    import ray.data

    rows: list[dict[str, Any]] = list(plan.rows(rank, start_step, total_steps))
    if not rows:  # finished: the worker returns before iterating
        rows = [{"step": total_steps, "micro": 0, "slot": 0, "epoch": 0, "source": 0, "video": "", "frames": [],
                 "expressions": [], "seed": 0}]  # fmt: skip
    blocks = max(1, min(len(rows) // plan.batch_size, 4096))  # about one micro-batch per block: early first batch
    return ray.data.from_items(rows, override_num_blocks=blocks).map(
        BuildSamples, fn_constructor_args=(task,), **Stage.actor_pool("decode", decoders).ray_args())


class RankDataset:
    """Ray Train calls this at every worker-group start: the rank's remaining samples."""

    def __init__(self, plan: SamplePlan, task: TrainTask, rank: int, total_steps: int, run_uri: str,
                 decoders: ActorPoolConfig):  # fmt: skip
        self.plan, self.task, self.rank, self.total_steps, self.run_uri = plan, task, rank, total_steps, run_uri
        self.decoders = decoders

    def __call__(self):
        start = min(resume_step_hint(self.run_uri), self.total_steps)
        return rank_dataset(self.plan, self.task, self.rank, start, self.total_steps, self.decoders)
