"""Compositing episodes into frames and visible-region masks.

Sprites are pasted back to front into the frame and into a label map (which object owns each
pixel), so every object's mask is what remains visible of it after occlusion, and the masks of
one frame never overlap. Articulated sprites step through their poses as they travel and face the
way they move.
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np

from interrvos.data.rle import RLE, encode_mask
from interrvos.synth.plan import Episode, SynthObject

FACING_SPEED = 0.05  # px/frame of horizontal motion before a sprite turns to face it
_GROW = np.ones((3, 3), np.uint8)


class Compositor:
    def __init__(self, cast: list[SynthObject], width: int, height: int, background: np.ndarray):
        self.cast = {o.obj_id: o for o in cast}
        self.width, self.height = width, height
        self.background = background
        self.label = np.zeros((height, width), np.uint8 if len(cast) < 255 else np.uint16)
        self.index = {o.obj_id: i + 1 for i, o in enumerate(cast)}  # 0 is the background
        self.travel = {o.obj_id: 0.0 for o in cast}  # distance walked, drives the pose cycle
        self.facing_left = {o.obj_id: False for o in cast}
        self.last: dict[str, np.ndarray] = {}
        self.occluded_object_frames = 0  # frames x objects hidden in part by another object

    def _pose(self, oid: str, pos: np.ndarray) -> tuple[int, bool]:
        prev = self.last.get(oid)
        if prev is not None:
            step = pos - prev
            self.travel[oid] += float(np.hypot(*step))
            if abs(step[0]) > FACING_SPEED:
                self.facing_left[oid] = bool(step[0] < 0)
        self.last[oid] = pos
        sprite = self.cast[oid].sprite
        stride = max(1.5, 0.3 * sprite.radius)  # px travelled per pose
        return int(self.travel[oid] / stride), self.facing_left[oid]

    def _paste(self, frame: np.ndarray, oid: str, pos: np.ndarray) -> tuple[tuple[int, int, int, int] | None, int]:
        """Draw one sprite; returns its clipped box (x0, y0, x1, y1) and how many pixels it covered."""
        sprite = self.cast[oid].sprite
        rgb, alpha = sprite.image(*self._pose(oid, pos))
        r = sprite.radius
        left, top = int(np.floor(pos[0] + 0.5)) - r, int(np.floor(pos[1] + 0.5)) - r
        x0, y0 = max(left, 0), max(top, 0)
        x1, y1 = min(left + 2 * r + 1, self.width), min(top + 2 * r + 1, self.height)
        if x0 >= x1 or y0 >= y1:
            return None, 0
        a = alpha[y0 - top : y1 - top, x0 - left : x1 - left]
        frame[y0:y1, x0:x1][a] = rgb[y0 - top : y1 - top, x0 - left : x1 - left][a]
        self.label[y0:y1, x0:x1][a] = self.index[oid]
        return (x0, y0, x1, y1), int(a.sum())

    def _touching(self, a: str, b: str, boxes: dict) -> bool:
        """Whether the visible masks of a and b are 8-connected neighbours (or would be)."""
        if boxes.get(a) is None or boxes.get(b) is None:
            return False
        x0 = max(0, min(boxes[a][0], boxes[b][0]) - 1)
        y0 = max(0, min(boxes[a][1], boxes[b][1]) - 1)
        x1 = min(self.width, max(boxes[a][2], boxes[b][2]) + 1)
        y1 = min(self.height, max(boxes[a][3], boxes[b][3]) + 1)
        crop = self.label[y0:y1, x0:x1]
        ma = (crop == self.index[a]).astype(np.uint8)
        mb = crop == self.index[b]
        return bool(ma.any() and mb.any() and (cv2.dilate(ma, _GROW) > 0)[mb].any())

    def _note_contacts(self, episode: Episode, frame_no: int, boxes: dict) -> None:
        for ev in episode.events:
            if ev["contact_frame"] is not None or not ev["start_frame"] <= frame_no < ev["end_frame"]:
                continue
            if ev["direction"] == "unidirectional":
                pairs = [(a, t) for a in ev["actor_ids"] for t in ev["target_ids"]]
            else:
                ids = ev["participant_ids"]
                pairs = [(a, b) for i, a in enumerate(ids) for b in ids[i + 1 :]]
            if any(self._touching(a, b, boxes) for a, b in pairs):
                ev["contact_frame"] = frame_no

    def render(self, episode: Episode) -> Iterator[tuple[np.ndarray, dict[str, RLE | None]]]:
        """(RGB frame (H, W, 3), {obj_id: visible-region RLE or None}) for each frame of the episode."""
        for i in range(episode.end - episode.start):
            frame = self.background.copy()
            self.label.fill(0)
            boxes, drawn = {}, {}
            for oid in episode.z_order:
                boxes[oid], drawn[oid] = self._paste(frame, oid, episode.positions[oid][i])
            masks: dict[str, RLE | None] = {}
            for oid in self.cast:
                box = boxes.get(oid)
                masks[oid] = None
                if box is None:
                    continue
                x0, y0, x1, y1 = box
                visible = self.label[y0:y1, x0:x1] == self.index[oid]
                area = int(visible.sum())
                if area == 0:
                    continue
                self.occluded_object_frames += area < drawn[oid]
                full = np.zeros((self.height, self.width), np.uint8)
                full[y0:y1, x0:x1] = visible
                masks[oid] = encode_mask(full)
            self._note_contacts(episode, episode.start + i, boxes)
            yield frame, masks
