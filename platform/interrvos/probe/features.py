"""What the probe reads: the language model's last hidden state at the `[SEG_ACT]` token of each expression of
a dataset folder, with the answer teacher-forced (the state training projects into SAM2's prompt), and the
expression's colour and shape words (the labels).

The frames are the first K of the clip, as inference sees them. `blank=True` is the control: the same
expressions over all-zero frames, so what the state carries about the words is not drowned by (or read off)
the image tokens.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

# The synthetic palette and sprite categories are the words the offline annotator writes into expressions.
from interrvos.synth.appearance import PALETTE
from interrvos.synth.sprites import CATEGORIES

COLOURS: tuple[str, ...] = tuple(PALETTE)
SHAPES: tuple[str, ...] = CATEGORIES
_CLIP_SUFFIX = re.compile(r"_clip\d+$")


def _first_word(text: str, vocabulary: Sequence[str]) -> str | None:
    """The first word of `text` in `vocabulary` (a plural 'stars' counts as 'star')."""
    known = set(vocabulary)
    for word in re.findall(r"[a-z]+", text.lower()):
        if word in known:
            return word
        if word.endswith("s") and word[:-1] in known:
            return word[:-1]
    return None


def colour_word(text: str) -> str | None:
    return _first_word(text, COLOURS)


def shape_word(text: str) -> str | None:
    return _first_word(text, SHAPES)


def source_video(vid: str) -> str:
    """The clip's source video: clips of one video must not be split between fitting and scoring."""
    return _CLIP_SUFFIX.sub("", vid)


@dataclass
class ExpressionStates:
    """One row per expression: where it comes from, its words, and its [SEG_ACT] state(s)."""

    video: list[str] = field(default_factory=list)
    group: list[str] = field(default_factory=list)  # source video (the probe's split unit)
    text: list[str] = field(default_factory=list)
    colour: list[str | None] = field(default_factory=list)
    shape: list[str | None] = field(default_factory=list)
    states: dict[str, torch.Tensor] = field(default_factory=dict)  # "frames" / "blank" -> (N, d)

    def __len__(self) -> int:
        return len(self.text)


def load_probe_model(checkpoint: str | None = None, preset: str = "tiny", overrides: Sequence[str] = ()):
    """The model whose states are probed: a checkpoint folder (interrvos.model.load_checkpoint), or a preset
    (random weights, or `mllm.pretrained=<dir>` among the overrides)."""
    from interrvos.model import build_model, load_checkpoint

    model = load_checkpoint(checkpoint) if checkpoint else build_model(preset, list(overrides))
    return model.eval()


@torch.no_grad()
def seg_act_state(model, pixels: torch.Tensor, text: str, unidirectional: bool) -> torch.Tensor:
    """The [SEG_ACT] state (d,) of one expression over K frames (K, 3, Hv, Wv), the first training wording
    teacher-forced (interrvos.model.inference.generate does the forward)."""
    from interrvos.model.inference import generate
    from interrvos.model.templates import training_turns
    from interrvos.model.tokens import ACTOR

    turn = training_turns(text, unidirectional, model.cfg.mode)[0]
    generation = generate(model, pixels, turn.question, forced=turn.answer)
    states = [h for role, h in generation.seg if role == ACTOR]
    if not states:
        raise ValueError(f"the answer {turn.answer!r} has no actor segmentation token")
    return states[0].float().cpu()


def expression_states(model, datasets: Sequence[str], num_frames: int = 4, blank: bool = True,
                      limit: int | None = None) -> ExpressionStates:  # fmt: skip
    """[SEG_ACT] states of every expression (up to `limit`) of the dataset folders, over the clip's first
    `num_frames` frames and, with `blank`, over zeroed frames too."""
    from interrvos.data.mevis import load_dataset
    from interrvos.model.inference import sample_frames
    from interrvos.model.processor import to_pixels
    from interrvos.model.tokens import is_unidirectional

    out = ExpressionStates()
    rows: dict[str, list[torch.Tensor]] = {"frames": [], **({"blank": []} if blank else {})}
    size = model.processor.mllm_size
    for root in datasets:
        ds = load_dataset(root)
        for vid, video in ds.videos.items():
            if not video.expressions or not video.frames:
                continue
            idx = sample_frames(len(video.frames), num_frames, "first")
            frames = [ds.read_frame(vid, video.frames[i]) for i in idx]
            pixels = {"frames": to_pixels(frames, size)}
            if blank:
                pixels["blank"] = to_pixels([np.zeros_like(f) for f in frames], size)
            for expr in video.expressions.values():
                if limit is not None and len(out) >= limit:
                    break
                for kind, px in pixels.items():
                    rows[kind].append(seg_act_state(model, px, expr.exp, is_unidirectional(expr)))
                out.video.append(vid)
                out.group.append(source_video(vid))
                out.text.append(expr.exp)
                out.colour.append(colour_word(expr.exp))
                out.shape.append(shape_word(expr.exp))
    d = getattr(model, "hidden_size", 0)
    out.states = {k: torch.stack(v) if v else torch.zeros(0, d) for k, v in rows.items()}
    return out
