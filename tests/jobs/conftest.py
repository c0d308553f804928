"""Job tests against real heads started by the tests (`ray start --head --block`, stopped by PID)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # heads.py (tests use --import-mode=importlib)


@pytest.fixture(scope="package")
def plain_head(tmp_path_factory):
    """One head without token auth for every module here (starting one costs ~8 s on 2 cores)."""
    from heads import start_head, stop_head

    head = start_head(tmp_path_factory.mktemp("head"))
    yield head
    stop_head(head)
    print(f"\nhead: start {head.started_s} s, stop {head.stopped_s} s")
