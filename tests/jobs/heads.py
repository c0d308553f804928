"""A real Ray head for job tests: `ray start --head --block` from the venv on free 127.0.0.1 ports, with its
own short temp folder, stopped by its PID (never `ray stop`, which would stop every Ray on the machine)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent  # ray, interrvos and the python the job drivers run


def free_port() -> int:
    """A free port from the kernel's ephemeral range (outside Ray's worker ports 10002-19999 and defaults)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not 10002 <= port <= 19999 and port not in (6379, 8265, 10001):
            return port


def venv_env(**extra: str) -> dict[str, str]:
    """The environment of a user whose shell has the venv on PATH (so `python` in an entrypoint is the venv's)."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")}
    env.update(PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}", PYTHONUNBUFFERED="1",
               RAY_TRAIN_HEALTH_CHECK_INTERVAL_S="0.1", RAY_DATA_DISABLE_PROGRESS_BARS="1")  # fmt: skip
    env.update(extra)
    return env


@dataclass
class Head:
    proc: subprocess.Popen
    port: int
    dashboard_port: int
    temp_root: str  # RAY_TMPDIR for processes that should see this head's ray_current_cluster
    env: dict[str, str]
    log: Path
    started_s: float = 0.0
    stopped_s: float | None = field(default=None)

    @property
    def gcs_address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"


def start_head(log_dir: Path, num_cpus: int = 2, timeout_s: float = 120, **env_extra: str) -> Head:
    """Start a head and wait until its Jobs API answers."""
    began = time.monotonic()
    # Ray's Unix socket paths must stay under ~100 characters: a short folder of our own under /tmp.
    temp_root = tempfile.mkdtemp(prefix="irvj", dir="/tmp")
    port, dashboard = free_port(), free_port()
    cmd = [str(VENV_BIN / "ray"), "start", "--head", "--block", "--port", str(port),
           "--node-ip-address", "127.0.0.1", "--num-cpus", str(num_cpus),
           "--object-store-memory", str(256 * 2**20), "--temp-dir", os.path.join(temp_root, "ray"),
           "--include-dashboard", "true", "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard),
           "--dashboard-agent-listen-port", str(free_port()), "--dashboard-agent-grpc-port", str(free_port()),
           "--runtime-env-agent-port", str(free_port()), "--metrics-export-port", str(free_port()),
           "--ray-client-server-port", str(free_port()), "--disable-usage-stats"]  # fmt: skip
    # No drain on SIGTERM: nothing here needs Serve's quiescing, and a drained stop takes its full 30 s.
    env = venv_env(RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="0", **env_extra)
    log = log_dir / f"head-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    head = Head(proc, port, dashboard, temp_root, env, log)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            stop_head(head)
            raise RuntimeError(f"ray start exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            # Up: the dashboard answers (401 on a token-auth head) and `ray start` has written the cluster's
            # address into its temp folder (ray_current_cluster), its last step before blocking.
            answered = requests.get(f"{head.dashboard_url}/api/version", timeout=2).status_code in (200, 401, 403)
            if answered and os.path.exists(os.path.join(temp_root, "ray", "ray_current_cluster")):
                head.started_s = round(time.monotonic() - began, 1)
                return head
        except requests.RequestException:
            pass
        time.sleep(0.5)
    stop_head(head)
    raise RuntimeError(f"no dashboard at {head.dashboard_url} within {timeout_s} s:\n{log.read_text()[-3000:]}")


def stop_head(head: Head, drain_s: float = 60) -> None:
    """SIGTERM to our `ray start --block` (it stops its node's processes), wait for it."""
    began = time.monotonic()
    if head.proc.poll() is None:
        head.proc.send_signal(signal.SIGTERM)
        try:
            head.proc.wait(timeout=drain_s)
        except subprocess.TimeoutExpired:
            # Still there after the drain: end its process group, which we created (start_new_session).
            os.killpg(head.proc.pid, signal.SIGKILL)
            head.proc.wait(timeout=10)
    head.stopped_s = round(time.monotonic() - began, 1)
    shutil.rmtree(head.temp_root, ignore_errors=True)


@dataclass
class JobRun:
    submission_id: str
    returncode: int
    output: str
    seconds: float


def submit(head: Head, job: str, *args: str, env: dict[str, str] | None = None, timeout_s: float = 300) -> JobRun:
    """`ray job submit --working-dir . -- python jobs/<job>.py ARGS` in the repo, as a user types it; waits."""
    submission_id = f"{job}-{os.getpid()}-{int(time.time() * 1000) % 10**8}"
    cmd = [str(VENV_BIN / "ray"), "job", "submit", "--address", head.dashboard_url, "--working-dir", ".",
           "--submission-id", submission_id, "--", "python", f"jobs/{job}.py", *args]  # fmt: skip
    began = time.monotonic()
    done = subprocess.run(cmd, cwd=REPO, env=env or head.env, capture_output=True, text=True, timeout=timeout_s)
    return JobRun(submission_id, done.returncode, done.stdout + done.stderr, round(time.monotonic() - began, 1))


def job_logs(head: Head, submission_id: str, env: dict[str, str] | None = None) -> str:
    cmd = [str(VENV_BIN / "ray"), "job", "logs", "--address", head.dashboard_url, submission_id]
    return subprocess.run(cmd, cwd=REPO, env=env or head.env, capture_output=True, text=True, timeout=60).stdout


def last_lines(text: str, n: int) -> list[str]:
    return [line for line in text.splitlines() if line.strip()][-n:]
