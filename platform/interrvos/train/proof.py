"""Proof that training learns: train, export, predict and evaluate on held-out videos, beside the
untrained model (same config, same seed) and the model-free baselines; one Markdown report.
`train_for_demo` is what `interrvos demo` calls.

    summary = train_and_evaluate(cfg, val_dataset="runs/annotated/valid", out="runs/proof")
    summary["tables"]          # Markdown: Table 5 / Table 4 layouts, trained vs untrained vs baselines
    summary["jf"]              # {"trained": {"overall": .., "actor_target": .., "referring": ..}, ...}
"""

from __future__ import annotations

import time
from typing import Any

from interrvos.config import RayConfig
from interrvos.data import storage
from interrvos.train.config import TrainConfig

TRIVIAL_BASELINES = ("empty", "full", "random_object", "largest_object")


def predict_and_evaluate(checkpoint: str, dataset: str, out: str, name: str, ray_cfg: RayConfig,
                         overlays: int = 0) -> dict[str, Any]:  # fmt: skip
    """`interrvos predict` then `interrvos evaluate` of a model checkpoint on a dataset; returns the metrics."""
    from interrvos.config import ActorPoolConfig
    from interrvos.evaluate.config import EvaluateConfig, OverlayConfig
    from interrvos.evaluate.run import run_evaluate
    from interrvos.model.config import PredictConfig, PredictWorkers
    from interrvos.model.predict import run_predict

    predictions = storage.join(out, "predictions.jsonl")
    run_predict(PredictConfig(dataset=dataset, checkpoint=checkpoint, out=predictions, ray=ray_cfg,
                              workers=PredictWorkers(min_size=1, max_size=2, num_cpus=1.0)))  # fmt: skip
    return run_evaluate(EvaluateConfig(dataset=dataset, predictions=predictions, out=storage.join(out, "evaluate"),
                                       name=name, ray=ray_cfg, overlays=OverlayConfig(samples=overlays),
                                       workers=ActorPoolConfig(min_size=1, max_size=1)))  # fmt: skip


def _jf(metrics: dict) -> dict[str, float]:
    return {s: round(metrics["settings"][s]["JF"], 2) for s in ("overall", "actor_target", "referring")}


def _cross_iou(metrics: dict) -> float | None:
    """evaluate/sensitivity.py: 0 when the masks follow the expression, 100 when they ignore it."""
    return (metrics.get("expression_sensitivity") or {}).get("cross_iou")


def train_and_evaluate(cfg: TrainConfig, val_dataset: str, out: str, ray_cfg: RayConfig | None = None,
                       overlays: int = 6) -> dict[str, Any]:  # fmt: skip
    """Train `cfg` (or resume it), then score the trained model, the untrained one and the baselines on
    `val_dataset`; writes `<out>/report.md` and `<out>/proof_summary.json`."""
    from interrvos.evaluate.config import EvaluateConfig, OverlayConfig
    from interrvos.evaluate.report import markdown_tables
    from interrvos.evaluate.run import score_predictions
    from interrvos.model.checkpoint import save_checkpoint
    from interrvos.model.config import load_model_config
    from interrvos.model.reviosa import ReVIOsA
    from interrvos.train.run import run_train

    ray_cfg = ray_cfg or cfg.ray
    started = time.perf_counter()
    train = run_train(cfg)
    trained_at = time.perf_counter()
    model_name = f"ReVIOsA-{cfg.model.config}"
    trained_out = storage.join(out, f"trained_step{train['steps']}")  # predictions resume: one folder per model
    trained = predict_and_evaluate(train["export"]["checkpoint"], val_dataset, trained_out,
                                   f"{model_name} trained ({train['steps']} steps)", ray_cfg, overlays)  # fmt: skip
    untrained_ckpt = storage.join(out, "untrained", "model")
    if not storage.exists(storage.join(untrained_ckpt, "checkpoint.json")):
        save_checkpoint(ReVIOsA(load_model_config(cfg.model.config, cfg.model.all_overrides())), untrained_ckpt)
    untrained = predict_and_evaluate(untrained_ckpt, val_dataset, storage.join(out, "untrained"),
                                     f"{model_name} untrained", ray_cfg)  # fmt: skip
    results = {trained["name"]: trained, untrained["name"]: untrained}
    baselines = {}
    for b in TRIVIAL_BASELINES:
        m = score_predictions(EvaluateConfig(dataset=val_dataset, baseline=b, executor="local",
                                             overlays=OverlayConfig(samples=0), ray=ray_cfg))  # fmt: skip
        results[f"baseline: {b}"] = baselines[b] = m
    best = max(baselines, key=lambda b: baselines[b]["settings"]["overall"]["JF"])
    tables = markdown_tables(results)
    jf = {"trained": _jf(trained), "untrained": _jf(untrained),
          **{f"baseline_{b}": _jf(m) for b, m in baselines.items()}}
    overlays_dir = storage.join(trained_out, "evaluate", "overlays")
    summary = {
        "train": train, "val_dataset": val_dataset, "jf": jf, "best_trivial_baseline": best, "tables": tables,
        "cross_expression_iou": {"trained": _cross_iou(trained), "untrained": _cross_iou(untrained)},
        "overlays": [storage.join(overlays_dir, f) for f in storage.list_dir(overlays_dir)],
        "train_seconds": round(trained_at - started, 1), "seconds": round(time.perf_counter() - started, 1),
    }  # fmt: skip
    storage.write_json(storage.join(out, "proof_summary.json"), summary, indent=2)
    report = [f"# Training learns: {model_name} on `{val_dataset}`", "",
              f"{train['steps']} optimizer steps on {train['workers']} workers (ZeRO-{train['zero_stage']}, global "
              f"batch {train['global_batch']}) in {summary['train_seconds']} s; then predict + evaluate on the "
              "held-out videos. Best trivial baseline (Overall J&F): " + best + ".", "", tables, "",
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
    trains the tiny model, predicts and evaluates `valid`; returns the summary (tables, overlays, report,
    loss curve). Re-running resumes / reuses the finished run."""
    train, valid = storage.join(dataset_dir, "train"), storage.join(dataset_dir, "valid")
    cfg = demo_config(train, out_dir, ray_cfg, max_steps)
    return train_and_evaluate(cfg, valid, storage.join(out_dir, "proof"), ray_cfg)
