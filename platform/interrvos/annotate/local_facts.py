"""A clip's measured evidence for the `local` backend, as JSON: per-object facts (colour, size,
position, motion) and the interactions found between them. Computed once per clip on the CPU
stage of the pipeline; the local backend phrases its answers from it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interrvos.annotate.evidence import ClipMeasurements, measure_clip, object_facts
from interrvos.annotate.interactions import find_interactions
from interrvos.annotate.visual_prompts import decode_or_none, load_frames
from interrvos.data.records import ClipRecord


def clip_facts(dataset: str, clip: ClipRecord, tracks: Mapping[str, Any], m: ClipMeasurements,
               frames: list | None = None) -> dict[str, dict]:
    """obj id -> facts, colours measured on the clip's sampled frames."""
    frames = frames if frames is not None else load_frames(dataset, clip.clip_id, clip.sampled_frames)
    facts = {}
    for o in clip.object_ids:
        masks = [decode_or_none(tracks[o]["mask"][i]) for i in clip.sampled_frames]
        facts[o] = object_facts(o, tracks[o]["category"], m, frames, masks)
    return facts


def clip_evidence(dataset: str, clip: ClipRecord, tracks: Mapping[str, Any], frames: list | None = None) -> dict:
    """{"objects": {id: facts}, "interactions": [stage-3 style interaction + "verb", "start", "end"]}."""
    if not clip.object_ids:
        return {"objects": {}, "interactions": []}
    m = measure_clip({o: tracks[o]["mask"] for o in clip.object_ids}, clip.width, clip.height)
    facts = clip_facts(dataset, clip, tracks, m, frames)
    found = find_interactions(m, facts) if len(clip.object_ids) > 1 else []
    return {"objects": facts,
            "interactions": [{**i.as_answer(), "verb": i.verb, "start": i.start, "end": i.end} for i in found]}
