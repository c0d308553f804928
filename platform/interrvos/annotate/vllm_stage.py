"""A vLLM stage: in-cluster vLLM engines on GPU nodes through Ray Data LLM (`ray.data.llm.build_processor`
with `vLLMEngineProcessorConfig`), applied to the stream of clip rows. Optional: `pip install
interrvos-platform[vllm]` on GPU images; CI never installs vLLM, so there a stand-in processor runs.

A Ray Data LLM processor is a dataset transform (Dataset -> Dataset, one row per chat request), not a
request/response client, so the stage is a chain of dataset transforms and the driver holds counters,
never rows:

    clip rows -> mark (which of the clip's requests the cache does not answer) -> materialize
    (the stage's barrier: the clips wait in the object store, spilled to disk if need be)
    -> one processor row per unanswered request (its frames inside the messages)
    -> processor -> judge: a usable answer is final and cached at once; an invalid one becomes the
       next round's request with its problem stated (as `answers.ask` does) -> materialize;
       rounds until none is left, the last one (max_answer_retries) quarantining what is still invalid
    -> fold: each clip's outcomes, read back from the cache, into its state; the same counters as ever.

Same prompts, schemas, checks, cache and accounting as the streaming backends.
"""

from __future__ import annotations

import json
import pickle
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from interrvos.annotate import stages
from interrvos.annotate.answers import Attempts, Outcome, empty_stats, tally
from interrvos.annotate.backends.base import ChatRequest, ChatResponse, model_id
from interrvos.annotate.cache import AnswerCache
from interrvos.annotate.config import AnnotateConfig
from interrvos.annotate.rows import frames_still_needed, row_images, with_node
from interrvos.annotate.schemas import SCHEMAS
from interrvos.config import TaskPoolConfig
from interrvos.errors import ConfigError
from interrvos.stages import Stage

# Columns a processor row keeps from the processor's input to its output (the engine adds the answer).
CARRIED = ("request_key", "attempt", "messages_json", "sampling_json", "item")


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


def stage_plan(cfg: AnnotateConfig, stage: str) -> list[Stage]:
    """The vLLM stage's Ray Data stages: bookkeeping tasks (the stage's pool CPUs) and the engines."""
    vision = stage in ("stage1", "stage3")
    v = cfg.vllm
    engine_kwargs = v.vision_engine_kwargs if vision else v.text_engine_kwargs
    gpus = int(engine_kwargs.get("tensor_parallel_size", 1)) * int(engine_kwargs.get("pipeline_parallel_size", 1))
    return [Stage.tasks(f"{stage} requests", bookkeeping(cfg, stage),
                        note="mark, requests, judge, fold: the cache and the clip states"),
            Stage(f"{stage} vLLM", "vllm", num_gpus=gpus, min_size=v.concurrency, max_size=v.concurrency,
                  note=f"Ray Data LLM engines: {v.vision_model if vision else v.text_model}, batch {v.batch_size}")]


def bookkeeping(cfg: AnnotateConfig, stage: str) -> TaskPoolConfig:
    pool = getattr(cfg.pools, stage)
    return TaskPoolConfig(num_cpus=pool.num_cpus, memory_mb=pool.memory_mb)


# ---- Processor rows ---------------------------------------------------------------------------------

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
    # The input columns stay in the row (Ray Data LLM keeps them; a stand-in needs them said).
    return {**row, "messages": json.loads(row["messages_json"]), "sampling_params": json.loads(row["sampling_json"])}


def postprocess(row: dict[str, Any]) -> dict[str, Any]:
    return {**{k: row[k] for k in CARRIED if k in row}, "text": row.get("generated_text") or "",
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


def no_cost(prompt_tokens: int, completion_tokens: int) -> float:
    return 0.0  # in-cluster engines: no per-token price


def _item_row(attempts: Attempts, started: float, messages_json: str | None = None) -> dict[str, Any]:
    """A processor row with the item's attempts so far (`item`); the frames travel once, in the messages."""
    row = request_to_row(attempts.request)
    if messages_json is not None:  # a retry: the first turns (system, user with the frames) and the history
        row["messages_json"] = json.dumps(json.loads(messages_json)[:2] + attempts.request.history)
    attempts.request = replace(attempts.request, images=[])
    return {**row, "item": pickle.dumps((attempts, started))}


# ---- The stage's transforms (Ray Data tasks) --------------------------------------------------------

def mark_pending(row: dict, *, stage: str, cfg: AnnotateConfig) -> dict:
    """The clip row plus the keys of its requests that the cache does not answer (`pending`)."""
    keys: list[str] = []
    if row["status"] == "todo":
        cache = AnswerCache(cfg.out)
        keys = [r.key for _, r in stages.requests(stage, json.loads(row["state"]), cfg)
                if stages.from_cache(cache, r, cfg.retry_quarantined) is None]
    return {**row, "pending": json.dumps(keys), "pending_count": len(keys)}


def request_rows(row: dict, *, stage: str, cfg: AnnotateConfig) -> list[dict]:
    """One processor row per pending request of the clip."""
    pending = set(json.loads(row["pending"]))
    if not pending:
        return []
    state, images = json.loads(row["state"]), row_images(row)
    out = []
    for slot, request in stages.requests(stage, state, cfg):
        if request.key in pending:
            request.images = list(images.get(request.key, []))
            attempts = Attempts(request, model_id(cfg, stage), no_cost, state["clip"]["clip_id"],
                                stages.item_name(stage, slot, state))
            out.append(_item_row(attempts, time.time()))
    return out


def judge_answer(row: dict, *, out: str, last_round: bool) -> list[dict]:
    """Take one answer: final (cached now) or the next round's request, with its problem stated."""
    attempts, started = pickle.loads(row["item"])
    attempts.started = time.perf_counter() - (time.time() - started)  # its clock, in this process
    outcome = attempts.record(row_to_response(row, attempts.request.generation.max_tokens))
    if outcome is None and last_round:
        outcome = attempts.give_up()
    if outcome is None:
        return [_item_row(attempts, started, row["messages_json"])]
    if outcome.status != "failed":
        AnswerCache(out).put(outcome.model_dump(exclude={"cached"}))
    return []


def fold_answers(row: dict, *, stage: str, cfg: AnnotateConfig) -> dict:
    """The clip row with the stage's outcomes in its state: answers of this run (pending when marked)
    count as calls, earlier ones as cache hits; the stage's frames are dropped."""
    pending = set(json.loads(row["pending"]))
    row = {k: v for k, v in row.items() if k not in ("pending", "pending_count")}
    if row["status"] != "todo":
        return row
    state, cache = json.loads(row["state"]), AnswerCache(cfg.out)
    cached, fresh = [], []
    for slot, request in stages.requests(stage, state, cfg):
        if request.key in pending:
            hit = cache.get(request.key)
            outcome = Outcome.model_validate({**hit, "cached": False}) if hit else None
            fresh.append((slot, outcome or _no_answer(stage, slot, state, request, cfg)))
        else:
            outcome = stages.from_cache(cache, request, cfg.retry_quarantined)
            cached.append((slot, outcome or _no_answer(stage, slot, state, request, cfg)))
    results = cached + fresh
    stats = state["stats"].setdefault(stage, empty_stats())
    for _, outcome in results:
        tally(stats, outcome)
    stages.apply(stage, state, results)
    images = frames_still_needed(row_images(row), stage)
    return {**row, "state": json.dumps(state), "images": pickle.dumps(images) if images else b"",
            "nodes": with_node(row, stage)}


def _no_answer(stage: str, slot: Any, state: dict, request: ChatRequest, cfg: AnnotateConfig) -> Outcome:
    # Not cached: the clip stays incomplete and the next run asks again.
    return Outcome(key=request.key, stage=stage, kind=request.kind, clip_id=state["clip"]["clip_id"],
                   item=stages.item_name(stage, slot, state), status="failed", model=model_id(cfg, stage),
                   reason="vllm: no answer came back from the processor (re-run to ask again)")


def run_vllm_stage(stage: str, ds, cfg: AnnotateConfig, processor: Callable | None = None):
    """One stage over a dataset of clip rows through a Ray Data LLM processor (built when a request
    needs it; `processor` replaces it, e.g. a stand-in); returns the dataset of updated clip rows."""
    tasks = Stage.tasks(f"{stage} requests", bookkeeping(cfg, stage)).ray_args()
    clips = ds.map(mark_pending, fn_kwargs={"stage": stage, "cfg": cfg}, **tasks).materialize()
    if clips.sum("pending_count") or 0:
        processor = processor or build_vllm_processor(cfg, stage)
        requests = clips.flat_map(request_rows, fn_kwargs={"stage": stage, "cfg": cfg}, **tasks)
        for round_ in range(cfg.max_answer_retries + 1):
            last = round_ == cfg.max_answer_retries
            requests = processor(requests).flat_map(judge_answer, fn_kwargs={"out": cfg.out, "last_round": last},
                                                    **tasks).materialize()
            if not requests.count():
                break
    return clips.map(fold_answers, fn_kwargs={"stage": stage, "cfg": cfg}, **tasks)
