"""SmolLM2-135M-Instruct behind an OpenAI-compatible endpoint on Ray Serve, so the `openai` backend
runs end to end with no internet: `backend=openai, openai.base_url=http://HOST:8000/v1,
openai.text_model=SmolLM2-135M-Instruct`. Text only (images in a request are ignored); the answers
are shallow, and are validated like any model's. Deploy: `serve run serve/local_llm.yaml`."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from fastapi import FastAPI
from ray import serve

from interrvos.annotate.backends.smollm import MODEL_NAME

api = FastAPI(title="InterRVOS local LLM (OpenAI-compatible)")


def _text_only(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    out = []
    for m in messages:
        content = m.get("content") or ""
        if isinstance(content, list):
            content = " ".join(p.get("text", "") for p in content if p.get("type") == "text")
        out.append({"role": m["role"], "content": content})
    return out


@serve.deployment(ray_actor_options={"num_cpus": 1}, max_ongoing_requests=8)
@serve.ingress(api)
class LocalLLM:
    def __init__(self, threads: int = 1, max_new_tokens: int = 256):
        from interrvos.annotate.backends.smollm import SmolLM2Chat

        self.llm = SmolLM2Chat(threads)
        self.max_new_tokens = max_new_tokens

    @api.get("/v1/models")
    def models(self) -> dict:
        return {"object": "list", "data": [{"id": MODEL_NAME, "object": "model", "owned_by": "interrvos"}]}

    @api.post("/v1/chat/completions")
    async def chat(self, body: dict) -> dict:
        max_tokens = min(int(body.get("max_tokens") or self.max_new_tokens), self.max_new_tokens)
        gen = await asyncio.to_thread(self.llm.generate, _text_only(body["messages"]), max_tokens,
                                      float(body.get("temperature", 0.6)), float(body.get("top_p", 0.9)),
                                      str(body.get("seed", "")))
        return {"id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion", "created": int(time.time()),
                "model": MODEL_NAME,
                "choices": [{"index": 0, "finish_reason": "length" if gen.truncated else "stop",
                             "message": {"role": "assistant", "content": gen.text}}],
                "usage": {"prompt_tokens": gen.prompt_tokens, "completion_tokens": gen.completion_tokens,
                          "total_tokens": gen.prompt_tokens + gen.completion_tokens}}


def build_app(args: dict[str, Any] | None = None):
    """Serve application builder (`import_path` in serve/local_llm.yaml); args: threads, max_new_tokens."""
    args = args or {}
    return LocalLLM.bind(int(args.get("threads", 1)), int(args.get("max_new_tokens", 256)))


app = build_app()
