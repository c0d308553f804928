"""The four annotation stages as plain functions over a clip's state (a JSON-able dict), testable
without Ray: `requests(stage, state, cfg)` lists what to ask, `apply(stage, state, outcomes)` folds
the outcomes back in. `run_stage` does both around an async backend and the answer cache.

State: {"clip": ClipRecord fields, "objects": {id: {"category", "anno_id"}}, "evidence": local facts
or None, "stage1": {id: outcome}, "stage2": {"objects": {id: outcome}, "merge": outcome | None},
"stage3": outcome | None, "stage4": [{"interaction", "type", "subject", "targets", "description",
"outcome"}], "stats": {stage: counters}}. An outcome is answers.Outcome as a dict.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from interrvos.annotate import prompts
from interrvos.annotate.answers import Outcome, ask, empty_stats, tally
from interrvos.annotate.backends.base import Backend, ChatRequest, model_id
from interrvos.annotate.cache import AnswerCache, cache_key, text_digest
from interrvos.annotate.config import AnnotateConfig
from interrvos.annotate.schemas import sentence_subjects

Slot = Any  # where an outcome goes back: an object id, "merge", "clip", or a stage-4 entry index


def new_state(clip: Mapping[str, Any], objects: Mapping[str, Mapping[str, str]], evidence: dict | None) -> dict:
    return {"clip": dict(clip), "objects": {k: dict(v) for k, v in objects.items()}, "evidence": evidence,
            "stage1": {}, "stage2": {"objects": {}, "merge": None}, "stage3": None, "stage4": [],
            "stats": {}}


def ok_answer(outcome: Mapping | None) -> dict | None:
    return outcome["answer"] if outcome and outcome.get("status") == "ok" else None


def visual_signature(cfg: AnnotateConfig) -> str:
    """What decides the frames a vision model sees; part of the vision stages' cache keys."""
    return cfg.highlight.model_dump_json()


def _request(cfg: AnnotateConfig, state: Mapping, stage: str, kind: str, objects: list[str], system: str,
             user: str, context: dict, valid_ids: list[str] | None = None) -> ChatRequest:
    model = model_id(cfg, stage)
    vision = stage in ("stage1", "stage3")
    digest = text_digest(system, user, visual_signature(cfg) if vision else "")
    key = cache_key(stage, kind, state["clip"]["clip_id"], objects, prompts.PROMPT_VERSION, model, digest)
    generation = cfg.vision_generation if vision else cfg.text_generation
    return ChatRequest(key=key, stage=stage, kind=kind, system=system, user=user, generation=generation,
                       valid_ids=valid_ids or [], context=context)


def _facts(state: Mapping, obj_id: str) -> dict | None:
    ev = state.get("evidence") or {}
    return (ev.get("objects") or {}).get(obj_id)


def num_prompt_frames(state: Mapping, cfg: AnnotateConfig) -> int:
    return min(len(state["clip"]["sampled_frames"]), cfg.highlight.max_frames)


def stage1_requests(state: Mapping, cfg: AnnotateConfig) -> list[tuple[Slot, ChatRequest]]:
    n = num_prompt_frames(state, cfg)
    return [(o, _request(cfg, state, "stage1", "describe", [o], prompts.STAGE1_SYSTEM,
                         prompts.stage1_user(info["category"], n), {"facts": _facts(state, o)}))
            for o, info in state["objects"].items()]


def stage2_requests(state: Mapping, cfg: AnnotateConfig) -> list[tuple[Slot, ChatRequest]]:
    described = {o: ok_answer(state["stage1"].get(o)) for o in state["objects"]}
    described = {o: a for o, a in described.items() if a}
    out: list[tuple[Slot, ChatRequest]] = []
    for o, a in described.items():
        out.append((o, _request(cfg, state, "stage2", "expressions", [o], prompts.STAGE2_SINGLE_SYSTEM,
                                prompts.stage2_single_user(a["appearance"], a["motion"]),
                                {"appearance": a["appearance"], "motion": a["motion"]})))
    if len(described) >= 2:
        ids = list(described)
        facts = {o: _facts(state, o) for o in ids if _facts(state, o)}
        out.append(("merge", _request(cfg, state, "stage2", "merge", ids, prompts.STAGE2_MERGE_SYSTEM,
                                      prompts.stage2_merge_user({o: described[o]["motion"] for o in ids}),
                                      {"facts": facts}, valid_ids=ids)))
    return out


def stage3_requests(state: Mapping, cfg: AnnotateConfig) -> list[tuple[Slot, ChatRequest]]:
    ids = list(state["objects"])
    if len(ids) < 2:
        return []  # one object cannot interact with anything labelled
    cats = {o: state["objects"][o]["category"] for o in ids}
    found = (state.get("evidence") or {}).get("interactions", [])
    return [("clip", _request(cfg, state, "stage3", "interactions", ids, prompts.STAGE3_SYSTEM,
                              prompts.stage3_user(cats, num_prompt_frames(state, cfg)), {"interactions": found},
                              valid_ids=ids))]


def stage4_entries(state: Mapping) -> list[dict]:
    """One entry per (interaction, subject): the directions to phrase, from stage 3's answer."""
    answer = ok_answer(state.get("stage3")) or {}
    entries = []
    for i, inter in enumerate(answer.get("interactions", [])):
        pair = inter["object_pair"]
        seen: set[tuple[str, ...]] = set()
        for sentence in inter["descriptions"]:
            subject = tuple(s for s in sentence_subjects(sentence) if s in pair)
            if not subject or subject in seen:
                continue
            seen.add(subject)
            if inter["type"] == "unidirectional":
                if len(subject) != 1:
                    continue
                s = subject[0]
                targets = inter["targets"] if s in inter["actors"] else inter["actors"]
            else:
                targets = []
            entries.append({"interaction": i, "type": inter["type"], "subject": list(subject),
                            "targets": list(targets), "description": sentence, "outcome": None})
    return entries


def _looks(state: Mapping, o: str) -> str:
    from interrvos.annotate.templates import short_looks

    expressions = ok_answer(state["stage2"]["objects"].get(o)) or {}
    described = ok_answer(state["stage1"].get(o)) or {}
    return short_looks(_facts(state, o), expressions.get("appearance") or described.get("appearance"),
                       state["objects"][o]["category"])


def stage4_requests(state: dict, cfg: AnnotateConfig) -> list[tuple[Slot, ChatRequest]]:
    state["stage4"] = stage4_entries(state)
    out = []
    for idx, entry in enumerate(state["stage4"]):
        inter = (ok_answer(state["stage3"]) or {})["interactions"][entry["interaction"]]
        pair = inter["object_pair"]
        classes = {o: state["objects"][o]["category"] for o in pair}
        looks = {o: _looks(state, o) for o in pair}
        captions = {o: f"{classes[o]}: {looks[o]}" for o in pair}
        system = prompts.STAGE4_UNIDIRECTIONAL if entry["type"] == "unidirectional" else prompts.STAGE4_BIDIRECTIONAL
        user = prompts.stage4_user(captions, entry["description"], entry["subject"], entry["targets"])
        out.append((idx, _request(cfg, state, "stage4", "interaction_expression", entry["subject"] + entry["targets"],
                                  system, user, {"description": entry["description"], "classes": classes,
                                                 "looks": looks})))
    return out


REQUESTS = {"stage1": stage1_requests, "stage2": stage2_requests, "stage3": stage3_requests,
            "stage4": stage4_requests}


def requests(stage: str, state: dict, cfg: AnnotateConfig) -> list[tuple[Slot, ChatRequest]]:
    return REQUESTS[stage](state, cfg)


def apply(stage: str, state: dict, results: list[tuple[Slot, Outcome]]) -> None:
    for slot, outcome in results:
        data = outcome.model_dump()
        if stage == "stage1":
            state["stage1"][slot] = data
        elif stage == "stage2":
            if slot == "merge":
                state["stage2"]["merge"] = data
            else:
                state["stage2"]["objects"][slot] = data
        elif stage == "stage3":
            state["stage3"] = data
        else:
            state["stage4"][slot]["outcome"] = data


def item_name(stage: str, slot: Slot, state: Mapping) -> str:
    if stage == "stage4":
        e = state["stage4"][slot]
        return f"interaction {e['interaction']} subject {','.join(e['subject'])}"
    return "clip" if slot == "clip" else "merge" if slot == "merge" else f"object {slot}"


def from_cache(cache: AnswerCache, request: ChatRequest, retry_quarantined: bool) -> Outcome | None:
    hit = cache.get(request.key)
    if hit is None or (retry_quarantined and hit.get("status") == "quarantined"):
        return None
    return Outcome.model_validate({**hit, "cached": True})


async def run_stage(stage: str, state: dict, cfg: AnnotateConfig, backend: Backend, cache: AnswerCache,
                    images: Mapping[str, list[bytes]] | None = None) -> None:
    """Ask every item of one stage for one clip concurrently (cache first), fold the outcomes in."""
    started = time.perf_counter()
    todo = requests(stage, state, cfg)
    stats = state["stats"].setdefault(stage, empty_stats())

    async def one(slot: Slot, request: ChatRequest) -> tuple[Slot, Outcome]:
        name = item_name(stage, slot, state)
        cached = from_cache(cache, request, cfg.retry_quarantined)
        if cached is not None:
            return slot, cached
        if stage in ("stage1", "stage3") and cfg.backend_for(stage) != "local":
            request.images = list((images or {}).get(request.key, []))
            if not request.images:
                return slot, Outcome(key=request.key, stage=stage, kind=request.kind, item=name, status="failed",
                                     clip_id=state["clip"]["clip_id"], reason="frames were not rendered for this "
                                     "request (re-run to render them)", model=backend.model_id)
        outcome = await ask(backend.complete, request, model=backend.model_id, cost=backend.cost,
                            max_retries=cfg.max_answer_retries, clip_id=state["clip"]["clip_id"], item=name)
        if outcome.status != "failed":
            cache.put(outcome.model_dump(exclude={"cached"}))
        return slot, outcome

    results = await asyncio.gather(*(one(slot, req) for slot, req in todo))
    for _, outcome in results:
        tally(stats, outcome)
    apply(stage, state, list(results))
    stats["busy_s"] = round(stats["busy_s"] + time.perf_counter() - started, 3)
