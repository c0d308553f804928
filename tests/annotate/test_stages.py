"""The stages as plain functions (no Ray): requests from a clip's state, outcomes folded back,
the answer cache making a second run free, quarantine and failure semantics."""

from __future__ import annotations

import asyncio
import json

from interrvos.annotate import stages
from interrvos.annotate.backends.base import ChatResponse, TransportError
from interrvos.annotate.backends.local_backend import LocalBackend
from interrvos.annotate.cache import AnswerCache
from interrvos.annotate.config import AnnotateConfig, LocalConfig
from interrvos.annotate.prompts import PROMPT_VERSION


class CountingBackend(LocalBackend):
    """The local templates, counting calls, optionally failing some kinds."""

    def __init__(self, refuse: str = "", fail: str = ""):
        super().__init__(LocalConfig(), "text", "test:counting")
        self.calls: list[str] = []
        self.refuse, self.fail = refuse, fail

    async def complete(self, request):
        self.calls.append(request.key)
        if request.kind == self.fail:
            raise TransportError("HTTP 503: unavailable", retries=2)
        if request.kind == self.refuse:
            return ChatResponse(text="I'm sorry, I cannot do that.")
        return ChatResponse(text=json.dumps(self.answer(request)), prompt_tokens=10, completion_tokens=5)


FACTS = {o: {"obj_id": o, "category": c, "colour": col, "size": "small", "position": "left",
             "motion": {"pattern": "travels", "legs": ["right"], "speed": "slowly", "starts_still": False,
                        "stops_at_end": False}} for o, c, col in (("1", "dog", "brown"), ("2", "ball", "red"))}
INTERACTION = {"object_pair": ["[1]", "[2]"], "type": "unidirectional", "actors": ["[1]"], "targets": ["[2]"],
               "descriptions": ["Object [1] is pushing object [2].", "Object [2] is being pushed by object [1]."]}


def state() -> dict:
    clip = {"clip_id": "v_clip000", "video_id": "v", "start_frame": 0, "end_frame": 10, "sampled_frames": [0, 5]}
    objects = {o: {"category": f["category"], "anno_id": f"v_clip000:{o}"} for o, f in FACTS.items()}
    return stages.new_state(clip, objects, {"objects": FACTS, "interactions": [INTERACTION]})


def run_all(st, cfg, backend, cache):
    for stage in ("stage1", "stage2", "stage3", "stage4"):
        asyncio.run(stages.run_stage(stage, st, cfg, backend, cache))


def test_four_stages_fill_the_state_and_a_second_run_is_all_cache_hits(tmp_path):
    cfg = AnnotateConfig(out=str(tmp_path))
    cache, backend = AnswerCache(str(tmp_path)), CountingBackend()
    st = state()
    run_all(st, cfg, backend, cache)
    assert stages.ok_answer(st["stage1"]["1"])["appearance"] == "A small brown dog in the left of the frame."
    assert stages.ok_answer(st["stage2"]["objects"]["2"])["appearance"] == "small red ball in the left of the frame"
    assert stages.ok_answer(st["stage3"])["interactions"][0]["actors"] == ["1"]
    assert [(e["subject"], e["targets"]) for e in st["stage4"]] == [(["1"], ["2"]), (["2"], ["1"])]
    assert stages.ok_answer(st["stage4"][1]["outcome"])["class_level"] == "ball being pushed by the dog"
    first_calls = len(backend.calls)
    assert first_calls == 2 + 3 + 1 + 2 and st["stats"]["stage2"]["llm_calls"] == 3
    record = st["stage1"]["1"]
    assert record["prompt_version"] == PROMPT_VERSION and record["model"] == "test:counting"
    assert "stage1/v_clip000/describe-1-" in record["key"]

    again = state()
    run_all(again, cfg, backend, cache)
    assert len(backend.calls) == first_calls  # nothing asked twice
    assert again["stats"]["stage1"]["cache_hits"] == 2 and again["stats"]["stage4"]["llm_calls"] == 0
    assert [e["outcome"]["answer"] for e in again["stage4"]] == [e["outcome"]["answer"] for e in st["stage4"]]


def test_quarantined_items_are_final_unless_asked_again_and_failures_are_never_cached(tmp_path):
    cfg = AnnotateConfig(out=str(tmp_path), max_answer_retries=1)
    cache = AnswerCache(str(tmp_path))
    st = state()
    asyncio.run(stages.run_stage("stage1", st, cfg, CountingBackend(refuse="describe"), cache))
    assert st["stage1"]["1"]["status"] == "quarantined" and st["stage1"]["1"]["reason"] == "refusal"
    assert len(st["stage1"]["1"]["raw"]) == 2 and st["stats"]["stage1"]["quarantined"] == {"refusal": 2}
    assert stages.stage2_requests(st, cfg) == []  # nothing to phrase without a description
    backend = CountingBackend()
    asyncio.run(stages.run_stage("stage1", state(), cfg, backend, cache))
    assert backend.calls == []  # quarantine is a final outcome
    asyncio.run(stages.run_stage("stage1", state(), cfg.model_copy(update={"retry_quarantined": True}), backend, cache))
    assert len(backend.calls) == 2

    st = state()
    asyncio.run(stages.run_stage("stage3", st, cfg, CountingBackend(fail="interactions"), cache))
    assert st["stage3"]["status"] == "failed" and "503" in st["stage3"]["reason"]
    assert cache.get(st["stage3"]["key"]) is None  # asked again by the next run


def test_a_clip_with_one_object_asks_no_interactions_and_one_without_objects_asks_nothing(tmp_path):
    cfg = AnnotateConfig(out=str(tmp_path))
    st = state()
    del st["objects"]["2"]
    assert stages.stage3_requests(st, cfg) == []
    empty = stages.new_state({"clip_id": "real_clip000", "sampled_frames": [0]}, {}, None)
    assert all(stages.requests(s, empty, cfg) == [] for s in ("stage1", "stage2", "stage3", "stage4"))
