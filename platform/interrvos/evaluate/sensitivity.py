"""Does a model read the expression? The mean mask IoU between its actor predictions for two
expressions of the same clip that refer to different objects (disjoint ground-truth objects).

The ground truth scores 0 by construction; a model that gives one mask whatever it is asked (it
segments "the objects" and ignores the text, a common failure of a model trained from scratch) and
the largest_object baseline score 100. J&F alone cannot tell these apart from a weak segmenter.

    expression_sensitivity(ds, source, index)   # {"pairs": 40, "frames_per_pair": 16, "cross_iou": 97.5}
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np

from interrvos.data.mevis import Dataset
from interrvos.evaluate.checks import FrameSizes, PredictionIndex
from interrvos.evaluate.predictions import load_mask
from interrvos.evaluate.protocol import has_actor_target_pair


def referred_objects(e) -> frozenset[str]:
    """The objects the actor prediction should cover: the actor of an actor-target pair, else all."""
    return frozenset(e.actor_anno_id if has_actor_target_pair(e) else e.anno_id)


def disjoint_pairs(ds: Dataset, vid: str, scored: set[str], max_pairs: int) -> list[tuple[str, str]]:
    """Pairs of the video's scored expressions whose referred objects do not overlap, in dataset order."""
    exps = [(k, referred_objects(e)) for k, e in ds.videos[vid].expressions.items() if k in scored]
    pairs = [(a, b) for (a, oa), (b, ob) in combinations(exps, 2) if oa and ob and not oa & ob]
    return pairs[:max_pairs]


def _iou(a: np.ndarray, b: np.ndarray) -> float | None:
    union = int(np.count_nonzero(a | b))
    return None if union == 0 else int(np.count_nonzero(a & b)) / union


def expression_sensitivity(ds: Dataset, source: Any, index: PredictionIndex, max_pairs_per_video: int = 32,
                           frames_per_pair: int = 16) -> dict[str, Any] | None:  # fmt: skip
    """Mean over pairs (each: mean IoU over sampled frames where either mask is non-empty), x100;
    cross_iou is None when no pair has a non-empty frame; None when max_pairs_per_video is 0 (off).
    A prediction that cannot be read is left out (the scoring pass reports it)."""
    if max_pairs_per_video == 0:
        return None
    sizes, per_pair = FrameSizes(ds), []
    by_video: dict[str, set[str]] = {}
    for vid, exp in index.entries:
        by_video.setdefault(vid, set()).add(exp)
    for vid, scored in by_video.items():
        pairs = disjoint_pairs(ds, vid, scored, max_pairs_per_video)
        if not pairs:
            continue
        tracks = {}
        for exp in sorted({x for p in pairs for x in p}):
            try:
                tracks[exp] = source.load(ds, vid, exp, index.entries[(vid, exp)]).actor
            except Exception:  # noqa: BLE001 - already an error row of the scoring pass
                continue
        n = len(ds.videos[vid].frames)
        frames = sorted({int(i) for i in np.linspace(0, n - 1, min(n, frames_per_pair))})
        ious: dict[tuple[str, str], list[float]] = {p: [] for p in pairs if p[0] in tracks and p[1] in tracks}
        size, needed = sizes(vid), sorted({x for p in ious for x in p})
        for i in frames:
            masks = {}
            for exp in needed:
                ref = tracks[exp][i] if i < len(tracks[exp]) else None
                try:
                    masks[exp] = load_mask(ref, *size).astype(bool)
                except Exception:  # noqa: BLE001 - a malformed mask: scored as an error elsewhere
                    masks[exp] = None
            for a, b in ious:
                if masks[a] is not None and masks[b] is not None and (v := _iou(masks[a], masks[b])) is not None:
                    ious[(a, b)].append(v)
        per_pair += [float(np.mean(v)) for v in ious.values() if v]
    return {"pairs": len(per_pair), "frames_per_pair": frames_per_pair,
            "cross_iou": round(100 * float(np.mean(per_pair)), 2) if per_pair else None}
