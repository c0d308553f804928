"""The async backend answering a stage, built from the config (one place that knows every backend).

vLLM has no async client here: a vLLM stage runs as a Ray Data LLM processor over the stage's requests
(annotate/vllm_stage.py), not through a backend.
"""

from __future__ import annotations

from interrvos.annotate.backends.base import Backend, model_id
from interrvos.annotate.config import AnnotateConfig


def build_backend(cfg: AnnotateConfig, stage: str) -> Backend:
    name = cfg.backend_for(stage)
    role = "vision" if stage in ("stage1", "stage3") else "text"
    if name == "openai":
        from interrvos.annotate.backends.openai_backend import OpenAIBackend  # the openai client, only when used

        return OpenAIBackend(cfg.openai, role)
    if name == "local":
        from interrvos.annotate.backends.local_backend import LocalBackend

        return LocalBackend(cfg.local, role, model_id(cfg, stage))
    raise ValueError(f"backend {name!r} has no async client; it runs as a Ray Data LLM processor (vllm_stage.py)")
