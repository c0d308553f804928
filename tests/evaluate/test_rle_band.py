"""J and F straight from RLEs (decoding only a band of columns) equal J and F of the decoded masks."""

from __future__ import annotations

import numpy as np
import pytest

from interrvos.data.rle import encode_mask
from interrvos.evaluate.metrics import jf_score
from interrvos.evaluate.rle_band import MalformedRLE, decode_columns, foreground_runs, jf_from_runs, union_runs


def _mask(rng, h, w):
    m = np.zeros((h, w), np.uint8)
    for _ in range(rng.integers(0, 3)):
        y0, x0 = rng.integers(-2, h), rng.integers(-2, w)
        m[max(y0, 0):max(y0 + rng.integers(1, h + 2), 0), max(x0, 0):max(x0 + rng.integers(1, w + 2), 0)] = 1
    if rng.random() < 0.2:
        m |= (rng.random((h, w)) < 0.3).astype(np.uint8)
    if rng.random() < 0.05:
        m[:] = 1
    return m


def test_band_decoding_matches_the_decoded_masks_on_random_masks_and_overlapping_unions():
    rng = np.random.default_rng(11)
    for _ in range(400):
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        pred, parts = _mask(rng, h, w), [_mask(rng, h, w) for _ in range(rng.integers(1, 4))]
        truth = np.bitwise_or.reduce(parts)  # objects of one expression may overlap
        runs_truth = union_runs([foreground_runs(encode_mask(m), h, w) for m in parts])
        got = jf_from_runs(foreground_runs(encode_mask(pred), h, w), runs_truth, h, w)
        assert got == jf_score(pred, truth), (h, w)
        first, last = sorted(rng.integers(0, w, 2))
        assert np.array_equal(decode_columns(runs_truth, h, first, last), truth[:, first:last + 1].T)


def test_empty_masks_decode_nothing_and_score_one():
    empty = foreground_runs(None, 480, 854)
    assert empty.empty and jf_from_runs(empty, empty, 480, 854) == (1.0, 1.0)
    assert jf_from_runs(empty, foreground_runs(encode_mask(np.ones((4, 6), np.uint8)), 4, 6), 4, 6) == (0.0, 1.0)


def test_uncompressed_counts_and_malformed_rles():
    m = np.zeros((3, 4), np.uint8)
    m[1, 1:3] = 1
    runs = foreground_runs({"size": [3, 4], "counts": [4, 1, 2, 1, 4]}, 3, 4)
    assert jf_from_runs(runs, foreground_runs(encode_mask(m), 3, 4), 3, 4) == (1.0, 1.0)
    with pytest.raises(MalformedRLE, match="cover 11 pixels"):
        foreground_runs({"size": [3, 4], "counts": [4, 1, 2, 1, 3]}, 3, 4)
    with pytest.raises(MalformedRLE, match="for 3x5 frames"):
        foreground_runs(encode_mask(m), 3, 5)
    with pytest.raises(MalformedRLE, match="not a valid compressed"):
        foreground_runs({"size": [3, 4], "counts": "\x01"}, 3, 4)
