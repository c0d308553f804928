"""COCO run-length encoded masks through pycocotools, stored JSON-friendly (counts as str)."""

from __future__ import annotations

from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

RLE = dict[str, Any]  # {"size": [h, w], "counts": str}


def encode_mask(mask: np.ndarray) -> RLE:
    """Encode a 2-D boolean/0-1 mask (H, W) as a COCO RLE with str counts."""
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}")
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8, copy=False)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def _as_coco(rle: RLE) -> dict:
    counts = rle["counts"]
    if isinstance(counts, list):  # uncompressed RLE (as some datasets store it)
        return mask_utils.frPyObjects(rle, *rle["size"])
    return {"size": list(rle["size"]), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


def decode_rle(rle: RLE) -> np.ndarray:
    """Decode a COCO RLE (compressed str/bytes counts or uncompressed list counts) to a (H, W) uint8 mask."""
    return mask_utils.decode(_as_coco(rle))


def rle_area(rle: RLE) -> int:
    return int(mask_utils.area(_as_coco(rle)))


def empty_mask_rle(height: int, width: int) -> RLE:
    return encode_mask(np.zeros((height, width), dtype=np.uint8))


def merge_rles(rles: list[RLE | None], height: int, width: int) -> RLE:
    """Union of several masks (None counts as empty): the ground truth of a multi-object expression."""
    present = [_as_coco(r) for r in rles if r is not None]
    if not present:
        return empty_mask_rle(height, width)
    merged = mask_utils.merge(present, intersect=False)
    return {"size": [int(merged["size"][0]), int(merged["size"][1])], "counts": merged["counts"].decode("ascii")}


def _counts_from_string(counts: str) -> np.ndarray | None:
    """The run lengths a compressed COCO counts string stands for (pycocotools' rleFrString, in numpy),
    or None when the string is not a whole sequence of runs."""
    c = np.frombuffer(counts.encode("ascii", errors="replace"), dtype=np.uint8).astype(np.int64) - 48
    if c.size == 0:
        return np.zeros(0, dtype=np.int64)
    if c.min() < 0 or c.max() > 63:  # each char carries 6 bits: '0'..'o'
        return None
    ends = np.flatnonzero((c & 0x20) == 0)  # a char without the "more" bit closes a run
    if ends.size == 0 or ends[-1] != c.size - 1:
        return None
    starts = np.concatenate(([0], ends[:-1] + 1))
    run_of_char = np.repeat(np.arange(ends.size), ends - starts + 1)
    shift = 5 * (np.arange(c.size) - starts[run_of_char])
    x = np.add.reduceat((c & 0x1F) << shift, starts)
    negative = (c[ends] & 0x10) != 0  # sign bit of the closing char
    x[negative] -= 1 << (5 * (ends[negative] - starts[negative] + 1))
    # From the 4th run on, each value is a delta to the run two places before it.
    runs = x.copy()
    for first in (1, 2):  # odd runs accumulate from run 1, even runs from run 2
        runs[first::2] = np.cumsum(x[first::2])
    return runs


def rle_problem(rle: Any) -> str | None:
    """Why `rle` is not a valid COCO RLE, or None when it is. Checks the runs add up to h*w without
    decoding the mask: pycocotools does not check this and writes past its buffer on bad counts."""
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        return "not a COCO RLE: expected an object with 'size' and 'counts'"
    size = rle["size"]
    if not (isinstance(size, list | tuple) and len(size) == 2 and all(isinstance(v, int) and v >= 0 for v in size)):
        return f"size must be [height, width] of non-negative ints, got {size!r}"
    counts = rle["counts"]
    if isinstance(counts, list):
        if not all(isinstance(v, int) and v >= 0 for v in counts):
            return "uncompressed counts must be non-negative ints"
        runs = np.asarray(counts, dtype=np.int64)
    elif isinstance(counts, str | bytes):
        runs = _counts_from_string(counts.decode("ascii", errors="replace") if isinstance(counts, bytes) else counts)
        if runs is None:
            return "counts is not a valid compressed RLE string"
    else:
        return f"counts must be a str or a list of ints, got {type(counts).__name__}"
    if runs.size and runs.min() < 0:
        return "counts decode to a negative run length"
    total, expected = int(runs.sum()), size[0] * size[1]
    if total != expected:
        return f"counts cover {total} pixels but size {size[0]}x{size[1]} has {expected}"
    return None
