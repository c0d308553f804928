"""The predictions formats (JSON lines, parquet, PNG folders) and validation before scoring."""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest
from PIL import Image

from interrvos.data.rle import decode_rle, encode_mask
from interrvos.evaluate.config import EvaluateConfig
from interrvos.evaluate.predictions import PredictionError, write_predictions
from interrvos.evaluate.run import score_predictions


def _score(dataset, predictions, **kw):
    return score_predictions(EvaluateConfig(dataset=dataset, predictions=str(predictions), executor="local", **kw))


def _png(path, mask, mode="L"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray((mask * 255).astype(np.uint8), mode=mode).save(path)


def write_png_folder(root, records, frames=5, h=24, w=32):
    for r in records:
        for role, sub in (("actor", ()), ("target", ("target",))):
            if r[role] is None:
                continue
            for i, rle in enumerate(r[role][:frames]):
                mask = np.zeros((h, w), np.uint8) if rle is None else decode_rle(rle)
                _png(os.path.join(root, r["video"], r["expression"], *sub, f"{i:05d}.png"), mask)


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_record_formats_round_trip_to_the_oracle_score(eval_dataset, oracle, tmp_path, suffix):
    path = tmp_path / f"predictions{suffix}"
    write_predictions(str(path), oracle(eval_dataset), row_group_size=3)
    m = _score(eval_dataset, path)
    assert m["settings"]["overall"]["JF"] == 100.0 and m["problems"] == []


def test_png_folder_in_the_mevis_layout_with_target_subfolders(eval_dataset, oracle, tmp_path):
    write_png_folder(str(tmp_path / "pngs"), oracle(eval_dataset))
    m = _score(eval_dataset, tmp_path / "pngs")
    assert m["settings"]["overall"]["JF"] == 100.0 and m["counts"]["targets_not_given"] == 0


def _broken_records(records: list[dict]) -> list[dict]:
    """Every kind of problem at once."""
    records = copy.deepcopy(records)
    by_key = {(r["video"], r["expression"]): r for r in records}
    by_key[("v1", "0")]["actor"] = by_key[("v1", "0")]["actor"][:3]  # frames 3..4 missing
    by_key[("v1", "1")]["actor"][2] = encode_mask(np.ones((10, 10), np.uint8))  # wrong size
    by_key[("v1", "2")]["actor"][0] = "not an RLE"  # malformed
    records.remove(by_key[("v2", "0")])  # missing expression
    records.append({"video": "v9", "expression": "0", "actor": []})  # unknown video
    records.append({"video": "v1", "expression": "77", "actor": []})  # unknown expression
    records.append(copy.deepcopy(by_key[("v1", "3")]))  # duplicate
    return records


def test_every_problem_is_listed_in_one_error(eval_dataset, oracle, tmp_path):
    write_predictions(str(tmp_path / "p.jsonl"), _broken_records(oracle(eval_dataset)))
    with pytest.raises(PredictionError) as err:
        _score(eval_dataset, tmp_path / "p.jsonl")
    text = str(err.value)
    assert "7 problem(s)" in text
    for needle in ("missing_frames: video 'v1' expression '0'", "frames 3..4 missing",
                   "wrong_size: video 'v1' expression '1'", "frame 2 mask is 10x10 but frames are 24x32",
                   "malformed: video 'v1' expression '2'", "missing_expression: video 'v2' expression '0'",
                   "unknown_video: video 'v9'", "unknown_expression: video 'v1' expression '77'",
                   "duplicate: video 'v1' expression '3'", "--allow-missing"):
        assert needle in text
    assert "line 9" in text  # the unknown video's line


def test_allow_missing_scores_what_is_present_and_reports_the_rest(eval_dataset, oracle, tmp_path):
    write_predictions(str(tmp_path / "p.jsonl"), _broken_records(oracle(eval_dataset)))
    m = _score(eval_dataset, tmp_path / "p.jsonl", allow_missing=True)
    scored = {(e["video"], e["expression"]) for e in m["expressions"]}
    # Missing and broken expressions are left out; v1/0 is scored on its 3 present frames.
    assert scored == {("v1", "0"), ("v1", "3"), ("v1", "4"), ("v1", "5"), ("v2", "1")}
    v1_0 = next(e for e in m["expressions"] if e["expression"] == "0" and e["video"] == "v1")
    assert v1_0["items"][0]["frames"] == 3 and v1_0["items"][0]["J"] == 100.0
    assert m["problem_counts"] == {"missing_frames": 1, "wrong_size": 1, "malformed": 1, "missing_expression": 1,
                                   "unknown_video": 1, "unknown_expression": 1, "duplicate": 1}
    assert m["counts"]["expressions_scored"] == 5 and m["settings"]["overall"]["JF"] == 100.0


def test_corrupt_rle_counts_fail_their_expression_not_the_run(eval_dataset, oracle, tmp_path):
    records = oracle(eval_dataset)
    records[0]["actor"][1] = {"size": [24, 32], "counts": "zzzz"}  # passes the size check, cannot decode
    write_predictions(str(tmp_path / "p.jsonl"), records)
    m = _score(eval_dataset, tmp_path / "p.jsonl")
    assert m["counts"]["items_failed"] == 1 and m["counts"]["items_scored"] == 10
    assert "malformed RLE" in m["errors"][0]["error"] and m["errors"][0]["video"] == "v1"
    assert m["settings"]["overall"]["JF"] == 100.0  # the failed item is left out of the means


def test_png_folder_problems_missing_and_unknown_frames_and_wrong_size(eval_dataset, oracle, tmp_path):
    root = tmp_path / "pngs"
    write_png_folder(str(root), oracle(eval_dataset))
    os.remove(root / "v1" / "0" / "00002.png")
    _png(str(root / "v1" / "1" / "99999.png"), np.zeros((24, 32), np.uint8))
    for i in range(5):
        _png(str(root / "v2" / "0" / f"{i:05d}.png"), np.zeros((12, 16), np.uint8))
    os.makedirs(root / "v1" / "extra")
    with pytest.raises(PredictionError) as err:
        _score(eval_dataset, root)
    text = str(err.value)
    assert "missing_frames: video 'v1' expression '0'" in text and "first: 00002" in text
    assert "unknown_frame: video 'v1' expression '1'" in text and "99999" in text
    assert "wrong_size: video 'v2' expression '0'" in text and "is 12x16 but frames are 24x32" in text
    assert "unknown_expression: video 'v1' expression 'extra'" in text


def test_missing_predictions_path_is_a_clear_error(eval_dataset, tmp_path):
    with pytest.raises(PredictionError, match="predictions not found"):
        _score(eval_dataset, tmp_path / "nothing.jsonl")
