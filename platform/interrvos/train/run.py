"""`interrvos train`: the recipe. Read the config, plan the samples, build the TorchTrainer (scaling,
run name and storage, failure retries, checkpoints kept), fit, export the trained weights in the
model's format and write the run's report.

Run folder `<storage>/<name>/` (local path or URI):
  step_XXXXXXXX/        the last `checkpoint.keep_last` checkpoints (train/checkpointing.py)
  checkpoint_manager_snapshot.json   Ray Train's record of them (a re-run with the same name resumes)
  progress.json         the latest reported metrics (the progress bar reads it)
  model/                the export: a ReVIOsA checkpoint (interrvos.model.checkpoint) of the last step
  export.json           the export's summary (step, checkpoint)
  report/               metrics.csv, loss_curve.png, report.md
  workers/              one record per rank per worker group: the Ray node it ran on, the step it started at
  train_summary.json    what run_train returns
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from interrvos.data import storage
from interrvos.errors import InterRVOSError
from interrvos.placement import train_placement
from interrvos.train.checkpointing import LOG_FILE, resume_step_hint
from interrvos.train.config import TrainConfig
from interrvos.train.data import RankDataset, load_sources, make_plan
from interrvos.train.loop import dataset_name, train_fn

POLL_ENV = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"
EXPORT_MARKER = "export.json"  # what the last export wrote (step, checkpoint): a finished re-run reuses it


class TrainError(InterRVOSError):
    """Training failed (after the configured retries)."""


def storage_root(cfg: TrainConfig) -> str:
    return cfg.storage.rstrip("/") if storage.is_remote(cfg.storage) else os.path.abspath(cfg.storage)


def run_uri(cfg: TrainConfig) -> str:
    return storage.join(storage_root(cfg), cfg.name)


def resolve_use_gpu(cfg: TrainConfig) -> bool:
    import ray

    if cfg.workers.use_gpu == "auto":
        return ray.cluster_resources().get("GPU", 0) >= 1
    return bool(cfg.workers.use_gpu)


def default_task(cfg: TrainConfig):
    from interrvos.model.config import load_model_config
    from interrvos.train.reviosa import ReviosaTask

    model_cfg = load_model_config(cfg.model.config, cfg.model.all_overrides())
    return ReviosaTask(model_cfg, [s.path for s in cfg.data.sources], cfg.data.jitter, cfg.data.answers)


def build_trainer(cfg: TrainConfig, task, plan, total_steps: int, use_gpu: bool, uri: str):
    from ray.data import ExecutionOptions
    from ray.train import CheckpointConfig, DataConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    w = cfg.workers
    resources = {"CPU": w.cpus_per_worker, **({"GPU": w.gpus_per_worker} if use_gpu else {})}
    datasets = {dataset_name(r): RankDataset(plan, task, r, total_steps, uri, cfg.data.decoders)
                for r in range(w.num_workers)}
    return TorchTrainer(
        train_fn,
        train_loop_config={"cfg": cfg.model_dump(mode="json"), "task": task, "total_steps": total_steps,
                           "use_gpu": use_gpu, "run_uri": uri},  # fmt: skip
        scaling_config=ScalingConfig(num_workers=w.num_workers, use_gpu=use_gpu, resources_per_worker=resources),
        run_config=RunConfig(
            name=cfg.name, storage_path=storage_root(cfg), failure_config=FailureConfig(max_failures=w.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=cfg.checkpoint.keep_last),
        ),  # fmt: skip
        datasets=datasets,
        dataset_config=DataConfig(datasets_to_split=[], execution_options=ExecutionOptions(preserve_order=True)),
    )


@contextlib.contextmanager
def poll_interval(seconds: float | None):
    """Ray Train reads its controller's poll interval from the driver's environment when `fit` starts: set
    it for this run only (a value the user exported wins), so one run's setting never leaks into the next."""
    if seconds is None or POLL_ENV in os.environ:
        yield
        return
    os.environ[POLL_ENV] = str(seconds)
    try:
        yield
    finally:
        os.environ.pop(POLL_ENV, None)


def _progress(cfg: TrainConfig) -> tuple[Callable | None, Callable]:
    interactive = sys.stderr.isatty() if cfg.log.progress == "auto" else cfg.log.progress
    if not interactive:
        return None, lambda: None
    from interrvos.train.observe import tqdm_progress

    return tqdm_progress()


def run_train(cfg: TrainConfig, task=None, progress: Callable[[dict], None] | None = None,
              sources=None) -> dict[str, Any]:  # fmt: skip
    """Train (or resume) the run `<storage>/<name>`, export and report; returns the summary. `sources`
    (train.plan.SourceInfo per data source) replaces the planning input read from the datasets'
    expressions, for tasks that plan over something else (pretrain/: a clip's objects)."""
    from interrvos.runtime import ensure_ray
    from interrvos.train.export import export_on_ray
    from interrvos.train.observe import ProgressWatcher

    started = time.perf_counter()
    ensure_ray(cfg.ray)
    uri = run_uri(cfg)
    world = cfg.workers.num_workers
    plan = make_plan(cfg, sources if sources is not None else load_sources(cfg), world)
    total = plan.total_steps(cfg.optim.epochs, cfg.optim.max_steps)
    task = task or default_task(cfg)
    use_gpu = resolve_use_gpu(cfg)
    resumed_from = resume_step_hint(uri)
    close = lambda: None  # noqa: E731
    if progress is None:
        progress, close = _progress(cfg)
    result = None
    try:
        if resumed_from < total:
            trainer = build_trainer(cfg, task, plan, total, use_gpu, uri)
            with poll_interval(cfg.workers.report_poll_s):
                if progress:
                    with ProgressWatcher(uri, progress):
                        result = trainer.fit()
                else:
                    result = trainer.fit()
    finally:
        close()
    if result is not None and result.error:
        raise TrainError(f"training run {uri} failed: {result.error}") from result.error
    checkpoint = result.checkpoint if result is not None else _latest_checkpoint(uri)
    if checkpoint is None:
        raise TrainError(f"training run {uri} finished without a checkpoint")
    summary: dict[str, Any] = {
        "run": uri, "name": cfg.name, "steps": total, "resumed_from_step": resumed_from,
        "already_finished": result is None, "checkpoint": storage.join(uri, checkpoint_name(checkpoint)),
        "workers": world, "use_gpu": use_gpu,
        "zero_stage": cfg.deepspeed.stage, "global_batch": plan.global_batch, "steps_per_epoch": plan.steps_per_epoch,
        "epoch_samples": plan.epoch_size,
    }  # fmt: skip
    if cfg.checkpoint.export:
        marker = storage.join(uri, EXPORT_MARKER)
        previous = storage.read_json(marker) if storage.exists(marker) else None
        if previous and previous.get("step") == total and storage.exists(previous.get("checkpoint", "")):
            summary["export"] = previous  # a finished run re-run: its export is already there
        else:
            summary["export"] = export_on_ray(checkpoint, storage.join(uri, "model"), task, cfg.workers.cpus_per_worker)
            storage.write_json(marker, summary["export"], indent=2)
    summary.update(write_report(uri, checkpoint, cfg))
    summary.update(train_placement(uri, total))  # worker_groups (rank -> node per start) and nodes (steps)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    storage.write_json(storage.join(uri, "train_summary.json"), summary, indent=2)
    return summary


def _latest_checkpoint(uri: str):
    """The latest checkpoint Ray recorded for a finished run (a re-run with nothing left to train)."""
    from ray.train import Checkpoint

    from interrvos.train.checkpointing import SNAPSHOT_FILE

    path = storage.join(uri, SNAPSHOT_FILE)
    if not storage.exists(path):
        return None
    latest = (storage.read_json(path).get("latest_checkpoint_result") or {}).get("checkpoint_dir_name")
    return Checkpoint(storage.join(uri, latest)) if latest else None


def checkpoint_name(checkpoint) -> str:
    return checkpoint.path.rstrip("/").rsplit("/", 1)[-1]


def write_report(uri: str, checkpoint, cfg: TrainConfig) -> dict[str, Any]:
    """report/metrics.csv (the final checkpoint's log), report/loss_curve.png and report/report.md."""
    from interrvos.train.observe import loss_curve_png, read_metrics_csv

    report = storage.join(uri, "report")
    src = storage.join(uri, checkpoint_name(checkpoint), LOG_FILE)
    rows = read_metrics_csv(src) if storage.exists(src) else []
    if rows:
        storage.write_bytes(storage.join(report, "metrics.csv"), storage.read_bytes(src))
    png = loss_curve_png(rows, storage.join(report, "loss_curve.png"), title=f"{cfg.name}: loss terms and lr")
    last = rows[-1] if rows else {}
    first = rows[0] if rows else {}
    lines = [f"# Training run `{cfg.name}`", "",
             f"- steps: {int(last.get('step', 0))}, ZeRO stage {cfg.deepspeed.stage}, "
             f"{cfg.workers.num_workers} workers, "
             f"model `{cfg.model.config}`",
             f"- loss: {first.get('loss', float('nan')):.4f} (step {int(first.get('step', 0))}) -> "
             f"{last.get('loss', float('nan')):.4f} (step {int(last.get('step', 0))})",
             f"- throughput (last step): {last.get('samples_per_s', 0):.2f} samples/s, "
             f"{last.get('tokens_per_s', 0):.0f} tokens/s", ""]  # fmt: skip
    if png:
        lines.append("![loss curve](loss_curve.png)")
    storage.write_bytes(storage.join(report, "report.md"), ("\n".join(lines) + "\n").encode())
    return {"report": storage.join(report, "report.md"), "loss_curve": png,
            "metrics_csv": storage.join(report, "metrics.csv"),
            "final_metrics": last, "first_metrics": first}  # fmt: skip
