"""The loop on Ray Train with DeepSpeed, on 2 CPU workers with a small torch module (tests/train/toy.py):
ZeRO stages give stage 0's losses; a killed worker and a re-run both resume from the last checkpoint."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import torch

from interrvos.train.checkpointing import consolidated_trainable, resume_step_hint
from interrvos.train.observe import read_metrics_csv
from interrvos.train.run import run_train

pytestmark = pytest.mark.slow

LOSS_COLUMNS = ("loss", "loss_mse")


def _losses(summary: dict) -> list[tuple[float, ...]]:
    rows = read_metrics_csv(summary["metrics_csv"])
    return [(int(r["step"]), *(r[c] for c in LOSS_COLUMNS)) for r in rows]


@pytest.fixture(scope="module")
def zero_runs(ray_cluster, tmp_path_factory, pushing_dataset, toy, make_toy_config):
    """The same 4 optimizer steps (batch 2 x accumulation 2 x 2 workers) under ZeRO stages 0, 2 and 3."""
    storage = tmp_path_factory.mktemp("zero")
    out = {}
    for stage in (0, 2, 3):  # one export is enough (each is a Ray task rebuilding the model)
        cfg = make_toy_config(str(storage), pushing_dataset, f"stage{stage}", deepspeed__stage=stage,
                              checkpoint__export=stage == 2)
        out[stage] = run_train(cfg, task=toy.ToyTask([pushing_dataset]))
    return out


def test_zero_stages_2_and_3_give_the_losses_of_stage_0(zero_runs):
    reference = _losses(zero_runs[0])
    assert [r[0] for r in reference] == [1, 2, 3, 4]
    for stage in (2, 3):
        got = _losses(zero_runs[stage])
        assert [r[0] for r in got] == [1, 2, 3, 4]
        for ref_row, row in zip(reference, got, strict=True):
            assert row[1:] == pytest.approx(ref_row[1:], rel=1e-6, abs=1e-7), (stage, row, ref_row)
    assert len({round(r[1], 6) for r in reference}) > 1  # the loss moves: parameters are being updated


def test_every_stage_consolidates_to_the_same_trained_weights_and_exports_them(zero_runs):
    weights = {s: consolidated_trainable(r["checkpoint"]) for s, r in zero_runs.items()}
    trained = {"norm.weight", "norm.bias", "head.0.weight", "head.0.bias", "head.2.weight", "head.2.bias"}
    assert trained <= set(weights[0]) and not any(k.startswith("frozen.") for k in weights[0])
    for stage in (2, 3):
        for name in trained:
            torch.testing.assert_close(weights[stage][name], weights[0][name], rtol=1e-5, atol=1e-6)
    exported = torch.load(Path(zero_runs[2]["export"]["checkpoint"], "trainable.pt"))
    assert all(torch.equal(exported[k], weights[2][k]) for k in trained)
    summary = zero_runs[2]
    assert summary["steps"] == 4 and summary["export"]["step"] == 4 and summary["global_batch"] == 8
    assert summary["final_metrics"]["lr"] > 0 and summary["final_metrics"]["samples_per_s"] > 0
    assert Path(summary["loss_curve"]).stat().st_size > 1000
    assert "![loss curve](loss_curve.png)" in Path(summary["report"]).read_text()
    # only the last checkpoint.keep_last (2) checkpoints are kept
    assert sorted(p.name for p in Path(summary["run"]).glob("step_*")) == ["step_00000002", "step_00000004"]


def _pids(pid_dir: Path) -> dict[int, int]:
    out = {}
    for f in pid_dir.glob("[0-9]*"):
        try:
            out[int(f.name)] = json.loads(f.read_text())["step"]
        except (ValueError, OSError):
            pass
    return out


def test_a_killed_worker_resumes_from_the_last_checkpoint_and_a_rerun_resumes(
        ray_cluster, tmp_path, pushing_dataset, toy, make_toy_config, zero_runs):  # fmt: skip
    pid_dir = tmp_path / "pids"
    cfg = make_toy_config(str(tmp_path / "runs"), pushing_dataset, "faulty", workers__max_failures=1,
                          checkpoint__export=False)
    run = os.path.join(str(tmp_path / "runs"), "faulty")
    killed: list[int] = []

    def killer():  # once step 2 is checkpointed, SIGKILL a training worker by the pid it wrote
        deadline = time.time() + 600
        while time.time() < deadline and not killed:
            if resume_step_hint(run) >= 2:
                pids = _pids(pid_dir)
                if pids:
                    pid = max(pids, key=pids.get)
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            time.sleep(0.05)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    summary = run_train(cfg, task=toy.ToyTask([pushing_dataset], pid_dir=str(pid_dir), delay_s=0.4))
    thread.join(timeout=5)
    assert killed, "no worker was killed (training finished before the first checkpoint was seen?)"
    assert len(_pids(pid_dir)) >= 3  # two original workers, then a new group after the kill
    assert summary["steps"] == 4 and summary["final_metrics"]["step"] == 4 and "export" not in summary
    # Exact resume: the same samples and states, so the same losses as the uninterrupted stage-2 run.
    got, reference = _losses(summary), _losses(zero_runs[2])
    assert [r[0] for r in got] == [1, 2, 3, 4]
    for row, ref_row in zip(got, reference, strict=True):
        assert row[1:] == pytest.approx(ref_row[1:], rel=1e-6, abs=1e-7)

    # Re-run with the same name and two more steps: it resumes at step 4 instead of starting over.
    before = set(_pids(pid_dir))
    longer = make_toy_config(str(tmp_path / "runs"), pushing_dataset, "faulty", optim__max_steps=6)
    again = run_train(longer, task=toy.ToyTask([pushing_dataset], pid_dir=str(pid_dir)))
    assert again["resumed_from_step"] == 4 and again["steps"] == 6 and again["final_metrics"]["step"] == 6
    new = {pid: step for pid, step in _pids(pid_dir).items() if pid not in before}
    assert new and min(new.values()) >= 4  # the new workers never saw the samples of steps 0-3
    rows = read_metrics_csv(again["metrics_csv"])
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [(int(r[0]), *r[1:]) for r in _losses(again)[:4]] == got
    exported = torch.load(Path(again["export"]["checkpoint"], "trainable.pt"))
    consolidated = consolidated_trainable(again["checkpoint"])
    assert all(torch.equal(exported[k], consolidated[k]) for k in exported)

    # And once finished, a third run with the same settings trains nothing.
    finished = make_toy_config(str(tmp_path / "runs"), pushing_dataset, "faulty", optim__max_steps=6,
                               checkpoint__export=False)
    done = run_train(finished, task=toy.ToyTask([pushing_dataset]))
    assert done["already_finished"] and done["resumed_from_step"] == 6
