"""Raw inputs -> model tensors: frames for InternVL and SAM2, conversations as token ids with labels,
ground-truth masks; and `collate`, which pads samples into the batch `ReVIOsA.forward` takes.

Batch (B samples, T frames each, E expression slots, L tokens, S = SAM2 side, m = S / 4):
  input_ids      (B, L) long    right-padded with the pad id
  attention_mask (B, L) long
  labels         (B, L) long    answer tokens (and their <|im_end|>); -100 elsewhere
  seg_expr       (B, L) long    at a segmentation token: the expression slot it segments; -1 elsewhere
  pixel_values   (B*T, 3, Hv, Wv) float  InternVL frames (ImageNet-normalised), sample-major
  sam_images     (B, T, 3, S, S) float   the same frames for SAM2 (ImageNet-normalised)
  gt_masks       (B, E, 2, T, m, m) float  role 0 = actor, 1 = target
  target_valid   (B, E) bool    the target of slot e is supervised (a unidirectional interaction)
  expr_valid     (B, E) bool    slot e holds an expression
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from interrvos.model.templates import Turn, training_turns
from interrvos.model.tokens import IM_END, IM_START, TokenIds

IGNORE = -100
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32) * 255
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32) * 255


def to_pixels(frames: Sequence[np.ndarray], size: int, interpolation: int = cv2.INTER_CUBIC) -> torch.Tensor:
    """(H, W, 3) RGB uint8 frames -> (T, 3, size, size) ImageNet-normalised float (square resize, as
    InternVL's video path and SAM2 do)."""
    out = np.empty((len(frames), size, size, 3), dtype=np.float32)
    for i, frame in enumerate(frames):
        out[i] = cv2.resize(np.ascontiguousarray(frame), (size, size), interpolation=interpolation)
    out = (out - MEAN) / STD
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def resize_masks(masks: Sequence[np.ndarray], size: int) -> torch.Tensor:
    """(H, W) 0/1 masks -> (T, size, size) float, nearest neighbour."""
    out = np.zeros((len(masks), size, size), dtype=np.float32)
    for i, m in enumerate(masks):
        out[i] = cv2.resize(np.asarray(m, dtype=np.uint8), (size, size), interpolation=cv2.INTER_NEAREST)
    return torch.from_numpy(out)


@dataclass
class TrainingExpression:
    """One expression of a training sample: its text and per-frame ground truth (the sample's frames)."""

    text: str
    actor_masks: Sequence[np.ndarray]  # T x (H, W)
    target_masks: Sequence[np.ndarray] | None = None  # only for unidirectional interactions


class Processor:
    def __init__(self, tokenizer, ids: TokenIds, *, mode: str, mllm_size: int, sam_size: int, tokens_per_frame: int,
                 max_length: int, random_templates: bool = True):  # fmt: skip
        self.tokenizer, self.ids, self.mode = tokenizer, ids, mode
        self.mllm_size, self.sam_size, self.tokens_per_frame = mllm_size, sam_size, tokens_per_frame
        self.mask_size = sam_size // 4
        self.max_length, self.random_templates = max_length, random_templates

    # -- text --------------------------------------------------------------------------------------
    def _text(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def frame_ids(self, num_frames: int) -> list[int]:
        ids = self.ids
        return [ids.img_start, *[ids.img_context] * self.tokens_per_frame, ids.img_end] * num_frames

    def user_ids(self, question: str, num_frames: int) -> list[int]:
        """'<|im_start|>user\\n[frames\\n]question<|im_end|>\\n<|im_start|>assistant\\n' (frames on turn 1 only)."""
        head = self._text(f"{IM_START}user\n")
        frames = self.frame_ids(num_frames) + self._text("\n") if num_frames else []
        return head + frames + self._text(f"{question}{IM_END}\n{IM_START}assistant\n")

    def prompt_ids(self, question: str, num_frames: int) -> list[int]:
        """A one-question prompt ready for generation."""
        return self.user_ids(question, num_frames)

    def conversation(self, turns: Sequence[tuple[Turn, int]], num_frames: int) -> tuple[list[int], list[int], list[int]]:
        """Token ids, labels and seg_expr of a conversation; each turn comes with its expression slot."""
        input_ids: list[int] = []
        labels: list[int] = []
        seg_expr: list[int] = []
        for i, (turn, slot) in enumerate(turns):
            user = self.user_ids(turn.question, num_frames if i == 0 else 0)
            answer = self._text(f"{turn.answer}{IM_END}") + self._text("\n")
            input_ids += user + answer
            labels += [IGNORE] * len(user) + answer[:-1] + [IGNORE]  # the trailing "\n" is not learned
            seg_expr += [-1] * len(user) + [slot if t in self.ids.seg else -1 for t in answer]
        if len(input_ids) > self.max_length:
            input_ids, labels, seg_expr = (x[: self.max_length] for x in (input_ids, labels, seg_expr))
        return input_ids, labels, seg_expr

    # -- samples -----------------------------------------------------------------------------------
    def sample(self, frames: Sequence[np.ndarray], expressions: Sequence[TrainingExpression],
               rng: random.Random | None = None) -> dict:  # fmt: skip
        """One training sample: T frames shown to both models and E expressions asked in one
        conversation (rng=None: first wordings, else random ones when random_templates)."""
        rng = rng if self.random_templates else None
        turns = [
            (turn, slot)
            for slot, e in enumerate(expressions)
            for turn in training_turns(e.text, e.target_masks is not None, self.mode, rng)
        ]
        input_ids, labels, seg_expr = self.conversation(turns, len(frames))
        gt = torch.zeros(len(expressions), 2, len(frames), self.mask_size, self.mask_size)
        target_valid = torch.zeros(len(expressions), dtype=torch.bool)
        for slot, e in enumerate(expressions):
            gt[slot, 0] = resize_masks(e.actor_masks, self.mask_size)
            if e.target_masks is not None and self.mode != "single":
                gt[slot, 1] = resize_masks(e.target_masks, self.mask_size)
                target_valid[slot] = True
        return {
            "input_ids": torch.tensor(input_ids), "labels": torch.tensor(labels), "seg_expr": torch.tensor(seg_expr),
            "pixel_values": to_pixels(frames, self.mllm_size),
            "sam_images": to_pixels(frames, self.sam_size, cv2.INTER_LINEAR),
            "gt_masks": gt, "target_valid": target_valid,
        }  # fmt: skip

    def collate(self, samples: Sequence[dict]) -> dict:
        """Pad samples (same number of frames each) into one batch; see the module docstring."""
        frames = {s["sam_images"].shape[0] for s in samples}
        if len(frames) != 1:
            raise ValueError(f"samples of a batch must have the same number of frames, got {sorted(frames)}")
        n_tok = max(len(s["input_ids"]) for s in samples)
        n_exp = max(s["gt_masks"].shape[0] for s in samples)
        b = len(samples)
        batch = {
            "input_ids": torch.full((b, n_tok), self.ids.pad, dtype=torch.long),
            "attention_mask": torch.zeros(b, n_tok, dtype=torch.long),
            "labels": torch.full((b, n_tok), IGNORE, dtype=torch.long),
            "seg_expr": torch.full((b, n_tok), -1, dtype=torch.long),
            "pixel_values": torch.cat([s["pixel_values"] for s in samples]),
            "sam_images": torch.stack([s["sam_images"] for s in samples]),
            "gt_masks": torch.zeros(b, n_exp, *samples[0]["gt_masks"].shape[1:]),
            "target_valid": torch.zeros(b, n_exp, dtype=torch.bool),
            "expr_valid": torch.zeros(b, n_exp, dtype=torch.bool),
        }
        for i, s in enumerate(samples):
            n, e = len(s["input_ids"]), s["gt_masks"].shape[0]
            batch["input_ids"][i, :n] = s["input_ids"]
            batch["attention_mask"][i, :n] = 1
            batch["labels"][i, :n] = s["labels"]
            batch["seg_expr"][i, :n] = s["seg_expr"]
            batch["gt_masks"][i, :e] = s["gt_masks"]
            batch["target_valid"][i, :e] = s["target_valid"]
            batch["expr_valid"][i, :e] = True
        return batch
