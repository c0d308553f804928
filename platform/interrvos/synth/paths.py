"""Trajectories: a position per frame, built from segments, and the motions that involve no
interaction (objects that only move, and multi-instance groups moving in formation).

Every script works in local coordinates (the group's own origin) over `Stage.frames` frames;
the planner later shifts the whole group to a free place in the frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from interrvos.synth.sprites import Sprite

EASINGS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda t: t,
    "in_out": lambda t: t * t * (3 - 2 * t),  # smoothstep: starts and stops gently
    "out": lambda t: 1 - (1 - t) ** 2,  # decelerates, as after a blow
}


class Path:
    """Positions frame by frame. A segment of k frames ends exactly at its target on its k-th frame."""

    def __init__(self, start: np.ndarray | tuple[float, float]):
        self._pos = np.asarray(start, np.float64).reshape(2)
        self._chunks: list[np.ndarray] = []

    def hold(self, frames: int) -> Path:
        if frames > 0:
            self._chunks.append(np.repeat(self._pos[None], frames, axis=0))
        return self

    def move_to(self, end: np.ndarray, frames: int, ease: str = "linear") -> Path:
        end = np.asarray(end, np.float64).reshape(2)
        if frames > 0:
            t = EASINGS[ease](np.arange(1, frames + 1) / frames)
            self._chunks.append(self._pos + (end - self._pos) * t[:, None])
        self._pos = end  # zero frames: a jump (only happens when a stage is very short)
        return self

    def extend(self, points: np.ndarray) -> Path:
        if len(points):
            self._chunks.append(np.asarray(points, np.float64))
            self._pos = self._chunks[-1][-1]
        return self

    def build(self, frames: int) -> np.ndarray:
        """(frames, 2): cut to length, or padded by holding the last position."""
        done = np.concatenate(self._chunks) if self._chunks else np.zeros((0, 2))
        if len(done) < frames:
            done = np.concatenate([done, np.repeat(self._pos[None], frames - len(done), axis=0)])
        return done[:frames]


@dataclass
class Stage:
    """What a script may use: randomness, its number of frames, and the length unit in pixels
    (the frame's shorter side; the planner shrinks it when a script does not fit the frame)."""

    rng: np.random.Generator
    frames: int
    unit: float

    def span(self) -> tuple[int, int]:
        """Local [start, end) of the action: most of the stage, with a little idle time around."""
        slack = self.frames // 8
        start = int(self.rng.integers(0, slack + 1))
        end = self.frames - int(self.rng.integers(0, slack + 1))
        return (start, end) if end > start else (0, self.frames)

    def direction(self) -> np.ndarray:
        angle = float(self.rng.uniform(0, 2 * np.pi))
        return np.array([np.cos(angle), np.sin(angle)])

    def split(self, start: int, end: int, fraction: float) -> int:
        return start + int(round((end - start) * fraction))


@dataclass(frozen=True)
class Body:
    """One participant of a script: its id and its sprite (for sizes and contact geometry)."""

    obj_id: str
    sprite: Sprite


@dataclass
class Choreography:
    """A group's scripted motion. `event`/`formation` hold ground truth in local frames."""

    paths: dict[str, np.ndarray]  # obj_id -> (frames, 2) local positions
    event: dict | None = None  # verb, direction, actor/target or participant ids, start, end
    formation: dict | None = None  # object_ids, motion, start, end
    front: tuple[str, ...] = field(default_factory=tuple)  # drawn above the rest of the group


def perpendicular(u: np.ndarray) -> np.ndarray:
    return np.array([-u[1], u[0]])


def compass(u: np.ndarray) -> str:
    """Image-space direction in words ('right', 'up-left', ...); image y grows downwards."""
    names = ("right", "up-right", "up", "up-left", "left", "down-left", "down", "down-right")
    angle = np.arctan2(-u[1], u[0]) % (2 * np.pi)
    return names[int(round(angle / (np.pi / 4))) % 8]


def mover(stage: Stage, body: Body) -> Choreography:
    """An object that only moves: a straight run or a wander through a few waypoints."""
    rng, unit = stage.rng, stage.unit
    start, end = stage.span()
    path = Path((0.0, 0.0)).hold(start)
    if rng.random() < 0.5:
        path.move_to(stage.direction() * unit * rng.uniform(0.3, 0.6), end - start, "in_out")
    else:
        legs = int(rng.integers(2, 5))
        bounds = np.linspace(start, end, legs + 1).round().astype(int)
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            path.move_to(rng.uniform(-0.25, 0.25, size=2) * unit, int(hi - lo), "in_out")
    return Choreography({body.obj_id: path.build(stage.frames)})


def formation(stage: Stage, bodies: list[Body]) -> Choreography:
    """Several look-alike objects moving the same way at the same speed, side by side."""
    u = stage.direction()
    across = perpendicular(u)
    spacing = 2 * max(b.sprite.bound for b in bodies) + 0.05 * stage.unit
    start, end = stage.span()
    travel = u * stage.unit * stage.rng.uniform(0.35, 0.55)
    paths = {}
    for i, b in enumerate(bodies):
        offset = across * spacing * (i - (len(bodies) - 1) / 2)
        paths[b.obj_id] = Path(offset).hold(start).move_to(offset + travel, end - start).build(stage.frames)
    ids = [b.obj_id for b in bodies]
    motion = {"object_ids": ids, "motion": f"moving {compass(u)}", "start": start, "end": end}
    return Choreography(paths, formation=motion)
