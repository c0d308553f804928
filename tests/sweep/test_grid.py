"""The grid without Ray: config errors name the field, cells and their stable ids, cache keys, the
prediction cache, the evaluation filter, checkpoints by glob, --dry-run."""

from __future__ import annotations

import json
import shutil

import pytest
import typer
from typer.testing import CliRunner

from interrvos.errors import ConfigError
from interrvos.sweep.cache import PredictionCache
from interrvos.sweep.cells import filter_expressions, resolve_grid
from interrvos.sweep.config import SweepConfig


def _cells(tree: dict):
    cfg = SweepConfig.model_validate(tree)
    cache = PredictionCache(cfg.cache)
    try:
        return resolve_grid(cfg, cache)
    finally:
        cache.close()


def _app() -> typer.Typer:
    from interrvos.sweep.cli import register

    app = typer.Typer(add_completion=False)
    register(app)

    @app.command()
    def other() -> None:  # two commands: `sweep` is then a subcommand, as on the main app
        pass

    return app


def test_config_errors_name_the_field_before_anything_runs(plain_world, make_grid, yaml_file, tmp_path):
    tree = make_grid(plain_world, tmp_path / "out", tmp_path / "cache")
    runner = CliRunner()
    for change, field in [({"axes": {"K": {"field": "inference.num_frames", "values": [2, 0]}}}, "axes.K"),
                          ({"axes": {"K": {"field": "inference.frames", "values": [2]}}}, "axes.K"),
                          ({"axes": {"S": {"field": "model.sam.image_size", "values": [100]}}}, "axes.S"),
                          ({"datasets": [{"path": plain_world["dataset"], "caption_types": ["single"]}]}, "datasets.0"),
                          ({"checkpoints": [{"id": "x"}]}, "checkpoints.0")]:
        path = yaml_file(tmp_path / "bad.yaml", {**tree, **change})
        result = runner.invoke(_app(), ["sweep", "--config", str(path)])
        assert result.exit_code == 2 and field in result.output, result.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()
    with pytest.raises(ConfigError, match="matches no folder"):
        _cells({**tree, "checkpoints": [{"glob": str(tmp_path / "none-*")}]})


def test_the_grid_expands_into_cells_with_stable_ids_and_effective_settings(plain_world, make_grid, tmp_path):
    tree = make_grid(plain_world, tmp_path / "out", tmp_path / "cache")
    cells = _cells(tree)
    assert [c.label for c in cells] == ["tiny-a K=1", "tiny-a K=2", "tiny-b K=1", "tiny-b K=2"]
    assert len({c.id for c in cells}) == 4 and [c.id for c in _cells(tree)] == [c.id for c in cells]
    inference = cells[0].settings["inference"]
    assert inference["num_frames"] == 1 and inference["propagation"] == "prompted"  # the tiny checkpoint's own
    assert cells[0].settings["device"] == "cpu" and cells[0].settings["dtype"] == "float32"
    assert all(len(c.keys) == 15 for c in cells)
    # a changed axis value changes that cell's id only; the same value as the checkpoint's gives the same keys
    moved = _cells({**tree, "axes": {"K": {"field": "inference.num_frames", "values": [1, 3]}}})
    assert moved[0].id == cells[0].id and moved[1].id != cells[1].id
    plain = _cells({**tree, "axes": {}})
    assert plain[0].keys == cells[1].keys  # tiny-a's own num_frames is 2
    assert not set(cells[0].keys) & set(cells[1].keys) and not set(cells[0].keys) & set(cells[2].keys)


def test_keys_follow_the_content_of_each_video(plain_world, make_grid, tmp_path):
    copy = tmp_path / "ds"
    shutil.copytree(plain_world["dataset"], copy)
    tree = make_grid(plain_world, tmp_path / "out", tmp_path / "cache", datasets=[{"id": "push", "path": str(copy)}])
    before = _cells(tree)[0]
    frame = copy / "JPEGImages" / "push01" / "00000.jpg"
    frame.write_bytes(frame.read_bytes() + b"\0")
    after = _cells(tree)[0]
    changed = {r["video"] for r, k, k2 in zip(before.dataset.rows, before.keys, after.keys) if k != k2}
    assert changed == {"push01"}


def test_the_evaluation_filter_and_unreadable_inputs_fail_their_cells_only(plain_world, make_grid, tmp_path):
    tree = make_grid(plain_world, tmp_path / "out", tmp_path / "cache", datasets=[
        {"id": "pairs", "path": plain_world["dataset"], "caption_types": ["interaction"], "videos": ["push00", "push02"]},
        {"id": "broken", "path": str(tmp_path / "nothing")}])
    (tmp_path / "notckpt").mkdir()
    tree["checkpoints"] = [{"path": plain_world["a"]}, {"id": "bad", "path": str(tmp_path / "notckpt")}]
    cells = _cells(tree)
    ok = [c for c in cells if not c.problem]
    assert [c.label for c in ok] == ["tiny-a @pairs K=1", "tiny-a @pairs K=2"]
    assert [(r["video"], r["expression"]) for r in ok[0].dataset.rows] == [
        ("push00", "2"), ("push00", "3"), ("push02", "2"), ("push02", "3")]
    reasons = {c.label: c.problem for c in cells if c.problem}
    assert "not a ReVIOsA checkpoint" in reasons["bad @pairs K=1"] and "dataset 'broken'" in reasons["tiny-a @broken K=2"]
    from interrvos.data.mevis import load_dataset
    from interrvos.sweep.config import DatasetEntry

    limited = filter_expressions(load_dataset(plain_world["dataset"]), DatasetEntry(path=plain_world["dataset"], limit=7))
    assert len(limited) == 7


def test_a_glob_over_a_training_run_exports_each_checkpoint_once(plain_world, make_grid, tmp_path, monkeypatch):
    import interrvos.train.export as export

    run = tmp_path / "run"
    for step in ("step_00000010", "step_00000020"):
        (run / step).mkdir(parents=True)
        (run / step / "train_state.json").write_text(json.dumps({"step": int(step[5:])}))
    calls = []

    def fake_export(folder, out, task=None):
        calls.append(folder)
        shutil.copytree(plain_world["a"], out)

    monkeypatch.setattr(export, "export_folder", fake_export)
    tree = make_grid(plain_world, tmp_path / "out", tmp_path / "cache", checkpoints=[{"glob": f"{run}/step_*", "id": "r-"}])
    cells = _cells(tree)
    assert [c.checkpoint.id for c in cells] == ["r-step_00000010"] * 2 + ["r-step_00000020"] * 2
    assert all(c.checkpoint.path.startswith(str(tmp_path / "cache" / "exports")) and not c.problem for c in cells)
    _cells(tree)
    assert len(calls) == 2  # exported once, then found in the cache


def test_the_cache_commits_lines_and_remembers_folder_hashes(plain_world, tmp_path, monkeypatch):
    import interrvos.serving.checkpoints as checkpoints

    cache = PredictionCache(str(tmp_path / "cache"))
    cache.put("k1", {"video": "v", "expression": "0", "actor": [], "target": None})
    first = cache.folder_hash(plain_world["a"])
    cache.close()
    again = PredictionCache(str(tmp_path / "cache"))  # a new process would see the same
    monkeypatch.setattr(checkpoints, "content_hash", lambda folder: pytest.fail("hashed again"))
    assert again.present(["k1", "k2"]) == {"k1"} and again.lines(["k1"])["k1"]["video"] == "v"
    assert again.folder_hash(plain_world["a"]) == first and again.count() == 1


def test_dry_run_lists_cells_what_is_cached_and_the_resources(plain_world, make_grid, yaml_file, tmp_path):
    tree = make_grid(plain_world, tmp_path / "out", tmp_path / "cache")
    result = CliRunner().invoke(_app(), ["sweep", "--config", str(yaml_file(tmp_path / "g.yaml", tree)), "--dry-run"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "4 cells (60 expressions to predict, 0 cached)" in out and "tiny-b K=2" in out and "to predict" in out
    assert "predict tiny-a" in out and "predict tiny-b" in out and "score" in out and "1-1 actor(s) x 1 CPU" in out
    assert not (tmp_path / "out").exists()
