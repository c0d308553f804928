"""The per-worker training function (Ray Train V2 `TorchTrainer`): build the model, `deepspeed.initialize`
inside the worker (Ray has set up the process group: gloo on CPU, nccl on GPU), resume from the latest
checkpoint, then micro-batches from this rank's Ray Data shard -> forward/backward -> engine.step; every
`log.every_n_steps` optimizer steps one all-reduce of the metrics and a row in rank 0's local CSV; every
`checkpoint.every_n_steps` and at the end a checkpoint with `ray.train.report` (and metrics-only reports
every `log.report_every_n_steps`, off by default: each one is a cross-rank sync through Ray's
synchronisation actor and waits for the controller to have polled the previous one; docs/training.md).

CPU and GPU run this same code; they differ only in what `deepspeed_config` generates (fp32 and torch
AdamW vs bf16 and fused AdamW), the accelerator DeepSpeed selects and the device batches land on.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

import numpy as np

from interrvos.placement import record_train_worker
from interrvos.train.checkpointing import (
    LOG_FILE,
    checkpoint_dir_name,
    load_deepspeed,
    save_deepspeed,
    write_state,
)
from interrvos.train.config import TrainConfig
from interrvos.train.observe import MetricsLog, ProgressWriter
from interrvos.train.task import rows_from_batch

try:  # Ray Data's collate interface; a plain callable works too
    from ray.data.collate_fn import NumpyBatchCollateFn as _CollateBase
except ImportError:  # pragma: no cover
    _CollateBase = object


def dataset_name(rank: int) -> str:
    return f"train_rank{rank}"


def setup_process(use_gpu: bool, threads: int) -> None:
    """Before DeepSpeed is imported: its accelerator, and no JIT-compiled ops on CPU."""
    import torch

    if not use_gpu:
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    torch.set_num_threads(threads)
    import deepspeed.ops

    if not use_gpu:  # the shared-memory allreduce op compiles for ~30 s at start-up; gloo does the job
        deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False


class Collate(_CollateBase):
    """Ray Data numpy batch -> the model's batch, plus `_step` / `_micro` (which plan slot it is)."""

    def __init__(self, task):
        self.task = task

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        import torch

        rows = rows_from_batch(batch)
        out = self.task.collate(rows)
        out["_step"] = torch.tensor([int(r["step"]) for r in rows])
        out["_micro"] = torch.tensor([int(r["micro"]) for r in rows])
        out["_epoch"] = torch.tensor([int(r["epoch"]) for r in rows])
        return out


def build_engine(cfg: TrainConfig, model, world_size: int, use_gpu: bool, total_steps: int):
    import deepspeed

    from interrvos.train.deepspeed_config import build_optimizer, deepspeed_config, param_groups, scheduler_factory

    groups = param_groups(model, cfg.optim.weight_decay, cfg.optim.lr, cfg.optim.lr_multipliers)
    optimizer = build_optimizer(cfg, groups, use_gpu)
    engine, _, _, scheduler = deepspeed.initialize(
        model=model, optimizer=optimizer, model_parameters=groups if optimizer is None else None,
        lr_scheduler=scheduler_factory(cfg, total_steps), config=deepspeed_config(cfg, world_size, use_gpu),
        dist_init_required=False,
    )  # fmt: skip
    return engine, scheduler


def reduce_over_ranks(means: dict[str, Any], sums: dict[str, Any], device) -> tuple[dict, dict]:
    """Means of `means` and totals of `sums` over the ranks, in one all-reduce (python floats or 0-d
    tensors on `device`: accumulated on the device, read back once here instead of once per micro-batch)."""
    import torch
    import torch.distributed as dist

    mean_keys, sum_keys = sorted(means), sorted(sums)
    values = [means[k] for k in mean_keys] + [sums[k] for k in sum_keys]
    t = torch.stack([torch.as_tensor(v, dtype=torch.float64, device=device).reshape(()) for v in values])
    world = dist.get_world_size() if dist.is_initialized() else 1
    if world > 1:
        dist.all_reduce(t)
    out = t.tolist()
    reduced_means = {k: v / world for k, v in zip(mean_keys, out[:len(mean_keys)], strict=True)}
    return reduced_means, dict(zip(sum_keys, out[len(mean_keys):], strict=True))


def reporting_steps(step: int, total_steps: int, cfg: TrainConfig) -> tuple[bool, bool, bool]:
    """(log, report, checkpoint) at optimizer step `step`. The same on every rank (collectives follow)."""
    checkpoint = step % cfg.checkpoint.every_n_steps == 0 or step == total_steps
    every = cfg.log.report_every_n_steps
    report = checkpoint or bool(every and step % every == 0)
    return report or step % cfg.log.every_n_steps == 0, report, checkpoint


def train_fn(config: dict[str, Any]) -> None:
    """Ray Train entry point. config: cfg (TrainConfig as a dict), task, total_steps, use_gpu, run_uri."""
    cfg = TrainConfig.model_validate(config["cfg"])
    task, total_steps, use_gpu, run_uri = config["task"], config["total_steps"], config["use_gpu"], config["run_uri"]
    setup_process(use_gpu, cfg.workers.torch_threads or max(1, int(cfg.workers.cpus_per_worker)))
    import ray.train
    import ray.train.torch
    import torch

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    device = ray.train.torch.get_device() if use_gpu else torch.device("cpu")
    torch.manual_seed(cfg.seed + rank)
    model = task.build_model()
    fingerprint = task.fingerprint(model) if rank == 0 else None
    engine, _ = build_engine(cfg, model, world, use_gpu, total_steps)

    local = tempfile.mkdtemp(prefix="interrvos-train-")
    log = MetricsLog(os.path.join(local, LOG_FILE))
    progress = ProgressWriter(run_uri, total_steps) if rank == 0 else None
    step, restored = 0, None
    checkpoint = ray.train.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as folder:
            restored = load_deepspeed(engine, folder)
            step = int(restored["step"])
            if rank == 0:
                log.restore(folder, step)
    state = {"world_size": world, "zero_stage": cfg.deepspeed.stage, "total_steps": total_steps,
             "fingerprint": fingerprint, "task": task.name, "config": cfg.model_dump(mode="json")}  # fmt: skip
    if step >= total_steps:  # nothing left: the run had finished
        return
    record_train_worker(run_uri, rank, world, step)  # where this rank runs (the summary's rank -> node)
    from interrvos.train.idle_backoff import install_idle_backoff

    install_idle_backoff()  # the data pipeline's executor thread must not spin beside the step (idle_backoff.py)
    shard = ray.train.get_dataset_shard(dataset_name(rank))
    batches = shard.iter_torch_batches(batch_size=cfg.optim.batch_size, collate_fn=Collate(task),
                                       prefetch_batches=cfg.data.prefetch_batches)  # fmt: skip
    accum = cfg.optim.grad_accum
    sums: dict[str, Any] = {}  # loss terms: 0-d tensors on the device
    samples = tokens = expected_micro = 0
    data_wait = 0.0
    step_started = waited_from = time.perf_counter()
    for batch in batches:
        data_wait += time.perf_counter() - waited_from
        steps = batch.pop("_step")
        b_step, micro, n_rows = int(steps[0]), int(batch.pop("_micro")[0]), len(steps)
        epoch = int(batch.pop("_epoch")[0])
        if b_step < step:  # a restart replays the plan from where this pipeline began: skip trained steps
            waited_from = time.perf_counter()
            continue
        if b_step != step or micro != expected_micro:
            raise RuntimeError(f"rank {rank}: the data is at step {b_step} micro-batch {micro} but training is at "
                               f"step {step} micro-batch {expected_micro}; the sample plan and the checkpoint disagree")
        expected_micro = (micro + 1) % accum
        losses = engine(batch)
        engine.backward(losses["loss"])
        lr = float(engine.optimizer.param_groups[0]["lr"]) if micro == accum - 1 else None
        engine.step()
        for k, v in losses.items():  # on the device: no host sync per micro-batch
            sums[k] = sums.get(k, 0.0) + v.detach().to(torch.float64) / accum
        samples += n_rows
        tokens += task.batch_tokens(batch)
        if micro < accum - 1:
            waited_from = time.perf_counter()
            continue
        step += 1
        now = time.perf_counter()
        elapsed, step_started = now - step_started, now  # wall time per step: reports count in the next one
        log_now, report_now, checkpoint_now = reporting_steps(step, total_steps, cfg)
        if log_now:
            metrics, totals = reduce_over_ranks({**sums, "data_wait_s": data_wait},
                                                {"samples": samples, "tokens": tokens}, device)  # fmt: skip
            metrics.update({"step": step, "epoch": epoch, "lr": lr, "step_time_s": elapsed,
                            "samples_per_s": totals["samples"] / elapsed,
                            "tokens_per_s": totals["tokens"] / elapsed})  # fmt: skip
            metrics = {k: (round(v, 8) if isinstance(v, float) else v) for k, v in metrics.items()}
            if rank == 0:
                log.append(metrics)
                progress.write(metrics, force=report_now)
            if checkpoint_now:
                _report_checkpoint(engine, metrics, step, rank, log, state)
            elif report_now:
                ray.train.report(metrics)
        sums, samples, tokens, data_wait = {}, 0, 0, 0.0
        if step >= total_steps:
            break
        waited_from = time.perf_counter()
    if step < total_steps:
        raise RuntimeError(f"rank {rank}: the data ran out at step {step} of {total_steps}")
    if torch.distributed.is_initialized():
        torch.distributed.barrier()


def _report_checkpoint(engine, metrics: dict, step: int, rank: int, log: MetricsLog, state: dict) -> None:
    import shutil

    import ray.train

    with tempfile.TemporaryDirectory(prefix="interrvos-ckpt-") as folder:
        save_deepspeed(engine, folder, step)
        if rank == 0:
            write_state(folder, {**state, "step": step, "epoch": metrics["epoch"]})
            shutil.copy(log.path, os.path.join(folder, LOG_FILE))
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(folder),
                         checkpoint_dir_name=checkpoint_dir_name(step))  # fmt: skip
