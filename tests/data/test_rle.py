"""COCO RLE masks: pycocotools round trips, JSON-friendly counts, unions and the malformed-RLE check."""

from __future__ import annotations

import json

import numpy as np
import pytest

from interrvos.data.rle import (
    decode_rle,
    empty_mask_rle,
    encode_mask,
    merge_rles,
    rle_area,
    rle_problem,
)

SIZES = [(1, 1), (1, 7), (5, 1), (8, 12), (37, 53), (120, 160)]


def _column_major_runs(mask: np.ndarray) -> list[int]:
    """COCO runs by hand: alternating 0/1 run lengths over the column-major pixels, starting with 0s."""
    flat = mask.flatten(order="F")
    runs, current, length = [], 0, 0
    for v in flat:
        if v != current:
            runs.append(length)
            current, length = v, 0
        length += 1
    runs.append(length)
    return runs


@pytest.mark.parametrize("h,w", SIZES)
@pytest.mark.parametrize("fill", ["empty", "full", "sparse", "half"])
def test_encode_decode_round_trip_through_json(h, w, fill):
    rng = np.random.default_rng(h * 1000 + w)
    p = {"empty": 0.0, "full": 1.0, "sparse": 0.05, "half": 0.5}[fill]
    mask = (rng.random((h, w)) < p).astype(np.uint8)
    rle = json.loads(json.dumps(encode_mask(mask)))  # what mask_dict.json stores
    assert rle["size"] == [h, w]
    assert isinstance(rle["counts"], str)
    decoded = decode_rle(rle)
    assert decoded.shape == (h, w) and decoded.dtype == np.uint8
    np.testing.assert_array_equal(decoded, mask)
    assert rle_area(rle) == int(mask.sum())
    assert rle_problem(rle) is None


def test_encode_accepts_bool_masks_and_rejects_3d():
    mask = np.zeros((4, 6), dtype=bool)
    mask[1:3, 2:5] = True
    np.testing.assert_array_equal(decode_rle(encode_mask(mask)), mask.astype(np.uint8))
    with pytest.raises(ValueError, match="2-D"):
        encode_mask(np.zeros((2, 3, 1), dtype=np.uint8))


def test_uncompressed_list_counts_decode():
    mask = np.zeros((5, 7), dtype=np.uint8)
    mask[1:3, 2:5] = 1
    rle = {"size": [5, 7], "counts": _column_major_runs(mask)}
    np.testing.assert_array_equal(decode_rle(rle), mask)
    assert rle_area(rle) == 6
    assert rle_problem(rle) is None


def test_merge_rles_is_the_union_and_ignores_none():
    rng = np.random.default_rng(3)
    masks = [(rng.random((16, 9)) < 0.2).astype(np.uint8) for _ in range(3)]
    merged = merge_rles([encode_mask(masks[0]), None, encode_mask(masks[1]), encode_mask(masks[2])], 16, 9)
    np.testing.assert_array_equal(decode_rle(merged), masks[0] | masks[1] | masks[2])
    assert isinstance(merged["counts"], str)


def test_merge_of_nothing_is_an_empty_mask_of_the_given_size():
    merged = merge_rles([None, None], 6, 4)
    assert merged["size"] == [6, 4]
    assert decode_rle(merged).sum() == 0
    assert empty_mask_rle(6, 4) == merged


@pytest.mark.parametrize("h,w", SIZES)
def test_compressed_counts_parse_to_the_column_major_runs(h, w):
    from interrvos.data.rle import _counts_from_string

    rng = np.random.default_rng(w)
    mask = (rng.random((h, w)) < 0.3).astype(np.uint8)
    runs = _counts_from_string(encode_mask(mask)["counts"])
    assert runs.tolist() == _column_major_runs(mask)


@pytest.mark.parametrize(
    "rle,reason",
    [
        ({"size": [5, 7], "counts": "zz"}, "not a valid compressed RLE string"),  # chars outside '0'..'o'
        ({"size": [5, 7], "counts": "72300"}, "cover 17 pixels"),  # runs stop short of 35 pixels
        ({"size": [5, 7], "counts": "7230009"}, "cover"),  # one run too many
        ({"size": [5, 7], "counts": "723000W"}, "not a valid compressed RLE string"),  # ends inside a run
        ({"size": [5, 7], "counts": [7, 2, -3, 26]}, "non-negative"),
        ({"size": [5, 7], "counts": 12}, "counts must be a str or a list"),
        ({"size": [5], "counts": "7"}, "size must be"),
        ({"counts": "7"}, "not a COCO RLE"),
        ("a string", "not a COCO RLE"),
    ],
)
def test_malformed_rles_are_named_without_decoding(rle, reason):
    why = rle_problem(rle)
    assert why is not None and reason in why
