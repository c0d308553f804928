"""J and F: hand-built cases, and a differential test against a slow, obviously-correct implementation
written here from the definition (REFERENCE.md, "Metrics"), independently of the library's."""

from __future__ import annotations

import math

import numpy as np
import pytest

from interrvos.evaluate.metrics import boundary_map, boundary_tolerance_px, f_score, j_score, jf_score, jf_scores


# ---- the slow reference: loops over pixels, point sets, no tricks --------------------------------------

def slow_boundary(mask: np.ndarray) -> set[tuple[int, int]]:
    """seg2bmap, read literally: differs from its east, south or south-east neighbour (outside the image
    is background); on the last row only east counts, on the last column only south, never the corner."""
    h, w = mask.shape
    m = [[bool(mask[y, x]) for x in range(w)] for y in range(h)]

    def at(y: int, x: int) -> bool:
        return m[y][x] if y < h and x < w else False

    out = set()
    for y in range(h):
        for x in range(w):
            if y == h - 1 and x == w - 1:
                continue
            if y == h - 1:
                differs = m[y][x] != at(y, x + 1)
            elif x == w - 1:
                differs = m[y][x] != at(y + 1, x)
            else:
                differs = any(m[y][x] != at(y + dy, x + dx) for dy, dx in ((0, 1), (1, 0), (1, 1)))
            if differs:
                out.add((y, x))
    return out


def slow_jf(pred: np.ndarray, gt: np.ndarray, radius: int | None = None) -> tuple[float, float]:
    h, w = gt.shape
    p, g = pred != 0, gt != 0
    union, inter = int((p | g).sum()), int((p & g).sum())
    j = 1.0 if union == 0 else inter / union
    r = math.ceil(0.008 * math.sqrt(h * h + w * w)) if radius is None else radius
    bp, bg = slow_boundary(pred), slow_boundary(gt)
    if not bp and not bg:
        return j, 1.0
    if not bp or not bg:
        return j, 0.0

    def matched(src: set, dst: set) -> int:
        return sum(1 for (y, x) in src if any((y - v) ** 2 + (x - u) ** 2 <= r * r for (v, u) in dst))

    precision, recall = matched(bp, bg) / len(bp), matched(bg, bp) / len(bg)
    return j, 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def random_masks(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    kind = rng.integers(0, 4)
    if kind == 0:
        return (rng.random((h, w)) < rng.random()).astype(np.uint8)  # noise of any density
    m = np.zeros((h, w), np.uint8)
    for _ in range(rng.integers(0, 4)):  # rectangles, often touching a border
        y0, x0 = rng.integers(-2, h), rng.integers(-2, w)
        m[max(y0, 0):max(y0 + rng.integers(1, h + 2), 0), max(x0, 0):max(x0 + rng.integers(1, w + 2), 0)] = 1
    if kind == 3 and h > 2 and w > 2:  # a disk
        yy, xx = np.mgrid[:h, :w]
        m |= ((yy - rng.integers(0, h)) ** 2 + (xx - rng.integers(0, w)) ** 2 <= rng.integers(1, max(h, w)) ** 2)
    return m


# ---- hand-built cases ---------------------------------------------------------------------------------

def test_both_masks_empty_score_one():
    z = np.zeros((10, 12), np.uint8)
    assert jf_score(z, z) == (1.0, 1.0)


def test_exactly_one_mask_empty_scores_zero():
    z, m = np.zeros((10, 12), np.uint8), np.zeros((10, 12), np.uint8)
    m[3:6, 4:8] = 1
    assert jf_score(m, z) == (0.0, 0.0)
    assert jf_score(z, m) == (0.0, 0.0)


def test_identical_masks_score_one():
    m = np.zeros((30, 40), bool)
    m[5:20, 7:33] = True
    assert jf_score(m, m) == (1.0, 1.0)


def test_one_pixel_masks_next_to_each_other_have_no_overlap_but_full_boundary_agreement():
    # A lone pixel's boundary is the 2x2 block above-left of it (the pixels whose E/S/SE neighbour it is).
    a, b = np.zeros((20, 20), np.uint8), np.zeros((20, 20), np.uint8)
    a[5, 5], b[5, 6] = 1, 1
    assert set(zip(*np.nonzero(boundary_map(a)))) == {(4, 4), (4, 5), (5, 4), (5, 5)}
    assert boundary_tolerance_px(20, 20) == 1
    assert jf_score(a, b) == (0.0, 1.0)


def test_one_pixel_masks_far_apart_score_zero():
    a, b = np.zeros((20, 20), np.uint8), np.zeros((20, 20), np.uint8)
    a[2, 2], b[15, 15] = 1, 1
    assert jf_score(a, b) == (0.0, 0.0)


def test_boundary_on_the_last_row_and_column_follows_the_davis_rule():
    m = np.zeros((4, 5), np.uint8)
    m[:, 4] = 1  # the last column
    b = boundary_map(m)
    # Last column: compared with the pixel below only (all equal) -> no boundary there; the column to
    # its left differs from its east neighbour, on every row including the last.
    assert b[:, 4].sum() == 0 and b[:, 3].all() and b.sum() == 4
    m = np.zeros((4, 5), np.uint8)
    m[3, :] = 1  # the last row: east-only there, so only the row above is boundary
    b = boundary_map(m)
    assert b[3].sum() == 0 and b[2].all() and b.sum() == 5


def test_mask_in_the_top_left_corner_is_its_own_boundary():
    m = np.zeros((6, 6), np.uint8)
    m[0, 0] = 1
    assert set(zip(*np.nonzero(boundary_map(m)))) == {(0, 0)}


def test_bottom_right_pixel_is_never_boundary_so_a_one_by_one_image_has_none():
    m = np.ones((1, 1), np.uint8)
    assert not boundary_map(m).any()
    # DAVIS: two empty boundaries agree perfectly, whatever the regions; J still sees the difference.
    assert jf_score(m, np.zeros((1, 1), np.uint8)) == (0.0, 1.0)


def test_a_full_frame_mask_has_no_boundary():
    full = np.ones((9, 13), np.uint8)
    part = np.zeros((9, 13), np.uint8)
    part[2:5, 3:9] = 1
    assert not boundary_map(full).any()
    assert jf_score(full, np.zeros_like(full))[1] == 1.0
    assert jf_score(full, part) == (18 / 117, 0.0)


def test_tolerance_is_ceil_of_0_008_times_the_diagonal():
    assert boundary_tolerance_px(480, 854) == 8
    assert boundary_tolerance_px(1, 1) == 1
    assert boundary_tolerance_px(1080, 1920) == 18
    assert boundary_tolerance_px(100, 100, bound_th=3) == 3


def test_contours_shifted_by_exactly_the_tolerance_still_match_and_one_more_pixel_does_not():
    h, w = 480, 854  # tolerance 8
    a = np.zeros((h, w), np.uint8)
    a[100:300, 100:400] = 1
    within = np.roll(a, 8, axis=1)
    beyond = np.roll(a, 9, axis=1)
    assert f_score(within, a) == 1.0
    assert f_score(beyond, a) < 1.0
    assert jf_score(beyond, a) == pytest.approx(slow_jf(beyond[90:310, 90:420], a[90:310, 90:420], radius=8))


def test_any_dtype_nonzero_is_foreground():
    m = np.zeros((8, 8), np.uint8)
    m[2:5, 2:6] = 1
    for variant in (m.astype(bool), m * 255, m.astype(np.float32) * 0.5, m.astype(np.int64)):
        assert jf_score(variant, m) == (1.0, 1.0)


def test_size_mismatch_is_an_error():
    with pytest.raises(ValueError, match="prediction is 4x5 but the ground truth is 5x4"):
        jf_score(np.zeros((4, 5)), np.zeros((5, 4)))


def test_huge_image_with_a_tiny_and_a_huge_object_matches_the_reference_on_a_crop():
    h, w = 2160, 3840  # tolerance ceil(0.008 * 4405.8) = 36
    r = boundary_tolerance_px(h, w)
    assert r == 36
    tiny = np.zeros((h, w), np.uint8)
    tiny[1000:1003, 2000:2004] = 1
    huge = np.zeros((h, w), np.uint8)
    huge[990:1010, 1990:2030] = 1
    # Both masks are far from the image border, so J and F are those of a crop with the same radius.
    crop = (slice(900, 1100), slice(1900, 2100))
    assert jf_score(tiny, huge) == pytest.approx(slow_jf(tiny[crop], huge[crop], radius=r), abs=1e-12)
    assert jf_score(huge, tiny) == pytest.approx(slow_jf(huge[crop], tiny[crop], radius=r), abs=1e-12)


def test_jf_scores_gives_per_frame_values():
    a = np.zeros((3, 10, 10), np.uint8)
    a[1, 2:5, 2:5] = 1
    j, f = jf_scores(a, np.zeros_like(a))
    assert j.tolist() == [1.0, 0.0, 1.0] and f.tolist() == [1.0, 0.0, 1.0]
    assert j_score(a[1], a[1]) == 1.0


# ---- differential ---------------------------------------------------------------------------------------

def test_matches_the_slow_reference_on_random_masks_of_many_sizes():
    rng = np.random.default_rng(20240601)
    sizes = [(1, 1), (1, 7), (7, 1), (2, 2)] + [tuple(rng.integers(1, 36, 2)) for _ in range(250)]
    for h, w in sizes:
        pred, gt = random_masks(rng, h, w), random_masks(rng, h, w)
        if rng.random() < 0.2:
            gt = np.roll(pred, rng.integers(-3, 4), axis=int(rng.integers(0, 2)))  # near misses
        got, want = jf_score(pred, gt), slow_jf(pred, gt)
        assert got == pytest.approx(want, abs=1e-9), (h, w, pred.tolist(), gt.tolist())
        assert set(zip(*np.nonzero(boundary_map(pred)))) == slow_boundary(pred)


def test_matches_the_benchmarks_davis_style_reference():
    pytest.importorskip("skimage")
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "bench" / "davis_reference.py"
    spec = importlib.util.spec_from_file_location("davis_reference", path)
    davis = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(davis)
    rng = np.random.default_rng(7)
    for _ in range(100):
        h, w = rng.integers(1, 60, 2)
        pred, gt = random_masks(rng, h, w), random_masks(rng, h, w)
        assert jf_score(pred, gt) == (davis.db_eval_iou(gt, pred), davis.db_eval_boundary(pred, gt))


def test_column_major_masks_as_pycocotools_decodes_them_give_the_same_scores():
    rng = np.random.default_rng(3)
    for _ in range(60):
        h, w = rng.integers(1, 40, 2)
        pred, gt = random_masks(rng, h, w), random_masks(rng, h, w)
        want = slow_jf(pred, gt)
        for p, g in ((np.asfortranarray(pred), np.asfortranarray(gt)), (np.asfortranarray(pred), gt)):
            assert jf_score(p, g) == pytest.approx(want, abs=1e-9)
