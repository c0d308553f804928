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
