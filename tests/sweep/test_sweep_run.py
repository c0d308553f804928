"""Sweeps on the session's Ray: 2 checkpoints x 1 dataset x 2 settings end to end; each cell equals
`interrvos predict` + `interrvos evaluate` by hand; a metric-only re-run makes no model call; a grown
grid predicts only its new cells; bad checkpoints and datasets fail their cells only; kill and resume."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from interrvos.sweep.config import SweepConfig
from interrvos.sweep.run import run_sweep

pytestmark = pytest.mark.slow


def _run(tree: dict) -> dict:
    return run_sweep(SweepConfig.model_validate(tree))


def _cells(out: Path) -> dict[str, dict]:
    return {c["label"]: c for c in json.loads((out / "cells.json").read_text())}


def _scores(out: Path) -> dict:
    """(cell, video, expression) -> (J, F) from expressions.parquet."""
    table = pq.read_table(out / "expressions.parquet").to_pylist()
    return {(r["cell_id"], r["video"], r["expression"]): (r["J"], r["F"]) for r in table}


@pytest.fixture(scope="module")
def first(ray_cluster, world, make_grid, tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("first")
    tree = make_grid(world, tmp / "out", tmp / "cache")
    started = time.perf_counter()
    summary = _run(tree)
    return {"tree": tree, "tmp": tmp, "out": tmp / "out", "summary": summary, "seconds": time.perf_counter() - started}


def test_a_sweep_of_2_checkpoints_and_2_settings_runs_end_to_end(first):
    s, out = first["summary"], first["out"]
    assert (s["cells"], s["done"], s["failed"]) == (4, 4, [])
    assert s["expressions_predicted"] == 60 and s["expressions_cached"] == 0 and 0 < s["model_calls"] <= 60
    table = pq.read_table(out / "expressions.parquet")
    assert table.num_rows == 60
    for column in ("cell_id", "video", "expression", "setting", "caption_type", "J", "F", "JF", "axis:K",
                   "interaction", "num_objects", "clip_length"):
        assert column in table.column_names, column
    assert set(table.column("setting").to_pylist()) == {"referring", "actor_target"}
    pivot = json.loads((out / "pivot.json").read_text())
    assert len(pivot) == 4 and all(r["overall_low"] <= r["overall_JF"] <= r["overall_high"] for r in pivot)
    assert all(r["overall_JF"] > 0 for r in pivot)  # taught checkpoints: masks that score, not all-empty ones
    diffs = json.loads((out / "differences.json").read_text())
    assert {(d["label_a"], d["label_b"]) for d in diffs} == {
        ("tiny-a K=2", "tiny-a K=1"), ("tiny-b K=2", "tiny-b K=1"), ("tiny-b K=1", "tiny-a K=1"),
        ("tiny-b K=2", "tiny-a K=2")}
    slices = json.loads((out / "slices.json").read_text())
    assert {r["slice"] for r in slices} == {"caption_type", "interaction", "num_objects", "clip_length"}
    report = (out / "report.md").read_text()
    for text in ("J&F x100 with 95% intervals", "Paired differences", "layout of the paper's Table 5",
                 "layout of the paper's Table 4", "### By caption type"):
        assert text in report, text
    pngs = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert "jf_vs_K__push.png" in pngs and "pair00_scatter.png" in pngs and "pair00_differences.png" in pngs
    assert all((out / "plots" / p).read_bytes()[:4] == b"\x89PNG" and f"plots/{p}" in report for p in pngs)
    for c in _cells(out).values():
        assert (out / "cells" / c["cell"] / "metrics.md").exists() and c["status"] == "done"


def test_each_cell_equals_interrvos_predict_and_evaluate_by_hand(first, world, tmp_path):
    from interrvos.cli import app

    cell = _cells(first["out"])["tiny-b K=1"]
    settings = json.loads(cell["settings"])
    runner = CliRunner()
    predictions = tmp_path / "p.jsonl"
    result = runner.invoke(app, ["predict", "--dataset", world["dataset"], "--checkpoint", world["b"], "--out",
                                 str(predictions), "--set", f"inference={json.dumps(settings['inference'])}"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["evaluate", "--dataset", world["dataset"], "--predictions", str(predictions), "--out",
                                 str(tmp_path / "ev"), "--set", "sensitivity_pairs=4", "--set", "overlays.samples=0"])
    assert result.exit_code == 0, result.output
    by_hand = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    swept = json.loads((first["out"] / "cells" / cell["cell"] / "metrics.json").read_text())
    for key in ("settings", "caption_types", "expressions", "counts", "expression_sensitivity"):
        assert swept[key] == by_hand[key], key
    assert (first["out"] / "cells" / cell["cell"] / "predictions.jsonl").read_text() == predictions.read_text()


def test_a_metric_only_rerun_rescores_from_the_cache_without_a_model_call(first):
    again = _run({**first["tree"], "out": str(first["tmp"] / "again")})
    assert (again["model_calls"], again["expressions_predicted"], again["expressions_cached"]) == (0, 0, 60)
    assert (first["tmp"] / "again" / "pivot.json").read_text() == (first["out"] / "pivot.json").read_text()
    davis = _run({**first["tree"], "out": str(first["tmp"] / "davis"), "scoring": {"frame_averaging": "davis",
                                                                                    "sensitivity_pairs": 4}})
    assert (davis["model_calls"], davis["expressions_predicted"], davis["done"]) == (0, 0, 4)
    assert _scores(first["tmp"] / "davis") != _scores(first["out"])  # 4-frame clips: davis scores 2 of them


def test_growing_the_grid_by_one_value_predicts_only_the_new_cells(first):
    tree = {**first["tree"], "out": str(first["tmp"] / "grown"),
            "axes": {"K": {"field": "inference.num_frames", "values": [1, 2, 3]}}}
    grown = _run(tree)
    cells = _cells(first["tmp"] / "grown")
    assert grown["done"] == 6 and grown["expressions_predicted"] == 30 and grown["expressions_cached"] == 60
    assert {label: c["predicted"] for label, c in cells.items()} == {
        "tiny-a K=1": 0, "tiny-a K=2": 0, "tiny-a K=3": 15, "tiny-b K=1": 0, "tiny-b K=2": 0, "tiny-b K=3": 15}
    old = _scores(first["out"])
    assert {k: v for k, v in _scores(first["tmp"] / "grown").items() if k[0] in {c[0] for c in old}} == old


def test_a_checkpoint_that_does_not_load_or_a_bad_dataset_fails_its_cells_and_the_rest_finish(first, world, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(world["a"], broken)
    (broken / "trainable.safetensors").write_bytes(b"not safetensors")
    tree = {**first["tree"], "out": str(tmp_path / "out"),
            "checkpoints": [{"path": world["a"]}, {"path": str(broken)}],
            "datasets": [{"id": "push", "path": world["dataset"]}, {"id": "gone", "path": str(tmp_path / "gone")}],
            "axes": {"K": {"field": "inference.num_frames", "values": [2]}}}
    summary = _run(tree)
    reasons = {f["label"]: f["reason"] for f in summary["failed"]}
    assert summary["done"] == 1 and set(reasons) == {"broken @push K=2", "tiny-a @gone K=2", "broken @gone K=2"}
    assert "prediction with checkpoint 'broken' failed" in reasons["broken @push K=2"]
    assert "safetensors" in reasons["broken @push K=2"].lower()  # what was wrong, not just "the actor died"
    assert "dataset 'gone'" in reasons["tiny-a @gone K=2"]
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## Failed cells (3)" in report and "broken @push K=2" in report


def test_killing_the_sweep_and_rerunning_it_gives_the_results_of_one_clean_run(first, world, yaml_file, tmp_path):
    tree = {**first["tree"], "out": str(tmp_path / "out"), "cache": str(tmp_path / "cache"),
            "checkpoints": [{"path": world["b"]}], "predict": {"batch_size": 1}}
    config = yaml_file(tmp_path / "kill.yaml", tree)
    env = {**os.environ, "RAY_ADDRESS": _gcs_address()}  # the subprocess joins the session's Ray
    proc = subprocess.Popen([sys.executable, "-m", "interrvos.sweep.cli", "--config", str(config)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db, done = tmp_path / "cache" / "predictions.sqlite", 0
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        if db.exists():
            with sqlite3.connect(db, timeout=30) as conn:
                done = conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[0]
            if done >= 3:
                break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert 3 <= done < 30, f"killed after {done} of 30 predictions"
    resumed = _run(tree)
    assert resumed["done"] == 2 and resumed["expressions_cached"] >= done
    assert resumed["expressions_predicted"] == 30 - resumed["expressions_cached"]
    clean = {k: v for k, v in _scores(first["out"]).items() if k[0] in {c["cell"] for c in _cells(tmp_path / "out").values()}}
    assert len(clean) == 30 and _scores(tmp_path / "out") == clean


def _gcs_address() -> str:
    import ray

    return ray.get_runtime_context().gcs_address
