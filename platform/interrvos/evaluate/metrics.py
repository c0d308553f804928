"""J (region similarity) and F (DAVIS boundary F-measure) of one predicted mask against its ground truth.

Exactly the DAVIS definitions (../shared/REFERENCE.md, "Metrics"), vectorised:
  - J = |P & G| / |P | G|, and 1 when both masks are empty.
  - F: boundary maps by the seg2bmap rule; tolerance `ceil(0.008 * sqrt(H^2 + W^2))` px; each boundary
    dilated with a disk of that radius (offsets with dx^2 + dy^2 <= r^2, as skimage.morphology.disk);
    precision = predicted boundary pixels inside the dilated true boundary / predicted boundary pixels,
    recall likewise; F = 2PR / (P + R) (0 when P + R = 0); both boundaries empty -> 1, exactly one -> 0.

Why it is fast: every pixel that can be a boundary pixel of either mask lies in the bounding box of
the two masks grown by one pixel up and left, so both boundaries, both dilations and all counts are
computed on that crop only (a dilation only ever needs the other boundary's pixels, which are all
inside the crop). Frames where both masks are empty cost one bounding-box call.

The seg2bmap rule, restated so that the crop is exact: a pixel is boundary when it differs from its
east, south or south-east neighbour, where the image is extended by repeating its last row and last
column. That is the DAVIS code's rule (its "outside is background" only reaches the last row and
column, which it then overrides: last row east-only, last column south-only, corner never).
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

BOUND_TH = 0.008  # DAVIS: tolerance as a fraction of the image diagonal


@functools.lru_cache(maxsize=256)
def boundary_tolerance_px(height: int, width: int, bound_th: float = BOUND_TH) -> int:
    """The dilation radius: ceil(bound_th * image diagonal) px (8 at 480x854); bound_th >= 1 is pixels."""
    if bound_th >= 1:
        return int(bound_th)
    # The same float expression as the DAVIS code, so the ceiling agrees at exact multiples.
    return int(np.ceil(bound_th * np.linalg.norm((height, width))))


@functools.lru_cache(maxsize=64)
def disk_kernel(radius: int) -> np.ndarray:
    """(2r+1, 2r+1) uint8 disk: offsets with dx^2 + dy^2 <= r^2 (skimage.morphology.disk(r))."""
    offsets = np.arange(-radius, radius + 1)
    kernel = (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius**2).astype(np.uint8)
    kernel.setflags(write=False)
    return kernel


def as_binary_u8(mask: np.ndarray) -> np.ndarray:
    """A 2-D mask of any dtype (bool, 0/1, 0/255, float) as contiguous uint8 0/1: nonzero is foreground."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"a mask must be 2-D (H, W), got shape {mask.shape}")
    if mask.dtype == np.bool_:
        return np.ascontiguousarray(mask).view(np.uint8)
    if mask.dtype == np.uint8 and mask.size and mask.max() <= 1:
        return np.ascontiguousarray(mask)
    return (mask != 0).view(np.uint8)


def _boundary_in_box(mask: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """seg2bmap of the whole mask, restricted to rows [y0, y1) and columns [x0, x1), as uint8 0/1."""
    h, w = mask.shape
    # One more row and column as the south/east neighbours; the image's own edge is repeated.
    window = mask[y0:min(y1 + 1, h), x0:min(x1 + 1, w)]
    pad_bottom, pad_right = int(y1 == h), int(x1 == w)
    if pad_bottom or pad_right:
        window = cv2.copyMakeBorder(window, 0, pad_bottom, 0, pad_right, cv2.BORDER_REPLICATE)
    centre = window[:-1, :-1]
    return ((centre != window[:-1, 1:]) | (centre != window[1:, :-1]) | (centre != window[1:, 1:])).view(np.uint8)


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """The DAVIS seg2bmap boundary of a whole (H, W) mask as a bool array."""
    m = as_binary_u8(mask)
    if m.size == 0:
        return np.zeros(m.shape, dtype=bool)
    return _boundary_in_box(m, 0, m.shape[0], 0, m.shape[1]).view(bool)


def _f_from_boundaries(pred_b: np.ndarray, gt_b: np.ndarray, radius: int) -> float:
    n_pred, n_gt = cv2.countNonZero(pred_b), cv2.countNonZero(gt_b)
    if n_pred == 0 and n_gt == 0:
        return 1.0
    if n_pred == 0 or n_gt == 0:
        return 0.0
    # Both boundaries dilated in one call, as the two channels of one image (cheaper than two calls).
    gt_dilated, pred_dilated = cv2.split(cv2.dilate(cv2.merge([gt_b, pred_b]), disk_kernel(radius)))
    pred_matched = cv2.countNonZero(cv2.bitwise_and(pred_b, gt_dilated))
    gt_matched = cv2.countNonZero(cv2.bitwise_and(gt_b, pred_dilated))
    precision, recall = pred_matched / float(n_pred), gt_matched / float(n_gt)
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def jf_score(pred: np.ndarray, gt: np.ndarray, bound_th: float = BOUND_TH) -> tuple[float, float]:
    """(J, F) of one predicted (H, W) mask against the ground truth of the same size."""
    # Shapes are checked on the caller's orientation, before any transposition.
    if np.shape(pred) != np.shape(gt):
        raise ValueError(f"prediction is {'x'.join(map(str, np.shape(pred)))} but the ground truth is "
                         f"{'x'.join(map(str, np.shape(gt)))}")
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.ndim == gt.ndim == 2 and pred.flags.f_contiguous and gt.flags.f_contiguous \
            and not (pred.flags.c_contiguous and gt.flags.c_contiguous):
        # Column-major masks (what pycocotools decodes to): J and F do not change under transposition
        # (the boundary rule and the disk are symmetric in x and y), and the transposes need no copy.
        pred, gt = pred.T, gt.T
    p, g = as_binary_u8(pred), as_binary_u8(gt)
    if p.size == 0:
        return 1.0, 1.0  # nothing to get wrong: both masks are empty
    return jf_of_crops(p, g, boundary_tolerance_px(*p.shape, bound_th=bound_th), p.size)


def jf_of_crops(p: np.ndarray, g: np.ndarray, radius: int, image_area: int) -> tuple[float, float]:
    """(J, F) from two uint8 0/1 arrays that hold every foreground pixel of an image of `image_area`
    pixels, and whose bottom and right edges are the image's or are empty (rle_band passes bands of
    columns): `radius` is the image's tolerance, not the crop's."""
    union = cv2.bitwise_or(p, g)
    x, y, w, h = cv2.boundingRect(union)
    if w == 0:
        return 1.0, 1.0
    union_area = cv2.countNonZero(union[y:y + h, x:x + w])
    p_box, g_box = p[y:y + h, x:x + w], g[y:y + h, x:x + w]
    j = cv2.countNonZero(cv2.bitwise_and(p_box, g_box)) / union_area
    if j == 0 and (not p_box.any() or not g_box.any()):
        # Exactly one mask is empty: its boundary is empty, and so is the other's only when that one
        # covers the whole frame (a non-empty mask without boundary pixels is constant).
        return j, float(union_area == image_area)
    y0, x0, y1, x1 = max(y - 1, 0), max(x - 1, 0), y + h, x + w
    f = _f_from_boundaries(_boundary_in_box(p, y0, y1, x0, x1), _boundary_in_box(g, y0, y1, x0, x1), radius)
    return j, f


def j_score(pred: np.ndarray, gt: np.ndarray) -> float:
    """Region similarity (IoU); 1 when both masks are empty."""
    return jf_score(pred, gt)[0]


def f_score(pred: np.ndarray, gt: np.ndarray, bound_th: float = BOUND_TH) -> float:
    """DAVIS contour accuracy (boundary F-measure)."""
    return jf_score(pred, gt, bound_th)[1]


def jf_scores(preds, gts, bound_th: float = BOUND_TH) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame (J, F) of two equally long sequences of masks (lists or (N, H, W) arrays)."""
    if len(preds) != len(gts):
        raise ValueError(f"{len(preds)} predicted masks for {len(gts)} ground-truth masks")
    pairs = [jf_score(p, g, bound_th) for p, g in zip(preds, gts)]
    j = np.array([pair[0] for pair in pairs], dtype=np.float64)
    f = np.array([pair[1] for pair in pairs], dtype=np.float64)
    return j, f

