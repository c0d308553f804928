"""The `openai` backend against the stand-in server over real HTTP with the real openai client:
retries with the error fed back, backoff honouring Retry-After, quarantine, bounded concurrency,
qps, accounting, and a key that never leaks."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import pytest

from interrvos.annotate import prompts
from interrvos.annotate.answers import ask, empty_stats, tally
from interrvos.annotate.backends.base import ChatRequest
from interrvos.annotate.backends.openai_backend import OpenAIBackend
from interrvos.annotate.config import GenerationConfig, OpenAIConfig


def describe_request(key: str = "stage1/c/describe-1-x") -> ChatRequest:
    return ChatRequest(key=key, stage="stage1", kind="describe", system=prompts.STAGE1_SYSTEM,
                       user=prompts.stage1_user("dog", 2), generation=GenerationConfig(), images=[b"\xff\xd8fake"])


def interactions_request(key: str = "stage3/c/interactions-1_2-x") -> ChatRequest:
    return ChatRequest(key=key, stage="stage3", kind="interactions", system=prompts.STAGE3_SYSTEM,
                       user=prompts.stage3_user({"1": "dog", "2": "cat"}, 2), generation=GenerationConfig(),
                       valid_ids=["1", "2"])


def backend(server, **over) -> OpenAIBackend:
    fields = {"base_url": server.base_url, "vision_model": "gpt-4o", "backoff_initial_s": 0.01, "backoff_max_s": 2.0,
              "max_http_retries": 2, "timeout_s": 5, **over}
    cfg = OpenAIConfig(**fields)
    return OpenAIBackend(cfg, "vision")


def run(server, request, retries=2, **over):
    async def go():
        b = backend(server, **over)
        try:
            return await ask(b.complete, request, model=b.model_id, cost=b.cost, max_retries=retries,
                             clip_id="c", item="object 1")
        finally:
            await b.aclose()

    return asyncio.run(go())


def test_valid_answer_is_typed_with_tokens_and_cost(stand_in, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    out = run(stand_in, describe_request())
    assert out.status == "ok" and out.answer["appearance"] == "A plain dog with a smooth surface."
    assert out.attempts == 1 and out.prompt_tokens > 0 and out.completion_tokens > 0
    assert out.cost_usd == pytest.approx((out.prompt_tokens * 2.5 + out.completion_tokens * 10.0) / 1e6)
    assert stand_in.requests_for("stage1/c/describe") == 1


@pytest.mark.parametrize("plan, reason", [
    (["malformed", "ok"], None), (["refusal", "refusal", "ok"], None), (["truncated"] * 3, "truncated"),
    (["refusal"] * 3, "refusal"), (["malformed"] * 3, "invalid_json")])
def test_bad_answers_are_retried_with_the_error_then_quarantined(stand_in, plan, reason):
    stand_in.plan["describe"] = plan
    out = run(stand_in, describe_request())
    if reason is None:
        assert out.status == "ok" and out.attempts == len(plan)
    else:
        assert out.status == "quarantined" and out.reason == reason and out.attempts == 3
        assert len(out.raw) == 3 and len(out.problems) == 3  # every raw answer kept, with why it was refused
    assert stand_in.requests_for() == out.attempts


def test_the_retry_states_the_violation_to_the_model(stand_in):
    stand_in.plan["interactions"] = ["bad_labels", "no_subject", "ok"]
    seen = []
    original = stand_in._respond

    async def spy(entry, body, kind, user):
        seen.append(body["messages"])
        return await original(entry, body, kind, user)

    stand_in._respond = spy
    out = run(stand_in, interactions_request())
    assert out.status == "ok" and out.attempts == 3 and out.problems[0].startswith("interaction 0 uses labels")
    second = seen[1]
    assert second[-2]["role"] == "assistant" and "[99]" in second[-2]["content"]
    assert "could not be used" in second[-1]["content"] and "[99]" in second[-1]["content"]
    assert "grammatical subject" in seen[2][-1]["content"]


def test_rate_limit_waits_for_retry_after(stand_in):
    stand_in.plan["describe"] = ["rate_limited", "ok"]
    stand_in.retry_after = "1"
    started = time.monotonic()
    out = run(stand_in, describe_request())
    assert out.status == "ok" and out.http_retries == 1 and out.attempts == 1
    first, second = stand_in.log
    assert second.start - first.end >= 0.9  # Retry-After: 1 honoured (own backoff would be 0.01 s)
    assert time.monotonic() - started < 5


def test_server_errors_and_timeouts_fail_after_bounded_retries(stand_in):
    stand_in.plan["describe"] = ["error"]
    out = run(stand_in, describe_request())
    assert out.status == "failed" and "HTTP 500" in out.reason and out.http_retries == 2
    assert stand_in.requests_for() == 3
    stand_in.reset()
    stand_in.plan["describe"] = ["slow", "ok"]
    stand_in.slow_s = 3.0
    out = run(stand_in, describe_request(), timeout_s=0.5)
    assert out.status == "ok" and out.http_retries == 1


def test_concurrency_and_qps_are_bounded_per_actor(stand_in):
    stand_in.latency_s = 0.2

    async def go(**over):
        b = backend(stand_in, **over)
        try:
            reqs = [describe_request(f"stage1/c/describe-{i}-x") for i in range(8)]
            return await asyncio.gather(*(ask(b.complete, r, model=b.model_id, cost=b.cost, max_retries=0,
                                              clip_id="c", item=str(i)) for i, r in enumerate(reqs)))
        finally:
            await b.aclose()

    outs = asyncio.run(go(max_concurrency=2))
    assert all(o.status == "ok" for o in outs)
    events = sorted([(e.start, 1) for e in stand_in.log] + [(e.end, -1) for e in stand_in.log])
    level = peak = 0
    for _, d in events:
        level += d
        peak = max(peak, level)
    assert peak <= 2
    stand_in.reset()
    stand_in.latency_s = 0.0
    asyncio.run(go(max_concurrency=16, qps=10))
    starts = sorted(e.start for e in stand_in.log)
    assert starts[-1] - starts[0] >= 0.6  # 8 starts at most 10/s: >= 0.7 s apart end to end


def test_structured_output_is_requested_and_the_key_never_leaks(stand_in, monkeypatch, caplog):
    monkeypatch.setenv("INTERRVOS_TEST_KEY", "sk-secret-123")
    bodies = []
    original = stand_in._respond

    async def spy(entry, body, kind, user):
        bodies.append(body)
        return await original(entry, body, kind, user)

    stand_in._respond = spy
    stand_in.plan["describe"] = ["rate_limited", "ok"]
    stand_in.retry_after = "0"
    with caplog.at_level(logging.DEBUG):
        out = run(stand_in, describe_request(), api_key_env="INTERRVOS_TEST_KEY")
    assert bodies[0]["response_format"]["type"] == "json_schema"
    assert bodies[0]["response_format"]["json_schema"]["name"] == "describe"
    image = bodies[0]["messages"][1]["content"][1]
    assert image["type"] == "image_url" and image["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert "sk-secret-123" not in caplog.text and "sk-secret-123" not in json.dumps(out.model_dump())


def test_accounting_adds_up_per_stage(stand_in):
    stand_in.plan["describe"] = ["malformed", "ok"]
    stats = empty_stats()
    tally(stats, run(stand_in, describe_request("stage1/c/describe-1-a")))
    stand_in.plan["describe"] = ["refusal"]
    tally(stats, run(stand_in, describe_request("stage1/c/describe-2-b")))
    assert stats["items"] == 2 and stats["llm_calls"] == 5 and stats["answer_retries"] == 3
    assert stats["quarantined"] == {"refusal": 1} and stats["ok"] == 1
    assert stats["llm_calls"] == stand_in.requests_for()
