"""In-cluster vLLM engines on GPU nodes through Ray Data LLM (`ray.data.llm.build_processor` with
`vLLMEngineProcessorConfig`). Optional: `pip install interrvos-platform[vllm]` on GPU images; CI
never installs vLLM, so only the config building and the request/response mapping run there.

A Ray Data LLM processor is a dataset transform, not a request/response client, so a vLLM stage
runs as a batch: the clips reaching it are collected, their uncached requests go through the
processor in rounds (round k holds the retries of round k-1, each with its problem stated), and the
outcomes are folded back into the clips (`answers.ask_batch`). Same prompts, schemas, checks, cache
and accounting as the streaming backends.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from typing import Any

from interrvos.annotate import stages
from interrvos.annotate.answers import Outcome, ask_batch, empty_stats, tally
from interrvos.annotate.backends.base import ChatRequest, ChatResponse, model_id
from interrvos.annotate.cache import AnswerCache
from interrvos.annotate.config import AnnotateConfig
from interrvos.annotate.schemas import SCHEMAS
from interrvos.errors import ConfigError


def processor_config(cfg: AnnotateConfig, stage: str):
    """The vLLMEngineProcessorConfig for a stage's model (importable without vLLM)."""
    from ray.data.llm import vLLMEngineProcessorConfig

    vision = stage in ("stage1", "stage3")
    v = cfg.vllm
    return vLLMEngineProcessorConfig(
        model_source=v.vision_model if vision else v.text_model,
        engine_kwargs=dict(v.vision_engine_kwargs if vision else v.text_engine_kwargs),
        concurrency=v.concurrency, batch_size=v.batch_size, accelerator_type=v.accelerator_type,
        prepare_multimodal_stage=vision, chat_template_stage=True, tokenize_stage=True, detokenize_stage=True)


def request_to_row(request: ChatRequest, structured: bool = True) -> dict[str, Any]:
    """One processor input row. Messages travel as a JSON string (their content mixes str and lists,
    which Arrow cannot hold in one column); `preprocess` turns the row into the engine's input."""
    sampling: dict[str, Any] = {"temperature": request.generation.temperature, "top_p": request.generation.top_p,
                                "max_tokens": request.generation.max_tokens}
    if structured and request.kind in SCHEMAS:
        sampling["structured_outputs"] = {"json": SCHEMAS[request.kind]}
    return {"request_key": request.key, "attempt": len(request.history),
            "messages_json": json.dumps(request.messages("auto")), "sampling_json": json.dumps(sampling)}


def preprocess(row: dict[str, Any]) -> dict[str, Any]:
    return {"request_key": row["request_key"], "attempt": row["attempt"],
            "messages": json.loads(row["messages_json"]), "sampling_params": json.loads(row["sampling_json"])}


def postprocess(row: dict[str, Any]) -> dict[str, Any]:
    return {"request_key": row["request_key"], "attempt": row["attempt"], "text": row.get("generated_text") or "",
            "prompt_tokens": int(row.get("num_input_tokens") or 0),
            "completion_tokens": int(row.get("num_generated_tokens") or 0)}


def row_to_response(row: dict[str, Any], max_tokens: int) -> ChatResponse:
    """vLLM reports no finish reason here: an answer that used the whole budget counts as truncated."""
    return ChatResponse(text=row["text"], truncated=row["completion_tokens"] >= max_tokens,
                        prompt_tokens=row["prompt_tokens"], completion_tokens=row["completion_tokens"])


def build_vllm_processor(cfg: AnnotateConfig, stage: str):
    try:
        import vllm  # noqa: F401
    except ImportError:
        raise ConfigError(f"backend vllm for {stage} needs vLLM on the cluster's GPU nodes: install the `vllm` "
                          "extra there, or use backend=openai against a vLLM server") from None
    from ray.data.llm import build_processor

    return build_processor(processor_config(cfg, stage), preprocess=preprocess, postprocess=postprocess)


def processor_completer(processor: Callable) -> Callable[[list[ChatRequest]], list[ChatResponse]]:
    """complete_many over a Ray Data processor (Dataset -> Dataset), answers matched back by key and attempt."""
    import ray

    def complete_many(requests: list[ChatRequest]) -> list[ChatResponse]:
        rows = [request_to_row(r) for r in requests]
        out = processor(ray.data.from_items(rows)).take_all()
        by_key = {(r["request_key"], r["attempt"]): r for r in out}
        return [row_to_response(by_key[(r.key, len(r.history))], r.generation.max_tokens) for r in requests]

    return complete_many


def run_vllm_stage(stage: str, rows: list[dict], cfg: AnnotateConfig, processor: Callable | None = None) -> list[dict]:
    """One stage over collected clip rows: cache first, then the processor in rounds; rows come back updated."""
    cache = AnswerCache(cfg.out)
    states: dict[int, dict] = {}
    pending: list[tuple[int, Any, ChatRequest, str]] = []
    results: dict[int, list[tuple[Any, Outcome]]] = {}
    for i, row in enumerate(rows):
        if row["status"] != "todo":
            continue
        state = states[i] = json.loads(row["state"])
        images = pickle.loads(row["images"]) if row["images"] else {}
        results[i] = []
        for slot, request in stages.requests(stage, state, cfg):
            cached = stages.from_cache(cache, request, cfg.retry_quarantined)
            if cached is not None:
                results[i].append((slot, cached))
                continue
            request.images = list(images.get(request.key, []))
            pending.append((i, slot, request, stages.item_name(stage, slot, state)))
    if pending:
        complete_many = processor_completer(processor or build_vllm_processor(cfg, stage))
        outcomes = ask_batch(complete_many, [(req, states[i]["clip"]["clip_id"], name) for i, _, req, name in pending],
                             model=model_id(cfg, stage), cost=lambda p, c: 0.0, max_retries=cfg.max_answer_retries)
        for (i, slot, _, _), outcome in zip(pending, outcomes, strict=True):
            if outcome.status != "failed":
                cache.put(outcome.model_dump(exclude={"cached"}))
            results[i].append((slot, outcome))
    out = []
    for i, row in enumerate(rows):
        if i in states:
            stats = states[i]["stats"].setdefault(stage, empty_stats())
            for _, outcome in results[i]:
                tally(stats, outcome)
            stages.apply(stage, states[i], results[i])
            from interrvos.annotate.pipeline import frames_still_needed

            images = frames_still_needed(pickle.loads(row["images"]) if row["images"] else {}, stage)
            row = {**row, "state": json.dumps(states[i]), "images": pickle.dumps(images) if images else b""}
        out.append(row)
    return out
