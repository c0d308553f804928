"""`interrvos extract` end to end on the session's local Ray: real video files, kill and resume."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from interrvos.clips.finalize import read_clips_table
from interrvos.clips.pipeline import list_videos, run_extract
from interrvos.config import ClipRuleConfig, ExtractConfig, RayConfig
from interrvos.data import storage
from interrvos.data.rle import decode_rle, encode_mask
from interrvos.data.video import write_mp4

SMALL_RULE = ClipRuleConfig(bin_frames=40, min_bin_frames=15, clip_frames=30)


def make_source(folder: Path, video_id: str, num_frames: int, h: int = 64, w: int = 96, objects: int = 2) -> None:
    """A video of coloured squares moving right, with their mask tracks in the source format."""
    frames, tracks = [], {str(o + 1): {"category": "square", "mask": []} for o in range(objects)}
    for t in range(num_frames):
        frame = np.full((h, w, 3), 40, np.uint8)
        for o in range(objects):
            m = np.zeros((h, w), np.uint8)
            x, y = (t + 20 * o) % (w - 12), 8 + 24 * o
            m[y:y + 12, x:x + 12] = 1
            frame[m.astype(bool)] = (200, 60 + 60 * o, 30)
            tracks[str(o + 1)]["mask"].append(encode_mask(m))
        frames.append(frame)
    write_mp4(folder / f"{video_id}.mp4", frames, fps=10)
    storage.write_json(str(folder / f"{video_id}.masks.json"), tracks)


def tree_digest(root: Path) -> dict[str, str]:
    """Hash of every output file (the summary holds run timings, and the CLI's logs/ folder the job's log
    lines, so both are left out)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "extract_summary.json" and p.relative_to(root).parts[0] != "logs"}


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sources")
    make_source(folder, "long", 100)  # bins 0-39, 40-79, 80-99 -> first and last
    make_source(folder, "short", 10)  # no bin of 15 frames: reported, not an error of the job
    make_source(folder, "one", 30, objects=1)
    (folder / "broken.mp4").write_bytes(b"not a video at all")
    return folder


def test_list_videos_pairs_mask_tracks(sources):
    rows = {r["video_id"]: r for r in list_videos([str(sources)])}
    assert sorted(rows) == ["broken", "long", "one", "short"]
    assert rows["long"]["masks_path"].endswith("long.masks.json") and rows["broken"]["masks_path"] == ""


def test_extract_writes_clips_tracks_and_skeleton(ray_cluster, sources, tmp_path):
    out = tmp_path / "ds"
    summary = run_extract(ExtractConfig(videos=[str(sources)], out=str(out), clip=SMALL_RULE))
    run = summary["run"]
    assert run["clips_written"] == 3 and run["videos_failed"] == 1 and run["videos_without_clips"] == 1
    assert {e["video_id"] for e in run["errors"]} == {"broken", "short"}
    assert "broken.mp4" in next(e["error"] for e in run["errors"] if e["video_id"] == "broken")

    clips = {c.clip_id: c for c in read_clips_table(str(out))}
    assert sorted(clips) == ["long_clip000", "long_clip001", "one_clip000"]
    assert (clips["long_clip001"].start_frame, clips["long_clip001"].end_frame) == (80, 100)
    assert len(list((out / "JPEGImages" / "long_clip001").glob("*.jpg"))) == 20
    assert clips["long_clip000"].object_ids == ["1", "2"]

    # The clip's masks are the source masks of the clip's frames, under the clip's anno ids.
    meta = storage.read_json(str(out / "meta_expressions.json"))["videos"]["long_clip001"]
    anno = meta["objects"]["2"]["anno_id"]
    masks = storage.read_json(str(out / "mask_dict.json"))[anno]
    source = storage.read_json(str(sources / "long.masks.json"))["2"]["mask"]
    assert len(masks) == 20 and masks[0] == source[80] and masks[-1] == source[99]
    assert decode_rle(masks[5]).shape == (64, 96)

    from interrvos.data.validate import validate_dataset
    assert validate_dataset(str(out)) == []

    again = run_extract(ExtractConfig(videos=[str(sources)], out=str(out), clip=SMALL_RULE))
    assert again["run"]["clips_written"] == 0 and again["run"]["clips_skipped_already_done"] == 3


def test_a_writer_pool_that_fills_the_cluster_does_not_starve_planning(ray_cluster, sources, tmp_path):
    import ray

    cpus = int(ray.cluster_resources()["CPU"])
    cfg = ExtractConfig.model_validate({"videos": [str(sources)], "out": str(tmp_path / "full"),
                                        "clip": SMALL_RULE.model_dump(),
                                        "writers": {"min_size": cpus, "max_size": cpus, "num_cpus": 1}})
    assert run_extract(cfg)["run"]["clips_written"] == 3


def test_extract_on_a_real_video(ray_cluster, real_videos, tmp_path):
    out = tmp_path / "real"
    rule = ClipRuleConfig(clip_frames=40)  # the paper's bins; a shorter clip keeps the test quick
    summary = run_extract(ExtractConfig(videos=[str(real_videos[0])], out=str(out), clip=rule))
    assert summary["run"]["clips_written"] == 1 and summary["run"]["errors"] == []
    (clip,) = read_clips_table(str(out))
    assert clip.num_frames == 40 and clip.object_ids == [] and len(clip.sampled_frames) == 16
    assert len(list((out / "JPEGImages" / clip.clip_id).glob("*.jpg"))) == 40


@pytest.mark.slow
def test_killed_extraction_resumes_to_the_same_output(ray_cluster, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(8):
        make_source(src, f"v{i}", 200, h=240, w=320, objects=3)
    rule = ["clip.bin_frames=50", "clip.min_bin_frames=20", "clip.clip_frames=50", "clip.keep_bins=all"]
    clean, resumed = tmp_path / "clean", tmp_path / "resumed"
    run_extract(ExtractConfig.model_validate({"videos": [str(src)], "out": str(clean),
                                              "clip": {"bin_frames": 50, "min_bin_frames": 20, "clip_frames": 50,
                                                       "keep_bins": "all"}}))
    total = len(list((clean / "clips_done").glob("*.json")))
    assert total == 32

    cmd = [sys.executable, "-m", "interrvos.cli", "extract", "--videos", str(src), "--out", str(resumed)]
    for r in rule:
        cmd += ["--set", r]
    env = {**os.environ, "RAY_ADDRESS": ray_cluster}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    markers = resumed / "clips_done"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(markers.glob("*.json"))) < 3 and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished_before = len(list(markers.glob("*.json")))
    assert 0 < finished_before < total, "the kill must land mid-way for this test to mean anything"

    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    summary = storage.read_json(str(resumed / "extract_summary.json"))
    assert summary["run"]["clips_skipped_already_done"] >= finished_before
    assert summary["run"]["clips_written"] == total - summary["run"]["clips_skipped_already_done"]
    assert tree_digest(resumed) == tree_digest(clean)
    assert not [p for p in resumed.rglob("*") if ".tmp-" in p.name]
