"""What the `local` backend measures instead of looking: per object its colour (from the pixels
inside its mask), size, position and motion (from its mask trajectory), and per pair of objects
the gap between their masks over time (the input of `interactions.py`).

Distances are in units of the frame's shorter side, so thresholds hold at any resolution; time is
in clip frames. Masks are read every `stride` frames (about 250 samples per clip).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from interrvos.data.rle import RLE, decode_rle

# Colour prototypes (RGB) for naming the median colour inside a mask.
COLOUR_NAMES: dict[str, tuple[int, int, int]] = {
    "red": (215, 40, 40), "orange": (240, 135, 30), "yellow": (235, 210, 45), "green": (55, 165, 65),
    "cyan": (45, 200, 210), "blue": (45, 90, 220), "purple": (130, 60, 185), "pink": (240, 130, 185),
    "brown": (120, 75, 40), "white": (240, 240, 240), "gray": (128, 128, 128), "black": (25, 25, 25),
}
STILL_EXCURSION = 0.03  # an object whose centre never leaves a disc of this radius stays still
MOVING_SPEED = 0.0008   # units per frame above which an object counts as moving at that moment
SLOW_SPEED, FAST_SPEED = 0.0022, 0.0055
FAR_GAP = 0.35          # pairs farther apart than this get the bounding-box gap only


@dataclass
class ClipMeasurements:
    """Per object: centres (T, 2) in units (NaN where hidden) and area fractions (T,), on the
    sampled time axis `frames` (T,); per pair (a, b) with a < b: mask gap in units (T,), NaN where
    either is hidden."""

    frames: np.ndarray
    unit: float
    width: int
    height: int
    centres: dict[str, np.ndarray] = field(default_factory=dict)
    areas: dict[str, np.ndarray] = field(default_factory=dict)
    gaps: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)


def _rect_gap(r1: tuple[int, int, int, int], r2: tuple[int, int, int, int]) -> float:
    x1, y1, w1, h1 = r1
    x2, y2, w2, h2 = r2
    dx = max(0, max(x1, x2) - min(x1 + w1, x2 + w2))
    dy = max(0, max(y1, y2) - min(y1 + h1, y2 + h2))
    return float(np.hypot(dx, dy))


def mask_gap(a: np.ndarray, b: np.ndarray, ra: tuple[int, int, int, int], rb: tuple[int, int, int, int]) -> float:
    """Pixels between two masks (0 when they touch or overlap), on the crop holding both."""
    x0, y0 = min(ra[0], rb[0]), min(ra[1], rb[1])
    x1, y1 = max(ra[0] + ra[2], rb[0] + rb[2]), max(ra[1] + ra[3], rb[1] + rb[3])
    ca, cb = a[y0:y1, x0:x1], b[y0:y1, x0:x1]
    dist = cv2.distanceTransform((cb == 0).astype(np.uint8), cv2.DIST_L2, 3)
    inside = dist[ca > 0]
    return max(0.0, float(inside.min()) - 1.0) if inside.size else float("inf")


def measure_clip(tracks: Mapping[str, Sequence[RLE | None]], width: int, height: int,
                 max_samples: int = 250) -> ClipMeasurements:
    """Centres, areas and pairwise gaps of every object, every `stride` frames."""
    n = max((len(m) for m in tracks.values()), default=0)
    stride = max(1, int(np.ceil(n / max_samples)))
    frames = np.arange(0, n, stride)
    unit = float(min(width, height))
    ids = sorted(tracks, key=lambda o: (len(o), o))
    m = ClipMeasurements(frames=frames, unit=unit, width=width, height=height)
    for o in ids:
        m.centres[o] = np.full((len(frames), 2), np.nan)
        m.areas[o] = np.zeros(len(frames))
    pairs = [(a, b) for i, a in enumerate(ids) for b in ids[i + 1:]]
    for p in pairs:
        m.gaps[p] = np.full(len(frames), np.nan)
    for t, f in enumerate(frames):
        masks, rects = {}, {}
        for o in ids:
            rle = tracks[o][f]
            if rle is None:
                continue
            mask = decode_rle(rle)
            mom = cv2.moments(mask, binaryImage=True)
            if mom["m00"] <= 0:
                continue
            masks[o], rects[o] = mask, cv2.boundingRect(mask)
            m.centres[o][t] = (mom["m10"] / mom["m00"] / unit, mom["m01"] / mom["m00"] / unit)
            m.areas[o][t] = mom["m00"] / (width * height)
        for a, b in pairs:
            if a in masks and b in masks:
                g = _rect_gap(rects[a], rects[b])
                if g < FAR_GAP * unit:
                    g = mask_gap(masks[a], masks[b], rects[a], rects[b])
                m.gaps[(a, b)][t] = g / unit
    return m


def fill_gaps(x: np.ndarray) -> np.ndarray:
    """Linear interpolation over NaN runs (edges hold the nearest value); all-NaN stays NaN."""
    x = np.asarray(x, dtype=float).copy()
    ok = ~np.isnan(x)
    if ok.sum() == 0 or ok.all():
        return x
    idx = np.arange(len(x))
    return np.interp(idx, idx[ok], x[ok])


def smooth(x: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or len(x) < window:
        return x
    kernel = np.ones(window) / window
    padded = np.pad(x, (window // 2, window - 1 - window // 2), mode="edge")
    return np.convolve(padded, kernel, mode="valid")


def velocities(centres: np.ndarray, frames: np.ndarray, window: int = 5) -> np.ndarray:
    """(T, 2) velocity in units per clip frame from smoothed, gap-filled centres."""
    if len(frames) < 2:
        return np.zeros((len(frames), 2))
    xy = np.stack([smooth(fill_gaps(centres[:, k]), window) for k in range(2)], axis=1)
    return np.gradient(xy, frames.astype(float), axis=0)


# ---- One object's appearance and motion -----------------------------------------------------------

def colour_name(rgb: Sequence[float]) -> str:
    """The nearest colour prototype in CIE Lab."""
    names = list(COLOUR_NAMES)
    protos = np.array([COLOUR_NAMES[k] for k in names], np.uint8)[None]
    lab = cv2.cvtColor(protos, cv2.COLOR_RGB2LAB)[0].astype(float)
    px = cv2.cvtColor(np.array([[rgb]], np.uint8), cv2.COLOR_RGB2LAB)[0, 0].astype(float)
    return names[int(np.argmin(((lab - px) ** 2).sum(axis=1)))]


def median_colour(frames: Sequence[np.ndarray], masks: Sequence[np.ndarray | None]) -> tuple[int, int, int] | None:
    """Median RGB of the pixels well inside the mask (eroded, so edges blended by JPEG do not count)."""
    pixels = []
    for frame, mask in zip(frames, masks):
        if mask is None or not mask.any():
            continue
        inner = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8))
        use = inner if inner.sum() >= 20 else mask.astype(np.uint8)
        pixels.append(frame[use > 0])
    if not pixels:
        return None
    med = np.median(np.concatenate(pixels), axis=0)
    return int(med[0]), int(med[1]), int(med[2])


def size_word(area_fraction: float) -> str:
    return "small" if area_fraction < 0.03 else "large" if area_fraction > 0.05 else "medium-sized"


def position_words(x: float, y: float) -> str:
    """x, y as fractions of width and height -> 'upper left', 'centre', 'bottom', ..."""
    col = 0 if x < 1 / 3 else 2 if x > 2 / 3 else 1
    row = 0 if y < 1 / 3 else 2 if y > 2 / 3 else 1
    return [["upper left", "top", "upper right"], ["left", "centre", "right"],
            ["lower left", "bottom", "lower right"]][row][col]


def compass(dx: float, dy: float) -> str:
    """Image direction in words; y grows downwards."""
    names = ("right", "up-right", "up", "up-left", "left", "down-left", "down", "down-right")
    angle = np.arctan2(-dy, dx) % (2 * np.pi)
    return names[int(round(angle / (np.pi / 4))) % 8]


def motion_facts(centres: np.ndarray, frames: np.ndarray) -> dict:
    """Still or moving; legs of travel with their directions; speed; circling; stopping."""
    seen = ~np.isnan(centres[:, 0])
    if seen.sum() < 2:
        return {"pattern": "still", "legs": [], "speed": "", "mean_speed": 0.0, "starts_still": False,
                "stops_at_end": False}
    pts = centres[seen]
    excursion = float(np.max(np.linalg.norm(pts - np.median(pts, axis=0), axis=1)))
    vel = velocities(centres, frames)
    speed = np.linalg.norm(vel, axis=1)
    moving = (speed > MOVING_SPEED) & seen
    if excursion < STILL_EXCURSION or moving.sum() < 3:
        return {"pattern": "still", "legs": [], "speed": "", "mean_speed": 0.0, "starts_still": False,
                "stops_at_end": False}
    mean_speed = float(speed[moving].mean())
    speed_word = "slowly" if mean_speed < SLOW_SPEED else "quickly" if mean_speed > FAST_SPEED else "steadily"
    # Legs: direction of travel over quarters of the moving time, consecutive equal ones merged.
    idx = np.flatnonzero(moving)
    legs: list[str] = []
    xy = np.stack([fill_gaps(centres[:, k]) for k in range(2)], axis=1)
    for chunk in np.array_split(idx, 4):
        if len(chunk) < 2:
            continue
        d = xy[chunk[-1]] - xy[chunk[0]]
        if np.linalg.norm(d) > 0.04:
            name = compass(*d)
            if not legs or legs[-1] != name:
                legs.append(name)
    heading = np.unwrap(np.arctan2(vel[moving, 1], vel[moving, 0]))
    turning = float(abs(heading[-1] - heading[0])) if len(heading) > 1 else 0.0
    net = float(np.linalg.norm(xy[idx[-1]] - xy[idx[0]]))
    path = float(np.sum(np.linalg.norm(np.diff(xy[idx], axis=0), axis=1)))
    if turning > 1.6 * np.pi and net < 0.5 * path:
        pattern = "circles"
    elif len(legs) >= 4 or (not legs and path > 0.1):
        pattern = "wanders"
    elif legs:
        pattern = "travels"
    else:
        pattern = "sways"
    n = len(frames)
    return {"pattern": pattern, "legs": legs[:3], "speed": speed_word, "mean_speed": round(mean_speed, 5),
            "starts_still": bool(idx[0] > 0.2 * n), "stops_at_end": bool(idx[-1] < 0.8 * n)}


def object_facts(obj_id: str, category: str, m: ClipMeasurements, sampled_frames: Sequence[np.ndarray],
                 sampled_masks: Sequence[np.ndarray | None]) -> dict:
    """Everything the local backend says about one object, as plain JSON-able facts."""
    centres, areas = m.centres[obj_id], m.areas[obj_id]
    seen = ~np.isnan(centres[:, 0])
    rgb = median_colour(sampled_frames, sampled_masks)
    area = float(areas[seen].mean()) if seen.any() else 0.0
    mean = np.nanmean(centres[seen], axis=0) if seen.any() else np.array([0.5, 0.5]) * m.height / m.unit
    x, y = mean[0] * m.unit / m.width, mean[1] * m.unit / m.height
    return {"obj_id": obj_id, "category": category, "colour": colour_name(rgb) if rgb else "",
            "colour_rgb": list(rgb) if rgb else None, "size": size_word(area), "area_fraction": round(area, 5),
            "position": position_words(x, y), "visible_fraction": round(float(seen.mean()) if len(seen) else 0, 3),
            "motion": motion_facts(centres, m.frames)}
