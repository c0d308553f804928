"""The `vllm` backend: Ray Data LLM processor config and the request/response mapping, tested
without vLLM (CI never installs it); the stage runs through a stand-in processor on local Ray."""

from __future__ import annotations

import importlib.util
import json
import pickle

import pytest
from stand_in_server import KINDS, valid_answer

from interrvos.annotate import prompts, stages
from interrvos.annotate.backends import vllm_backend as vb
from interrvos.annotate.backends.base import ChatRequest
from interrvos.annotate.config import AnnotateConfig, GenerationConfig
from interrvos.errors import ConfigError

HAVE_VLLM = importlib.util.find_spec("vllm") is not None


def test_processor_config_per_role():
    cfg = AnnotateConfig(text_backend="vllm", vllm={"text_model": "meta-llama/Llama-3.1-70B-Instruct",
                                                    "concurrency": 2, "batch_size": 8})
    text = vb.processor_config(cfg, "stage2")
    assert text.model_source == "meta-llama/Llama-3.1-70B-Instruct" and text.concurrency == 2 and text.batch_size == 8
    assert text.engine_kwargs["tensor_parallel_size"] == 4 and not text.prepare_multimodal_stage
    vision = vb.processor_config(cfg, "stage3")
    assert vision.prepare_multimodal_stage and vision.model_source == cfg.vllm.vision_model
    assert cfg.backend_for("stage2") == "vllm" and cfg.backend_for("stage1") == "local"


def test_request_and_response_mapping():
    req = ChatRequest(key="stage2/c/expressions-1-k", stage="stage2", kind="expressions",
                      system=prompts.STAGE2_SINGLE_SYSTEM, user="appearance_caption: A dog.\nmotion_caption: It runs.",
                      generation=GenerationConfig(max_tokens=50), images=[b"\xff\xd8jpeg"])
    row = vb.request_to_row(req)
    engine_input = vb.preprocess(row)
    assert engine_input["sampling_params"]["structured_outputs"]["json"]["required"] == ["all", "motion", "appearance"]
    assert engine_input["sampling_params"]["max_tokens"] == 50 and engine_input["sampling_params"]["top_p"] == 0.9
    content = engine_input["messages"][1]["content"]
    assert content[1]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    out = vb.postprocess({**engine_input, "request_key": row["request_key"], "attempt": 0, "generated_text": "{}",
                          "num_input_tokens": 120, "num_generated_tokens": 50})
    resp = vb.row_to_response(out, max_tokens=50)
    assert resp.truncated and resp.prompt_tokens == 120 and resp.text == "{}"


@pytest.mark.skipif(HAVE_VLLM, reason="vLLM is installed: the missing-extra message does not apply")
def test_missing_vllm_is_a_clear_config_error():
    with pytest.raises(ConfigError, match="vllm"):
        vb.build_vllm_processor(AnnotateConfig(text_backend="vllm"), "stage2")


@pytest.mark.skipif(not HAVE_VLLM, reason="vLLM is not installed (GPU images only; the `vllm` extra)")
def test_a_real_vllm_processor_builds():
    assert vb.build_vllm_processor(AnnotateConfig(text_backend="vllm"), "stage2") is not None


def fake_engine(row: dict) -> dict:
    """What the vLLM stage adds to a row, from the stand-in server's valid answers."""
    system = row["messages"][0]["content"]
    user = row["messages"][1]["content"]
    user = user if isinstance(user, str) else user[0]["text"]
    text = json.dumps(valid_answer(KINDS[system], user))
    return {**row, "generated_text": text, "num_input_tokens": 100, "num_generated_tokens": len(text) // 4}


def fake_processor(ds):
    """Dataset -> Dataset like a Ray Data LLM processor; the engine runs here in the driver (the test
    module is not importable by Ray workers)."""
    import ray

    return ray.data.from_items([vb.postprocess(fake_engine(vb.preprocess(r))) for r in ds.take_all()])


def test_a_stage_runs_through_a_processor_in_rounds(ray_cluster, tmp_path):
    cfg = AnnotateConfig(out=str(tmp_path), text_backend="vllm")
    objects = {o: {"category": c, "anno_id": f"c:{o}"} for o, c in (("1", "dog"), ("2", "cat"))}
    st = stages.new_state({"clip_id": "c", "sampled_frames": [0]}, objects, None)
    for o in objects:
        st["stage1"][o] = {"status": "ok", "answer": {"appearance": f"A small {o}.", "motion": "It runs left."}}
    rows = [{"clip_id": "c", "status": "todo", "state": json.dumps(st), "images": pickle.dumps({}), "error": ""}]
    out = vb.run_vllm_stage("stage2", rows, cfg, processor=fake_processor)
    done = json.loads(out[0]["state"])
    assert stages.ok_answer(done["stage2"]["objects"]["1"])["all"] == "a small 1 drifting slowly"
    assert stages.ok_answer(done["stage2"]["merge"])["merged"] == "NO"
    assert done["stats"]["stage2"]["llm_calls"] == 3 and done["stats"]["stage2"]["prompt_tokens"] == 300
    again = vb.run_vllm_stage("stage2", rows, cfg, processor=lambda ds: pytest.fail("cached answers need no engine"))
    assert json.loads(again[0]["state"])["stats"]["stage2"]["cache_hits"] == 3
