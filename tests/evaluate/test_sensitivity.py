"""The cross-expression mask IoU: 0 for the ground truth, 100 for one mask whatever the expression."""

from __future__ import annotations

import json

import pytest

from interrvos.data.mevis import load_dataset
from interrvos.evaluate.config import EvaluateConfig, OverlayConfig
from interrvos.evaluate.predictions import write_predictions
from interrvos.evaluate.run import run_evaluate, score_predictions
from interrvos.evaluate.sensitivity import disjoint_pairs

# v1: expressions 0 {p}, 1 {b}, 2 {p, d}, 3 actor {p}, 4 actor {b}, 5 {d, p} -> 8 disjoint pairs; v2: 1 pair.
PAIRS = 9


def _sensitivity(dataset: str, **source) -> dict:
    cfg = EvaluateConfig(dataset=dataset, executor="local", overlays=OverlayConfig(samples=0), **source)
    return score_predictions(cfg)["expression_sensitivity"]


@pytest.mark.parametrize(("baseline", "cross_iou"), [("oracle", 0.0), ("full", 100.0), ("largest_object", 100.0)])
def test_ground_truth_is_0_and_one_mask_for_every_expression_is_100(eval_dataset, baseline, cross_iou):
    assert _sensitivity(eval_dataset, baseline=baseline) == {"pairs": PAIRS, "frames_per_pair": 16,
                                                             "cross_iou": cross_iou}


def test_pairs_whose_masks_are_all_empty_are_not_counted(eval_dataset):
    assert _sensitivity(eval_dataset, baseline="empty") == {"pairs": 0, "frames_per_pair": 16, "cross_iou": None}


def test_one_expression_answered_with_another_objects_mask(eval_dataset, oracle, tmp_path):
    records = oracle(eval_dataset)
    by_key = {(r["video"], r["expression"]): r for r in records}
    by_key[("v2", "1")]["actor"] = by_key[("v2", "0")]["actor"]  # "cat watching the bird" -> the bird
    path = str(tmp_path / "p.jsonl")
    write_predictions(path, records)
    got = _sensitivity(eval_dataset, predictions=path)
    assert got["pairs"] == PAIRS and got["cross_iou"] == pytest.approx(100 / PAIRS, abs=0.01)


def test_pairs_per_video_are_capped_in_dataset_order(eval_dataset):
    ds = load_dataset(eval_dataset)
    every = disjoint_pairs(ds, "v1", set(ds.videos["v1"].expressions), max_pairs=100)
    assert len(every) == 8 and every[0] == ("0", "1")
    assert disjoint_pairs(ds, "v1", set(ds.videos["v1"].expressions), max_pairs=3) == every[:3]
    assert disjoint_pairs(ds, "v1", {"0", "2"}, max_pairs=100) == []  # both name the person


def test_reported_in_metrics_and_markdown_and_can_be_switched_off(eval_dataset, tmp_path):
    on = run_evaluate(EvaluateConfig(dataset=eval_dataset, baseline="full", out=str(tmp_path / "on"),
                                     executor="local", overlays=OverlayConfig(samples=0)))
    assert json.loads((tmp_path / "on" / "metrics.json").read_text())["expression_sensitivity"]["cross_iou"] == 100
    assert "cross-expression mask IoU" in (tmp_path / "on" / "metrics.md").read_text()
    off = run_evaluate(EvaluateConfig(dataset=eval_dataset, baseline="full", out=str(tmp_path / "off"),
                                      executor="local", overlays=OverlayConfig(samples=0), sensitivity_pairs=0))
    assert off["expression_sensitivity"] is None and on["settings"] == off["settings"]
    assert "cross-expression" not in (tmp_path / "off" / "metrics.md").read_text()


def test_the_baseline_table_leaves_it_out_when_switched_off(eval_dataset):
    from interrvos.evaluate.run import baseline_table_markdown

    assert "cross-expression mask IoU" in baseline_table_markdown(eval_dataset, executor="local")
    assert "cross-expression" not in baseline_table_markdown(eval_dataset, executor="local", sensitivity_pairs=0)
