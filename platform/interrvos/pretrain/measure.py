"""Held-out figures of a SAM2 (trained or not) on videos it never saw:

- prompted IoU: (frame, object) pairs each decoded once from one positive point (a random pixel of
  the object) and once from its exact box, beside the IoU of the filled box itself (what a model that
  only paints the box would score);
- propagation IoU: an object prompted by its box on one frame, then tracked through the next
  `track_frames` frames with SAM2's own inference step (`track_step`: memory attention over the
  prompted frame's and the previous frames' memories, object pointers, the object-score gate), beside
  the IoU of the prompted frame's true mask pasted on every later frame (a tracker that never moves).

IoU is computed at SAM2's input size (S x S) with logits > 0; a frame where the object is absent and
the prediction is empty counts 1.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch

from interrvos.pretrain.config import MeasureConfig
from interrvos.pretrain.data import BOX, POINT, box_of, cached_video, prompt_for
from interrvos.pretrain.model import SamPretrain, mask_iou


@dataclass(frozen=True)
class Pair:
    video: str
    frame: int
    label: int  # 1-based object index in the cached label map


def heldout_pairs(folder: str, videos: list[str], count: int, min_area: int, seed: int) -> list[Pair]:
    rng = random.Random(seed)
    pairs = []
    while len(pairs) < count:
        vid = videos[len(pairs) % len(videos)]
        v = cached_video(folder, vid)
        frame = rng.randrange(len(v))
        visible = v.visible(frame, min_area)
        if visible:
            pairs.append(Pair(vid, frame, rng.choice(visible)))
    return pairs


def _mask(folder: str, vid: str, frame: int, label: int) -> np.ndarray:
    return np.asarray(cached_video(folder, vid).labels[frame]) == label


def _box_fill(mask: np.ndarray) -> np.ndarray:
    out = np.zeros_like(mask)
    x0, y0, x1, y1 = box_of(mask).astype(int)
    out[y0:y1 + 1, x0:x1 + 1] = True
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


@torch.no_grad()
def prompted_iou(model: SamPretrain, folder: str, pairs: list[Pair], batch: int, seed: int) -> dict[str, float]:
    """Mean IoU from a point and from the exact box (each pair's frame encoded once), and the filled box."""
    rng = np.random.default_rng(seed)
    point, box, fill = [], [], []
    for lo in range(0, len(pairs), batch):
        chunk = pairs[lo:lo + batch]
        images = torch.from_numpy(np.stack([np.asarray(cached_video(folder, p.video).frames[p.frame]) for p in chunk]))
        gts = [_mask(folder, p.video, p.frame, p.label) for p in chunk]
        prompts = [[prompt_for(g, POINT, 0.0, rng), prompt_for(g, BOX, 0.0, rng)] for g in gts]  # K = 2 per frame
        coords = torch.from_numpy(np.array([[c for c, _ in ps] for ps in prompts]))  # (B, 2, 2, 2)
        labels = torch.from_numpy(np.array([[lab for _, lab in ps] for ps in prompts]))  # (B, 2, 2)
        feats, _, sizes = model.encode(images.permute(0, 3, 1, 2))
        (masks, _, _, _), _ = model.prompted_from(feats, sizes, coords, labels)  # (2B, 1, S, S)
        target = torch.from_numpy(np.stack(gts)).float().repeat_interleave(2, dim=0)
        ious = mask_iou(masks, target).view(-1, 2)
        point += ious[:, 0].tolist()
        box += ious[:, 1].tolist()
        fill += [_iou(_box_fill(g), g) for g in gts]
    return {"point_iou": float(np.mean(point)), "box_iou": float(np.mean(box)), "filled_box_iou": float(np.mean(fill))}


def heldout_tracks(folder: str, videos: list[str], count: int, length: int, min_area: int, seed: int) -> list[Pair]:
    """Start (frame, object) of each track: the object visible there, `length` more frames in the video."""
    rng = random.Random(seed + 1)
    tracks = []
    while len(tracks) < count:
        vid = videos[len(tracks) % len(videos)]
        v = cached_video(folder, vid)
        frame = rng.randrange(max(1, len(v) - length))
        visible = v.visible(frame, min_area)
        if visible:
            tracks.append(Pair(vid, frame, rng.choice(visible)))
    return tracks


@torch.no_grad()
def propagation_iou(model: SamPretrain, folder: str, tracks: list[Pair], length: int, batch: int) -> dict[str, float]:
    """Box on the first frame, SAM2's track_step on the next `length`: mean IoU over the tracked frames."""
    sam = model.sam
    tracked, first, copied = [], [], []
    for lo in range(0, len(tracks), batch):
        chunk = tracks[lo:lo + batch]
        output_dict: dict = {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}
        first_gt = [_mask(folder, t.video, t.frame, t.label) for t in chunk]
        for step in range(length + 1):
            frames = [min(t.frame + step, len(cached_video(folder, t.video)) - 1) for t in chunk]
            images = torch.from_numpy(np.stack([np.asarray(cached_video(folder, t.video).frames[f])
                                                for t, f in zip(chunk, frames, strict=True)]))  # fmt: skip
            gts = [_mask(folder, t.video, f, t.label) for t, f in zip(chunk, frames, strict=True)]
            feats, pos, sizes = model.encode(images.permute(0, 3, 1, 2))
            points = None
            if step == 0:
                boxes = np.stack([box_of(g).reshape(2, 2) for g in gts])
                points = {"point_coords": torch.from_numpy(boxes),
                          "point_labels": torch.tensor([[2, 3]] * len(chunk), dtype=torch.int32)}  # fmt: skip
            out = sam.track_step(frame_idx=step, is_init_cond_frame=step == 0, current_vision_feats=feats,
                                 current_vision_pos_embeds=pos, feat_sizes=sizes, point_inputs=points, mask_inputs=None,
                                 output_dict=output_dict, num_frames=length + 1, run_mem_encoder=True)  # fmt: skip
            output_dict["cond_frame_outputs" if step == 0 else "non_cond_frame_outputs"][step] = out
            ious = mask_iou(out["pred_masks_high_res"], torch.from_numpy(np.stack(gts)).float()).tolist()
            if step == 0:
                first += ious
            else:
                tracked += ious
                copied += [_iou(g0, g) for g0, g in zip(first_gt, gts, strict=True)]
    return {"propagation_iou": float(np.mean(tracked)), "propagation_first_frame_iou": float(np.mean(first)),
            "copy_first_mask_iou": float(np.mean(copied))}  # fmt: skip


def measure(model: SamPretrain, folder: str, videos: list[str], cfg: MeasureConfig, min_area: int) -> dict[str, float]:
    """Every held-out figure of `model` (put in eval mode for the measurement, restored after)."""
    was_training = model.training
    model.eval()
    try:
        pairs = heldout_pairs(folder, videos, cfg.objects, min_area, cfg.seed)
        tracks = heldout_tracks(folder, videos, cfg.tracks, cfg.track_frames, min_area, cfg.seed)
        return {**prompted_iou(model, folder, pairs, cfg.batch, cfg.seed),
                **propagation_iou(model, folder, tracks, cfg.track_frames, cfg.batch)}
    finally:
        model.train(was_training)
