"""The proof's config, the training configs it derives, and its goal checks (no training here: the
pipeline's steps are tested in tests/pretrain, tests/probe and tests/train; the chain end to end runs in
`make proof`, not in CI: no floor for it holds yet, see docs/training.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from interrvos.config import load_config
from interrvos.errors import ConfigError
from interrvos.proof.config import ProofConfig, ProofGoals
from interrvos.proof.report import ablation_table, goals
from interrvos.proof.run import run_name, training_config

REPO = Path(__file__).resolve().parents[2]


def test_the_shipped_proof_config_loads():
    cfg = load_config(ProofConfig, REPO / "jobs" / "configs" / "proof.yaml")
    assert cfg.training.modes == ["joint", "single", "independent"] and "data.answers=reading" in cfg.training.set
    for step in (cfg.pretrain_sam, cfg.pretrain_text, cfg.training):
        assert (REPO / step.config).is_file()


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="training.modes"):
        load_config(ProofConfig, None, ["training.modes=[joint, both]"])
    with pytest.raises(ConfigError, match="goals.max_cross_iou"):
        load_config(ProofConfig, None, ["goals.max_cross_iou=120"])


def test_a_training_run_starts_from_the_pretrained_parts_in_its_mode_and_seed(tmp_path):
    cfg = load_config(ProofConfig, None, ["training.set=[optim.lr=1e-3]"])
    t = training_config(cfg.training, "/data/train", str(tmp_path), "single", 2,
                        ["sam.checkpoint=/p/sam2.pt", "mllm.pretrained=/p/mllm"], cfg.ray)  # fmt: skip
    assert t.name == run_name("single", 2) == "single-seed2" and t.seed == 2 and t.optim.lr == 1e-3
    assert t.model.mode == "single" and t.data.sources[0].path == "/data/train"
    overrides = t.model.all_overrides()
    # the YAML's own overrides first, then the pretrained parts, then the seed and the mode
    assert overrides[:2] == ["random_templates=false", "loss.dice_weight=2.0"]
    assert overrides[2:] == ["sam.checkpoint=/p/sam2.pt", "mllm.pretrained=/p/mllm", "seed=2", "mode=single"]


def _summary(overall: float, actor_target: float | None, cross: float | None) -> dict:
    return {"headline": "joint-seed0",
            "jf": {"joint-seed0": {"overall": overall, "actor_target": actor_target, "referring": overall},
                   "baseline_largest_object": {"overall": 27.5, "actor_target": 34.1, "referring": 22.8},
                   "baseline_random_object": {"overall": 20.0, "actor_target": 21.5, "referring": 18.9}},
            "cross_expression_iou": {"joint-seed0": cross}}  # fmt: skip


def test_goals_are_met_only_above_the_baselines_and_below_the_cross_expression_threshold():
    g = ProofGoals(beat_overall=["random_object", "largest_object"], beat_actor_target=["largest_object"],
                   max_cross_iou=60)  # fmt: skip
    met = goals(_summary(30.0, 40.0, 20.0), g)
    assert [x["met"] for x in met] == [True, True, True, True]
    blind = goals(_summary(27.5, 40.0, 100.0), g)  # level with largest_object and one mask for every expression
    assert [x["met"] for x in blind] == [True, False, True, False]
    unmeasured = goals(_summary(30.0, None, None), g)  # no interaction expression, no pair: not met
    assert [x["met"] for x in unmeasured] == [True, True, False, False]


def test_the_ablation_table_averages_each_mode_over_its_seeds():
    cfg = load_config(ProofConfig, None, ["training.modes=[joint, single]", "training.seeds=[0, 1]"])
    jf = lambda at: {"overall": at, "actor_target": at, "referring": at}  # noqa: E731
    summary = {"jf": {"joint-seed0": jf(30.0), "joint-seed1": jf(40.0), "single-seed0": jf(10.0),
                      "single-seed1": jf(20.0)},
               "cross_expression_iou": {"joint-seed0": 10.0, "joint-seed1": 30.0, "single-seed0": None,
                                        "single-seed1": 50.0}}  # fmt: skip
    table = ablation_table(cfg, summary)
    assert "| joint | 35.0 (30.0-40.0, 2 seeds) |" in table
    assert "| single | 15.0 (10.0-20.0, 2 seeds) |" in table and "| 50.0 |" in table
