"""`interrvos pretrain-sam`: the recipe. Make the synthetic videos (if missing), decode them into the
cache, measure the untrained SAM2 on the held-out videos, train through `interrvos train`'s own
`run_train` (Ray Train + DeepSpeed, checkpoints, resume, export) with the SAM2 task, measure the
exported checkpoint, and write the summary and a short report.

Run folder `<storage>/<name>/`: everything `run_train` writes (docs/training.md), plus
  model/sam2.pt, model/sam2.json   the checkpoint (sam2's {'model': state_dict}) and its SAM2 settings
  untrained.json                    the held-out figures of the untrained model (reused on a re-run)
  report/pretrain.md                the IoU table, the loss curve, the train_overrides
  pretrain_summary.json             what run_pretrain returns (train summary + figures + train_overrides)
"""

from __future__ import annotations

import os
import statistics
from typing import Any

from interrvos.data import storage
from interrvos.errors import ConfigError
from interrvos.pretrain.config import PretrainConfig
from interrvos.pretrain.data import build_cache, plan_sources, split_videos, synth_videos
from interrvos.pretrain.task import SAM2_FILE, SamPretrainTask, train_overrides, train_set

SUMMARY_FILE = "pretrain_summary.json"


def ensure_videos(cfg: PretrainConfig) -> list[str]:
    """The synth videos, generated (Ray tasks, idempotent) when the folder has fewer than asked for."""
    synth = cfg.data.synth
    videos = synth_videos(synth.out) if storage.exists(synth.out) else []
    if len(videos) < synth.num_videos:
        from interrvos.synth.generate import run_synth

        run_synth(synth.model_copy(update={"ray": cfg.ray}))
        videos = synth_videos(synth.out)
    if len(videos) <= cfg.data.heldout_videos:
        raise ConfigError(f"data.synth.out {synth.out}: {len(videos)} videos, not more than data.heldout_videos "
                          f"({cfg.data.heldout_videos})")  # fmt: skip
    return videos


def load_trained(task: SamPretrainTask, path: str):
    """A SAM2 module built like the task's, with the exported weights loaded strictly."""
    from interrvos.model.sam_head import load_sam2_weights

    model = task.build_model()
    with storage.local_path(path) as local:
        load_sam2_weights(model.sam, local)
    return model


def run_pretrain(cfg: PretrainConfig) -> dict[str, Any]:
    import torch

    from interrvos.pretrain.measure import measure
    from interrvos.runtime import ensure_ray
    from interrvos.train.run import run_train, run_uri

    ensure_ray(cfg.ray)
    videos = ensure_videos(cfg)
    _, heldout = split_videos(videos, cfg.data.heldout_videos)
    cache = build_cache(cfg.data, cfg.model.image_size)
    task = SamPretrainTask(cfg, cache)
    train_cfg = cfg.train_config()
    uri = run_uri(train_cfg)
    threads = cfg.workers.torch_threads or max(1, int(cfg.workers.cpus_per_worker))
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)  # the driver measures with the workers' thread count
    try:
        untrained_path = storage.join(uri, "untrained.json")
        if storage.exists(untrained_path):
            untrained = storage.read_json(untrained_path)
        else:
            untrained = measure(task.build_model(), cache, heldout, cfg.measure, cfg.data.min_area_px)
            storage.write_json(untrained_path, untrained, indent=2)
        summary = run_train(train_cfg, task=task, sources=plan_sources(cfg.data, cache))
        checkpoint = storage.join(summary["export"]["checkpoint"], SAM2_FILE)
        trained = measure(load_trained(task, checkpoint), cache, heldout, cfg.measure, cfg.data.min_area_px)
    finally:
        torch.set_num_threads(previous_threads)
    rows = _metrics(summary)
    step_times = [r["step_time_s"] for r in rows[1:] if "step_time_s" in r]  # step 1 includes start-up
    overrides = train_overrides(cfg, os.path.abspath(checkpoint) if not storage.is_remote(checkpoint) else checkpoint)
    out = {
        **summary, "sam2_checkpoint": checkpoint, "train_overrides": overrides, "train_set": train_set(overrides),
        "sam": cfg.model.sam_settings().model_dump(mode="json"), "trunk": cfg.model.trunk,
        "train_videos": len(videos) - len(heldout), "heldout_videos": heldout,
        "s_per_step": round(statistics.median(step_times), 3) if step_times else None,
        "train_seconds": round(sum(step_times), 1), "heldout": {"trained": trained, "untrained": untrained},
    }  # fmt: skip
    out["pretrain_report"] = write_pretrain_report(uri, cfg, out)
    storage.write_json(storage.join(uri, SUMMARY_FILE), out, indent=2)
    return out


def _metrics(summary: dict[str, Any]) -> list[dict[str, float]]:
    from interrvos.train.observe import read_metrics_csv

    path = summary.get("metrics_csv")
    return read_metrics_csv(path) if path and storage.exists(path) else []


FIGURES = [("point_iou", "point prompt"), ("box_iou", "box prompt"),
           ("propagation_iou", "propagation (box on frame 0, tracked frames)"),
           ("propagation_first_frame_iou", "propagation, the box-prompted frame")]  # fmt: skip


def write_pretrain_report(uri: str, cfg: PretrainConfig, s: dict[str, Any]) -> str:
    t, u = s["heldout"]["trained"], s["heldout"]["untrained"]
    lines = [f"# SAM2 pretraining `{cfg.name}`", "",
             f"- {s['steps']} steps, batch {cfg.optim.batch_size} frames x {cfg.data.objects_per_frame} objects, "
             f"trunk `{cfg.model.trunk}`, {cfg.model.image_size} px, {s['train_videos']} training videos, "
             f"{len(s['heldout_videos'])} held-out; median {s['s_per_step']} s/step, {s['train_seconds']} s of steps",
             "", "| held-out mean IoU | trained | untrained |", "|---|---|---|"]  # fmt: skip
    lines += [f"| {label} | {t[k]:.3f} | {u[k]:.3f} |" for k, label in FIGURES]
    lines += [f"| baseline: the filled box | {t['filled_box_iou']:.3f} | |",
              f"| baseline: frame 0's true mask on every tracked frame | {t['copy_first_mask_iou']:.3f} | |", "",
              "![loss curve](loss_curve.png)", "", "Start `interrvos train` from it:", "",
              f"    --set '{s['train_set']}'", ""]  # fmt: skip
    path = storage.join(uri, "report", "pretrain.md")
    storage.write_bytes(path, "\n".join(lines).encode())
    return path
