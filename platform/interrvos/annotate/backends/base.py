"""One interface for every LLM backend: a chat request in, the model's text out.

A backend never judges an answer (that is `answers.ask`'s job, the same for all backends); it only
gets text back, retrying transport failures (429, 5xx, timeouts) itself and raising TransportError
when it gives up. `model_id` names backend and model ("openai:gpt-4o"): it is part of every cache
key, so answers of one model are never served for another. The backends import this module and
`factory.build_backend` builds them; nothing here imports a backend.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Protocol

from interrvos.annotate.config import AnnotateConfig, GenerationConfig


@dataclass
class ChatRequest:
    key: str  # the cache key; also sent as a header so servers and tests can trace requests
    stage: str  # stage1 .. stage4
    kind: str  # answer kind: describe, expressions, merge, interactions, interaction_expression
    system: str
    user: str
    generation: GenerationConfig
    images: list[bytes] = field(default_factory=list)  # JPEG frames, in order
    valid_ids: list[str] = field(default_factory=list)  # object ids the answer may name
    context: dict[str, Any] = field(default_factory=dict)  # measured facts for the local backend; never sent
    history: list[dict[str, str]] = field(default_factory=list)  # retry turns (assistant answer, user correction)

    def messages(self, image_detail: str = "low") -> list[dict[str, Any]]:
        """OpenAI chat messages; images as base64 JPEG parts after the text of the first user turn."""
        content: Any = self.user
        if self.images:
            content = [{"type": "text", "text": self.user}] + [
                {"type": "image_url", "image_url": {"url": jpeg_data_url(img), "detail": image_detail}}
                for img in self.images]
        return [{"role": "system", "content": self.system}, {"role": "user", "content": content}, *self.history]

    def text_messages(self) -> list[dict[str, str]]:
        """The same conversation without images (text-only models)."""
        return [{"role": "system", "content": self.system}, {"role": "user", "content": self.user}, *self.history]


@dataclass
class ChatResponse:
    text: str
    truncated: bool = False  # stopped at the token limit
    refusal: str | None = None  # the API's explicit refusal field, when it has one
    prompt_tokens: int = 0
    completion_tokens: int = 0
    http_retries: int = 0  # transport retries spent on this answer


class TransportError(Exception):
    """The backend could not get an answer at all (after its own retries)."""

    def __init__(self, reason: str, retries: int = 0):
        self.reason, self.retries = reason, retries
        super().__init__(reason)


class Backend(Protocol):
    model_id: str

    async def complete(self, request: ChatRequest) -> ChatResponse: ...

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float: ...

    async def aclose(self) -> None: ...


def jpeg_data_url(data: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")


def model_id(cfg: AnnotateConfig, stage: str) -> str:
    """The backend and model answering a stage, known before any backend is built (cache keys)."""
    name = cfg.backend_for(stage)
    vision = stage in ("stage1", "stage3")
    if name == "openai":
        return f"openai:{cfg.openai.vision_model if vision else cfg.openai.text_model}"
    if name == "vllm":
        return f"vllm:{cfg.vllm.vision_model if vision else cfg.vllm.text_model}"
    if vision:
        return "local:evidence"
    return "local:smollm2-135m-instruct" if cfg.local.text == "smollm2" else "local:templates"


def needs_images(cfg: AnnotateConfig, stage: str) -> bool:
    return stage in ("stage1", "stage3") and cfg.backend_for(stage) != "local"


def needs_evidence(cfg: AnnotateConfig) -> bool:
    """The local backend answers from measurements (stages 1, 3) and templates use its facts (2, 4)."""
    return any(cfg.backend_for(s) == "local" for s in ("stage1", "stage2", "stage3", "stage4"))

