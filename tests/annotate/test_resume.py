"""Kill `interrvos annotate` mid-run and re-run it: no item lost, none duplicated, no repeated LLM call
for finished items (counted at the stand-in server), and the dataset of one clean run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def cli(out: Path, extracted: dict, server) -> list[str]:
    return [sys.executable, "-m", "interrvos.cli", "annotate", "--dataset", extracted["dataset"], "--out", str(out),
            "--backend", "openai", "--set", f"openai.base_url={server.base_url}", "--set", "split.val_fraction=0.34",
            "--set", "pools.stage1.clips_in_flight=1", "--set", "pools.stage2.clips_in_flight=1"]


def cached_keys(out: Path) -> set[str]:
    return {json.loads(p.read_text())["key"] for p in (out / "cache").rglob("*.json")}


def outputs(out: Path) -> dict[str, bytes]:
    return {f"{s}/{f}": (out / s / f).read_bytes() for s in ("train", "valid")
            for f in ("meta_expressions.json", "mask_dict.json")}


def test_annotate_cli_has_help_and_config_errors_name_the_field():
    help_text = subprocess.run([sys.executable, "-m", "interrvos.cli", "annotate", "--help"], capture_output=True,
                               text=True, timeout=120, check=True).stdout
    assert "--dataset" in help_text and "--backend" in help_text
    bad = subprocess.run([sys.executable, "-m", "interrvos.cli", "annotate", "--set", "pools.stage1.max_size=0"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "pools.stage1.max_size" in bad.stderr


@pytest.mark.slow
def test_killed_annotation_resumes_exactly_once(ray_cluster, extracted, tmp_path, stand_in):
    env = {**os.environ, "RAY_ADDRESS": ray_cluster}
    env.pop("OPENAI_API_KEY", None)
    clean, resumed = tmp_path / "clean", tmp_path / "resumed"
    subprocess.run(cli(clean, extracted, stand_in), env=env, check=True, capture_output=True, timeout=600)
    clean_requests = stand_in.requests_for()
    total_keys = cached_keys(clean)
    assert clean_requests == len(total_keys) > 10  # all answers valid: one request per item

    stand_in.reset()
    stand_in.latency_s = 0.7  # slow answers, so the kill lands mid-run
    proc = subprocess.Popen(cli(resumed, extracted, stand_in), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if (resumed / "cache").exists() and len(cached_keys(resumed)) >= 4:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(3)  # the job's actors die with their driver
    finished = cached_keys(resumed)
    assert 0 < len(finished) < len(total_keys), "the kill must land mid-way for this test to mean anything"
    assert not (resumed / "train").exists() or not (resumed / "train" / "meta_expressions.json").exists()

    stand_in.reset()
    stand_in.latency_s = 0.0
    done = subprocess.run(cli(resumed, extracted, stand_in), env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert all(stand_in.counts[k] == 0 for k in finished)  # no repeated call for finished items
    asked = {k for k, n in stand_in.counts.items() if n}
    assert asked <= total_keys - finished and max(stand_in.counts.values()) == 1  # the rest asked once each
    assert cached_keys(resumed) == total_keys
    assert outputs(resumed) == outputs(clean)  # nothing lost, nothing duplicated
    summary = json.loads((resumed / "annotate_summary.json").read_text())
    assert summary["run"]["total"]["cache_hits"] >= len(finished) - 4 and summary["dataset"]["clips_unfinished"] == []
