"""Frames, masks and prompts from `interrvos synth` videos (exact ground-truth masks).

Each video is decoded once into a local cache at SAM2's input size: `<vid>.frames.npy` (T, S, S, 3)
uint8 (the 160x120 frames stretched to S x S, as SAM2 sees them) and `<vid>.labels.npy` (T, S, S)
uint8, a label map (0 background, k = the video's k-th object): synth masks never overlap, so one map
per frame holds every object. The decoders memory-map them, so a sample costs two frame reads.

A training sample is one prompted frame (the plan's frame) with `objects_per_frame` objects, each
prompted by one positive point or its jittered box (coordinates in input pixels, 0..S, which is what
SAM2's prompt encoder expects), plus the frame 1..clip_gap later with the same objects' masks for the
memory path. Held-out videos (the last `heldout_videos`) are never planned.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from functools import lru_cache
from typing import Any

import numpy as np

from interrvos.data import storage
from interrvos.data.rle import decode_rle
from interrvos.pretrain.config import PretrainData
from interrvos.train.plan import SourceInfo, VideoInfo

POINT, BOX = 1, 2  # prompt kinds (point labels: 1 positive point, 2/3 box corners, -1 padding)


def synth_videos(synth_dir: str) -> list[str]:
    return sorted(n[: -len(".meta.json")] for n in storage.list_dir(synth_dir) if n.endswith(".meta.json"))


def split_videos(videos: list[str], heldout: int) -> tuple[list[str], list[str]]:
    """(training, held-out): the last `heldout` videos by id are held out (disjoint by construction)."""
    return videos[:-heldout], videos[-heldout:]


def cache_dir(d: PretrainData, size: int) -> str:
    """The cache folder of these synth settings at this size (other settings get another folder)."""
    key = hashlib.sha1(d.synth.model_dump_json(exclude={"out", "ray", "num_videos"}).encode()).hexdigest()[:10]
    return os.path.join(os.path.abspath(d.cache), f"synth_{key}_s{size}")


def decode_video(synth_dir: str, vid: str, size: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(frames (T, S, S, 3) uint8, labels (T, S, S) uint8, object ids) of one synth video."""
    import torch
    import torch.nn.functional as F

    from interrvos.data.video import VideoReader

    tracks = storage.read_json(storage.join(synth_dir, f"{vid}.masks.json"))
    objects = sorted(tracks, key=lambda o: (len(o), o))
    with storage.local_path(storage.join(synth_dir, f"{vid}.mp4")) as path, VideoReader(path) as reader:
        frames = np.stack(list(reader.iter_frames(0, len(reader))))
    n, h, w = frames.shape[:3]
    labels = np.zeros((n, h, w), np.uint8)
    for k, obj in enumerate(objects, start=1):
        for i, rle in enumerate(tracks[obj]["mask"][:n]):
            if rle is not None:
                labels[i][decode_rle(rle).astype(bool)] = k
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    frames = x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
    lab = F.interpolate(torch.from_numpy(labels)[:, None].float(), size=(size, size), mode="nearest")
    return frames, lab[:, 0].to(torch.uint8).numpy(), objects


def build_cache(d: PretrainData, size: int) -> str:
    """Decode every synth video into the cache (videos already there are skipped); returns the folder."""
    folder = cache_dir(d, size)
    os.makedirs(folder, exist_ok=True)
    for vid in synth_videos(d.synth.out):
        meta = os.path.join(folder, f"{vid}.json")
        if os.path.exists(meta):
            continue
        frames, labels, objects = decode_video(d.synth.out, vid, size)
        for kind, arr in (("frames", frames), ("labels", labels)):
            tmp = os.path.join(folder, f"{vid}.{kind}.tmp.npy")
            np.save(tmp, arr)
            os.replace(tmp, os.path.join(folder, f"{vid}.{kind}.npy"))
        with open(meta + ".tmp", "w") as f:
            json.dump({"objects": objects, "num_frames": len(frames)}, f)
        os.replace(meta + ".tmp", meta)  # written last: its presence means the video is complete
    return folder


class CachedVideo:
    def __init__(self, folder: str, vid: str):
        with open(os.path.join(folder, f"{vid}.json")) as f:
            meta = json.load(f)
        self.objects: list[str] = meta["objects"]
        self.frames = np.load(os.path.join(folder, f"{vid}.frames.npy"), mmap_mode="r")  # (T, S, S, 3)
        self.labels = np.load(os.path.join(folder, f"{vid}.labels.npy"), mmap_mode="r")  # (T, S, S)

    def __len__(self) -> int:
        return len(self.frames)

    def visible(self, frame: int, min_area: int) -> list[int]:
        """Label values (1-based object indices) with at least `min_area` pixels on `frame`."""
        counts = np.bincount(np.asarray(self.labels[frame]).ravel(), minlength=len(self.objects) + 1)
        return [k for k in range(1, len(counts)) if counts[k] >= min_area]


@lru_cache(maxsize=64)
def cached_video(folder: str, vid: str) -> CachedVideo:
    return CachedVideo(folder, vid)


def plan_sources(d: PretrainData, folder: str) -> list[SourceInfo]:
    """The training videos as train.plan's planning input: a video's objects stand for expressions."""
    train, _ = split_videos(synth_videos(d.synth.out), d.heldout_videos)
    infos = []
    for vid in train:
        v = cached_video(folder, vid)
        infos.append(VideoInfo(vid, len(v), tuple((str(k), False) for k in range(1, len(v.objects) + 1))))
    return [SourceInfo(d.synth.out, 1.0, tuple(infos))]


def box_of(mask: np.ndarray) -> np.ndarray:
    """[x0, y0, x1, y1] of a boolean mask, in pixel coordinates (corners of the outer pixels' centres)."""
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max(), ys.max()], np.float32)


def prompt_for(mask: np.ndarray, kind: int, jitter: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(coords (2, 2) float32 in input pixels, labels (2,) int32): one positive point (inside the mask)
    plus padding, or the two box corners (each coordinate jittered by up to `jitter` px)."""
    if kind == POINT:
        ys, xs = np.nonzero(mask)
        i = rng.integers(len(xs))
        return np.array([[xs[i], ys[i]], [0, 0]], np.float32), np.array([1, -1], np.int32)
    box = box_of(mask) + rng.uniform(-jitter, jitter, 4).astype(np.float32)
    box = np.clip(box, 0, mask.shape[0] - 1)
    return box.reshape(2, 2), np.array([2, 3], np.int32)


def choose_objects(plan_objects: list[int], visible: list[int], count: int, rng: random.Random) -> list[int]:
    """`count` objects to prompt on a frame: the plan's visible ones first, then other visible ones, then
    repeats (a frame with fewer visible objects is prompted twice for some, with other prompts)."""
    chosen = [k for k in plan_objects if k in visible][:count]
    others = [k for k in visible if k not in chosen]
    rng.shuffle(others)
    chosen += others[: count - len(chosen)]
    while len(chosen) < count:
        chosen.append(rng.choice(visible))
    return chosen


class SamSamples:
    """Plan row -> training row (runs in Ray Data actors): frames, masks and prompts of one sample."""

    def __init__(self, d: PretrainData, folder: str):
        self.d, self.folder = d, folder

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        d = self.d
        video = cached_video(self.folder, str(row["video"]))
        rng = random.Random(int(row["seed"]))
        nrng = np.random.default_rng(int(row["seed"]))
        frame = int(row["frames"][0])
        visible = video.visible(frame, d.min_area_px)
        for step in range(1, len(video)):  # rare: nothing visible here; take the nearest frame that has objects
            if visible:
                break
            for f in (frame - step, frame + step):
                if 0 <= f < len(video) and (visible := video.visible(f, d.min_area_px)):
                    frame = f
                    break
        objects = choose_objects([int(k) for k in row["expressions"]], visible, d.objects_per_frame, rng)
        nxt = min(frame + rng.randint(1, d.clip_gap), len(video) - 1)
        if nxt == frame:
            nxt = max(frame - 1, 0)
        labels = np.stack([np.asarray(video.labels[frame]), np.asarray(video.labels[nxt])])  # (2, S, S)
        masks = np.stack([labels == k for k in objects], axis=1).astype(np.uint8)  # (2, K, S, S)
        coords, kinds = [], []
        for j, k in enumerate(objects):
            kind = POINT if nrng.random() < d.point_fraction else BOX
            c, lab = prompt_for(masks[0, j].astype(bool), kind, d.box_jitter_px, nrng)
            coords.append(c)
            kinds.append(lab)
        images = np.stack([np.asarray(video.frames[frame]), np.asarray(video.frames[nxt])]).transpose(0, 3, 1, 2)
        return {"images": np.ascontiguousarray(images), "masks": masks, "point_coords": np.stack(coords),
                "point_labels": np.stack(kinds)}  # fmt: skip


def collate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows -> the model's batch: images (B, 2, 3, S, S) uint8, masks (B, 2, K, S, S) float32,
    point_coords (B, K, 2, 2) float32, point_labels (B, K, 2) int32."""
    import torch

    def stack(key, dtype):
        return torch.from_numpy(np.stack([np.asarray(r[key]) for r in rows])).to(dtype)

    return {"images": stack("images", torch.uint8), "masks": stack("masks", torch.float32),
            "point_coords": stack("point_coords", torch.float32), "point_labels": stack("point_labels", torch.int32)}
