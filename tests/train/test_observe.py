"""The metrics log (kept in checkpoints, truncated on resume), the progress file and the loss curve."""

from __future__ import annotations

import time

from interrvos.train.checkpointing import resume_step_hint
from interrvos.train.observe import MetricsLog, ProgressWatcher, loss_curve_png, read_metrics_csv, write_progress


def _row(step: int, **extra) -> dict:
    return {"step": step, "epoch": 0, "loss": 1.0 / step, "lr": 1e-3, "samples_per_s": 2.0, "tokens_per_s": 9.0,
            "step_time_s": 0.5, "data_wait_s": 0.0, "loss_lm": 0.5 / step, **extra}  # fmt: skip


def test_metrics_log_appends_and_restores_up_to_the_checkpoint_step(tmp_path):
    log = MetricsLog(str(tmp_path / "metrics.csv"))
    log.restore(None, 0)
    for step in range(1, 6):
        log.append(_row(step))
    log.append(_row(6, loss_dice_target=0.25))  # a new column rewrites the header
    rows = read_metrics_csv(str(tmp_path / "metrics.csv"))
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6] and rows[-1]["loss_dice_target"] == 0.25
    assert list(rows[0])[:6] == ["step", "epoch", "loss", "lr", "samples_per_s", "tokens_per_s"]

    resumed = MetricsLog(str(tmp_path / "resumed.csv"))
    resumed.restore(str(tmp_path), up_to_step=4)  # the checkpoint folder holds metrics.csv
    resumed.append(_row(5))
    assert [r["step"] for r in read_metrics_csv(str(tmp_path / "resumed.csv"))] == [1, 2, 3, 4, 5]


def test_loss_curve_png_and_progress(tmp_path):
    rows = [{k: float(v) for k, v in _row(s).items()} for s in range(1, 20)]
    png = loss_curve_png(rows, str(tmp_path / "report" / "loss_curve.png"))
    assert png and (tmp_path / "report" / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert loss_curve_png([], str(tmp_path / "none.png")) is None

    seen = []
    with ProgressWatcher(str(tmp_path), seen.append, interval_s=0.05):
        write_progress(str(tmp_path), {"step": 3, "loss": 0.5}, total_steps=10)
        time.sleep(0.3)
    assert seen and seen[-1]["step"] == 3 and seen[-1]["total_steps"] == 10


def test_resume_hint_reads_ray_trains_snapshot(tmp_path):
    assert resume_step_hint(str(tmp_path)) == 0
    (tmp_path / "checkpoint_manager_snapshot.json").write_text(
        '{"latest_checkpoint_result": {"checkpoint_dir_name": "step_00000006", "metrics": {"step": 6}}}')
    assert resume_step_hint(str(tmp_path)) == 6
    (tmp_path / "checkpoint_manager_snapshot.json").write_text("not json")
    assert resume_step_hint(str(tmp_path)) == 0
