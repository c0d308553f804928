"""Object sprites: each object's textured appearance, rendered once per pose and facing.

Sprites live on a square canvas of side 2r+1 with the object's centre at (r, r); coordinates in
the drawing code are in units of r. Shapes have one pose; creatures and vehicles have a few
(legs swing, wings flap, tails wag) and face left or right, so their masks change while they
move, as real articulated objects do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from interrvos.synth.appearance import PALETTE, texture_field, textured

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "ring", "diamond")
ARTICULATED: tuple[str, ...] = ("dog", "bird", "person", "fish", "car")
CATEGORIES: tuple[str, ...] = SHAPES + ARTICULATED
NUM_POSES = 4  # poses of an articulated sprite; a full stride/flap cycle

# Sprite radius as a fraction of the frame's shorter side.
SIZE_FRACTIONS: dict[str, float] = {"small": 0.10, "medium": 0.13, "large": 0.16}
MIN_RADIUS = 3


def sprite_radius(size: str, width: int, height: int) -> int:
    return max(MIN_RADIUS, int(round(SIZE_FRACTIONS[size] * min(width, height))))


@dataclass(frozen=True)
class Sprite:
    """Pre-rendered appearance. `rgb`/`alpha` are indexed by pose * 2 + flipped (flipped: facing left)."""

    category: str
    radius: int
    rgb: tuple[np.ndarray, ...]  # (2r+1, 2r+1, 3) uint8 each
    alpha: tuple[np.ndarray, ...]  # (2r+1, 2r+1) bool each
    core: np.ndarray  # pixels covered in every pose and facing: contact geometry must hold in all
    bound: float  # distance from the centre to the farthest covered pixel, any pose
    num_poses: int

    def image(self, pose: int, flipped: bool) -> tuple[np.ndarray, np.ndarray]:
        i = (pose % self.num_poses) * 2 + int(flipped)
        return self.rgb[i], self.alpha[i]


class _Canvas:
    """cv2 drawing in units of the sprite radius; `body` is the mask, `detail` the dark features."""

    def __init__(self, radius: int):
        self.r = radius
        side = 2 * radius + 1
        self.body = np.zeros((side, side), np.uint8)
        self.detail = np.zeros((side, side), np.uint8)

    def pt(self, x: float, y: float) -> tuple[int, int]:
        return int(round(self.r + x * self.r)), int(round(self.r + y * self.r))

    def px(self, length: float, minimum: int = 1) -> int:
        return max(minimum, int(round(length * self.r)))

    def circle(self, x: float, y: float, rad: float, detail: bool = False, value: int = 255) -> None:
        for layer in (self.body, self.detail) if detail else (self.body,):
            cv2.circle(layer, self.pt(x, y), self.px(rad), value, -1, cv2.LINE_8)

    def ellipse(self, x: float, y: float, ax: float, ay: float, detail: bool = False) -> None:
        for layer in (self.body, self.detail) if detail else (self.body,):
            cv2.ellipse(layer, self.pt(x, y), (self.px(ax), self.px(ay)), 0, 0, 360, 255, -1, cv2.LINE_8)

    def poly(self, points: list[tuple[float, float]], detail: bool = False) -> None:
        pts = np.array([self.pt(x, y) for x, y in points], np.int32)
        for layer in (self.body, self.detail) if detail else (self.body,):
            cv2.fillPoly(layer, [pts], 255, cv2.LINE_8)

    def line(self, a: tuple[float, float], b: tuple[float, float], width: float) -> None:
        cv2.line(self.body, self.pt(*a), self.pt(*b), 255, self.px(width), cv2.LINE_8)


def _regular(n: int, outer: float, inner: float | None = None) -> list[tuple[float, float]]:
    """Vertices of a regular polygon (or a star when `inner` is given), first vertex up."""
    pts = []
    steps = 2 * n if inner is not None else n
    for k in range(steps):
        rad = outer if inner is None or k % 2 == 0 else inner
        ang = -np.pi / 2 + 2 * np.pi * k / steps
        pts.append((rad * np.cos(ang), rad * np.sin(ang)))
    return pts


def _draw_shape(c: _Canvas, category: str, pose: int) -> None:
    if category == "circle":
        c.circle(0, 0, 0.95)
    elif category == "square":
        c.poly([(-0.78, -0.78), (0.78, -0.78), (0.78, 0.78), (-0.78, 0.78)])
    elif category == "triangle":
        c.poly([(0, -0.95), (0.88, 0.62), (-0.88, 0.62)])
    elif category == "star":
        c.poly(_regular(5, 0.98, 0.42))
    elif category == "ring":
        c.circle(0, 0, 0.95)
        c.circle(0, 0, 0.5, value=0)
    elif category == "diamond":
        c.poly([(0, -0.98), (0.7, 0), (0, 0.98), (-0.7, 0)])


def _swing(pose: int) -> float:
    """-1..1 stride phase; never 0 so limbs are always visibly apart."""
    return float(np.sin(2 * np.pi * (pose + 0.5) / NUM_POSES))


def _draw_dog(c: _Canvas, pose: int) -> None:
    s = 0.18 * _swing(pose)
    for x, sign in ((-0.5, 1), (-0.3, -1), (0.15, -1), (0.35, 1)):
        c.line((x, 0.2), (x + sign * s, 0.9), 0.13)
    c.line((-0.62, -0.02), (-0.95, -0.42 + 0.1 * _swing(pose + 1)), 0.1)
    c.ellipse(-0.1, 0.05, 0.6, 0.3)
    c.circle(0.55, -0.3, 0.27)
    c.ellipse(0.78, -0.22, 0.16, 0.1)
    c.ellipse(0.42, -0.5, 0.08, 0.16, detail=True)
    c.circle(0.6, -0.36, 0.05, detail=True)


def _draw_bird(c: _Canvas, pose: int) -> None:
    tip_y = (-0.92, -0.4, 0.6, -0.4)[pose % NUM_POSES]
    c.poly([(-0.45, 0.05), (-0.92, -0.12), (-0.92, 0.28)])
    c.ellipse(0, 0.12, 0.5, 0.28)
    c.circle(0.5, -0.08, 0.21)
    c.poly([(-0.28, 0.05), (0.22, 0.05), (-0.12, tip_y)])
    c.poly([(0.66, -0.16), (0.93, -0.04), (0.66, 0.02)], detail=True)
    c.circle(0.55, -0.13, 0.05, detail=True)


def _draw_person(c: _Canvas, pose: int) -> None:
    # Seen from the side a stride alternates wide and narrow (a +-swing pair would be symmetric).
    s = 0.25 + 0.75 * abs(float(np.cos(np.pi * pose / 2)))
    c.circle(0, -0.72, 0.21)
    c.line((0, -0.5), (0, 0.2), 0.26)
    c.line((0, -0.4), (0.38 * s, 0.12), 0.1)
    c.line((0, -0.4), (-0.38 * s, 0.12), 0.1)
    c.line((0, 0.2), (0.3 * s, 0.95), 0.14)
    c.line((0, 0.2), (-0.3 * s, 0.95), 0.14)
    c.circle(0.08, -0.75, 0.04, detail=True)


def _draw_fish(c: _Canvas, pose: int) -> None:
    w = 0.18 * _swing(pose)
    c.poly([(-0.4, 0), (-0.95, -0.42 + w), (-0.95, 0.42 + w)])
    c.poly([(-0.05, -0.28), (0.3, -0.28), (-0.15, -0.62)])
    c.ellipse(0.1, 0, 0.6, 0.35)
    c.circle(0.45, -0.08, 0.07, detail=True)


def _draw_car(c: _Canvas, pose: int) -> None:
    c.poly([(-0.95, -0.1), (0.95, -0.1), (0.95, 0.45), (-0.95, 0.45)])
    c.poly([(-0.5, -0.1), (-0.35, -0.58), (0.3, -0.58), (0.52, -0.1)])
    c.circle(-0.55, 0.5, 0.26, detail=True)
    c.circle(0.55, 0.5, 0.26, detail=True)


_DRAW: dict[str, Callable[[_Canvas, int], None]] = {
    "dog": _draw_dog,
    "bird": _draw_bird,
    "person": _draw_person,
    "fish": _draw_fish,
    "car": _draw_car,
}


def _detail_colour(colour: tuple[int, int, int]) -> np.ndarray:
    """Dark features on light objects, light features on dark ones."""
    base = np.asarray(colour, np.float32)
    return (base * 0.35 if base.sum() > 200 else base + 110).clip(0, 255).astype(np.uint8)


def make_sprite(category: str, colour: str, texture: str, radius: int, rng: np.random.Generator) -> Sprite:
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}: use one of {CATEGORIES}")
    side = 2 * radius + 1
    body = textured(PALETTE[colour], texture_field(texture, side, rng))
    detail_rgb = _detail_colour(PALETTE[colour])
    num_poses = NUM_POSES if category in ("dog", "bird", "person", "fish") else 1
    rgbs: list[np.ndarray] = []
    alphas: list[np.ndarray] = []
    for pose in range(num_poses):
        canvas = _Canvas(radius)
        if category in SHAPES:
            _draw_shape(canvas, category, pose)
        else:
            _DRAW[category](canvas, pose)
        alpha = canvas.body > 0
        rgb = body.copy()
        rgb[canvas.detail > 0] = detail_rgb
        rgb[~alpha] = 0
        for flipped in (False, True):
            rgbs.append(np.ascontiguousarray(rgb[:, ::-1] if flipped else rgb))
            alphas.append(np.ascontiguousarray(alpha[:, ::-1] if flipped else alpha))
    core = np.logical_and.reduce(alphas)
    union = np.logical_or.reduce(alphas)
    ys, xs = np.nonzero(union)
    bound = float(np.sqrt(((xs - radius) ** 2 + (ys - radius) ** 2).max())) if len(xs) else 0.0
    return Sprite(category, radius, tuple(rgbs), tuple(alphas), core, bound, num_poses)


def _touches(a: np.ndarray, b: np.ndarray, dx: int, dy: int) -> bool:
    """Whether mask `b`, its centre shifted by (dx, dy) from `a`'s centre, overlaps `a`."""
    ca, cb = a.shape[0] // 2, b.shape[0] // 2
    ox, oy = ca + dx - cb, ca + dy - cb  # b's top-left corner in a's coordinates
    x0, x1 = max(0, ox), min(a.shape[1], ox + b.shape[1])
    y0, y1 = max(0, oy), min(a.shape[0], oy + b.shape[0])
    if x0 >= x1 or y0 >= y1:
        return False
    return bool((a[y0:y1, x0:x1] & b[y0 - oy : y1 - oy, x0 - ox : x1 - ox]).any())


def touch_distance(first: Sprite, second: Sprite, direction: np.ndarray, any_pose: bool = False) -> float:
    """Centre distance at which `second`, placed from `first` along the unit `direction`, first
    touches it (8-connected pixels). By default it is where they touch in every pose (closer, they
    overlap); with `any_pose`, where they touch in some pose (farther, they never touch)."""
    a, b = (np.logical_or.reduce(s.alpha) if any_pose else s.core for s in (first, second))
    grown = cv2.dilate(a.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    d = float(first.radius + second.radius + 2)
    while d > 0:
        if _touches(grown, b, int(round(direction[0] * d)), int(round(direction[1] * d))):
            return d
        d -= 0.5
    return 0.0
