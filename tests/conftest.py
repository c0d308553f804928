"""One real local Ray cluster per test session (started in-process, stopped by ray.shutdown)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")

REPO = Path(__file__).resolve().parents[1]
REAL_VIDEOS = REPO.parent / "shared" / "data" / "videos"


@pytest.fixture(scope="session")
def ray_cluster():
    """The session's Ray; yields its GCS address so subprocess jobs can join it (RAY_ADDRESS)."""
    import ray

    from interrvos.config import RayConfig
    from interrvos.runtime import ensure_ray

    ensure_ray(RayConfig(num_cpus=2, object_store_mb=256))
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="session")
def real_videos() -> list[Path]:
    videos = sorted(REAL_VIDEOS.glob("*.mp4"))
    if not videos:
        pytest.skip(f"no real videos at {REAL_VIDEOS} (the shared/ folder beside the repo)")
    return videos
