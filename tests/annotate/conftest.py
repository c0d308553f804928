"""Fixtures of the annotation tests: a small extracted dataset (synthetic clips with objects and a
real clip without any) and the OpenAI-compatible stand-in server on 127.0.0.1."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # stand_in_server.py (tests use --import-mode=importlib)

from stand_in_server import StandInServer  # noqa: E402


@pytest.fixture
def stand_in():
    server = StandInServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def extracted(ray_cluster, tmp_path_factory, real_videos) -> dict:
    """3 synthetic videos (one 240-frame clip each, with objects and events) + 1 real clip without objects."""
    from interrvos.clips.pipeline import run_extract
    from interrvos.config import ClipRuleConfig, ExtractConfig, SynthConfig
    from interrvos.synth.generate import run_synth

    root = tmp_path_factory.mktemp("annotate_data")
    synth = SynthConfig(out=str(root / "synth"), num_videos=3, num_frames=240, width=160, height=120, seed=5,
                        min_objects=3, max_objects=4)
    run_synth(synth)
    dataset = root / "dataset"
    run_extract(ExtractConfig(videos=[synth.out, str(real_videos[0])], out=str(dataset),
                              clip=ClipRuleConfig(clip_frames=240)))
    return {"dataset": str(dataset), "synth": synth.out, "root": root}
