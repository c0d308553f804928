"""J and F straight from COCO RLEs, decoding only the columns that can matter.

A COCO RLE lists runs over the mask flattened column by column, so any band of whole columns is a
contiguous stretch of it. Every pixel J and F look at lies in the columns of the two masks'
bounding box, plus one column on each side (see metrics.py), so only that band is decoded, as a
(columns, H) array: the transposed band, which J and F see exactly as the band itself (they are
symmetric in x and y). Decoding a frame then costs its runs and its band, not H x W bytes, and a
frame where both masks are empty decodes nothing. The runs are parsed and checked to add up to
H x W first, so a malformed RLE is an error, never a write past a buffer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from interrvos.data.rle import RLE, _counts_from_string
from interrvos.evaluate.metrics import BOUND_TH, boundary_tolerance_px, jf_of_crops


class MalformedRLE(ValueError):
    pass


@dataclass(frozen=True)
class Runs:
    """The foreground runs of a mask as [start, end) offsets in column-major order."""

    starts: np.ndarray
    ends: np.ndarray

    @property
    def empty(self) -> bool:
        return self.starts.size == 0


NO_RUNS = Runs(np.zeros(0, np.int64), np.zeros(0, np.int64))


def foreground_runs(rle: RLE | None, height: int, width: int) -> Runs:
    """Parse an RLE (compressed or list counts) of an (height, width) mask; MalformedRLE when its size
    differs or its runs do not cover exactly height x width pixels."""
    if rle is None:
        return NO_RUNS
    if list(rle.get("size", [])) != [height, width]:
        raise MalformedRLE(f"a {rle.get('size')} mask for {height}x{width} frames")
    counts = rle.get("counts")
    if isinstance(counts, list):
        runs = np.asarray(counts, dtype=np.int64)
    elif isinstance(counts, str | bytes):
        runs = _counts_from_string(counts.decode("ascii", "replace") if isinstance(counts, bytes) else counts)
        if runs is None:
            raise MalformedRLE("counts is not a valid compressed RLE string")
    else:
        raise MalformedRLE(f"counts must be a str or a list of ints, got {type(counts).__name__}")
    if runs.size and runs.min() < 0:
        raise MalformedRLE("counts decode to a negative run length")
    bounds = np.concatenate(([0], np.cumsum(runs)))
    if bounds[-1] != height * width:
        raise MalformedRLE(f"counts cover {int(bounds[-1])} pixels but size {height}x{width} has {height * width}")
    starts, ends = bounds[1:-1:2], bounds[2::2]  # odd runs are foreground
    keep = ends > starts
    return Runs(starts[keep], ends[keep])


def union_runs(parts: Sequence[Runs]) -> Runs:
    """Runs of the union of several masks (they may overlap: decoding counts coverage, not parity)."""
    parts = [p for p in parts if not p.empty]
    if len(parts) <= 1:
        return parts[0] if parts else NO_RUNS
    return Runs(np.concatenate([p.starts for p in parts]), np.concatenate([p.ends for p in parts]))


def column_span(runs: Runs, height: int) -> tuple[int, int] | None:
    """First and last column holding foreground, or None for an empty mask."""
    if runs.empty:
        return None
    return int(runs.starts.min() // height), int((runs.ends.max() - 1) // height)


def decode_columns(runs: Runs, height: int, first: int, last: int) -> np.ndarray:
    """Columns first..last of the mask as a (last - first + 1, height) uint8 0/1 array (transposed)."""
    lo, hi = first * height, (last + 1) * height
    starts, ends = np.clip(runs.starts, lo, hi) - lo, np.clip(runs.ends, lo, hi) - lo
    size = hi - lo
    coverage = np.cumsum(np.bincount(starts, minlength=size + 1) - np.bincount(ends, minlength=size + 1))
    return (coverage[:size] > 0).view(np.uint8).reshape(last - first + 1, height)


def jf_from_runs(pred: Runs, truth: Runs, height: int, width: int, bound_th: float = BOUND_TH) -> tuple[float, float]:
    """(J, F) of two masks given as runs; equal to metrics.jf_score on the decoded masks."""
    spans = [s for s in (column_span(pred, height), column_span(truth, height)) if s is not None]
    if not spans:
        return 1.0, 1.0
    # One column more on each side (when the image has it): the boundary pixels west of the masks,
    # and an all-empty east neighbour, so that the band's own edges do not count as image edges.
    first = max(min(s[0] for s in spans) - 1, 0)
    last = min(max(s[1] for s in spans) + 1, width - 1)
    band_p, band_g = decode_columns(pred, height, first, last), decode_columns(truth, height, first, last)
    return jf_of_crops(band_p, band_g, boundary_tolerance_px(height, width, bound_th), height * width)
