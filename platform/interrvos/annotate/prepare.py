"""The CPU side of a clip before any LLM call: its objects and tracks, the local backend's measured
evidence, and the highlighted frames for the vision requests that are not answered yet (cached
answers need no frames, so a resumed run renders nothing it does not send)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from interrvos.annotate import stages
from interrvos.annotate.backends.base import model_id, needs_evidence, needs_images
from interrvos.annotate.cache import AnswerCache
from interrvos.annotate.config import AnnotateConfig
from interrvos.annotate.local_facts import clip_evidence
from interrvos.annotate.prompts import PROMPT_VERSION
from interrvos.annotate.visual_prompts import (decode_or_none, encode_jpegs, load_frames, render_multi_object,
                                               render_single_object)
from interrvos.clips.layout import DatasetLayout, anno_id
from interrvos.data import storage
from interrvos.data.records import ClipRecord


def signature(cfg: AnnotateConfig) -> dict[str, Any]:
    """What decides a clip's annotation: a finished record is reused only while this is unchanged."""
    return {"prompt_version": PROMPT_VERSION, "models": {s: model_id(cfg, s) for s in stages.REQUESTS},
            "visual": stages.visual_signature(cfg)}


def prompt_frame_indices(clip: ClipRecord, max_frames: int) -> list[int]:
    """The clip's sampled frames, thinned evenly to at most `max_frames`."""
    sampled = clip.sampled_frames
    if len(sampled) <= max_frames:
        return list(sampled)
    picks = np.linspace(0, len(sampled) - 1, max_frames).round().astype(int)
    return [sampled[i] for i in picks]


def clip_objects(clip: ClipRecord, tracks: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    return {o: {"category": tracks[o]["category"], "anno_id": anno_id(clip.clip_id, o)} for o in clip.object_ids}


def render_requests(dataset: str, clip: ClipRecord, tracks: Mapping[str, Any], state: dict, cfg: AnnotateConfig,
                    cache: AnswerCache, frames: Sequence[np.ndarray] | None = None) -> dict[str, list[bytes]]:
    """JPEG frames for every vision request of the clip that the cache does not answer yet."""
    hl = cfg.highlight
    indices = prompt_frame_indices(clip, hl.max_frames)
    images: dict[str, list[bytes]] = {}
    todo1 = [(o, r) for o, r in stages.stage1_requests(state, cfg) if needs_images(cfg, "stage1")
             and stages.from_cache(cache, r, cfg.retry_quarantined) is None]
    todo3 = [r for _, r in stages.stage3_requests(state, cfg) if needs_images(cfg, "stage3")
             and stages.from_cache(cache, r, cfg.retry_quarantined) is None]
    if not todo1 and not todo3:
        return images
    frames = list(frames) if frames is not None else load_frames(dataset, clip.clip_id, indices)
    masks = {o: [decode_or_none(tracks[o]["mask"][i]) for i in indices] for o in clip.object_ids}
    for o, request in todo1:
        rendered = render_single_object(frames, masks[o], hl.first_frame_min_area, hl.tall_frame_min_height)
        images[request.key] = encode_jpegs(rendered, hl.jpeg_quality)
    for request in todo3:
        rendered = render_multi_object(frames, masks, hl.tall_frame_min_height)
        images[request.key] = encode_jpegs(rendered, hl.jpeg_quality)
    return images


def prepare_clip(dataset: str, clip: ClipRecord, cfg: AnnotateConfig,
                 cache: AnswerCache) -> tuple[str, dict, dict[str, list[bytes]]]:
    """(status, state, images): status 'no_objects' for clips without kept objects, else 'todo'."""
    tracks = storage.read_json(DatasetLayout(dataset).tracks(clip.clip_id)) if clip.object_ids else {}
    objects = clip_objects(clip, tracks)
    if not objects:
        return "no_objects", stages.new_state(clip.model_dump(), {}, None), {}
    frames = None
    evidence = None
    if needs_evidence(cfg):
        frames = load_frames(dataset, clip.clip_id, clip.sampled_frames)
        evidence = clip_evidence(dataset, clip, tracks, frames)
    state = stages.new_state(clip.model_dump(), objects, evidence)
    prompt_frames = None
    if frames is not None:
        by_index = dict(zip(clip.sampled_frames, frames))
        prompt_frames = [by_index[i] for i in prompt_frame_indices(clip, cfg.highlight.max_frames)]
    images = render_requests(dataset, clip, tracks, state, cfg, cache, prompt_frames)
    return "todo", state, images
