"""Every Ray Data stage declares its resources from config through interrvos.stages, and each job prints
its stage plan (`--show-plan`) without starting anything. No Ray needed (~2 s)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import ray.data
from typer.testing import CliRunner

from interrvos.annotate.config import AnnotateConfig
from interrvos.annotate.pipeline import stage_plan as annotate_plan
from interrvos.cli import app
from interrvos.clips.pipeline import stage_plan as extract_plan
from interrvos.config import ActorPoolConfig, ExtractConfig, TaskPoolConfig, load_config
from interrvos.errors import ConfigError
from interrvos.evaluate.config import EvaluateConfig
from interrvos.evaluate.run import stage_plan as evaluate_plan
from interrvos.model.config import PredictConfig
from interrvos.model.predict import stage_plan as predict_plan
from interrvos.stages import Stage, format_plan, plan_rows
from interrvos.train.config import TrainConfig
from interrvos.train.data import stage_plan as train_plan

PLATFORM = Path(__file__).resolve().parents[1] / "platform" / "interrvos"


def test_an_actor_pool_reserves_what_its_config_says():
    pool = ActorPoolConfig(min_size=2, max_size=5, num_cpus=0.5, num_gpus=1, memory_mb=1536)
    args = Stage.actor_pool("s", pool, max_tasks_in_flight_per_actor=3).ray_args()
    compute = args.pop("compute")
    assert isinstance(compute, ray.data.ActorPoolStrategy)
    assert (compute.min_size, compute.max_size, compute.max_tasks_in_flight_per_actor) == (2, 5, 3)
    assert args == {"num_cpus": 0.5, "num_gpus": 1, "memory": 1536 * 1024 * 1024}
    assert Stage.actor_pool("s", ActorPoolConfig()).ray_args().keys() == {"compute", "num_cpus"}  # nothing unasked


def test_tasks_reserve_cpus_and_at_most_run_their_concurrency():
    args = Stage.tasks("t", TaskPoolConfig(num_cpus=0.25, concurrency=3, memory_mb=100)).ray_args()
    assert isinstance(args["compute"], ray.data.TaskPoolStrategy) and args["compute"].size == 3
    assert args["num_cpus"] == 0.25 and args["memory"] == 100 * 1024 * 1024
    assert Stage.tasks("t", TaskPoolConfig(num_cpus=0)).ray_args() == {"num_cpus": 0}  # Ray decides how many
    with pytest.raises(ValueError, match="not a Ray Data map"):
        Stage("engines", "vllm").ray_args()


def test_pool_configs_reject_what_cannot_be_scheduled():
    with pytest.raises(ConfigError, match="writers.memory_mb"):
        load_config(ExtractConfig, None, ["writers.memory_mb=0"])
    with pytest.raises(ConfigError, match="min_size"):
        load_config(ExtractConfig, None, ["writers.min_size=3", "writers.max_size=2"])


def test_each_job_plans_its_stages_from_its_config():
    extract = plan_rows(extract_plan(load_config(ExtractConfig, None, ["writers.max_size=6", "writers.memory_mb=900"])))
    assert [(r["name"], r["kind"], r["cpus"]) for r in extract] == [("plan", "tasks", 0), ("write", "actor-pool", 1.0)]
    assert (extract[1]["min"], extract[1]["max"], extract[1]["memory_mb"]) == (1, 6, 900)

    local = annotate_plan(AnnotateConfig())
    assert [s.name for s in local] == ["prepare", "stage1", "stage2", "stage3", "stage4", "write"]
    assert local[1].pool_options == {"max_tasks_in_flight_per_actor": 16, "max_concurrent_calls_per_actor": 8,
                                     "enable_true_multi_threading": True}
    vllm = plan_rows(annotate_plan(AnnotateConfig(text_backend="vllm", vllm={"concurrency": 2})))
    engines = next(r for r in vllm if r["name"] == "stage2 vLLM")
    assert (engines["kind"], engines["min"], engines["max"], engines["gpus"]) == ("vllm", 2, 2, 4)  # tp 4 a replica
    assert next(r for r in vllm if r["name"] == "stage2 requests")["kind"] == "tasks"

    (predict,) = plan_rows(predict_plan(PredictConfig(workers={"max_size": 3, "num_gpus": 1})))
    assert (predict["kind"], predict["max"], predict["gpus"]) == ("actor-pool", 3, 1)
    (score,) = evaluate_plan(EvaluateConfig(baseline="oracle", executor="local"))
    assert score.kind == "driver"
    (decode,) = plan_rows(train_plan(TrainConfig(data={"decode_workers": 3, "decode_cpus": 0.25})))
    assert (decode["min"], decode["max"], decode["cpus"]) == (1, 3, 0.25)


def test_no_stage_writes_its_own_actor_pool_any_more():
    hand_written = [str(p.relative_to(PLATFORM)) for p in PLATFORM.rglob("*.py")
                    if re.search(r"ActorPoolStrategy\(|TaskPoolStrategy\(", p.read_text()) and p.name != "stages.py"]
    assert hand_written == []


@pytest.mark.parametrize("job,args,expect", [
    ("extract", [], ["plan", "write"]),
    ("annotate", ["--set", "text_backend=vllm"], ["prepare", "stage2 vLLM", "write"]),
    ("predict", ["--set", "workers.num_gpus=1"], ["predict"]),
    ("evaluate", ["--baseline", "oracle"], ["score"]),
    ("train", [], ["decode"]),
])
def test_show_plan_prints_the_stages_and_starts_nothing(job, args, expect):
    # An unreachable cluster address: the command would fail if it tried to join it.
    result = CliRunner().invoke(app, [job, "--show-plan", *args, "--set", "ray.address=127.0.0.1:1"])
    assert result.exit_code == 0, result.output
    assert f"stage plan of `interrvos {job}`" in result.output and "cpus  gpus  memory_mb" in result.output
    assert all(re.search(rf"^{re.escape(name)}\s", result.output, re.M) for name in expect), result.output


def test_train_show_plan_prints_the_decoder_stage_with_its_resources_and_starts_no_ray(monkeypatch):
    def no_ray(*args, **kwargs):
        raise AssertionError("--show-plan started Ray")

    monkeypatch.setattr(ray, "init", no_ray)
    result = CliRunner().invoke(app, ["train", "--show-plan", "--workers", "3", "--set", "data.decode_workers=4",
                                      "--set", "data.decode_cpus=0.25", "--set", "data.decode_memory_mb=700"])
    assert result.exit_code == 0, result.output
    assert "stage plan of `interrvos train`" in result.output
    (row,) = [line.split() for line in result.output.splitlines() if line.startswith("decode ")]
    # stage, kind, min, max, cpus, gpus, memory_mb, resources, then the note naming the training workers
    assert row[:8] == ["decode", "actor-pool", "1", "4", "0.25", "0", "700", "-"], result.output
    assert "per training worker (3)" in result.output


def test_the_plan_table_names_every_reservation():
    pool = ActorPoolConfig(memory_mb=512, resources={"annot": 0.25})
    text = format_plan("x", plan_rows([Stage.actor_pool("decode", pool, note="n")]))
    header, rule, row = text.splitlines()[1:]
    assert header.split() == ["stage", "kind", "min", "max", "cpus", "gpus", "memory_mb", "resources", "note"]
    assert row.split() == ["decode", "actor-pool", "1", "2", "1", "0", "512", "annot=0.25", "n"]
    assert Stage.actor_pool("decode", pool).ray_args()["resources"] == {"annot": 0.25}
