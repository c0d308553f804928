"""A small dataset whose expressions name colour and shape: three objects per video (colours and shapes drawn
at random), one expression each ("the red triangle"), so a probe has words to read and a blind model none."""

from __future__ import annotations

import random
from pathlib import Path

import cv2
import numpy as np
import pytest

from interrvos.data.mevis import write_dataset, write_frame
from interrvos.data.records import Expression, VideoEntry
from interrvos.data.rle import encode_mask
from interrvos.synth.appearance import PALETTE

COLOURS = ("red", "green", "blue", "yellow", "purple", "white")
SHAPES = ("circle", "square", "triangle")


def _draw(mask: np.ndarray, shape: str, cx: int, cy: int, r: int) -> None:
    if shape == "circle":
        cv2.circle(mask, (cx, cy), r, 1, -1)
    elif shape == "square":
        cv2.rectangle(mask, (cx - r, cy - r), (cx + r, cy + r), 1, -1)
    else:
        cv2.fillPoly(mask, [np.array([[cx, cy - r], [cx - r, cy + r], [cx + r, cy + r]], np.int32)], 1)


def write_colour_shape_dataset(root: str | Path, num_videos: int, num_frames: int = 2, size: int = 64,
                               seed: int = 0) -> str:  # fmt: skip
    rng = random.Random(seed)
    videos, masks = {}, {}
    for v in range(num_videos):
        vid = f"cs{seed}_{v:02d}_clip000"
        objects = [(rng.choice(COLOURS), rng.choice(SHAPES), 10 + 20 * k + rng.randint(-3, 3), rng.randint(14, 50))
                   for k in range(3)]  # fmt: skip
        frames = [f"{i:05d}" for i in range(num_frames)]
        tracks = {}
        for i, name in enumerate(frames):
            image = np.full((size, size, 3), 118, np.uint8)
            for k, (colour, shape, cx, cy) in enumerate(objects):
                m = np.zeros((size, size), np.uint8)
                _draw(m, shape, cx + 2 * i, cy, 8)
                image[m > 0] = PALETTE[colour]
                tracks.setdefault(k, []).append(m)
            write_frame(str(root), vid, name, image)
        exps, objs = {}, {}
        for k, (colour, shape, _, _) in enumerate(objects):
            anno = f"{vid}:{k + 1}"
            masks[anno] = [encode_mask(m) for m in tracks[k]]
            objs[str(k + 1)] = {"category": shape, "anno_id": anno}
            exps[str(k)] = Expression(exp=f"the {colour} {shape}", caption_type="single_appearance",
                                      obj_id=[str(k + 1)], anno_id=[anno])  # fmt: skip
        videos[vid] = VideoEntry(vid_id=vid, frames=frames, objects=objs, expressions=exps)
    write_dataset(str(root), videos, masks)
    return str(root)


@pytest.fixture(scope="session")
def colour_shape_dataset(tmp_path_factory) -> str:
    return write_colour_shape_dataset(tmp_path_factory.mktemp("colour_shape"), num_videos=16, seed=0)
