"""The evaluation app's scoring, without Serve: registered sets, a submitted file scored exactly as
`interrvos evaluate` scores it, in-process and per-expression scoring, and 422s naming the problem."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from interrvos.data.rle import decode_rle, encode_mask
from interrvos.evaluate.baselines import BaselinePredictions
from interrvos.evaluate.config import EvaluateConfig, OverlayConfig
from interrvos.evaluate.predictions import prediction_record, write_predictions
from interrvos.evaluate.report import markdown_tables
from interrvos.evaluate.run import evaluate, prepare_dataset, run_evaluate
from interrvos.serving.errors import BadRequest, NotFound, Unprocessable, UnsupportedMediaType
from interrvos.serving.scoring import (
    EvaluationSets,
    score_lines,
    score_record,
    score_submission,
    submission_sha256,
)

# The evaluation tests' tiny dataset (test modules cannot import another folder's conftest under
# --import-mode=importlib, so it is loaded by path).
_spec = importlib.util.spec_from_file_location("eval_conftest", Path(__file__).parents[1] / "evaluate" / "conftest.py")
eval_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(eval_conftest)
H, W = eval_conftest.H, eval_conftest.W


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("serving_eval") / "dataset")
    eval_conftest.build_eval_dataset(root, with_images=False)
    return root


@pytest.fixture(scope="module")
def sets(dataset_root) -> EvaluationSets:
    return EvaluationSets({"tiny": dataset_root})


def oracle(root: str) -> list[dict]:
    return eval_conftest.oracle_records(root)


def shifted(records: list[dict], seed: int = 0) -> list[dict]:
    """The ground truth moved by a few pixels and some frames dropped: scores strictly inside (0, 100)."""
    rng = np.random.default_rng(seed)
    for r in records:
        for role in ("actor", "target"):
            if r.get(role) is None:
                continue
            r[role] = [None if rle is None or rng.random() < 0.2 else
                       encode_mask(np.roll(decode_rle(rle), tuple(rng.integers(-3, 4, 2)), axis=(0, 1)))
                       for rle in r[role]]
    return records


def jsonl(records: list[dict]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def unprocessable(sets, data: bytes, filename: str = "sub.jsonl") -> Unprocessable:
    with pytest.raises(Unprocessable) as info:
        score_submission(sets, "tiny", filename, data)
    return info.value


# ---- registered sets ------------------------------------------------------------------------------

def test_lists_registered_sets_with_their_counts(sets):
    # v1: 3 single/multi + 1 bidirectional (referring) and 2 actor-target pairs; v2: 1 single, 1 pair.
    assert sets.list() == [{"name": "tiny", "videos": 2, "expressions": 8,
                            "items": {"referring": 5, "actor_target": 6}}]
    work = sets.expressions("tiny")
    assert [(w["video"], w["expression"]) for w in work][:2] == [("v1", "0"), ("v1", "1")]
    assert work[0] == {"video": "v1", "expression": "0", "exp": "the person walking right", "frames": 5}
    assert sets.dataset("tiny") is sets.dataset("tiny")  # loaded once


def test_unknown_dataset_is_404_naming_it_and_the_known_ones(sets, dataset_root):
    with pytest.raises(NotFound) as info:
        score_submission(sets, "nope", "p.jsonl", jsonl(oracle(dataset_root)))
    assert "'nope'" in info.value.message and "'tiny'" in info.value.message
    assert info.value.status == 404
    with pytest.raises(NotFound, match="'nope'"):
        sets.describe("nope")


# ---- scores equal `interrvos evaluate` --------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_submission_scores_equal_interrvos_evaluate_exactly(sets, dataset_root, tmp_path, suffix):
    path = str(tmp_path / f"preds{suffix}")
    write_predictions(path, shifted(oracle(dataset_root), seed=3))
    cli = run_evaluate(EvaluateConfig(dataset=dataset_root, predictions=path, out=str(tmp_path / "out"),
                                      executor="local", overlays=OverlayConfig(samples=0)))
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())

    result = score_submission(sets, "tiny", f"preds{suffix}", Path(path).read_bytes(), tmp_dir=str(tmp_path / "t"))

    assert 0 < result["settings"]["overall"]["JF"] < 100
    for key in ("settings", "caption_types", "counts"):
        assert result[key] == cli[key] == saved[key], key
    assert result["metrics"]["expressions"] == cli["expressions"]
    assert result["markdown"] == markdown_tables({f"preds{suffix}": cli})
    assert result["name"] == f"preds{suffix}" and result["file"] == f"preds{suffix}" and result["dataset"] == "tiny"
    by_key = {(e["video"], e["expression"]): e for e in cli["expressions"]}
    for e in result["expressions"]:
        truth = by_key[(e["video"], e["expression"])]
        assert (e["J"], e["F"], e["JF"]) == (truth["J"], truth["F"], (truth["J"] + truth["F"]) / 2)
        assert e["setting"] == truth["items"][0]["setting"]
    assert {e["setting"] for e in result["expressions"]} == {"referring", "actor_target"}
    assert list((tmp_path / "t").iterdir()) == []  # the temp file is gone


def test_oracle_scores_100_and_a_baseline_file_equals_the_baseline_run(sets, dataset_root):
    perfect = score_submission(sets, "tiny", "oracle.jsonl", jsonl(oracle(dataset_root)), name="oracle")
    assert {s: perfect["settings"][s]["JF"] for s in ("referring", "actor_target", "overall")} == \
        {"referring": 100.0, "actor_target": 100.0, "overall": 100.0}
    assert perfect["name"] == "oracle" and "| oracle |" in perfect["markdown"]

    ds, base = prepare_dataset(dataset_root, "dataset"), BaselinePredictions("largest_object")
    records = [prediction_record(v, e, (p := base.load(ds, v, e)).actor, p.target) for v, e, _ in ds.all_expressions()]
    served = score_submission(sets, "tiny", "largest.parquet", _parquet_bytes(records))
    cli = evaluate(EvaluateConfig(dataset=dataset_root, baseline="largest_object", executor="local",
                                  overlays=OverlayConfig(samples=0))).metrics
    assert 0 < served["settings"]["overall"]["JF"] < 100
    assert served["settings"] == cli["settings"] and served["caption_types"] == cli["caption_types"]
    assert [(e["J"], e["F"]) for e in served["expressions"]] == [(e["J"], e["F"]) for e in cli["expressions"]]


def _parquet_bytes(records: list[dict]) -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        write_predictions(f"{d}/p.parquet", records)
        return Path(f"{d}/p.parquet").read_bytes()


def test_in_process_lines_and_per_expression_scores_equal_the_file_result(sets, dataset_root):
    records = shifted(oracle(dataset_root), seed=5)
    from_file = score_submission(sets, "tiny", "ckpt.jsonl", jsonl(records), name="ckpt")
    from_lines = score_lines(sets, "tiny", records, name="ckpt")
    assert from_lines["settings"] == from_file["settings"]
    assert from_lines["expressions"] == from_file["expressions"]
    assert from_lines["markdown"] == from_file["markdown"] and from_lines["file"] is None
    # Streamed one expression at a time, in any order: the same per-expression rows.
    streamed = {(r["video"], r["expression"]): score_record(sets, "tiny", r) for r in reversed(records)}
    for e in from_file["expressions"]:
        s = streamed[(e["video"], e["expression"])]
        assert (s["J"], s["F"], s["JF"], s["setting"]) == (e["J"], e["F"], e["JF"], e["setting"])
        assert s["items"] == e["items"]


def test_submission_sha256_is_of_the_bytes():
    assert submission_sha256(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


# ---- what is wrong with a file, named ----------------------------------------------------------------

def test_malformed_json_line_names_file_and_line(sets, dataset_root):
    lines = jsonl(oracle(dataset_root)).split(b"\n")
    lines[2] = b'{"video": "v1", "expression": '
    err = unprocessable(sets, b"\n".join(lines), filename="../../etc/mine.jsonl")
    bad = [p for p in err.body()["problems"] if p["kind"] == "malformed"]
    assert bad and bad[0]["file"] == "mine.jsonl" and bad[0]["location"] == "line 3"
    assert "not JSON" in bad[0]["message"] and "mine.jsonl line 3" in err.message
    # The record lost on that line is then missing: named by video and expression.
    assert {"kind": "missing_expression", "video": "v1", "expression": "2"}.items() <= \
        next(p for p in err.body()["problems"] if p["kind"] == "missing_expression").items()
    assert err.status == 422 and "/tmp" not in json.dumps(err.body())


def test_bytes_that_are_not_utf8_are_a_malformed_line_not_a_crash(sets, dataset_root):
    data = jsonl(oracle(dataset_root)) + b'{"video": "v1", "expression": "\xff\xfe"}\n'
    err = unprocessable(sets, data)
    assert [(p["kind"], p["location"]) for p in err.body()["problems"]] == [("malformed", "line 9")]


def test_unknown_video_and_expression_are_named(sets, dataset_root):
    records = oracle(dataset_root) + [{"video": "v9", "expression": "0", "actor": [None] * 5},
                                      {"video": "v2", "expression": "7", "actor": [None] * 5}]
    problems = unprocessable(sets, jsonl(records)).body()["problems"]
    assert {(p["kind"], p["video"], p["expression"], p["field"], p["location"]) for p in problems} == {
        ("unknown_video", "v9", None, "video", "line 9"), ("unknown_expression", "v2", "7", "expression", "line 10")}
    assert all(p["file"] == "sub.jsonl" for p in problems)


def test_wrong_mask_size_names_video_expression_field_and_frame(sets, dataset_root):
    records = oracle(dataset_root)
    records[3]["target"][2] = encode_mask(np.ones((H + 1, W), np.uint8))  # v1/3: an actor-target pair
    records[0]["actor"][1] = encode_mask(np.ones((H, W * 2), np.uint8))
    problems = unprocessable(sets, jsonl(records), filename="sized.jsonl").body()["problems"]
    got = {(p["kind"], p["video"], p["expression"], p["field"]) for p in problems}
    assert got == {("wrong_size", "v1", "0", "actor"), ("wrong_size", "v1", "3", "target")}
    target = next(p for p in problems if p["field"] == "target")
    assert "frame 2" in target["message"] and f"{H + 1}x{W}" in target["message"] and target["location"] == "line 4"


def test_missing_expression_and_missing_frames(sets, dataset_root):
    records = oracle(dataset_root)
    del records[5]  # v1/5
    records[0]["actor"] = records[0]["actor"][:3]
    problems = unprocessable(sets, jsonl(records)).body()["problems"]
    assert [(p["kind"], p["video"], p["expression"], p["field"]) for p in problems] == [
        ("missing_frames", "v1", "0", "actor"), ("missing_expression", "v1", "5", "expression")]


def test_rle_counts_that_do_not_decode_are_422(sets, dataset_root):
    records = oracle(dataset_root)
    records[1]["actor"][0] = {"size": [H, W], "counts": "0"}  # runs that cover too few pixels
    problems = unprocessable(sets, jsonl(records)).body()["problems"]
    assert [(p["kind"], p["video"], p["expression"], p["field"]) for p in problems] == [
        ("malformed", "v1", "1", "actor")]
    assert "frame 0" in problems[0]["message"]


def test_files_that_are_not_predictions(sets, dataset_root, tmp_path):
    with pytest.raises(UnsupportedMediaType, match="preds.csv"):
        score_submission(sets, "tiny", "preds.csv", b"video,expression\n")
    with pytest.raises(BadRequest):
        score_submission(sets, "tiny", "", b"{}")
    assert "empty" in unprocessable(sets, b"").message
    assert "not a readable parquet" in unprocessable(sets, b"PAR1 not really", "p.parquet").message
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"video": ["v1"], "frames": [1]}), tmp_path / "cols.parquet")
    err = unprocessable(sets, (tmp_path / "cols.parquet").read_bytes(), "cols.parquet")
    assert "missing ['actor', 'expression']" in err.message and "cols.parquet" in err.message
    assert err.body()["problems"][0]["kind"] == "malformed"


def test_temp_file_is_removed_when_scoring_fails(sets, tmp_path):
    with pytest.raises(Unprocessable):
        score_submission(sets, "tiny", "x.jsonl", b"{broken\n", tmp_dir=str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_one_expression_that_does_not_fit_is_422(sets, dataset_root):
    record = oracle(dataset_root)[3]
    record["actor"] = record["actor"][:2]
    with pytest.raises(Unprocessable) as info:
        score_record(sets, "tiny", record, source="checkpoint tiny-a")
    assert [(p["kind"], p["video"], p["expression"], p["field"]) for p in info.value.body()["problems"]] == [
        ("missing_frames", "v1", "3", "actor")]
    with pytest.raises(Unprocessable, match="no video 'zz'"):
        score_record(sets, "tiny", {"video": "zz", "expression": "0", "actor": []})


@pytest.mark.parametrize("mask", [{"size": [], "counts": "0"}, {"size": [H], "counts": "0"},
                                  {"size": [H, W], "counts": 5}, {"size": "24x32", "counts": "0"}, "not a mask",
                                  {"size": [H, W], "counts": [1, -2]}])
def test_masks_that_are_not_rles_are_422_naming_the_field(sets, dataset_root, mask):
    records = oracle(dataset_root)
    records[4]["target"][1] = mask  # v1/4: an actor-target pair
    problems = unprocessable(sets, jsonl(records)).body()["problems"]
    assert [(p["kind"], p["video"], p["expression"], p["field"]) for p in problems] == [
        ("malformed", "v1", "4", "target")]


def test_a_second_record_for_an_expression_is_named(sets, dataset_root):
    records = oracle(dataset_root)
    problems = unprocessable(sets, jsonl(records + records[:1])).body()["problems"]
    assert [(p["kind"], p["video"], p["expression"], p["location"]) for p in problems] == [
        ("duplicate", "v1", "0", "line 9")]
