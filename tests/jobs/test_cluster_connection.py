"""The embedded default never joins a stranger's cluster, and a job that cannot join the cluster it was
pointed at says why in one line; against a real `ray start --head` (its `ray_current_cluster` file is in
the head's temp folder, which the subprocesses here see as Ray's default through RAY_TMPDIR)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from heads import REPO, VENV_BIN, free_port, last_lines, venv_env

pytestmark = pytest.mark.slow

# Start Ray the way every job does and say where it runs; a ClusterConnectionError is printed as is.
PROBE = """
import sys, ray
from interrvos.config import RayConfig
from interrvos.errors import ClusterConnectionError
from interrvos.runtime import ensure_ray
try:
    ensure_ray(RayConfig(num_cpus=1, object_store_mb=128, address=(sys.argv[1] or None)))
except ClusterConnectionError as e:
    print("ERROR", e)
    sys.exit(1)
print("GCS", ray.get_runtime_context().gcs_address)
"""


def _probe(env: dict[str, str], address: str = "", prelude: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([str(VENV_BIN / "python"), "-c", prelude + PROBE, address], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def _gcs(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return next(line.split()[1] for line in done.stdout.splitlines() if line.startswith("GCS "))


def _error(done: subprocess.CompletedProcess) -> str:
    lines = [line for line in done.stdout.splitlines() if line.startswith("ERROR ")]
    assert done.returncode == 1 and len(lines) == 1, done.stdout[-2000:] + done.stderr[-3000:]
    return lines[0].removeprefix("ERROR ")


@pytest.fixture(scope="module")
def head(plain_head):
    return plain_head


def test_embedded_default_starts_its_own_ray_beside_a_live_ray_start_head(head, tmp_path):
    # What `ray.init()` without an address would join (Ray writes the node's IP for 127.0.0.1).
    marker = Path(head.temp_root, "ray", "ray_current_cluster")
    assert marker.read_text().strip().endswith(f":{head.port}")
    # No RAY_AUTH_MODE and an empty HOME: the embedded default needs no token and writes none.
    env = venv_env(RAY_TMPDIR=head.temp_root, HOME=str(tmp_path))
    env.pop("RAY_AUTH_MODE", None)
    gcs = _gcs(_probe(env))
    assert not gcs.endswith(f":{head.port}") and not (tmp_path / ".ray").exists()


def test_embedded_default_starts_its_own_ray_when_ray_current_cluster_names_a_dead_head():
    # A short folder of its own: Ray's socket paths live under it.
    with tempfile.TemporaryDirectory(prefix="irvd", dir="/tmp") as root:
        dead = f"127.0.0.1:{free_port()}"
        os.makedirs(os.path.join(root, "ray"))
        Path(root, "ray", "ray_current_cluster").write_text(dead)
        assert not _gcs(_probe(venv_env(RAY_TMPDIR=root))).endswith(dead.split(":")[1])


def test_ray_address_joins_the_head(head):
    assert _gcs(_probe(venv_env(RAY_ADDRESS=head.gcs_address))).endswith(f":{head.port}")


def test_a_version_mismatch_ends_in_one_line_naming_both_versions(head):
    # This client pretends to be another Ray: Ray compares the head's versions with compute_version_info().
    pretend = "import ray._private.utils as u; u.compute_version_info = lambda: ('2.59.0', '3.11.0')\n"
    msg = _error(_probe(venv_env(), head.gcs_address, prelude=pretend))
    import ray

    assert msg.startswith(f"cannot join the Ray cluster at {head.gcs_address} (from ray.address): version mismatch")
    assert f"the cluster runs Ray {ray.__version__}" in msg and "this process Ray 2.59.0, Python 3.11.0" in msg


def test_cli_with_a_wrong_address_prints_one_line_saying_what_to_check(tmp_path):
    address = f"127.0.0.1:{free_port()}"
    done = subprocess.run([str(VENV_BIN / "interrvos"), "synth", "--set", f"ray.address={address}", "--set",
                           f"out={tmp_path / 'synth'}", "--set", "num_videos=1"], cwd=REPO, env=venv_env(),
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert last_lines(done.stderr, 1)[0].startswith(
        f"error: cannot reach the Ray cluster at {address} (from ray.address): nothing listens on that port; "
        "check that the head is running"), done.stderr[-3000:]


def test_the_dashboard_port_given_as_the_cluster_address_is_named_at_once(head):
    msg = _error(_probe(venv_env(), f"127.0.0.1:{head.dashboard_port}"))
    assert msg == (f"cannot join the Ray cluster at 127.0.0.1:{head.dashboard_port} (from ray.address): that is the "
                   "dashboard / Jobs API (for `ray job submit`), not the cluster's GCS; a job joins by the head's GCS "
                   "address HOST:PORT (`ray start --head --port`, default 6379)")
