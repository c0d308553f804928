"""Training config (defaults = the paper), the generated DeepSpeed JSON, the lr schedule and the sample
plan: pure functions, no Ray."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from interrvos.config import load_config
from interrvos.data.mevis import load_dataset
from interrvos.errors import ConfigError
from interrvos.train.config import TrainConfig
from interrvos.train.deepspeed_config import (deepspeed_config, lr_factor, optimizer_kind, param_groups,
                                             precision, scheduler_factory)
from interrvos.train.plan import SamplePlan, SourceInfo, VideoInfo, apportion, group_expressions, source_info

REPO = Path(__file__).resolve().parents[2]


def test_defaults_are_the_papers_recipe():
    cfg = TrainConfig()
    d, o = cfg.data, cfg.optim
    assert (d.frames_per_sample, d.expressions_per_sample) == (4, 5)
    assert (o.lr, o.weight_decay, o.grad_clip, o.warmup_ratio, o.schedule) == (4e-5, 0.05, 1.0, 0.05, "cosine")
    assert (o.batch_size, o.grad_accum, o.epochs) == (2, 4, 10)
    assert cfg.deepspeed.stage == 2 and precision(cfg, use_gpu=True) == "bf16" and precision(cfg, False) == "fp32"


@pytest.mark.parametrize("name", ["train_tiny.yaml", "train_1b.yaml"])
def test_shipped_configs_load(name):
    cfg = load_config(TrainConfig, REPO / "jobs" / "configs" / name)
    assert cfg.data.sources and cfg.checkpoint.export


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="deepspeed.stage"):
        load_config(TrainConfig, None, ["deepspeed.stage=4"])
    with pytest.raises(ConfigError, match="offload_params needs stage 3"):
        load_config(TrainConfig, None, ["deepspeed.offload_params=true"])
    with pytest.raises(ConfigError, match="name"):
        load_config(TrainConfig, None, ["name=a/b"])
    cfg = load_config(TrainConfig, None, ["data.sources=[x, y]", "model.lora_r=16", "model.mode=single"])
    assert [s.path for s in cfg.data.sources] == ["x", "y"]
    assert cfg.model.all_overrides() == ["mode=single", "lora.r=16"]


def test_deepspeed_json_is_generated_for_each_path():
    cfg = TrainConfig()
    cpu = deepspeed_config(cfg, world_size=2, use_gpu=False)
    assert cpu["train_batch_size"] == 2 * 4 * 2 and cpu["gradient_accumulation_steps"] == 4
    assert cpu["zero_optimization"]["stage"] == 2 and cpu["gradient_clipping"] == 1.0
    assert not cpu["bf16"]["enabled"] and "optimizer" not in cpu and cpu["zero_force_ds_cpu_optimizer"] is False
    assert "torch_autocast" not in cpu
    gpu = deepspeed_config(cfg, world_size=4, use_gpu=True)
    assert gpu["torch_autocast"] == {"enabled": True, "dtype": "bfloat16"} and not gpu["bf16"]["enabled"]
    assert gpu["zero_optimization"]["overlap_comm"] and optimizer_kind(cfg, True) == "torch"
    cast = load_config(TrainConfig, None, ["optim.precision=bf16_weights"])
    cast_json = deepspeed_config(cast, 1, True)
    assert cast_json["bf16"]["enabled"] and "torch_autocast" not in cast_json

    z3 = load_config(TrainConfig, None, [
        "deepspeed.stage=3", "deepspeed.offload_optimizer=true", "deepspeed.offload_params=true",
        "deepspeed.extra={zero_optimization: {sub_group_size: 1000}}"])
    gpu3 = deepspeed_config(z3, world_size=8, use_gpu=True)
    zero = gpu3["zero_optimization"]
    assert zero["stage"] == 3 and zero["offload_optimizer"]["device"] == zero["offload_param"]["device"] == "cpu"
    assert zero["sub_group_size"] == 1000 and zero["reduce_bucket_size"] == 5e7  # extra merges, keeps the rest
    assert gpu3["optimizer"]["type"] == "AdamW" and gpu3["optimizer"]["params"]["weight_decay"] == 0.05
    assert "optimizer" not in deepspeed_config(z3, world_size=2, use_gpu=False)  # CPU: torch AdamW, no compiling


def test_lr_warms_up_linearly_then_decays_by_cosine_to_zero():
    total = 100  # 5 warm-up steps
    f = [lr_factor(s, total, 0.05) for s in range(total + 1)]
    assert f[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert f[5] == pytest.approx(1.0) and f[total] == pytest.approx(0.0, abs=1e-12)
    assert f[52] == pytest.approx(0.5 * (1 + math.cos(math.pi * 47 / 95)))
    assert all(a >= b for a, b in zip(f[5:], f[6:], strict=False))
    assert lr_factor(50, 100, 0.0, "constant") == 1.0


def _video(name: str, n_exp: int, uni: set[int], frames: int = 10) -> VideoInfo:
    return VideoInfo(name, frames, tuple((str(i), i in uni) for i in range(n_exp)))


def test_lr_multipliers_give_a_part_its_own_lr_under_the_same_schedule():
    import torch

    model = torch.nn.ModuleDict({"mllm": torch.nn.Linear(3, 3), "sam": torch.nn.ModuleDict(
        {"decoder": torch.nn.Linear(3, 3), "encoder": torch.nn.Linear(3, 3)})})
    model["sam"]["encoder"].requires_grad_(False)
    groups = param_groups(model, 0.05, lr=1e-3, multipliers={"mllm": 0.1, "sam.decoder": 0.5})
    by_param = {id(p): g for g in groups for p in g["params"]}
    lr_of = lambda p: by_param[id(p)].get("lr", 1e-3)  # noqa: E731
    assert lr_of(model["mllm"].weight) == pytest.approx(1e-4) and lr_of(model["mllm"].bias) == pytest.approx(1e-4)
    assert lr_of(model["sam"]["decoder"].weight) == pytest.approx(5e-4)
    assert id(model["sam"]["encoder"].weight) not in by_param  # frozen: in no group
    assert by_param[id(model["mllm"].weight)]["weight_decay"] == 0.05 and by_param[id(model["mllm"].bias)]["weight_decay"] == 0
    # without multipliers: the two groups of before, no lr key (the optimizer's own lr)
    assert [sorted(g) for g in param_groups(model, 0.05)] == [["params", "weight_decay"]] * 2
    cfg = load_config(TrainConfig, None, ["optim.max_steps=10", "optim.warmup_ratio=0.2"])
    opt = torch.optim.AdamW(groups, lr=1e-3)
    sched = scheduler_factory(cfg, 10)(opt)
    for _ in range(5):
        opt.step()
        sched.step()
    ratios = {round(g["lr"] / g["initial_lr"], 6) for g in opt.param_groups}
    assert len(ratios) == 1  # one schedule for every group
    with pytest.raises(ValueError, match="no parameter is named like"):
        param_groups(model, 0.05, lr=1e-3, multipliers={"projection": 2.0})
    with pytest.raises(ConfigError, match="lr_multipliers"):
        load_config(TrainConfig, None, ["optim.lr_multipliers={mllm: 0}"])


def test_expression_groups_cover_every_expression_with_a_unidirectional_one_each():
    import random

    v = _video("v", 12, uni={3})
    for seed in range(20):
        groups = group_expressions(v, 5, random.Random(seed))
        assert len(groups) == 3 and all(len(g) == 5 and len(set(g)) == 5 for g in groups)
        assert {e for g in groups for e in g} == {str(i) for i in range(12)}
        assert all("3" in g for g in groups)
    assert group_expressions(_video("w", 2, uni=set()), 5, random.Random(0)) in ([("0", "1")], [("1", "0")])


def test_mixing_ratios_split_each_epoch():
    assert apportion(10, [1, 1]) == [5, 5] and apportion(10, [3, 1]) == [8, 2] and apportion(7, [1, 1, 1]) == [3, 2, 2]
    a = SourceInfo("a", 3.0, tuple(_video(f"a{i}", 5, {0}) for i in range(2)))
    b = SourceInfo("b", 1.0, tuple(_video(f"b{i}", 5, set()) for i in range(20)))
    plan = SamplePlan([a, b], frames=4, expressions=5, samples_per_epoch=40, batch_size=2, grad_accum=2,
                      world_size=2, seed=0)  # fmt: skip
    samples = plan.epoch(0)
    assert len(samples) == 40 and sum(s.source == 0 for s in samples) == 30  # source a cycles (2 natural samples)
    assert all(len(s.frames) == 4 and list(s.frames) == sorted(s.frames) for s in samples)
    assert plan.steps_per_epoch == 5 and plan.total_steps(epochs=3, max_steps=None) == 15


def test_plan_rows_are_deterministic_disjoint_per_rank_and_resume_exactly():
    src = SourceInfo("s", 1.0, tuple(_video(f"v{i}", 7, {1, 2}, frames=3) for i in range(9)))
    make = lambda: SamplePlan([src], frames=4, expressions=5, samples_per_epoch=None, batch_size=2,  # noqa: E731
                              grad_accum=1, world_size=2, seed=3)  # fmt: skip
    plan = make()
    assert plan.epoch_size == 18 and plan.steps_per_epoch == 4
    r0, r1 = list(plan.rows(0, 0, 8)), list(plan.rows(1, 0, 8))
    assert [(r["step"], r["micro"], r["slot"]) for r in r0[:4]] == [(0, 0, 0), (0, 0, 1), (1, 0, 0), (1, 0, 1)]
    epoch0 = {(r["video"], tuple(r["expressions"])) for r in r0 + r1 if r["epoch"] == 0}
    assert len(epoch0) == 16  # 4 steps x 4 samples, all distinct
    assert list(make().rows(1, 5, 8)) == [r for r in r1 if r["step"] >= 5]
    assert r0 == list(make().rows(0, 0, 8))
    assert all(r["frames"] == sorted(r["frames"]) and len(r["frames"]) == 4 for r in r0)  # 3-frame videos repeat


def test_a_plan_needs_enough_samples_for_one_step():
    src = SourceInfo("s", 1.0, (_video("v", 2, set()),))
    with pytest.raises(ConfigError, match="fewer than one optimizer step"):
        SamplePlan([src], frames=4, expressions=5, samples_per_epoch=None, batch_size=2, grad_accum=1,
                   world_size=2, seed=0)  # fmt: skip
    with pytest.raises(ConfigError, match="no video with expressions"):
        SamplePlan([SourceInfo("empty", 1.0, ())], frames=4, expressions=5, samples_per_epoch=None, batch_size=1,
                   grad_accum=1, world_size=1, seed=0)  # fmt: skip


def test_source_info_reads_a_dataset_folder(pushing_dataset):
    info = source_info(load_dataset(pushing_dataset), 2.0)
    assert info.ratio == 2.0 and len(info.videos) == 3 and info.num_expressions == 15
    assert {e for e, uni in info.videos[0].expressions if uni} == {"2", "3"}
    assert [v.video for v in source_info(load_dataset(pushing_dataset), 1.0, ["push01"]).videos] == ["push01"]


def test_the_ray_job_entrypoint_is_the_train_command():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, str(REPO / "jobs" / "train.py"), "--help"], capture_output=True, text=True,
                         timeout=120, cwd=REPO)  # fmt: skip
    assert out.returncode == 0 and "--max-steps" in out.stdout and "ZeRO" in out.stdout
    bad = subprocess.run([sys.executable, str(REPO / "jobs" / "train.py"), "--set", "optim.lr=0"],
                         capture_output=True, text=True, timeout=120, cwd=REPO)  # fmt: skip
    assert bad.returncode == 2 and "optim.lr" in bad.stderr
