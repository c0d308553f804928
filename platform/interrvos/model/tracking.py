"""Video propagation with SAM2's memory: every prompt (an expression's actor or target) is decoded
on its conditioning frames (the K frames the MLLM saw, each on its own, as SAM2 treats prompted
frames), their masks are encoded into memory, then every other frame is segmented from memory
(memory attention over the conditioning frames and the last frames, object pointers) in order.
All prompts of a video are tracked together in one SAM2 batch, so each frame is encoded once.
`inference.propagation: prompted` instead decodes every frame with the prompts, as training does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch

from interrvos.model.sam_head import FrameFeatures, SamHead


@dataclass
class Timings:
    """Seconds spent per stage (filled in by inference when given)."""

    mllm: float = 0.0
    encoder: float = 0.0
    propagation: float = 0.0
    frames: int = 0
    extra: dict = field(default_factory=dict)


class _Encoder:
    """Encodes frames on demand, `chunk` at a time (one encoder call per chunk), keeps the chunk."""

    def __init__(self, head: SamHead, load: Callable[[Sequence[int]], torch.Tensor], num_frames: int, chunk: int,
                 timings: Timings | None):  # fmt: skip
        self.head, self.load, self.num_frames, self.chunk, self.timings = head, load, num_frames, chunk, timings
        self._start, self._feats, self._idx = -1, None, []

    def __call__(self, t: int, alone: bool = False) -> FrameFeatures:
        """Frame t's features; a chunk starting at t is encoded unless t is cached (alone: only t)."""
        if self._feats is None or not self._start <= t < self._start + len(self._idx):
            started = time.perf_counter()
            self._idx = [t] if alone else list(range(t, min(t + self.chunk, self.num_frames)))
            self._start, self._feats = t, self.head.features(self.head.encode(self.load(self._idx)))
            if self.timings is not None:
                _sync(self.head)
                self.timings.encoder += time.perf_counter() - started
        return self._feats.select(torch.tensor([t - self._start]))


@torch.no_grad()
def track(head: SamHead, load: Callable[[Sequence[int]], torch.Tensor], num_frames: int, prompts: torch.Tensor,
          cond_frames: Sequence[int], chunk: int = 4, timings: Timings | None = None, memory: bool = True,
          gate_absent: bool = True) -> Iterator[tuple[int, torch.Tensor]]:  # fmt: skip
    """Yield (frame index, mask logits (n, 1, S/4, S/4)) for every frame in order.
    load(indices) -> (len, 3, S, S) normalised frames; prompts (n, 256); cond_frames must include 0.
    memory=False decodes every frame with the prompts on its own (the training regime), no memory.
    gate_absent: SAM2's rule that empties a frame whose object score is <= 0."""
    sam, n = head.sam, prompts.shape[0]
    cond = sorted(set(cond_frames))
    if not cond or cond[0] != 0 or cond[-1] >= num_frames:
        raise ValueError(f"conditioning frames {cond} must start at 0 and lie within the {num_frames} frames")
    encoder = _Encoder(head, load, num_frames, chunk, timings)
    if not memory:
        yield from _prompt_every_frame(head, encoder, num_frames, prompts, gate_absent, timings)
        return
    memory = {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}
    keep_last = max(sam.num_maskmem, getattr(sam, "max_obj_ptrs_in_encoder", 0)) + 1
    batch = torch.zeros(n, dtype=torch.long)

    def step(t: int, prompt: torch.Tensor | None) -> dict:
        feats = encoder(t, alone=prompt is not None).select(batch)  # the frame, once per prompt
        started = time.perf_counter()
        if prompt is not None:  # a conditioning frame: decoded on its own
            pix = head.no_memory(feats)
            out = head.decode(pix, feats.high_res(), prompt, multimask=head.cfg.multimask_output,
                              gate_absent=gate_absent)
        else:
            pix = sam._prepare_memory_conditioned_features(
                frame_idx=t, is_init_cond_frame=False, current_vision_feats=feats.vision_feats[-1:],
                current_vision_pos_embeds=feats.vision_pos[-1:], feat_sizes=feats.feat_sizes[-1:],
                output_dict=memory, num_frames=num_frames,
            )  # fmt: skip
            out = head.decode(pix, feats.high_res(), None, multimask=sam._use_multimask(False, None),
                              gate_absent=gate_absent)
        high_res = head.upscale(out.masks, (head.image_size, head.image_size))
        mem_feats, mem_pos = sam._encode_new_memory(
            current_vision_feats=feats.vision_feats, feat_sizes=feats.feat_sizes, pred_masks_high_res=high_res,
            object_score_logits=out.object_score, is_mask_from_pts=prompt is not None,
        )  # fmt: skip
        if timings is not None:
            _sync(head)
            timings.propagation += time.perf_counter() - started
        return {"maskmem_features": mem_feats, "maskmem_pos_enc": mem_pos, "obj_ptr": out.obj_ptr,
                "pred_masks": out.masks, "object_score_logits": out.object_score}  # fmt: skip

    for t in cond:
        memory["cond_frame_outputs"][t] = step(t, prompts)
    for t in range(num_frames):
        if t in memory["cond_frame_outputs"]:
            yield t, memory["cond_frame_outputs"][t]["pred_masks"]
            continue
        out = step(t, None)
        memory["non_cond_frame_outputs"][t] = out
        memory["non_cond_frame_outputs"].pop(t - keep_last, None)  # older frames are never attended to again
        yield t, out["pred_masks"]


def _prompt_every_frame(head: SamHead, encoder: _Encoder, num_frames: int, prompts: torch.Tensor, gate_absent: bool,
                        timings: Timings | None) -> Iterator[tuple[int, torch.Tensor]]:  # fmt: skip
    batch = torch.zeros(prompts.shape[0], dtype=torch.long)
    for t in range(num_frames):
        feats = encoder(t).select(batch)
        started = time.perf_counter()
        out = head.decode(head.no_memory(feats), feats.high_res(), prompts, multimask=head.cfg.multimask_output,
                          gate_absent=gate_absent)  # fmt: skip
        if timings is not None:
            _sync(head)
            timings.propagation += time.perf_counter() - started
        yield t, out.masks


def _sync(head: SamHead) -> None:
    if head.sam.no_mem_embed.is_cuda:
        torch.cuda.synchronize()
