"""Model-free baselines: the oracle scores 100, the others give known floors, deterministically."""

from __future__ import annotations

import pytest

from interrvos.data.mevis import load_dataset
from interrvos.evaluate.baselines import BaselinePredictions
from interrvos.evaluate.config import EvaluateConfig
from interrvos.evaluate.run import score_predictions


def _baseline(dataset, name, **kw):
    return score_predictions(EvaluateConfig(dataset=dataset, baseline=name, executor="local", **kw))


def test_oracle_is_100_and_empty_is_0_when_every_item_is_visible(eval_dataset):
    assert _baseline(eval_dataset, "oracle")["settings"]["overall"]["JF"] == 100.0
    empty = _baseline(eval_dataset, "empty")
    assert empty["settings"]["overall"]["JF"] == 0.0


def test_full_frame_scores_the_area_fraction_as_j_and_no_boundary(eval_dataset):
    m = _baseline(eval_dataset, "full")
    bird = m["caption_types"]["single_motion"]  # an 8x6 box in a 24x32 frame, every frame
    assert bird["J"] == pytest.approx(100 * 48 / 768) and bird["F"] == 0.0


def test_largest_object_is_the_actor_and_the_second_largest_the_target(eval_dataset):
    ds = load_dataset(eval_dataset)
    largest = BaselinePredictions("largest_object")
    p = largest.load(ds, "v1", "3")
    assert p.actor == ds.masks("p") and p.target == ds.masks("d")  # person, then dog (ball is smallest)
    assert largest.load(ds, "v1", "0").target is None  # a referring expression gets no target


def test_random_object_is_seeded_and_picks_two_different_objects(eval_dataset):
    ds = load_dataset(eval_dataset)
    picks = {seed: BaselinePredictions("random_object", seed=seed)._pick_objects(ds, "v1", "3") for seed in range(6)}
    assert all(actor != target for actor, target in picks.values())
    assert len(set(picks.values())) > 1  # the seed matters
    again = BaselinePredictions("random_object", seed=3)._pick_objects(ds, "v1", "3")
    assert again == picks[3]
    a, b = _baseline(eval_dataset, "random_object", seed=1), _baseline(eval_dataset, "random_object", seed=1)
    assert a["settings"] == b["settings"]


def test_unknown_baseline_is_a_config_error():
    from interrvos.config import load_config
    from interrvos.errors import ConfigError

    with pytest.raises(ConfigError, match="baseline"):
        load_config(EvaluateConfig, None, ["baseline=median"])
    with pytest.raises(ConfigError, match="exactly one of predictions"):
        load_config(EvaluateConfig, None, ["baseline=oracle", "predictions=p.jsonl"])
