"""The vLLM stage: Ray Data LLM processor config and the request/response mapping, tested without vLLM
(CI never installs it); the stage runs over a stream of clip rows through a stand-in processor on the
session's Ray (a Dataset -> Dataset transform like the real one, its engine on Ray workers), and the
driver's memory does not grow with the number of clips."""

from __future__ import annotations

import importlib.util
import json
import pickle
import sys
import tracemalloc

import pytest
import ray.cloudpickle
import stand_in_server
from stand_in_server import KINDS, valid_answer

from interrvos.annotate import prompts, stages
from interrvos.annotate import vllm_stage as vs
from interrvos.annotate.backends.base import ChatRequest
from interrvos.annotate.cache import AnswerCache
from interrvos.annotate.config import AnnotateConfig, GenerationConfig
from interrvos.annotate.rows import clip_row
from interrvos.errors import ConfigError

HAVE_VLLM = importlib.util.find_spec("vllm") is not None


def test_processor_config_per_role():
    cfg = AnnotateConfig(text_backend="vllm", vllm={"text_model": "meta-llama/Llama-3.1-70B-Instruct",
                                                    "concurrency": 2, "batch_size": 8})
    text = vs.processor_config(cfg, "stage2")
    assert text.model_source == "meta-llama/Llama-3.1-70B-Instruct" and text.concurrency == 2 and text.batch_size == 8
    assert text.engine_kwargs["tensor_parallel_size"] == 4 and not text.prepare_multimodal_stage
    vision = vs.processor_config(cfg, "stage3")
    assert vision.prepare_multimodal_stage and vision.model_source == cfg.vllm.vision_model
    assert cfg.backend_for("stage2") == "vllm" and cfg.backend_for("stage1") == "local"


def test_request_and_response_mapping():
    req = ChatRequest(key="stage2/c/expressions-1-k", stage="stage2", kind="expressions",
                      system=prompts.STAGE2_SINGLE_SYSTEM, user="appearance_caption: A dog.\nmotion_caption: It runs.",
                      generation=GenerationConfig(max_tokens=50), images=[b"\xff\xd8jpeg"])
    row = {**vs.request_to_row(req), "item": b"attempts so far"}
    engine_input = vs.preprocess(row)
    assert engine_input["sampling_params"]["structured_outputs"]["json"]["required"] == ["all", "motion", "appearance"]
    assert engine_input["sampling_params"]["max_tokens"] == 50 and engine_input["sampling_params"]["top_p"] == 0.9
    content = engine_input["messages"][1]["content"]
    assert content[1]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    out = vs.postprocess({**engine_input, "generated_text": "{}", "num_input_tokens": 120, "num_generated_tokens": 50})
    assert out["item"] == b"attempts so far" and out["request_key"] == req.key  # carried through the engine
    assert "messages" not in out and "sampling_params" not in out
    resp = vs.row_to_response(out, max_tokens=50)
    assert resp.truncated and resp.prompt_tokens == 120 and resp.text == "{}"


@pytest.mark.skipif(HAVE_VLLM, reason="vLLM is installed: the missing-extra message does not apply")
def test_missing_vllm_is_a_clear_config_error():
    with pytest.raises(ConfigError, match="vllm"):
        vs.build_vllm_processor(AnnotateConfig(text_backend="vllm"), "stage2")


@pytest.mark.skipif(not HAVE_VLLM, reason="vLLM is not installed (GPU images only; the `vllm` extra)")
def test_a_real_vllm_processor_builds():
    assert vs.build_vllm_processor(AnnotateConfig(text_backend="vllm"), "stage2") is not None


# Ray workers cannot import the tests' modules: functions of these travel by value.
ray.cloudpickle.register_pickle_by_value(stand_in_server)
if __name__ in sys.modules:
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def stand_in_processor(plan: dict[str, list[str]] | None = None, answers: dict | None = None):
    """Dataset -> Dataset like a Ray Data LLM processor: preprocess, an engine answering like the stand-in
    server, postprocess, row by row on Ray workers. `plan[kind]` is the behaviour per attempt (ok,
    malformed); a vision request that arrives without its frames is answered with malformed text."""
    plan = plan or {}

    def engine(row: dict) -> dict:
        system, user = row["messages"][0]["content"], row["messages"][1]["content"]
        frames = 0 if isinstance(user, str) else sum(p["type"] == "image_url" for p in user)
        kind = KINDS[system]
        steps = plan.get(kind) or ["ok"]
        text = json.dumps(valid_answer(kind, user if isinstance(user, str) else user[0]["text"]))
        if steps[min(row["attempt"], len(steps) - 1)] == "malformed" or (kind == "describe" and not frames):
            text = text[: len(text) // 2] + " ,,}"
        return {**row, "generated_text": text, "num_input_tokens": 100, "num_generated_tokens": len(text) // 4}

    return lambda ds: ds.map(vs.preprocess).map(engine).map(vs.postprocess)


def two_object_state(stage1_done: bool) -> dict:
    objects = {o: {"category": c, "anno_id": f"c:{o}"} for o, c in (("1", "dog"), ("2", "cat"))}
    st = stages.new_state({"clip_id": "c", "sampled_frames": [0]}, objects, None)
    if stage1_done:
        for o in objects:
            st["stage1"][o] = {"status": "ok", "answer": {"appearance": f"A small {o}.", "motion": "It runs left."}}
    return st


def run_stage(stage: str, rows: list[dict], cfg: AnnotateConfig, processor) -> list[dict]:
    import ray

    return vs.run_vllm_stage(stage, ray.data.from_items(rows), cfg, processor=processor).take_all()


@pytest.mark.slow
def test_a_stage_runs_through_a_processor_and_a_second_run_needs_no_engine(ray_cluster, tmp_path):
    cfg = AnnotateConfig(out=str(tmp_path), text_backend="vllm")
    rows = [clip_row("c", "todo", two_object_state(stage1_done=True)), clip_row("gone", "error", error="prepare: x")]
    out = {r["clip_id"]: r for r in run_stage("stage2", rows, cfg, stand_in_processor())}
    done = json.loads(out["c"]["state"])
    assert stages.ok_answer(done["stage2"]["objects"]["1"])["all"] == "a small 1 drifting slowly"
    assert stages.ok_answer(done["stage2"]["merge"])["merged"] == "NO"
    assert done["stats"]["stage2"]["llm_calls"] == 3 and done["stats"]["stage2"]["prompt_tokens"] == 300
    assert "stage2" in json.loads(out["c"]["nodes"]) and set(out["c"]) == set(rows[0])
    assert out["gone"] == rows[1]  # rows that are not to do pass untouched
    again = run_stage("stage2", rows, cfg, lambda ds: pytest.fail("cached answers need no engine"))
    stats = json.loads(next(r for r in again if r["clip_id"] == "c")["state"])["stats"]["stage2"]
    assert stats["cache_hits"] == 3 and stats["llm_calls"] == 0


def test_an_invalid_answer_is_asked_again_with_its_frames_and_its_problem(ray_cluster, tmp_path):
    cfg = AnnotateConfig(out=str(tmp_path), vision_backend="vllm")
    st = two_object_state(stage1_done=False)
    images = {r.key: [b"\xff\xd8frame-a", b"\xff\xd8frame-b"] for _, r in stages.stage1_requests(st, cfg)}
    images["stage3/c/interactions-1_2-x"] = [b"\xff\xd8frame-c"]
    (row,) = run_stage("stage1", [clip_row("c", "todo", st, images)], cfg, stand_in_processor({"describe": ["malformed", "ok"]}))
    done = json.loads(row["state"])
    assert all(o["status"] == "ok" and o["attempts"] == 2 and len(o["problems"]) == 1 for o in done["stage1"].values())
    assert done["stats"]["stage1"]["llm_calls"] == 4 and done["stats"]["stage1"]["answer_retries"] == 2
    assert list(pickle.loads(row["images"])) == ["stage3/c/interactions-1_2-x"]  # only stage 3's frames travel on
    cached = AnswerCache(str(tmp_path)).get(done["stage1"]["1"]["key"])
    assert cached["status"] == "ok" and cached["raw"][0].endswith(",,}")


@pytest.mark.slow
def test_an_answer_invalid_every_time_is_quarantined_after_the_last_round(ray_cluster, tmp_path):
    cfg = AnnotateConfig(out=str(tmp_path), text_backend="vllm", max_answer_retries=1)
    (row,) = run_stage("stage2", [clip_row("c", "todo", two_object_state(stage1_done=True))], cfg,
                       stand_in_processor({"expressions": ["malformed"]}))
    done = json.loads(row["state"])
    single = done["stage2"]["objects"]["1"]
    assert single["status"] == "quarantined" and single["attempts"] == 2 and single["reason"]
    assert done["stage2"]["merge"]["status"] == "ok" and done["stats"]["stage2"]["quarantined"] == {single["reason"]: 2}
    assert AnswerCache(str(tmp_path)).get(single["key"])["status"] == "quarantined"  # final: cached


PAYLOAD = 100_000  # bytes of stage 3 frames per clip row: what a row weighs on its way through the stage
ROWS_PER_BLOCK = 10  # fixed, so that a block the driver iterates weighs the same at any size


def synthetic_clips(n: int):
    """n clip rows made on Ray workers (never on the driver), each with stage 1 done and frames aboard."""
    import ray

    def make(row: dict) -> dict:
        i = int(row["id"])
        st = two_object_state(stage1_done=True)
        st["clip"]["clip_id"] = f"clip{i:05d}"
        return clip_row(f"clip{i:05d}", "todo", st, {f"stage3/clip{i:05d}/x": [bytes([i % 251]) * PAYLOAD]})

    return ray.data.range(n, override_num_blocks=max(1, n // ROWS_PER_BLOCK)).map(make)


def driver_peak(consume) -> int:
    """Peak Python allocations of the driver process while `consume()` runs."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        consume()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_driver_memory_does_not_grow_with_the_number_of_clips(ray_cluster, tmp_path):
    """~40 s on 2 CPUs. The stage over n and 4n clips: the driver's peak allocations stay flat while the
    rows streaming through grow by 3n * PAYLOAD; collecting the rows (take_all, what the stage did
    before) is measured the same way and grows by about that much, so the measurement can see rows."""
    n = 60

    def stream(size: int, out: str) -> None:
        cfg = AnnotateConfig(out=out, text_backend="vllm")
        counted = {"rows": 0, "ok": 0}
        for row in vs.run_vllm_stage("stage2", synthetic_clips(size), cfg, stand_in_processor()).iter_rows():
            counted["rows"] += 1
            counted["ok"] += json.loads(row["state"])["stats"]["stage2"]["ok"]
        assert counted == {"rows": size, "ok": 3 * size}

    stream(ROWS_PER_BLOCK, str(tmp_path / "warm-up"))  # imports and first-use caches of Ray Data
    small = driver_peak(lambda: stream(n, str(tmp_path / "small")))
    large = driver_peak(lambda: stream(4 * n, str(tmp_path / "large")))
    rows_growth = 3 * n * PAYLOAD
    collected_small = driver_peak(lambda: synthetic_clips(n).take_all())
    collected_large = driver_peak(lambda: synthetic_clips(4 * n).take_all())
    print(f"driver peak MB: stream {small / 1e6:.1f} -> {large / 1e6:.1f}, take_all {collected_small / 1e6:.1f} -> "
          f"{collected_large / 1e6:.1f}; rows grew by {rows_growth / 1e6:.1f}")
    assert collected_large - collected_small > 0.8 * rows_growth, (collected_small, collected_large)
    assert large - small < 0.25 * rows_growth, (small, large, rows_growth)


@pytest.mark.slow
def test_annotate_with_vllm_text_stages_end_to_end(extracted, tmp_path, monkeypatch):
    """`interrvos annotate` with text_backend=vllm (the stand-in processor) on the extracted clips; a
    re-run finds every clip done and builds no engine (~30 s)."""
    from interrvos.annotate.pipeline import run_annotate
    from interrvos.data.validate import validate_dataset

    monkeypatch.setattr(vs, "build_vllm_processor", lambda cfg, stage: stand_in_processor())
    cfg = AnnotateConfig(dataset=extracted["dataset"], out=str(tmp_path), backend="local", text_backend="vllm",
                         split={"val_fraction": 0.34}, pools={s: {"min_size": 1, "max_size": 1} for s in
                                                              ("stage1", "stage2", "stage3", "stage4")})
    summary = run_annotate(cfg)
    run, data = summary["run"], summary["dataset"]
    assert run["errors"] == [] and data["clips_unfinished"] == [] and data["clips_annotated"] == 3
    for stage in ("stage2", "stage4"):
        assert run["stages"][stage]["llm_calls"] == run["stages"][stage]["items"] > 0, stage
    assert data["caption_types"].get("interaction", 0) >= 2 and "stage2" in run["nodes_by_step"]
    for split in ("train", "valid"):
        assert validate_dataset(str(tmp_path / split)) == [], split
    monkeypatch.setattr(vs, "build_vllm_processor", lambda cfg, stage: pytest.fail("finished clips need no engine"))
    assert run_annotate(cfg)["run"]["clips"] == {"done": 4}
