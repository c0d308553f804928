"""Any OpenAI-compatible chat endpoint (OpenAI, a vLLM server, a Ray Serve LLM app) through the
official `openai` async client.

Per actor: at most `max_concurrency` requests in flight and `qps` request starts per second; 429
and 5xx answers and timeouts are retried with exponential backoff that honours Retry-After. The
client's own retries are off so that every wait is ours and counted. The API key comes from the
environment variable `api_key_env` and is never logged or stored.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time

import openai

from interrvos.annotate.backends.base import ChatRequest, ChatResponse, TransportError
from interrvos.annotate.config import OpenAIConfig
from interrvos.annotate.schemas import SCHEMAS
from interrvos.errors import ConfigError

log = logging.getLogger(__name__)
RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}
NO_KEY = "unused"  # local servers (vLLM, Ray Serve) accept any key; the client insists on one


def api_key(cfg: OpenAIConfig) -> str:
    key = os.environ.get(cfg.api_key_env, "")
    if key:
        return key
    if cfg.base_url is None:
        raise ConfigError(f"openai.api_key_env: set the environment variable {cfg.api_key_env} to an API key "
                          "(or point openai.base_url at a server that needs none)")
    return NO_KEY


def retry_after_s(err: openai.APIStatusError) -> float | None:
    """Seconds the server asked us to wait (Retry-After in seconds, or retry-after-ms)."""
    headers = err.response.headers if err.response is not None else {}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue  # an HTTP date: fall back to our own backoff
    return None


class Pacer:
    """Spaces request starts at least 1/qps apart (one event loop, so a lock is enough)."""

    def __init__(self, qps: float):
        self.interval, self._next, self._lock = 1.0 / qps, 0.0, asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            now = time.monotonic()
            if self._next > now:
                await asyncio.sleep(self._next - now)
            self._next = max(now, self._next) + self.interval


class OpenAIBackend:
    def __init__(self, cfg: OpenAIConfig, role: str):
        self.cfg = cfg
        self.model = cfg.vision_model if role == "vision" else cfg.text_model
        self.model_id = f"openai:{self.model}"
        self.structured = cfg.structured_output
        self._client: openai.AsyncOpenAI | None = None
        self._slots: asyncio.Semaphore | None = None
        self._pacer: Pacer | None = None

    def _ensure_client(self) -> openai.AsyncOpenAI:
        # Created lazily inside the event loop that will use it (the client binds to its loop).
        if self._client is None:
            self._client = openai.AsyncOpenAI(base_url=self.cfg.base_url, api_key=api_key(self.cfg),
                                              timeout=self.cfg.timeout_s, max_retries=0)
            self._slots = asyncio.Semaphore(self.cfg.max_concurrency)
            self._pacer = Pacer(self.cfg.qps)
        return self._client

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        price_in, price_out = self.cfg.prices.get(self.model, (0.0, 0.0))
        return (prompt_tokens * price_in + completion_tokens * price_out) / 1e6

    def _backoff(self, attempt: int, err: Exception) -> float:
        asked = retry_after_s(err) if isinstance(err, openai.APIStatusError) else None
        if asked is not None:
            return min(asked, self.cfg.backoff_max_s)
        base = min(self.cfg.backoff_max_s, self.cfg.backoff_initial_s * 2 ** attempt)
        return base * random.uniform(0.5, 1.0)

    async def complete(self, request: ChatRequest) -> ChatResponse:
        client = self._ensure_client()
        kwargs = {"model": self.model, "messages": request.messages(self.cfg.image_detail),
                  "temperature": request.generation.temperature, "top_p": request.generation.top_p,
                  "max_tokens": request.generation.max_tokens, "extra_headers": {"X-InterRVOS-Key": request.key}}
        retries = 0
        while True:
            if self.structured and request.kind in SCHEMAS:
                kwargs["response_format"] = {"type": "json_schema", "json_schema": {
                    "name": request.kind, "schema": SCHEMAS[request.kind], "strict": True}}
            else:
                kwargs.pop("response_format", None)
            try:
                await self._pacer.wait()
                async with self._slots:
                    resp = await client.chat.completions.create(**kwargs)
                break
            except openai.BadRequestError as err:
                if self.structured and "response_format" in str(err):
                    log.warning("%s: the endpoint rejects response_format; asking for JSON in the prompt only",
                                self.model_id)
                    self.structured = False
                    continue
                raise TransportError(f"HTTP 400: {_short(err)}", retries) from None
            except openai.APIStatusError as err:
                reason = f"HTTP {err.status_code}: {_short(err)}"
                if err.status_code not in RETRYABLE_STATUS or retries >= self.cfg.max_http_retries:
                    raise TransportError(reason, retries) from None
                delay = self._backoff(retries, err)
            except (openai.APITimeoutError, openai.APIConnectionError) as err:
                reason = f"{type(err).__name__}: {_short(err)}"
                if retries >= self.cfg.max_http_retries:
                    raise TransportError(reason, retries) from None
                delay = self._backoff(retries, err)
            retries += 1
            log.info("%s: %s; retry %d in %.1f s", self.model_id, reason, retries, delay)
            await asyncio.sleep(delay)
        choice = resp.choices[0]
        usage = resp.usage
        return ChatResponse(text=choice.message.content or "", truncated=choice.finish_reason == "length",
                            refusal=getattr(choice.message, "refusal", None),
                            prompt_tokens=usage.prompt_tokens if usage else 0,
                            completion_tokens=usage.completion_tokens if usage else 0, http_retries=retries)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def _short(err: Exception) -> str:
    text = str(err).replace("\n", " ")
    return text[:200]
