"""Synthetic interaction videos: determinism, visible-only masks that match the pixels, event ground
truth that the masks bear out, long videos, and the Ray fan-out with resume."""

from __future__ import annotations

import json
import os
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest

from interrvos.config import RayConfig, SynthConfig
from interrvos.data.rle import decode_rle
from interrvos.data.video import VideoReader, probe_video
from interrvos.errors import ConfigError
from interrvos.synth import generate_video, output_paths, run_synth, video_id_for
from interrvos.synth.appearance import PALETTE
from interrvos.synth.events import BIDIRECTIONAL, MAKES_CONTACT, MOVES_TARGET_AFTER_CONTACT, UNIDIRECTIONAL

SMALL = dict(num_frames=120, width=96, height=64)


class Video:
    """A generated video's files, with masks decoded on demand."""

    def __init__(self, out: Path, video_id: str):
        paths = output_paths(str(out), video_id)
        self.mp4 = paths["mp4"]
        self.masks_bytes = Path(paths["masks.json"]).read_bytes()
        self.meta_bytes = Path(paths["meta.json"]).read_bytes()
        self.tracks = json.loads(self.masks_bytes)
        self.meta = json.loads(self.meta_bytes)
        self.unit = min(self.meta["width"], self.meta["height"])

    def mask(self, oid: str, frame: int) -> np.ndarray | None:
        rle = self.tracks[oid]["mask"][frame]
        return None if rle is None else decode_rle(rle).astype(bool)

    def centre(self, oid: str, frame: int) -> np.ndarray | None:
        m = self.mask(oid, frame)
        if m is None:
            return None
        ys, xs = np.nonzero(m)
        return np.array([xs.mean(), ys.mean()])

    def gap(self, a: str, b: str, frame: int) -> float:
        ca, cb = self.centre(a, frame), self.centre(b, frame)
        return float("inf") if ca is None or cb is None else float(np.hypot(*(ca - cb)))

    def touching(self, a: str, b: str, frame: int, px: int = 1) -> bool:
        ma, mb = self.mask(a, frame), self.mask(b, frame)
        if ma is None or mb is None:
            return False
        grown = cv2.dilate(ma.astype(np.uint8), np.ones((2 * px + 1, 2 * px + 1), np.uint8)) > 0
        return bool((grown & mb).any())


def _make(out: Path, indices, **overrides) -> list[Video]:
    cfg = SynthConfig(out=str(out), **{**SMALL, **overrides})
    videos = []
    for i in indices:
        vid = video_id_for(cfg.seed, i)
        generate_video(vid, i, cfg)
        videos.append(Video(out, vid))
    return videos


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> list[Video]:
    """Enough small videos that every verb and every kind of object appears."""
    return _make(tmp_path_factory.mktemp("synth_batch"), range(24), seed=7)


def _decode_all(path: str) -> np.ndarray:
    with VideoReader(path) as r:
        return np.stack(list(r.iter_frames(0, len(r))))


def test_same_seed_and_index_give_identical_files_and_frames(tmp_path):
    a = _make(tmp_path / "a", [3], seed=5, num_videos=1)[0]
    b = _make(tmp_path / "b", [3], seed=5, num_videos=40)[0]  # how many videos are made does not matter
    assert a.masks_bytes == b.masks_bytes
    assert a.meta_bytes == b.meta_bytes
    assert np.array_equal(_decode_all(a.mp4), _decode_all(b.mp4))


def test_a_different_seed_or_index_gives_a_different_video(tmp_path):
    base = _make(tmp_path / "a", [0], seed=5)[0]
    other_seed = _make(tmp_path / "b", [0], seed=6)[0]
    other_index = _make(tmp_path / "c", [1], seed=5)[0]
    for other in (other_seed, other_index):
        assert other.masks_bytes != base.masks_bytes
        assert not np.array_equal(_decode_all(other.mp4)[:10], _decode_all(base.mp4)[:10])


def test_masks_are_frame_sized_visible_only_and_never_overlap(batch):
    for v in batch[:6]:
        h, w, n = v.meta["height"], v.meta["width"], v.meta["num_frames"]
        assert list(v.tracks) == list(v.meta["objects"]) == [str(i + 1) for i in range(len(v.tracks))]
        for oid, track in v.tracks.items():
            assert track["category"] == v.meta["objects"][oid]["category"]
            assert len(track["mask"]) == n
        for f in range(0, n, 7):
            owner = np.zeros((h, w), np.int32)
            for oid in v.tracks:
                m = v.mask(oid, f)
                if m is None:
                    continue
                assert m.shape == (h, w) and m.any()  # None, never an empty mask
                assert not owner[m].any(), f"{v.meta['video_id']} frame {f}: object {oid} overlaps another"
                owner[m] = int(oid)


def test_objects_in_front_hide_those_behind(batch):
    hidden = sum(v.meta["occluded_object_frames"] for v in batch)
    assert hidden > 0  # occlusion happens, and the masks above prove it leaves no overlap


def test_mask_pixels_show_the_objects_colour_in_the_video(batch):
    names = list(PALETTE)
    palette = np.array([PALETTE[n] for n in names], np.float32)
    checked = 0
    for v in batch[:6]:
        frames_at = list(range(0, v.meta["num_frames"], 20))
        with VideoReader(v.mp4) as r:
            frames = r.get_frames(frames_at)
        for oid, info in v.meta["objects"].items():
            pixels = []
            for frame, f in zip(frames, frames_at):
                m = v.mask(oid, f)
                if m is not None:  # the interior: h264 blurs colour across edges
                    inner = cv2.erode(m.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=2) > 0
                    pixels.append(frame[inner])
            pixels = np.concatenate(pixels) if pixels else np.zeros((0, 3))
            if len(pixels) < 30:
                continue
            mean = pixels.astype(np.float32).mean(axis=0)
            nearest = names[int(np.argmin(np.linalg.norm(palette - mean, axis=1)))]
            assert nearest == info["colour"], f"{v.meta['video_id']} object {oid}: looks {nearest}, is {info['colour']}"
            checked += 1
    assert checked >= 15


def _check_event(v: Video, ev: dict) -> None:
    name = f"{v.meta['video_id']} {ev['verb']} {ev['start_frame']}-{ev['end_frame']}"
    s, e, c = ev["start_frame"], ev["end_frame"], ev["contact_frame"]
    assert 0 <= s < e <= v.meta["num_frames"], name
    if ev["direction"] == "unidirectional":
        assert ev["verb"] in UNIDIRECTIONAL and "participant_ids" not in ev
        a, t = ev["actor_ids"][0], ev["target_ids"][0]
        assert a != t and {a, t} <= set(v.meta["objects"]), name
    else:
        assert ev["verb"] in BIDIRECTIONAL and "actor_ids" not in ev
        a, t = ev["participant_ids"]
    if ev["verb"] in MAKES_CONTACT:
        assert c is not None and s <= c < e, f"{name}: no contact"
        assert v.touching(a, t, c), f"{name}: masks do not touch at the contact frame"
    else:
        assert not any(v.touching(a, t, f, px=0) for f in range(s, e, 3)), f"{name}: unexpected contact"
    move = 0.1 * v.unit
    if ev["verb"] in MOVES_TARGET_AFTER_CONTACT:
        assert v.gap(a, t, s) >= v.gap(a, t, c) or ev["verb"] == "carry", f"{name}: actor did not approach"
        assert np.hypot(*(v.centre(t, e - 1) - v.centre(t, c))) > move, f"{name}: target did not move after contact"
    if ev["verb"] in ("chase", "approach", "meet"):
        assert v.gap(a, t, e - 1) < v.gap(a, t, s) - move, f"{name}: distance did not shrink"
    if ev["verb"] in ("orbit", "approach"):
        assert np.hypot(*(v.centre(t, e - 1) - v.centre(t, s))) < 2, f"{name}: target moved"
    if ev["verb"] == "orbit":
        seen = [(v.centre(a, f), v.centre(t, f)) for f in range(s, e)]
        rel = np.array([ca - ct for ca, ct in seen if ca is not None and ct is not None])  # skip full occlusions
        swept = np.abs(np.diff(np.unwrap(np.arctan2(rel[:, 1], rel[:, 0])))).sum()
        assert swept > 1.5 * np.pi, f"{name}: actor swept only {swept:.1f} rad around the target"
    if ev["verb"] == "collide":
        assert v.gap(a, t, c) < min(v.gap(a, t, s), v.gap(a, t, e - 1)), f"{name}: no approach and bounce"
    if ev["verb"] == "move_together":
        da, dt = v.centre(a, e - 1) - v.centre(a, s), v.centre(t, e - 1) - v.centre(t, s)
        assert np.hypot(*da) > move and np.hypot(*(da - dt)) < 0.25 * np.hypot(*da), f"{name}: not moving alike"


def test_event_ground_truth_is_borne_out_by_the_masks(batch):
    verbs = set()
    for v in batch:
        for ev in v.meta["events"]:
            _check_event(v, ev)
            verbs.add(ev["verb"])
    assert verbs == set(UNIDIRECTIONAL) | set(BIDIRECTIONAL)


def test_static_objects_never_move_and_moving_ones_do(batch):
    seen = {"static": 0, "moving": 0}
    for v in batch[:8]:
        n = v.meta["num_frames"]
        for oid, info in v.meta["objects"].items():
            masks = [v.mask(oid, f) for f in range(0, n, 3)]
            present = [m for m in masks if m is not None]
            if info["motion"] == "static":
                # Always the same pixels, minus whatever passes in front of it: every visible part lies
                # inside its fullest view.
                fullest = max(present, key=lambda m: int(m.sum()))
                assert all(not (m & ~fullest).any() for m in present), oid
            else:
                first = next(m for m in present)
                assert any(not np.array_equal(m, first) for m in present), oid
            seen[info["motion"]] += 1
    assert seen["static"] and seen["moving"]


def test_multi_instance_members_look_alike_and_move_the_same_way(batch):
    groups = [(v, g) for v in batch for g in v.meta["multi_instance"]]
    assert groups
    for v, g in groups:
        ids = g["object_ids"]
        assert 2 <= len(ids) <= 3 and g["motion"].startswith("moving ")
        looks = {(v.meta["objects"][o]["category"], v.meta["objects"][o]["colour"]) for o in ids}
        assert len(looks) == 1 and g["category"] == looks.pop()[0]
        s, e = g["start_frame"], g["end_frame"] - 1
        moves = [v.centre(o, e) - v.centre(o, s) for o in ids]
        assert np.hypot(*moves[0]) > 0.1 * v.unit
        for m in moves[1:]:
            assert np.hypot(*(m - moves[0])) < 0.2 * np.hypot(*moves[0])


def test_a_few_videos_hold_every_kind_of_motion(tmp_path):
    videos = _make(tmp_path, range(6), seed=0)
    kinds = set()
    for v in videos:
        involved = {o for ev in v.meta["events"] for k in ("actor_ids", "target_ids", "participant_ids")
                    for o in ev.get(k, [])}
        grouped = {o for g in v.meta["multi_instance"] for o in g["object_ids"]}
        kinds |= {ev["direction"] for ev in v.meta["events"]}
        kinds |= {"multi_instance"} if grouped else set()
        for oid, info in v.meta["objects"].items():
            if info["motion"] == "static":
                kinds.add("static")
            elif oid not in involved and oid not in grouped:
                kinds.add("moving_only")
    assert kinds == {"unidirectional", "bidirectional", "multi_instance", "static", "moving_only"}


@pytest.mark.slow
def test_a_long_video_has_events_throughout_in_bounded_memory(tmp_path):
    cfg = SynthConfig(out=str(tmp_path), num_frames=3000, width=64, height=48, seed=1)
    tracemalloc.start()
    try:
        generate_video("long", 0, cfg)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20, f"peak Python memory {peak / 2**20:.0f} MiB"
    v = Video(tmp_path, "long")
    assert probe_video(v.mp4).num_frames == 3000
    assert all(len(t["mask"]) == 3000 for t in v.tracks.values())
    for part in range(3):
        lo, hi = 1000 * part, 1000 * (part + 1)
        inside = [ev for ev in v.meta["events"] if lo <= ev["start_frame"] and ev["end_frame"] <= hi]
        assert len(inside) >= 2, f"frames {lo}-{hi} hold {len(inside)} events"
    for ev in v.meta["events"]:
        _check_event(v, ev)


def test_a_320x240_video_has_the_requested_cast_and_length(tmp_path):
    cfg = SynthConfig(out=str(tmp_path), num_frames=240, width=320, height=240, min_objects=5, max_objects=5)
    stats = generate_video("quick", 0, cfg)
    assert stats["num_objects"] == 5 and stats["num_frames"] == 240


def test_tiny_and_short_videos_still_come_out_whole(tmp_path):
    for i, (frames, size, objects) in enumerate([(2, 32, 1), (5, 32, 2), (30, 40, 8)]):
        cfg = SynthConfig(out=str(tmp_path), num_frames=frames, width=size, height=size,
                          min_objects=objects, max_objects=objects)
        generate_video(f"tiny{i}", i, cfg)
        v = Video(tmp_path, f"tiny{i}")
        assert len(v.tracks) == objects and all(len(t["mask"]) == frames for t in v.tracks.values())
        assert probe_video(v.mp4).num_frames == frames


def test_odd_frame_sizes_are_refused_with_the_field_named(tmp_path):
    with pytest.raises(ConfigError, match="synth.width"):
        generate_video("odd", 0, SynthConfig(out=str(tmp_path), width=65, height=48, num_frames=4))


def test_existing_videos_are_reused_only_when_made_with_the_same_settings(tmp_path):
    cfg = SynthConfig(out=str(tmp_path), num_frames=20, width=48, height=32)
    assert generate_video("v", 0, cfg)["skipped"] is False
    assert generate_video("v", 0, cfg)["skipped"] is True
    assert generate_video("v", 0, cfg.model_copy(update={"num_frames": 24}))["skipped"] is False
    assert probe_video(output_paths(str(tmp_path), "v")["mp4"]).num_frames == 24


def test_videos_can_be_written_to_a_remote_uri():
    from interrvos.data import storage

    cfg = SynthConfig(out="memory://synth-test", num_frames=8, width=48, height=32)
    assert generate_video("remote", 0, cfg)["skipped"] is False
    assert storage.list_dir("memory://synth-test") == ["remote.masks.json", "remote.meta.json", "remote.mp4"]
    assert generate_video("remote", 0, cfg)["skipped"] is True


@pytest.mark.slow
def test_run_synth_writes_every_video_and_a_summary_then_skips_them(ray_cluster, tmp_path):
    cfg = SynthConfig(out=str(tmp_path), num_videos=3, num_frames=40, width=64, height=48, seed=2,
                      ray=RayConfig(num_cpus=2))
    summary = run_synth(cfg)
    ids = [video_id_for(2, i) for i in range(3)]
    assert summary["video_ids"] == ids == ["synth_s2_00000", "synth_s2_00001", "synth_s2_00002"]
    assert (summary["written"], summary["skipped"], summary["failed"]) == (3, 0, [])
    assert summary["frames"] == 120 and summary["events"] == sum(summary["events_by_verb"].values()) > 0
    assert json.loads((tmp_path / "synth_summary.json").read_text()) == summary
    for vid in ids:
        for path in output_paths(str(tmp_path), vid).values():
            assert os.path.getsize(path) > 0
    stamps = {p: os.path.getmtime(p) for p in tmp_path.iterdir()}

    again = run_synth(cfg)
    assert (again["written"], again["skipped"]) == (0, 3)
    assert again["events_by_verb"] == summary["events_by_verb"]
    assert all(os.path.getmtime(p) == t for p, t in stamps.items() if p.name != "synth_summary.json")
    assert video_id_for(0, 7) == "synth_00007"
