"""End to end with the real tiny ReVIOsA: `interrvos train` (the CLI, on the session's Ray) -> checkpoint
-> export -> predict -> evaluate, and a floor on what a short run learns on held-out videos: the answers
carry the right segmentation tokens ([SEG_TAR] exactly for unidirectional interactions) and J&F rises
above the untrained model's. (Beating the best trivial baseline takes longer runs: docs/training.md.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from interrvos.config import RayConfig
from interrvos.train.sample_data import write_pushing_dataset

pytestmark = pytest.mark.slow

STEPS = 100


def _cli(*args: str, address: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAY_ADDRESS": address}
    return subprocess.run([sys.executable, "-m", "interrvos.cli", *args], env=env, capture_output=True, text=True,
                          timeout=1200)  # fmt: skip


def test_train_cli_export_predict_evaluate_and_it_learns(ray_cluster, tmp_path):
    from interrvos.evaluate.config import EvaluateConfig, OverlayConfig
    from interrvos.evaluate.run import score_predictions
    from interrvos.model.checkpoint import load_checkpoint, save_checkpoint
    from interrvos.model.reviosa import build_model
    from interrvos.train.checkpointing import consolidated_trainable
    from interrvos.sweep.proof import TRIVIAL_BASELINES, predict_and_evaluate

    train = write_pushing_dataset(tmp_path / "train", num_videos=6, num_frames=6, height=72, width=96, seed=0)
    val = write_pushing_dataset(tmp_path / "val", num_videos=2, num_frames=8, height=72, width=96, seed=100)
    # A short run: a constant lr after the warm-up (a cosine over 100 steps decays before the LM has learnt).
    done = _cli("train", "--config", "jobs/configs/train_tiny.yaml", "--dataset", train, "--storage",
                str(tmp_path / "runs"), "--name", "cli", "--max-steps", str(STEPS), "--set", "optim.lr=1e-2",
                "--set", "optim.schedule=constant", "--set", "data.frames_per_sample=2",
                "--set", f"checkpoint.every_n_steps={STEPS // 2}", address=ray_cluster)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "runs" / "cli"
    summary = json.loads((run / "train_summary.json").read_text())
    assert summary["steps"] == STEPS and summary["export"]["step"] == STEPS
    assert sorted(p.name for p in run.glob("step_*")) == [f"step_{STEPS // 2:08d}", f"step_{STEPS:08d}"]
    assert (run / "report" / "loss_curve.png").stat().st_size > 1000
    rows = (run / "report" / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("step,epoch,loss,lr,samples_per_s,tokens_per_s") and len(rows) == STEPS + 1
    assert "loss_lm" in rows[0] and "loss_mask_target" in rows[0]

    # The export is the model's own checkpoint format and holds exactly the consolidated trained weights.
    exported = load_checkpoint(summary["export"]["checkpoint"])
    trained = consolidated_trainable(summary["checkpoint"])
    assert all(torch.equal(p, trained[k]) for k, p in exported.trainable_parameters().items())

    ray_cfg = RayConfig(address=ray_cluster)
    after = predict_and_evaluate(summary["export"]["checkpoint"], val, str(tmp_path / "eval_trained"), "trained",
                                 ray_cfg, overlays=2)  # fmt: skip
    assert list((tmp_path / "eval_trained" / "evaluate" / "overlays").iterdir())
    untrained_ckpt = str(tmp_path / "untrained")
    save_checkpoint(build_model("tiny"), untrained_ckpt)
    before = predict_and_evaluate(untrained_ckpt, val, str(tmp_path / "eval_untrained"), "untrained", ray_cfg)
    baselines = {b: score_predictions(EvaluateConfig(dataset=val, baseline=b, executor="local",
                                                     overlays=OverlayConfig(samples=0)))
                 for b in TRIVIAL_BASELINES}  # fmt: skip
    jf = lambda m, s="overall": m["settings"][s]["JF"]  # noqa: E731
    best = max(jf(m) for m in baselines.values())
    report = {"trained": jf(after), "trained_actor_target": jf(after, "actor_target"), "untrained": jf(before),
              "best_baseline": best}  # fmt: skip
    Path(tmp_path / "floor.json").write_text(json.dumps(report))
    assert jf(after) >= jf(before) + 3, report
    assert jf(after, "actor_target") >= jf(before, "actor_target") + 2, report

    # The language side is learnt: one [SEG_ACT], and [SEG_TAR] exactly for unidirectional interactions.
    from interrvos.data.mevis import load_dataset
    from interrvos.model.tokens import is_unidirectional

    ds = load_dataset(val)
    lines = [json.loads(x) for x in (tmp_path / "eval_trained" / "predictions.jsonl").read_text().splitlines()]
    right = [("[SEG_ACT]" in x["answer"]) and (("[SEG_TAR]" in x["answer"])
             == is_unidirectional(ds.videos[x["video"]].expressions[x["expression"]])) for x in lines]  # fmt: skip
    assert len(lines) == 10 and sum(right) >= 8, [x["answer"] for x in lines]
