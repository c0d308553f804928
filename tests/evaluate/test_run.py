"""The whole job: Ray fan-out identical to one process, reports and overlays, the CLI, the demo table."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from interrvos.data.mevis import write_dataset
from interrvos.data.records import VideoEntry
from interrvos.data.rle import decode_rle, encode_mask
from interrvos.evaluate.config import EvaluateConfig, OverlayConfig
from interrvos.evaluate.predictions import write_predictions
from interrvos.evaluate.run import baseline_table_markdown, run_evaluate, score_predictions


def noisy_records(records: list[dict], seed: int = 0) -> list[dict]:
    """The ground truth moved by a few pixels, some frames dropped to empty: scores strictly between 0 and 100."""
    rng = np.random.default_rng(seed)
    for r in records:
        for role in ("actor", "target"):
            if r[role] is None:
                continue
            track = []
            for rle in r[role]:
                if rle is None or rng.random() < 0.15:
                    track.append(None)
                    continue
                m = np.roll(decode_rle(rle), tuple(rng.integers(-3, 4, 2)), axis=(0, 1))
                track.append(encode_mask(m))
            r[role] = track
    return records


@pytest.mark.slow
def test_ray_fan_out_gives_exactly_the_single_process_numbers(ray_cluster, eval_dataset, oracle, tmp_path):
    path = str(tmp_path / "p.jsonl")
    write_predictions(path, noisy_records(oracle(eval_dataset)))
    common = dict(dataset=eval_dataset, predictions=path)
    local = score_predictions(EvaluateConfig(executor="local", **common))
    on_ray = score_predictions(EvaluateConfig(executor="ray", expressions_per_task=1, **common))
    assert 0 < local["settings"]["overall"]["JF"] < 100
    for key in ("settings", "caption_types", "expressions", "counts"):
        assert on_ray[key] == local[key], key


def test_reports_metrics_json_markdown_and_overlays(eval_dataset, oracle, tmp_path):
    path = str(tmp_path / "p.parquet")
    write_predictions(path, noisy_records(oracle(eval_dataset), seed=1))
    out = tmp_path / "out"
    cfg = EvaluateConfig(dataset=eval_dataset, predictions=path, out=str(out), executor="local", name="noisy",
                         overlays=OverlayConfig(samples=3, frames=4))
    metrics = run_evaluate(cfg)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["settings"] == json.loads(json.dumps(metrics["settings"]))
    assert {e["caption_type"] for e in saved["expressions"]} == {"single_all", "single_appearance", "single_motion",
                                                                 "multi", "interaction"}
    assert all("J" in i and "F" in i for e in saved["expressions"] for i in e["items"])
    md = (out / "metrics.md").read_text()
    assert "| Method | Referring J | Referring F | Referring J&F | Actor-Target J" in md
    assert "| Method | Single (Appear. + Motion) | Single (Appear.) | Single (Motion) | Multi | Interaction | Overall |" in md
    assert "| noisy |" in md
    pngs = sorted(p.name for p in (out / "overlays").glob("*.png"))
    assert len(pngs) == 3 and saved["overlays"] == [f"overlays/{p}" for p in pngs]
    assert all(f"]({name})" in md for name in saved["overlays"])
    # Actor-target samples come first: the first strip is an interaction expression with a target.
    assert pngs[0].startswith("00_v1_3")

    gif_cfg = cfg.model_copy(update={"out": str(tmp_path / "gif"), "overlays": OverlayConfig(samples=1, format="gif")})
    run_evaluate(gif_cfg)
    gifs = list((tmp_path / "gif" / "overlays").glob("*.gif"))
    assert len(gifs) == 1 and gifs[0].read_bytes()[:3] == b"GIF"


def test_cli_evaluate_prints_the_tables_and_fails_with_the_problem_list(eval_dataset, tmp_path):
    from interrvos.cli import app

    runner = CliRunner()
    ok = runner.invoke(app, ["evaluate", "--dataset", eval_dataset, "--baseline", "oracle", "--out",
                             str(tmp_path / "o"), "--set", "executor=local", "--set", "overlays.samples=0"])
    assert ok.exit_code == 0, ok.output
    assert "| baseline: oracle | 100.0 |" in ok.stdout
    assert (tmp_path / "o" / "metrics.json").exists()

    (tmp_path / "empty.jsonl").write_text("")
    bad = runner.invoke(app, ["evaluate", "--dataset", eval_dataset, "--predictions", str(tmp_path / "empty.jsonl"),
                              "--set", "executor=local"])
    assert bad.exit_code == 1 and "missing_expression" in bad.output
    lenient = runner.invoke(app, ["evaluate", "--dataset", eval_dataset, "--predictions", str(tmp_path / "empty.jsonl"),
                                  "--allow-missing", "--out", str(tmp_path / "l"), "--set", "executor=local"])
    assert lenient.exit_code == 0, lenient.output
    assert "8 prediction problem(s) of kind missing_expression" in lenient.output.replace("\n", " ")


def test_baseline_table_of_a_dataset_without_expressions_scores_one_expression_per_object(tmp_path):
    from interrvos.data.mevis import load_dataset

    root = str(tmp_path / "skeleton")
    small, large = np.zeros((16, 16), np.uint8), np.zeros((16, 16), np.uint8)
    small[2:4, 2:4], large[6:14, 4:14] = 1, 1
    video = VideoEntry(vid_id="c0", frames=["00000", "00001"],
                       objects={"1": {"category": "square", "anno_id": "c0:1"}, "2": {"category": "disk", "anno_id": "c0:2"}})
    write_dataset(root, {"c0": video}, {"c0:1": [encode_mask(small)] * 2, "c0:2": [encode_mask(large)] * 2})
    assert not load_dataset(root).videos["c0"].expressions
    md = baseline_table_markdown(root, executor="local")
    assert "no expressions yet" in md
    settings_table = md.split("Caption types")[0]
    rows = {line.split(" | ")[0].lstrip("| "): line for line in settings_table.splitlines() if line.startswith("| ")}
    assert set(rows) >= {"oracle", "empty", "full", "random_object", "largest_object"}
    assert rows["oracle"] == "| oracle | 100.0 | 100.0 | 100.0 | - | - | - | 100.0 | 100.0 | 100.0 |"
    # Two objects, two expressions: the largest object is right for one of them.
    assert "| largest_object | 50.0 | 50.0 | 50.0 |" in md


def test_baseline_table_scores_all_baselines_in_one_pass_with_the_numbers_of_separate_runs(eval_dataset):
    from interrvos.evaluate.baselines import BASELINES
    from interrvos.evaluate.report import markdown_tables

    separate = {name: score_predictions(EvaluateConfig(dataset=eval_dataset, baseline=name, executor="local"))
                for name in BASELINES}
    for m, name in zip(separate.values(), BASELINES):
        m["name"] = name
    assert baseline_table_markdown(eval_dataset, executor="local") == markdown_tables(separate)
