"""The predictions format and the `predict` job (the worker alone, then on Ray through the CLI)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from interrvos.data.rle import decode_rle, encode_mask
from interrvos.model.predictions_io import PredictionsError, prediction_line, read_predictions, write_predictions


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    """Two synthetic videos (5 and 7 frames), each with a unidirectional and a single-object expression."""
    from interrvos.data.mevis import write_dataset, write_frame
    from interrvos.data.records import Expression, VideoEntry
    from interrvos.model.synthetic import synthetic_clip

    root = tmp_path_factory.mktemp("predict") / "ds"
    videos, masks = {}, {}
    for v, n in enumerate((5, 7)):
        clip, vid = synthetic_clip(n, 48, 64, seed=v), f"vid{v}"
        names = [f"{i:05d}" for i in range(n)]
        for name, frame in zip(names, clip.frames, strict=True):
            write_frame(str(root), vid, name, frame)
        masks[f"{vid}:0"] = [encode_mask(m) for m in clip.actor]
        masks[f"{vid}:1"] = [encode_mask(m) for m in clip.target]
        uni = Expression(exp="red square pushing the blue disc", caption_type="interaction", obj_id=["0", "1"],
                         anno_id=[f"{vid}:0", f"{vid}:1"], interaction="unidirectional", actor_ids=["0"],
                         target_ids=["1"], actor_anno_id=[f"{vid}:0"], target_anno_id=[f"{vid}:1"])  # fmt: skip
        solo = Expression(exp="the blue disc", caption_type="single_all", obj_id=["1"], anno_id=[f"{vid}:1"])
        videos[vid] = VideoEntry(vid_id=vid, frames=names, expressions={"0": uni, "1": solo},
                                 objects={"0": {"category": "square", "anno_id": f"{vid}:0"},
                                          "1": {"category": "disc", "anno_id": f"{vid}:1"}})  # fmt: skip
    write_dataset(str(root), videos, masks)
    return root


@pytest.fixture(scope="module")
def checkpoint_dir(tmp_path_factory):
    from interrvos.model.checkpoint import save_checkpoint
    from interrvos.model.reviosa import build_model

    path = tmp_path_factory.mktemp("predict") / "ckpt"
    save_checkpoint(build_model("tiny", ["inference.num_frames=2"]), str(path))
    return path


def test_predictions_file_round_trip_and_validation(tmp_path):
    empty = encode_mask(np.zeros((4, 5), np.uint8))
    lines = [prediction_line("v", "0", [empty, None], [empty, empty], "It is [SEG_ACT] and [SEG_TAR]."),
             prediction_line("v", "1", [empty, empty], None)]  # fmt: skip
    assert write_predictions(str(tmp_path / "p.jsonl"), lines) == 2
    back = read_predictions(str(tmp_path / "p.jsonl"))
    assert back[("v", "0")]["target"] == [empty, empty] and back[("v", "1")]["target"] is None
    assert back[("v", "0")]["answer"].startswith("It is")
    with pytest.raises(PredictionsError, match="missing"):
        write_predictions(str(tmp_path / "x.jsonl"), [{"video": "v", "expression": "0", "actor": []}])
    with pytest.raises(PredictionsError, match=r"actor\[0\]"):
        write_predictions(str(tmp_path / "x.jsonl"), [prediction_line("v", "0", [{"size": [4, 5], "counts": "zz"}], None)])
    with pytest.raises(PredictionsError, match="frame counts differ"):
        write_predictions(str(tmp_path / "x.jsonl"), [prediction_line("v", "0", [empty], [empty, empty])])
    (tmp_path / "dup.jsonl").write_text((tmp_path / "p.jsonl").read_text() * 2)
    with pytest.raises(PredictionsError, match="appears twice"):
        read_predictions(str(tmp_path / "dup.jsonl"))


def test_plan_rows_follow_the_dataset(dataset_dir):
    from interrvos.data.mevis import load_dataset
    from interrvos.model.config import PredictConfig
    from interrvos.model.predict import plan_rows

    ds = load_dataset(str(dataset_dir))
    rows = plan_rows(ds, PredictConfig(dataset=str(dataset_dir)))
    assert [(r["video"], r["expression"]) for r in rows] == [("vid0", "0"), ("vid0", "1"), ("vid1", "0"), ("vid1", "1")]
    assert len(plan_rows(ds, PredictConfig(dataset=str(dataset_dir), videos=["vid1"], limit=1))) == 1


def test_worker_segments_rows_writes_parts_and_records_failures(dataset_dir, checkpoint_dir, tmp_path):
    from interrvos.model.predict import PredictWorker, part_name

    parts = tmp_path / "parts"
    worker = PredictWorker(str(checkpoint_dir), str(dataset_dir), str(parts), None, "cpu", "float32")
    batch = {"video": np.array(["vid0", "vid0", "nope"]), "expression": np.array(["0", "1", "0"]),
             "text": np.array(["red square pushing the blue disc", "the blue disc", "x"])}  # fmt: skip
    out = worker(batch)
    assert out["status"] == ["written", "written", "error"] and "nope" in out["error"][2]
    line = json.loads((parts / part_name("vid0", "0")).read_text())
    assert len(line["actor"]) == 5 and decode_rle(line["actor"][0]).shape == (48, 64)
    again = worker({k: v[:2] for k, v in batch.items()})
    assert again["status"] == ["done", "done"]


@pytest.mark.slow
def test_predict_job_on_ray_writes_every_expression_and_resumes(ray_cluster, dataset_dir, checkpoint_dir, tmp_path):
    from typer.testing import CliRunner

    from interrvos.cli import app

    out = tmp_path / "pred.jsonl"
    args = ["predict", "--dataset", str(dataset_dir), "--checkpoint", str(checkpoint_dir), "--out", str(out),
            "--set", "batch_size=2", "--set", "workers.max_size=1"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = read_predictions(str(out))
    assert sorted(lines) == [("vid0", "0"), ("vid0", "1"), ("vid1", "0"), ("vid1", "1")]
    assert [len(lines[("vid1", e)]["actor"]) for e in "01"] == [7, 7]
    summary = json.loads((tmp_path / "pred.jsonl.summary.json").read_text())
    assert summary["written"] == 4 and summary["errors"] == [] and not (tmp_path / "pred.jsonl.parts").exists()
    # a re-run finds everything done and leaves the file as it was
    before = out.read_bytes()
    assert CliRunner().invoke(app, args).exit_code == 0
    assert out.read_bytes() == before
    assert json.loads((tmp_path / "pred.jsonl.summary.json").read_text())["already_done"] == 4


@pytest.mark.slow
def test_predict_job_records_a_broken_video_and_finishes_the_rest(ray_cluster, dataset_dir, checkpoint_dir, tmp_path):
    from interrvos.config import RayConfig
    from interrvos.model.config import PredictConfig
    from interrvos.model.predict import run_predict

    broken = tmp_path / "ds"
    shutil.copytree(dataset_dir, broken)
    (broken / "JPEGImages" / "vid1" / "00000.jpg").write_bytes(b"not a jpeg")  # read for the MLLM
    cfg = PredictConfig(dataset=str(broken), checkpoint=str(checkpoint_dir), out=str(tmp_path / "p.jsonl"),
                        ray=RayConfig(num_cpus=2))  # fmt: skip
    summary = run_predict(cfg)
    assert summary["predictions"] == 2 and {e["video"] for e in summary["errors"]} == {"vid1"}
    assert "not a readable image" in summary["errors"][0]["error"]
    shutil.copy(dataset_dir / "JPEGImages" / "vid1" / "00000.jpg", broken / "JPEGImages" / "vid1" / "00000.jpg")
    again = run_predict(cfg)  # retries only the failed video
    assert again["written"] == 2 and again["already_done"] == 2 and again["predictions"] == 4


def test_predict_command_help_config_errors_and_job_config(tmp_path):
    from pathlib import Path

    from typer.testing import CliRunner

    from interrvos.cli import app
    from interrvos.config import load_config
    from interrvos.model.config import PredictConfig

    runner = CliRunner()
    result = runner.invoke(app, ["predict", "--help"])
    assert result.exit_code == 0 and "--checkpoint" in result.output and "--dataset" in result.output
    bad = runner.invoke(app, ["predict", "--set", "workers.max_size=0"])
    assert bad.exit_code == 2 and "workers.max_size" in bad.output
    missing = runner.invoke(app, ["predict", "--dataset", str(tmp_path / "none"), "--checkpoint", str(tmp_path)])
    assert missing.exit_code == 1 and "not a dataset folder" in " ".join(missing.output.split())
    cfg = load_config(PredictConfig, Path(__file__).resolve().parents[2] / "jobs" / "configs" / "predict.yaml")
    assert cfg.inference.num_frames == 5 and cfg.workers.max_size == 1
