"""A job's console is for people: `interrvos extract` run as a user runs it (a subprocess on the embedded
default) prints its own lines and where the logs are; Ray's log lines, its C++ core's warnings and the
workers' output go to `<out>/logs/` (interrvos.run_logs). ~25 s on 2 cores."""

from __future__ import annotations

import subprocess

import pytest
from heads import REPO, VENV_BIN, last_lines, venv_env

from interrvos.config import SynthConfig
from interrvos.synth.generate import generate_video

pytestmark = pytest.mark.slow

RAY_INTERNALS = ("core_worker", "(pid=", "streaming_executor", "Started a local Ray instance",
                 "Progress bars disabled", "worker.py:", "WARNING", "INFO")  # fmt: skip


def test_extract_console_has_no_ray_log_lines_and_names_the_logs_folder(tmp_path):
    videos, out = tmp_path / "videos", tmp_path / "dataset"
    generate_video("synth_00000", 0, SynthConfig(out=str(videos), num_frames=100, width=96, height=72, seed=3))
    done = subprocess.run([str(VENV_BIN / "interrvos"), "extract", "--videos", str(videos), "--out", str(out),
                           "--set", "clip.min_bin_frames=100", "--set", "writers.max_size=1",
                           "--set", "ray.num_cpus=1"],
                          cwd=REPO, env=venv_env(), capture_output=True, text=True, timeout=180)  # fmt: skip
    console = done.stdout + done.stderr
    assert done.returncode == 0, console[-3000:]
    assert "clips_written" in console  # the job's own summary is there
    noise = [line for line in console.splitlines() if any(word in line for word in RAY_INTERNALS)]
    assert noise == [], console[-3000:]
    assert last_lines(done.stderr, 1)[0].startswith(f"logs: {out}/logs/"), console[-1000:]
    logs = out / "logs"
    driver = (logs / "driver.log").read_text()
    assert "Started a local Ray instance" in driver and "streaming_executor" in driver  # Ray's lines are here
    assert (logs / "native.log").is_file()  # Ray's C++ core (core_worker.cc lines), when it has something to say
    worker_files = [p.name for p in (logs / "ray").iterdir()]  # the session's logs: the workers' stdout/stderr
    assert any(name.startswith("worker-") and name.endswith(".out") for name in worker_files), worker_files
