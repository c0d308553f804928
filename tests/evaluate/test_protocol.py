"""Items, settings and caption types on a hand-built dataset with hand-computed expectations."""

from __future__ import annotations

import numpy as np
import pytest

from interrvos.data.mevis import load_dataset
from interrvos.data.rle import encode_mask
from interrvos.evaluate.config import EvaluateConfig
from interrvos.evaluate.predictions import write_predictions
from interrvos.evaluate.protocol import ItemSpec, expression_items, scored_frames
from interrvos.evaluate.run import score_predictions


def box(y0: int, y1: int, x0: int, x1: int, h: int = 24, w: int = 32) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[y0:y1, x0:x1] = 1
    return m


def _score(dataset, predictions, **kw):
    return score_predictions(EvaluateConfig(dataset=dataset, predictions=str(predictions), executor="local", **kw))


def test_items_per_expression_kind(eval_dataset):
    ds = load_dataset(eval_dataset)
    e = ds.videos["v1"].expressions
    assert expression_items(e["0"]) == [ItemSpec("actor", "all", "referring")]
    assert expression_items(e["2"]) == [ItemSpec("actor", "all", "referring")]  # multi: union of its objects
    assert expression_items(e["3"]) == [ItemSpec("actor", "actor", "actor_target"),
                                        ItemSpec("target", "target", "actor_target")]
    assert expression_items(e["5"]) == [ItemSpec("actor", "all", "referring")]  # bidirectional: no pair
    assert expression_items(e["5"], unpaired_interactions="actor_target") == [ItemSpec("actor", "all", "actor_target")]


def test_scored_frames_mevis_all_davis_drops_first_and_last():
    assert list(scored_frames(5, "mevis")) == [0, 1, 2, 3, 4]
    assert list(scored_frames(5, "davis")) == [1, 2, 3]
    assert list(scored_frames(2, "davis")) == [0, 1]


def test_oracle_predictions_score_100_everywhere(eval_dataset, oracle, tmp_path):
    write_predictions(str(tmp_path / "p.jsonl"), oracle(eval_dataset))
    m = _score(eval_dataset, tmp_path / "p.jsonl")
    for table in ("settings", "caption_types"):
        for row in m[table].values():
            assert row["J"] == row["F"] == row["JF"] == 100.0
    s = m["settings"]
    # 5 referring expressions (single x3, multi, bidirectional), 3 actor-target pairs -> 6 items.
    assert (s["referring"]["items"], s["actor_target"]["items"], s["overall"]["items"]) == (5, 6, 11)
    assert (s["actor_target"]["expressions"], s["overall"]["expressions"]) == (3, 8)
    assert m["caption_types"]["interaction"]["items"] == 7


def test_a_missing_target_costs_exactly_one_actor_target_item(eval_dataset, oracle, tmp_path):
    records = oracle(eval_dataset)
    for r in records:
        if (r["video"], r["expression"]) == ("v1", "3"):
            r["target"] = None  # no target predicted: scored as empty masks; the ball is visible throughout
    write_predictions(str(tmp_path / "p.jsonl"), records)
    m = _score(eval_dataset, tmp_path / "p.jsonl")
    s, c = m["settings"], m["caption_types"]
    assert s["referring"]["JF"] == 100.0
    assert s["actor_target"]["J"] == pytest.approx(100 * 5 / 6) and s["actor_target"]["F"] == pytest.approx(100 * 5 / 6)
    assert s["overall"]["JF"] == pytest.approx(100 * 10 / 11)
    assert c["interaction"]["JF"] == pytest.approx(100 * 6 / 7) and c["single_all"]["JF"] == 100.0
    assert m["counts"]["targets_not_given"] == 1
    v1_3 = next(e for e in m["expressions"] if (e["video"], e["expression"]) == ("v1", "3"))
    assert [(i["role"], i["J"], i["F"], i["mask_given"]) for i in v1_3["items"]] == [
        ("actor", 100.0, 100.0, True), ("target", 0.0, 0.0, False)]
    assert (v1_3["J"], v1_3["F"]) == (50.0, 50.0)  # the expression's own scores: the mean of its items


def test_unpaired_interactions_can_count_as_actor_target(eval_dataset, oracle, tmp_path):
    write_predictions(str(tmp_path / "p.jsonl"), oracle(eval_dataset))
    m = _score(eval_dataset, tmp_path / "p.jsonl", unpaired_interactions="actor_target")
    assert (m["settings"]["referring"]["items"], m["settings"]["actor_target"]["items"]) == (4, 7)


def test_frame_means_per_expression_then_means_over_items(eval_dataset, oracle, tmp_path):
    # v2/0 (the bird, 5 frames): right on frames 0-2, empty on frames 3-4 -> J = F = 3/5.
    records = oracle(eval_dataset)
    bird = next(r for r in records if (r["video"], r["expression"]) == ("v2", "0"))
    bird["actor"][3:] = [None, None]
    write_predictions(str(tmp_path / "p.jsonl"), records)
    m = _score(eval_dataset, tmp_path / "p.jsonl")
    assert m["caption_types"]["single_motion"]["J"] == pytest.approx(60.0)
    assert m["settings"]["referring"]["J"] == pytest.approx(100 * (4 + 0.6) / 5)
    # DAVIS averaging drops frames 0 and 4: frames 1-3 -> 2/3.
    davis = _score(eval_dataset, tmp_path / "p.jsonl", frame_averaging="davis")
    assert davis["caption_types"]["single_motion"]["J"] == pytest.approx(100 * 2 / 3)


def test_multi_object_ground_truth_is_the_union(eval_dataset, oracle, tmp_path):
    # v1/2 "person and dog": predicting only the person scores J = |person| / |person or dog| per frame.
    records = oracle(eval_dataset)
    multi = next(r for r in records if (r["video"], r["expression"]) == ("v1", "2"))
    person = [box(2, 14, 2 + t, 12 + t) for t in range(5)]
    multi["actor"] = [encode_mask(p) for p in person]
    write_predictions(str(tmp_path / "p.jsonl"), records)
    m = _score(eval_dataset, tmp_path / "p.jsonl")
    dog = box(16, 22, 20, 30)
    expected = (1 + 4 * (person[1].sum() / (person[1].sum() + dog.sum()))) / 5  # dog hidden in frame 0
    assert m["caption_types"]["multi"]["J"] == pytest.approx(100 * expected)
