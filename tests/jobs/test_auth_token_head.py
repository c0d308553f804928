"""A shared cluster with Ray's token auth on (RAY_AUTH_MODE=token; the token from `ray get-auth-token
--generate` in ~/.ray/auth_token of a HOME of the test's own, never the machine's): jobs work through
`ray job submit` and through `--set ray.address=HOST:PORT` from a shell that has the token; a client
without it is told in one line what to check."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from heads import REPO, VENV_BIN, job_logs, last_lines, start_head, stop_head, submit, venv_env

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def token_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("home")
    done = subprocess.run([str(VENV_BIN / "ray"), "get-auth-token", "--generate"], env=venv_env(HOME=str(home)),
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0 and (home / ".ray" / "auth_token").is_file(), done.stderr[-2000:]
    return home


@pytest.fixture(scope="module")
def head(tmp_path_factory, token_home):
    head = start_head(tmp_path_factory.mktemp("head"), RAY_AUTH_MODE="token", HOME=str(token_home))
    yield head
    stop_head(head)


def _synth_cli(address: str, out: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    cmd = [str(VENV_BIN / "interrvos"), "synth", "--set", f"ray.address={address}", "--set", f"out={out}",
           "--set", "num_videos=1", "--set", "num_frames=12", "--set", "width=64", "--set", "height=48"]  # fmt: skip
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)


def test_ray_job_submit_runs_synth_on_a_token_auth_head(head, tmp_path):
    out = tmp_path / "synth"
    run = submit(head, "synth", "--config", "jobs/configs/synth.yaml", "--set", f"out={out}", "--set", "num_videos=1",
                 "--set", "num_frames=12", "--set", "width=64", "--set", "height=48")  # fmt: skip
    assert run.returncode == 0 and f"Job '{run.submission_id}' succeeded" in run.output, run.output[-4000:]
    assert json.loads((out / "synth_summary.json").read_text())["written"] == 1
    assert "Traceback" not in job_logs(head, run.submission_id)


def test_set_ray_address_from_a_shell_with_the_token_joins_the_token_head(head, tmp_path):
    done = _synth_cli(head.gcs_address, tmp_path / "synth", head.env)  # RAY_AUTH_MODE=token, HOME with the token
    assert done.returncode == 0, done.stderr[-4000:]
    assert len(list((tmp_path / "synth").glob("*.mp4"))) == 1


def test_a_client_without_token_auth_is_told_in_one_line_to_turn_it_on(head, tmp_path):
    env = venv_env(HOME=str(tmp_path), RAY_AUTH_MODE="disabled")
    done = _synth_cli(head.gcs_address, tmp_path / "synth", env)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-4000:]
    line = last_lines(done.stderr, 1)[0]
    assert line.startswith(f"error: cannot join the Ray cluster at {head.gcs_address} (from ray.address): the head "
                           "requires token auth and this client has RAY_AUTH_MODE=disabled; set RAY_AUTH_MODE=token"), \
        done.stderr[-3000:]
    assert "~/.ray/auth_token" in line and "RAY_AUTH_TOKEN_PATH" in line
    assert not (tmp_path / "synth").exists()


def test_token_mode_without_a_token_is_told_where_to_put_it(head, tmp_path):
    done = _synth_cli(head.gcs_address, tmp_path / "synth", venv_env(HOME=str(tmp_path), RAY_AUTH_MODE="token"))
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-4000:]
    line = last_lines(done.stderr, 1)[0]
    assert "RAY_AUTH_MODE=token but no auth token was found" in line and "RAY_AUTH_TOKEN_PATH" in line, line


def test_a_wrong_token_is_named_as_the_cause(head, tmp_path):
    env = venv_env(HOME=str(tmp_path), RAY_AUTH_MODE="token", RAY_AUTH_TOKEN="0" * 32)
    done = _synth_cli(head.gcs_address, tmp_path / "synth", env)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-4000:]
    assert "rejected this client's auth token" in last_lines(done.stderr, 1)[0], done.stderr[-3000:]
