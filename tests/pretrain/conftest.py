"""Pretraining tests: a few short synthetic videos (no Ray) and their decoded cache, made once per session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.1")  # fast ray.train.report in tests


def tiny_overrides(synth_dir, cache_dir, videos: int = 3, frames: int = 24) -> list[str]:
    return [f"data.synth.out={synth_dir}", f"data.synth.num_videos={videos}", f"data.synth.num_frames={frames}",
            f"data.cache={cache_dir}", "data.heldout_videos=1"]  # fmt: skip


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory):
    """(PretrainConfig overrides, cache folder) of 3 synth videos x 24 frames, 160x120 (one held out)."""
    from interrvos.config import load_config
    from interrvos.pretrain.config import PretrainConfig
    from interrvos.pretrain.data import build_cache
    from interrvos.synth.generate import generate_video, video_id_for

    root = tmp_path_factory.mktemp("pretrain")
    sets = tiny_overrides(root / "synth", root / "cache")
    cfg = load_config(PretrainConfig, None, sets)
    for i in range(cfg.data.synth.num_videos):
        generate_video(video_id_for(cfg.data.synth.seed, i), i, cfg.data.synth)
    return sets, build_cache(cfg.data, cfg.model.image_size)
