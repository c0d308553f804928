"""synth -> extract -> validate on the session's local Ray, through the real CLI as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from interrvos.clips.finalize import read_clips_table


def _cli(*args: str, env_address: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAY_ADDRESS": env_address}
    return subprocess.run([sys.executable, "-m", "interrvos.cli", *args], env=env, capture_output=True, text=True,
                          check=check, timeout=600)


@pytest.mark.slow
def test_synth_extract_validate_with_a_real_video(ray_cluster, real_videos, tmp_path):
    synth_dir, dataset = tmp_path / "synth", tmp_path / "dataset"
    _cli("synth", "--out", str(synth_dir), "--num-videos", "2", "--set", "num_frames=1250",
         "--set", "width=128", "--set", "height=96", env_address=ray_cluster)
    assert len(list(synth_dir.glob("*.mp4"))) == 2

    _cli("extract", "--set", f"videos=[{synth_dir}, {real_videos[0]}]", "--out", str(dataset),
         "--set", "clip.clip_frames=300", env_address=ray_cluster)
    clips = read_clips_table(str(dataset))
    by_video: dict[str, list] = {}
    for c in clips:
        by_video.setdefault(c.video_id, []).append(c)
    # 1250 frames: bins [0,1000) and [1000,1250) -> two clips; the real video (< 1000 frames) -> one.
    synth_ids = sorted(p.stem for p in synth_dir.glob("*.mp4"))
    for vid in synth_ids:
        assert [(c.start_frame, c.end_frame) for c in by_video[vid]] == [(0, 300), (1000, 1250)]
        assert any(c.object_ids for c in by_video[vid])  # synthetic objects survive the filters
    assert by_video[real_videos[0].stem][0].object_ids == []

    ok = _cli("validate", str(dataset), env_address=ray_cluster)
    assert "valid" in ok.stderr

    # Break one frame: validate must now fail and name it.
    victim = next((dataset / "JPEGImages" / clips[0].clip_id).glob("*.jpg"))
    victim.unlink()
    bad = _cli("validate", str(dataset), env_address=ray_cluster, check=False)
    assert bad.returncode == 1 and victim.stem in bad.stdout and clips[0].clip_id in bad.stdout

    summary = json.loads((dataset / "extract_summary.json").read_text())
    assert summary["dataset"]["clips"] == len(clips) == 5
