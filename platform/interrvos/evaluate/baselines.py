"""Predictions that need no model: they check the harness and give the floor a trained model must beat.

  - oracle:          the ground truth itself (actor item: its ground truth; target: the target's) -> 100
  - empty:           no mask anywhere (scores only on frames where the object is absent)
  - full:            every pixel, every frame
  - random_object:   one of the video's objects at random as the actor, another as the target
                     (seeded by `seed`, the video and the expression: the same on every run and worker)
  - largest_object:  the object with the largest total area over the video as the actor, the second
                     largest as the target
Objects are the video's `objects` (anno ids in mask_dict; `Dataset.object_anno_ids`). A video with
no objects gets empty masks from the last two.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import numpy as np

from interrvos.data.mevis import Dataset
from interrvos.data.rle import RLE, encode_mask, merge_rles, rle_area
from interrvos.evaluate.predictions import ExpressionPrediction, Scanned
from interrvos.evaluate.protocol import has_actor_target_pair

BaselineName = Literal["oracle", "empty", "full", "random_object", "largest_object"]
BASELINES: tuple[str, ...] = BaselineName.__args__  # type: ignore[attr-defined]


def _union_track(ds: Dataset, anno_ids: list[str], num_frames: int, size: tuple[int, int]) -> list[RLE | None]:
    tracks = [ds.masks(a) for a in anno_ids]
    out: list[RLE | None] = []
    for i in range(num_frames):
        present = [t[i] for t in tracks if i < len(t) and t[i] is not None]
        out.append(None if not present else present[0] if len(present) == 1 else merge_rles(present, *size))
    return out


def _stable_rng(*parts: Any) -> np.random.Generator:
    # hash() differs between processes; a digest of the parts does not.
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


class BaselinePredictions:
    """A prediction source (like the file readers) that makes each expression's masks from the dataset."""

    def __init__(self, name: BaselineName, seed: int = 0):
        if name not in BASELINES:
            raise ValueError(f"unknown baseline {name!r}; expected one of {', '.join(BASELINES)}")
        self.name, self.seed = name, seed
        self._areas: dict[str, list[tuple[str, int]]] = {}

    def __getstate__(self):
        return {"name": self.name, "seed": self.seed, "_areas": {}}

    def scan(self, ds: Dataset):
        for vid, exp, _ in ds.all_expressions():
            yield Scanned(vid, exp, 0, None, None, f"baseline {self.name}", generated=True)

    def load(self, ds: Dataset, video: str, expression: str, locator: Any = None) -> ExpressionPrediction:
        e = ds.videos[video].expressions[expression]
        n, size = len(ds.videos[video].frames), tuple(ds.frame_size(video))
        paired = has_actor_target_pair(e)
        if self.name == "oracle":
            actor = _union_track(ds, e.actor_anno_id if paired else e.anno_id, n, size)
            target = _union_track(ds, e.target_anno_id, n, size) if paired else None
        elif self.name == "empty":
            actor, target = [None] * n, [None] * n if paired else None
        elif self.name == "full":
            full = encode_mask(np.ones(size, np.uint8))
            actor, target = [full] * n, [full] * n if paired else None
        else:
            actor_obj, target_obj = self._pick_objects(ds, video, expression)
            actor = _union_track(ds, [actor_obj] if actor_obj else [], n, size)
            target = _union_track(ds, [target_obj] if target_obj else [], n, size) if paired else None
        return ExpressionPrediction(actor, target)

    def _pick_objects(self, ds: Dataset, video: str, expression: str) -> tuple[str | None, str | None]:
        """(actor anno id, target anno id): two different objects when the video has two."""
        by_area = self._objects_by_area(ds, video)
        if not by_area:
            return None, None
        if self.name == "largest_object":
            order = [anno for anno, _ in by_area]
        else:
            order = [by_area[i][0] for i in _stable_rng(self.seed, video, expression).permutation(len(by_area))]
        return order[0], order[1] if len(order) > 1 else order[0]

    def _objects_by_area(self, ds: Dataset, video: str) -> list[tuple[str, int]]:
        if video not in self._areas:
            areas = [(anno, sum(rle_area(m) for m in ds.masks(anno) if m is not None))
                     for _, anno in sorted(ds.object_anno_ids(video).items())]
            # Largest first; ties by object id order (sorted above, and sort is stable).
            self._areas[video] = sorted(areas, key=lambda pair: -pair[1])
        return self._areas[video]
