"""A tiny synthetic clip for model tests, benchmarks and demos: a red square (the actor) pushes a
blue disc (the target) across a noisy background. Deterministic in `seed`."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class SyntheticClip:
    frames: list[np.ndarray]  # (H, W, 3) uint8 RGB
    actor: list[np.ndarray]  # (H, W) uint8 0/1
    target: list[np.ndarray]  # (H, W) uint8 0/1


def synthetic_clip(num_frames: int = 4, height: int = 96, width: int = 128, seed: int = 0) -> SyntheticClip:
    rng = np.random.default_rng(seed)
    background = rng.integers(60, 120, size=(height, width, 3), dtype=np.uint8)
    side = max(4, min(height, width) // 5)
    y = int(rng.integers(side, height - side))
    x0 = int(rng.integers(0, width // 4))
    frames, actor, target = [], [], []
    for t in range(num_frames):
        x = x0 + int(t * (width // 2) / max(1, num_frames))
        frame = background.copy()
        a = np.zeros((height, width), np.uint8)
        a[y - side // 2 : y + side // 2, x : x + side] = 1
        g = np.zeros((height, width), np.uint8)
        cv2.circle(g, (min(width - 1, x + side + side // 2), y), side // 2, 1, thickness=-1)
        g &= 1 - a
        frame[a > 0] = (220, 40, 40)
        frame[g > 0] = (40, 60, 220)
        frames.append(frame)
        actor.append(a)
        target.append(g)
    return SyntheticClip(frames, actor, target)
