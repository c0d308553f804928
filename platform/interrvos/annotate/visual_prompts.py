"""The highlighted frames the vision LLM sees (REFERENCE.md, 'Visual prompts shown to the vision LLM').

Single object (stage 1): one colour (red). On the first sampled frame where the object covers more
than 0.5% of the image: a fill (70% frame + 30% colour), a thin external contour and a `[0]` label;
on every other sampled frame only a 2 px outline.
Several objects (stage 3): a distinct named colour per object, fill + contour on every frame and an
`[obj_id]` label at the mask centroid, white text on a dark box.
Frames taller than wide and at least 1000 px high are halved. Frames are RGB uint8 (H, W, 3).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cv2
import numpy as np

from interrvos.data import storage
from interrvos.data.rle import RLE, decode_rle
from interrvos.viz import put_label

SINGLE_COLOUR = (255, 0, 0)  # red
# Distinct, named colours for several objects (the names are what a reader of the frames would say).
NAMED_COLOURS: list[tuple[str, tuple[int, int, int]]] = [
    ("red", (230, 25, 75)), ("green", (60, 180, 75)), ("blue", (0, 130, 200)), ("yellow", (255, 225, 25)),
    ("magenta", (240, 50, 230)), ("cyan", (70, 240, 240)), ("orange", (245, 130, 48)), ("purple", (145, 30, 180)),
    ("lime", (210, 245, 60)), ("pink", (250, 190, 212)), ("teal", (0, 128, 128)), ("brown", (170, 110, 40)),
    ("navy", (0, 0, 128)), ("maroon", (128, 0, 0)), ("olive", (128, 128, 0)), ("white", (255, 255, 255)),
]
FILL_ALPHA = 0.3  # 70% frame + 30% colour


def load_frames(dataset: str, clip_id: str, indices: Sequence[int]) -> list[np.ndarray]:
    """The clip's frames at `indices` (JPEGImages/<clip>/<index:05d>.jpg) as RGB arrays."""
    frames = []
    for i in indices:
        path = storage.join(dataset, "JPEGImages", clip_id, f"{i:05d}.jpg")
        img = cv2.imdecode(np.frombuffer(storage.read_bytes(path), np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f"{path}: not a readable image")
        frames.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    return frames


def decode_or_none(rle: RLE | None) -> np.ndarray | None:
    return None if rle is None else decode_rle(rle).astype(bool)


def _fill(img: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int]) -> None:
    img[mask] = (img[mask] * (1 - FILL_ALPHA) + np.asarray(colour) * FILL_ALPHA).astype(np.uint8)


def _contour(img: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int], thickness: int) -> None:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(img, contours, -1, colour, thickness)


def _centroid(mask: np.ndarray) -> tuple[int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.mean()), int(ys.mean())


def _label_scale(img: np.ndarray) -> float:
    return max(0.4, min(img.shape[:2]) / 600)


def downscale_tall(img: np.ndarray, min_height: int = 1000) -> np.ndarray:
    """Halve frames that are taller than wide and at least `min_height` high (the reference's rule)."""
    h, w = img.shape[:2]
    if h > w and h >= min_height:
        return cv2.resize(img, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    return img


def first_clear_frame(masks: Sequence[np.ndarray | None], min_area: float) -> int | None:
    """Index of the first mask covering more than `min_area` of its image (None if none does)."""
    for i, m in enumerate(masks):
        if m is not None and m.mean() > min_area:
            return i
    return None


def render_single_object(frames: Sequence[np.ndarray], masks: Sequence[np.ndarray | None],
                         min_area: float = 0.005, tall_min_height: int = 1000) -> list[np.ndarray]:
    """Stage 1's frames: fill + contour + [0] on the first clear frame, a 2 px outline elsewhere."""
    first = first_clear_frame(masks, min_area)
    out = []
    for i, (frame, mask) in enumerate(zip(frames, masks, strict=True)):
        img = frame.copy()
        if mask is not None and mask.any():
            if i == first:
                _fill(img, mask, SINGLE_COLOUR)
                _contour(img, mask, SINGLE_COLOUR, 1)
                put_label(img, "[0]", _centroid(mask), scale=_label_scale(img))
            else:
                _contour(img, mask, SINGLE_COLOUR, 2)
        out.append(downscale_tall(img, tall_min_height))
    return out


def object_colours(obj_ids: Sequence[str]) -> dict[str, tuple[str, tuple[int, int, int]]]:
    """A distinct named colour per object, in the given order."""
    return {o: NAMED_COLOURS[i % len(NAMED_COLOURS)] for i, o in enumerate(obj_ids)}


def render_multi_object(frames: Sequence[np.ndarray], masks: Mapping[str, Sequence[np.ndarray | None]],
                        tall_min_height: int = 1000) -> list[np.ndarray]:
    """Stage 3's frames: every object filled and outlined in its own colour, `[id]` at its centroid."""
    colours = object_colours(list(masks))
    out = []
    for i, frame in enumerate(frames):
        img = frame.copy()
        visible = [(o, m[i]) for o, m in masks.items() if m[i] is not None and m[i].any()]
        for obj_id, mask in visible:
            _fill(img, mask, colours[obj_id][1])
            _contour(img, mask, colours[obj_id][1], 1)
        for obj_id, mask in visible:  # labels last, so no fill covers them
            put_label(img, f"[{obj_id}]", _centroid(mask), scale=_label_scale(img))
        out.append(downscale_tall(img, tall_min_height))
    return out


def encode_jpegs(images: Sequence[np.ndarray], quality: int = 85) -> list[bytes]:
    out = []
    for img in images:
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise ValueError("JPEG encoding failed")
        out.append(buf.tobytes())
    return out


def decode_jpeg(data: bytes) -> np.ndarray:
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
