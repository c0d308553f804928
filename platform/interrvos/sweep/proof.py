"""Proof that training learns, as a sweep: train (train/), then one small sweep over the trained and the
untrained model (same config, same seed) x 2 values of K on the held-out videos, beside the model-free
baselines; one Markdown report. `train_for_demo` is what `interrvos demo` calls. Prediction and scoring
go through the sweep engine, the one predict-and-score path of the demo and of `interrvos sweep`;
train/ itself knows nothing of evaluation.

    summary = train_and_evaluate(cfg, val_dataset="runs/annotated/valid", out="runs/proof")
    summary["tables"]          # Markdown: Table 5 / Table 4 layouts, trained vs untrained vs baselines
    summary["sweep_table"]     # Markdown: J&F with 95% intervals, every cell of the sweep
    summary["jf"]              # {"trained": {"overall": .., "actor_target": .., "referring": ..}, ...}
"""

from __future__ import annotations

import json
import time
from typing import Any

from interrvos.config import RayConfig
from interrvos.data import storage
from interrvos.train.config import TrainConfig

TRIVIAL_BASELINES = ("empty", "full", "random_object", "largest_object")
FEW_FRAMES = 2  # the sweep's other K: the model's own num_frames, and this


def jf_of(metrics: dict) -> dict[str, float]:
    values = {s: metrics["settings"][s]["JF"] for s in ("overall", "actor_target", "referring")}
    return {s: None if v is None else round(v, 2) for s, v in values.items()}  # None: no expression of that setting


def cross_iou_of(metrics: dict) -> float | None:
    """evaluate/sensitivity.py: 0 when the masks follow the expression, 100 when they ignore it."""
    return (metrics.get("expression_sensitivity") or {}).get("cross_iou")


def proof_sweep(checkpoints: dict[str, str], val_dataset: str, out: str, k_values: list[int] | None,
                ray_cfg: RayConfig):  # fmt: skip
    """The sweep config: the given checkpoints x the held-out set (x K)."""
    from interrvos.sweep.config import SweepConfig

    return SweepConfig.model_validate({
        "name": "training proof", "out": storage.join(out, "sweep"), "cache": storage.join(out, "sweep_cache"),
        "checkpoints": [{"id": cid, "path": path} for cid, path in checkpoints.items()],
        "datasets": [{"id": "valid", "path": val_dataset}],
        "axes": {"K": {"field": "inference.num_frames", "values": k_values}} if k_values else {},
        # a video's expressions in one call (SAM2 encodes its frames once); the trained model's pool grows to
        # a second actor when the untrained one's is done (it answers fast: no masks to draw)
        "predict": {"batch_size": 16, "workers": {"min_size": 1, "max_size": 2, "num_cpus": 1}},
        "report": {"pair_plots": 1, "slices": ["caption_type"]}, "ray": ray_cfg.model_dump(),
    })  # fmt: skip


def sweep_or_fail(cfg) -> dict[str, Any]:
    """Run the sweep; InterRVOSError naming every cell that failed."""
    from interrvos.errors import InterRVOSError
    from interrvos.sweep.run import run_sweep

    summary = run_sweep(cfg)
    if summary["failed"]:
        failed = "; ".join(f"{f['label']}: {f['reason']}" for f in summary["failed"])
        raise InterRVOSError(f"the sweep {cfg.name!r} failed for {len(summary['failed'])} cell(s): {failed}")
    return summary


def cell_files(cfg, label: str) -> tuple[dict, str]:
    """(metrics, predictions path) of a cell of a finished sweep, by label."""
    cells = {c["label"]: c for c in storage.read_json(storage.join(cfg.out, "cells.json"))}
    folder = storage.join(cfg.out, "cells", cells[label]["cell"])
    return storage.read_json(storage.join(folder, "metrics.json")), storage.join(folder, "predictions.jsonl")


def draw_overlays(predictions: str, dataset: str, out: str, samples: int) -> str:
    """The evaluation report of a cell's predictions with `samples` overlays; returns the overlays folder."""
    from interrvos.evaluate.config import EvaluateConfig, OverlayConfig
    from interrvos.evaluate.run import run_evaluate

    run_evaluate(EvaluateConfig(dataset=dataset, predictions=predictions, out=out, executor="local",
                                sensitivity_pairs=0, overlays=OverlayConfig(samples=samples)))  # fmt: skip
    return storage.join(out, "overlays")


def score_baselines(dataset: str, ray_cfg: RayConfig) -> dict[str, dict]:
    """The model-free baselines' metrics on `dataset` (in this process: a held-out set is small)."""
    from interrvos.evaluate.config import EvaluateConfig, OverlayConfig
    from interrvos.evaluate.run import score_predictions

    return {b: score_predictions(EvaluateConfig(dataset=dataset, baseline=b, executor="local",
                                                overlays=OverlayConfig(samples=0), ray=ray_cfg))
            for b in TRIVIAL_BASELINES}  # fmt: skip


def predict_and_evaluate(checkpoint: str, dataset: str, out: str, name: str, ray_cfg: RayConfig,
                         overlays: int = 0) -> dict[str, Any]:  # fmt: skip
    """A checkpoint on a dataset through the sweep engine (a one-cell sweep under `<out>/sweep`, its
    predictions copied to `<out>/predictions.jsonl`); with `overlays`, also the evaluation report of its
    predictions with overlays (`<out>/evaluate/`). Returns the cell's metrics (those of `interrvos
    predict` + `interrvos evaluate`), named `name`."""
    cfg = proof_sweep({"model": checkpoint}, dataset, out, None, ray_cfg)
    sweep_or_fail(cfg)
    metrics, predictions = cell_files(cfg, "model")
    storage.write_bytes(storage.join(out, "predictions.jsonl"), storage.read_bytes(predictions))
    if overlays:
        draw_overlays(predictions, dataset, storage.join(out, "evaluate"), overlays)
    return {**metrics, "name": name}


def train_and_evaluate(cfg: TrainConfig, val_dataset: str, out: str, ray_cfg: RayConfig | None = None,
                       overlays: int = 6) -> dict[str, Any]:  # fmt: skip
    """Train `cfg` (or resume it), then sweep the trained model and the untrained one over 2 values of K on
    `val_dataset` and score the baselines; writes `<out>/report.md` and `<out>/proof_summary.json`."""
    from interrvos.evaluate.report import markdown_tables
    from interrvos.model.checkpoint import read_config, save_checkpoint
    from interrvos.model.config import load_model_config
    from interrvos.model.reviosa import ReVIOsA
    from interrvos.sweep.report import pivot_markdown
    from interrvos.train.run import run_train

    ray_cfg = ray_cfg or cfg.ray
    started = time.perf_counter()
    train = run_train(cfg)
    trained_at = time.perf_counter()
    model_name = f"ReVIOsA-{cfg.model.config}"
    untrained_ckpt = storage.join(out, "untrained", "model")
    if not storage.exists(storage.join(untrained_ckpt, "checkpoint.json")):
        save_checkpoint(ReVIOsA(load_model_config(cfg.model.config, cfg.model.all_overrides())), untrained_ckpt)
    trained_ckpt, trained_id = train["export"]["checkpoint"], f"trained-step{train['steps']}"
    own_k = read_config(trained_ckpt).inference.num_frames
    checkpoints = {trained_id: trained_ckpt, "untrained": untrained_ckpt}  # the first: served by default
    sweep_cfg = proof_sweep(checkpoints, val_dataset, out, sorted({FEW_FRAMES, own_k}), ray_cfg)
    sweep = sweep_or_fail(sweep_cfg)
    trained, predictions = cell_files(sweep_cfg, f"{trained_id} K={own_k}")
    untrained, _ = cell_files(sweep_cfg, f"untrained K={own_k}")
    # The overlays of the trained model: its predictions, drawn by the evaluation's report code.
    overlays_dir = draw_overlays(predictions, val_dataset, storage.join(out, "trained_overlays"), overlays)
    results = {f"{model_name} trained ({train['steps']} steps)": trained, f"{model_name} untrained": untrained}
    baselines = score_baselines(val_dataset, ray_cfg)
    results.update({f"baseline: {b}": m for b, m in baselines.items()})
    best = max(baselines, key=lambda b: baselines[b]["settings"]["overall"]["JF"])
    tables = markdown_tables(results)
    jf = {"trained": jf_of(trained), "untrained": jf_of(untrained), **{f"baseline_{b}": jf_of(m) for b, m in baselines.items()}}
    pivot = json.loads(storage.read_bytes(storage.join(sweep_cfg.out, "pivot.json")))
    plot = storage.join(sweep_cfg.out, "plots", "jf_vs_K__valid.png")
    summary = {
        "train": train, "val_dataset": val_dataset, "jf": jf, "best_trivial_baseline": best, "tables": tables,
        "sweep_table": pivot_markdown(sweep_cfg, pivot), "sweep_plot": plot if storage.exists(plot) else None,
        "sweep_report": sweep["report"], "k_values": sweep_cfg.axes["K"].values, "own_k": own_k,
        "checkpoints": checkpoints, "trained_predictions": predictions,
        "cross_expression_iou": {"trained": cross_iou_of(trained), "untrained": cross_iou_of(untrained)},
        "overlays": [storage.join(overlays_dir, f) for f in storage.list_dir(overlays_dir)],
        "train_seconds": round(trained_at - started, 1), "sweep_seconds": sweep["seconds"],
        "seconds": round(time.perf_counter() - started, 1),
    }  # fmt: skip
    storage.write_json(storage.join(out, "proof_summary.json"), summary, indent=2)
    report = [f"# Training learns: {model_name} on `{val_dataset}`", "",
              f"{train['steps']} optimizer steps on {train['workers']} workers (ZeRO-{train['zero_stage']}, global "
              f"batch {train['global_batch']}) in {summary['train_seconds']} s; then a sweep (trained, untrained) x "
              f"K {summary['k_values']} on the held-out videos. Best trivial baseline (Overall J&F): {best}.", "",
              tables, "", "## The sweep: J&F x100 with 95% intervals", "", summary["sweep_table"], "",
              f"![loss curve]({train['loss_curve']})", ""]  # fmt: skip
    report += [f"![{f}]({p})" for f, p in zip(storage.list_dir(overlays_dir), summary["overlays"], strict=True)]
    storage.write_bytes(storage.join(out, "report.md"), ("\n".join(report) + "\n").encode())
    summary["report"] = storage.join(out, "report.md")
    return summary


def demo_config(train_dataset: str, out_dir: str, ray_cfg: RayConfig, max_steps: int = 300) -> TrainConfig:
    """jobs/configs/train_tiny.yaml for the demo: the tiny model on 2 CPU workers, `max_steps` steps."""
    from interrvos.config import REPO_ROOT, load_config

    return load_config(TrainConfig, REPO_ROOT / "jobs" / "configs" / "train_tiny.yaml", [
        f"data.sources=[{train_dataset}]", f"storage={storage.join(out_dir, 'train')}", "name=demo",
        f"optim.max_steps={max_steps}", "log.progress=false"]).model_copy(update={"ray": ray_cfg})  # fmt: skip


def train_for_demo(dataset_dir: str, out_dir: str, ray_cfg: RayConfig, max_steps: int = 300) -> dict[str, Any]:
    """The demo's training step: `dataset_dir` is an annotated folder (its `train` and `valid` splits);
    trains the tiny model, sweeps it and the untrained one on `valid`; returns the summary (tables, sweep
    table and plot, overlays, report, loss curve). Re-running resumes / reuses the finished run and the
    sweep's cache."""
    train, valid = storage.join(dataset_dir, "train"), storage.join(dataset_dir, "valid")
    cfg = demo_config(train, out_dir, ray_cfg, max_steps)
    return train_and_evaluate(cfg, valid, storage.join(out_dir, "proof"), ray_cfg)
