"""The referring proof, step by step. Every step resumes: a finished synth/extract/annotate, pretraining or
training run is reused, and the sweep's cache answers expressions already predicted.

    summary = run_proof(load_config(ProofConfig, "jobs/configs/proof.yaml", []))
    summary["jf"]["joint-seed0"]["overall"], summary["cross_expression_iou"]["joint-seed0"]
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from interrvos.config import REPO_ROOT, ExtractConfig, RayConfig, load_config
from interrvos.data import storage
from interrvos.errors import InterRVOSError
from interrvos.proof.config import ProofConfig, ProofData, ProofTraining
from interrvos.proof.pretraining import run_pretraining
from interrvos.sweep.proof import (
    cell_files, cross_iou_of, draw_overlays, jf_of, proof_sweep, score_baselines, sweep_or_fail,
)  # fmt: skip
from interrvos.train.config import TrainConfig

Step = Callable[[str, Callable[[], Any]], Any]  # (title, fn) -> fn(), timed and printed by the caller


def _untimed(title: str, fn: Callable[[], Any]) -> Any:
    return fn()


def prepare_data(data: ProofData, root: str, ray_cfg: RayConfig) -> dict[str, Any]:
    """synth -> extract -> annotate (offline backend) into `<root>/annotated/{train,valid}`; the annotation
    summary. Both splits must have expressions (held-out videos are disjoint from the training ones)."""
    from interrvos.annotate.report import annotate_for_demo
    from interrvos.clips.pipeline import run_extract
    from interrvos.synth.generate import run_synth

    synth_cfg = data.synth.model_copy(update={"out": storage.join(root, "synth"), "ray": ray_cfg})
    extract_cfg = ExtractConfig(videos=[synth_cfg.out], out=storage.join(root, "dataset"), clip=data.clip, ray=ray_cfg)
    annotated = storage.join(root, "annotated")
    run_synth(synth_cfg)
    run_extract(extract_cfg)
    summary = annotate_for_demo(extract_cfg.out, annotated, ray_cfg, val_fraction=data.val_fraction)
    splits = summary["dataset"]["splits"]
    if not splits["valid"]["expressions"] or not splits["train"]["expressions"]:
        raise InterRVOSError(f"{annotated}: the proof needs expressions in both splits (train "
                             f"{splits['train']['expressions']}, valid {splits['valid']['expressions']}); "
                             "use more or longer videos (data.synth) or another data.val_fraction")
    return {**summary, "annotated": annotated, "synth": synth_cfg.out}


def training_config(t: ProofTraining, train_dataset: str, storage_dir: str, mode: str, seed: int,
                    pretrained: list[str], ray_cfg: RayConfig) -> TrainConfig:  # fmt: skip
    """The training YAML with the run's mode and seed, started from the pretrained parts (their overrides
    appended to the YAML's own model overrides)."""
    path = t.config if os.path.isabs(t.config) else str(REPO_ROOT / t.config)
    cfg = load_config(TrainConfig, path, [f"data.sources=[{train_dataset}]", f"storage={storage_dir}",
                                          f"name={run_name(mode, seed)}", f"optim.max_steps={t.max_steps}",
                                          "log.progress=false", f"seed={seed}", *t.set])  # fmt: skip
    model = cfg.model.model_copy(update={"mode": mode, "overrides": [*cfg.model.overrides, *pretrained, f"seed={seed}"]})
    return cfg.model_copy(update={"model": model, "ray": ray_cfg})


def run_name(mode: str, seed: int) -> str:
    return f"{mode}-seed{seed}"


def run_proof(cfg: ProofConfig, step: Step = _untimed) -> dict[str, Any]:
    from interrvos.model.checkpoint import save_checkpoint
    from interrvos.model.config import load_model_config
    from interrvos.model.reviosa import ReVIOsA
    from interrvos.train.run import run_train

    started = time.perf_counter()
    data = step("proof data (synth, extract, annotate)", lambda: prepare_data(cfg.data, cfg.out, cfg.ray))
    train_set, valid_set = (storage.join(data["annotated"], s) for s in ("train", "valid"))
    pretrained, pretraining = [], {}
    for kind, settings in (("sam", cfg.pretrain_sam), ("text", cfg.pretrain_text)):
        if settings.enabled:
            summary = step(f"pretrain {kind}", lambda k=kind, s=settings: run_pretraining(
                k, s, storage.join(cfg.out, f"pretrain_{k}"), data, cfg.ray))
            pretraining[kind] = summary
            pretrained += summary["train_overrides"]
    runs: dict[str, dict] = {}
    for mode in cfg.training.modes:
        for seed in cfg.training.seeds:
            train_cfg = training_config(cfg.training, train_set, storage.join(cfg.out, "train"), mode, seed,
                                        pretrained, cfg.ray)  # fmt: skip
            runs[run_name(mode, seed)] = step(f"train {run_name(mode, seed)}", lambda c=train_cfg: run_train(c))
    headline = run_name(cfg.training.modes[0], cfg.training.seeds[0])
    # The untrained reference: the headline run's model before ReVIOsA training (with the pretrained parts).
    untrained = storage.join(cfg.out, "untrained", "model")
    if not storage.exists(storage.join(untrained, "checkpoint.json")):
        first = training_config(cfg.training, train_set, storage.join(cfg.out, "train"), cfg.training.modes[0],
                                cfg.training.seeds[0], pretrained, cfg.ray).model  # fmt: skip
        save_checkpoint(ReVIOsA(load_model_config(first.config, first.all_overrides())), untrained)
    checkpoints = {name: r["export"]["checkpoint"] for name, r in runs.items()} | {"untrained": untrained}
    sweep_cfg = proof_sweep(checkpoints, valid_set, cfg.out, None, cfg.ray)
    sweep = step("sweep (predict, evaluate)", lambda: sweep_or_fail(sweep_cfg))
    metrics = {name: cell_files(sweep_cfg, name)[0] for name in checkpoints}
    baselines = step("score baselines", lambda: score_baselines(valid_set, cfg.ray))
    _, headline_predictions = cell_files(sweep_cfg, headline)
    overlays = draw_overlays(headline_predictions, valid_set, storage.join(cfg.out, "overlays"), cfg.overlays)
    summary = {
        "data": {"annotated": data["annotated"], "splits": data["dataset"]["splits"]},
        "pretraining": pretraining, "pretrained_overrides": pretrained,
        "runs": {name: {k: r.get(k) for k in ("steps", "workers", "zero_stage", "global_batch", "loss_curve", "export")}
                 for name, r in runs.items()},
        "headline": headline, "checkpoints": checkpoints, "valid": valid_set,
        "jf": {name: jf_of(m) for name, m in metrics.items()} | {f"baseline_{b}": jf_of(m) for b, m in baselines.items()},
        "cross_expression_iou": {name: cross_iou_of(m) for name, m in metrics.items()}
        | {f"baseline_{b}": cross_iou_of(m) for b, m in baselines.items()},
        "sweep_report": sweep["report"], "overlays": [storage.join(overlays, f) for f in storage.list_dir(overlays)],
        "seconds": round(time.perf_counter() - started, 1),
    }  # fmt: skip
    from interrvos.proof.report import goals, write_report

    summary["goals"] = goals(summary, cfg.goals)
    summary["report"] = write_report(cfg, summary, metrics, baselines)
    storage.write_json(storage.join(cfg.out, "proof_summary.json"), summary, indent=2)
    return summary
