"""Video inference: the MLLM sees K frames (first K or uniformly sampled), answers each expression's
question by greedy generation, the hidden state at every generated [SEG_ACT] / [SEG_TAR] becomes a
SAM2 prompt on those K frames, and SAM2 propagates through every frame of the clip (any length).
Whether a target mask exists is decided by generation: [SEG_TAR] is emitted or not.

    results = segment_video(model, frames, ["dog pushing a toy", "the toy"])
    results[0].actor   # one COCO RLE per frame; results[0].target: per frame, or None

`iter_segment_video` is the same work step by step (the answers first, then each frame's masks as
SAM2 propagates) for servers that stream; `segment_video` collects it.
"""

from __future__ import annotations

import contextlib
import inspect
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from interrvos.data.rle import RLE, encode_mask
from interrvos.model.config import InferenceSettings
from interrvos.model.mllm import base_internvl
from interrvos.model.processor import to_pixels
from interrvos.model.templates import inference_questions
from interrvos.model.tokens import ACTOR, TARGET
from interrvos.model.tracking import Timings, _sync, track


class FrameSource(Protocol):
    """A clip: len() frames, frame i as (H, W, 3) RGB uint8 (read lazily by long-clip sources)."""

    def __len__(self) -> int: ...
    def __getitem__(self, i: int) -> np.ndarray: ...


@dataclass
class Generation:
    text: str
    token_ids: list[int]
    seg: list[tuple[int, torch.Tensor]]  # (role, last hidden state (d,)) per generated segmentation token


@dataclass
class ExpressionResult:
    expression: str
    answers: list[str]
    actor: list[RLE]  # one per frame (empty masks included)
    target: list[RLE] | None  # None: no [SEG_TAR] was generated
    extra: dict = field(default_factory=dict)


def sample_frames(total: int, k: int, how: str = "first") -> list[int]:
    """The frames the MLLM sees: the first k, or k spread uniformly (both always include frame 0)."""
    if total < 1:
        raise ValueError("a clip needs at least one frame")
    if how == "first" or total <= k:
        return list(range(min(k, total)))
    return sorted({int(round(x)) for x in np.linspace(0, total - 1, k)})


def _new_cache(config):
    from transformers import DynamicCache

    try:
        return DynamicCache(config=config)
    except TypeError:  # older transformers
        return DynamicCache()


@torch.no_grad()
def generate(model, pixel_values: torch.Tensor, question: str, max_new_tokens: int = 32,
             forced: str | None = None) -> Generation:  # fmt: skip
    """Greedy answer to one question about K frames (K, 3, Hv, Wv), keeping the last hidden state of
    each generated segmentation token at its own position (what training supervises).
    forced: an answer to teacher-force instead of generating (its [SEG_*] states are used)."""
    base = base_internvl(model.mllm)
    ids = model.ids
    prompt = model.processor.prompt_ids(question, pixel_values.shape[0])
    cache = _new_cache(base.config.text_config)
    cache_kw = "cache" if "cache" in inspect.signature(base.model.forward).parameters else "past_key_values"
    device = model.device
    pixels = pixel_values.to(device, model._mllm_dtype())
    out = base.model(input_ids=torch.tensor([prompt], device=device), pixel_values=pixels, use_cache=True,
                     **{cache_kw: cache})  # fmt: skip
    last = out.last_hidden_state[:, -1]  # (1, d)
    tokens: list[int] = []
    seg: list[tuple[int, torch.Tensor]] = []
    forced_ids = None
    if forced is not None:
        forced_ids = model.tokenizer(forced, add_special_tokens=False)["input_ids"] + [ids.im_end]
    for step in range(len(forced_ids) if forced_ids else max_new_tokens):
        nxt = forced_ids[step] if forced_ids else int(base.lm_head(last).argmax(-1))
        tokens.append(nxt)
        if nxt in ids.stop:
            break
        out = base.model(input_ids=torch.tensor([[nxt]], device=device), use_cache=True, **{cache_kw: cache})
        last = out.last_hidden_state[:, -1]
        if nxt in ids.seg:
            seg.append((ids.seg[nxt], last[0]))
    text = model.tokenizer.decode([t for t in tokens if t not in ids.stop], skip_special_tokens=False)
    return Generation(text.strip(), tokens, seg)


def _first_by_role(generations: Sequence[Generation]) -> dict[int, torch.Tensor]:
    """The first generated token of each role across an expression's answers."""
    found: dict[int, torch.Tensor] = {}
    for g in generations:
        for role, hidden in g.seg:
            found.setdefault(role, hidden)
    return found


@dataclass
class SegmentStart:
    """What a video's segmentation knows before SAM2 propagates: every expression's answers (and
    whether it has an actor / a target), and the frames the MLLM saw."""

    expressions: list[str]
    answers: list[list[str]]
    has_actor: list[bool]  # False: no [SEG_ACT] was generated (an empty actor mask on every frame)
    has_target: list[bool]  # False: no [SEG_TAR] was generated (no target masks at all)
    cond_frames: list[int]
    num_frames: int
    height: int
    width: int


@dataclass
class FrameMasks:
    """One frame's masks, one entry per expression, as COCO RLEs at the frames' size."""

    index: int
    actor: list[RLE]
    target: list[RLE | None]  # None where the expression has no target


@torch.no_grad()
def segment_video(model, frames: FrameSource, expressions: Sequence[str], settings: InferenceSettings | None = None,
                  timings: Timings | None = None, answers: Sequence[str | None] | None = None,
                  ) -> list[ExpressionResult]:  # fmt: skip
    """Actor (and target) masks on every frame for each expression, as COCO RLEs at the frames' size.
    answers: per expression, an answer to teacher-force instead of generating one (None: generate);
    for benchmarks, tests, or a protocol that already knows which roles an expression has."""
    events = iter_segment_video(model, frames, expressions, settings, timings, answers)
    start = next(events)
    results = [ExpressionResult(text, list(ans), [], [] if tar else None)
               for text, ans, tar in zip(start.expressions, start.answers, start.has_target, strict=True)]  # fmt: skip
    for frame in events:
        for r, actor, target in zip(results, frame.actor, frame.target, strict=True):
            r.actor.append(actor)
            if r.target is not None:
                r.target.append(target)
    return results


@torch.no_grad()  # on a generator torch enters no_grad around each step, so it never leaks to the caller
def iter_segment_video(model, frames: FrameSource, expressions: Sequence[str],
                       settings: InferenceSettings | None = None, timings: Timings | None = None,
                       answers: Sequence[str | None] | None = None) -> Iterator[SegmentStart | FrameMasks]:  # fmt: skip
    """`segment_video` step by step: first a SegmentStart (after the MLLM answered), then one
    FrameMasks per frame in order as SAM2 propagates, so a server can stream progress and a caller
    can stop early (close the generator). The model is in eval mode until the generator ends."""
    settings = settings or model.cfg.inference
    was_training = model.training
    model.eval()
    try:
        yield from _segment(model, frames, expressions, settings, timings, answers)
    finally:
        model.train(was_training)


def _segment(model, frames, expressions, settings, timings, answers) -> Iterator[SegmentStart | FrameMasks]:
    n_frames = len(frames)
    height, width = frames[0].shape[:2]
    cond = sample_frames(n_frames, settings.num_frames, settings.sampling)
    started = time.perf_counter()
    pixel_values = to_pixels([frames[i] for i in cond], model.processor.mllm_size)
    prompts, owners, all_answers = [], [], []
    for e, text in enumerate(expressions):
        forced = answers[e] if answers is not None else None
        gens = [generate(model, pixel_values, q, settings.max_new_tokens, forced)
                for q in inference_questions(text, model.cfg.mode)]  # fmt: skip
        for role, hidden in sorted(_first_by_role(gens).items()):
            prompts.append(hidden)
            owners.append((e, role))
        all_answers.append([g.text for g in gens])
    if prompts:
        projected = model.projection(torch.stack(prompts).to(model.projection[0].weight.dtype))  # (n, 256)
    if timings is not None:
        _sync(model.sam)
        timings.mllm += time.perf_counter() - started
        timings.frames += n_frames
    # which prompt (row of `projected`) gives each expression's actor / target mask
    actor_of = {e: i for i, (e, role) in enumerate(owners) if role == ACTOR}
    target_of = {e: i for i, (e, role) in enumerate(owners) if role == TARGET}
    yield SegmentStart(list(expressions), all_answers, [e in actor_of for e in range(len(expressions))],
                       [e in target_of for e in range(len(expressions))], cond, n_frames, height, width)  # fmt: skip
    empty = encode_mask(np.zeros((height, width), np.uint8))
    if not prompts:
        for t in range(n_frames):
            yield FrameMasks(t, [empty] * len(expressions), [None] * len(expressions))
        return
    device, dtype = model.device, model.sam._dtype()

    def load(idx: Sequence[int]) -> torch.Tensor:
        return to_pixels([frames[i] for i in idx], model.sam.image_size, cv2.INTER_LINEAR).to(device, dtype)

    for t, logits in track(model.sam, load, n_frames, projected, cond, timings=timings,
                           memory=settings.propagation == "memory", gate_absent=settings.gate_by_object_score):
        masks = F.interpolate(logits.float(), size=(height, width), mode="bilinear", align_corners=False)[:, 0]
        masks = (masks > settings.mask_threshold).to("cpu", torch.uint8).numpy()
        rles = [encode_mask(m) for m in masks]
        yield FrameMasks(t, [rles[actor_of[e]] if e in actor_of else empty for e in range(len(expressions))],
                         [rles[target_of[e]] if e in target_of else None for e in range(len(expressions))])  # fmt: skip


def inference_context(device: torch.device | str, dtype: torch.dtype):
    """Autocast for a bf16/fp16 model: SAM2's memory path makes float32 tensors (positional
    encodings) that meet the cast weights; nothing to do in float32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)
