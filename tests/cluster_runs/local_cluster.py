"""A real multi-node Ray cluster on this machine: a head and worker nodes, each its own `ray start --block`
process (its own raylet, object store, resources and temp folder), started in a new session so that the
whole node (the `ray start` process, its raylet, the raylet's workers) is one process group we own.

- stop(): SIGTERM to each `ray start --block` (it stops its node's processes and exits; waited for).
- kill(name): a node failure: SIGKILL to the node's process group and to every descendant of it,
  each by PID. Never `ray stop` (it kills every Ray process on the machine, other people's too).

The head's GCS checks its raylets every second and declares one dead after 3 failed checks (Ray's
defaults: 3 s and 5), so a killed node is noticed in ~3 s instead of ~15 s; stopping drains for 3 s at
most (Ray's default 30 s).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))
FAST_NODE_DEATH = {"RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "3",
                   "RAY_health_check_initial_delay_ms": "1000"}
# On SIGTERM a node first drains (waits for its raylet to go idle and exit, up to 30 s by default; a head
# with the dashboard's leases never does): at the end of a test run there is nothing left to drain for.
SHORT_DRAIN = {"RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "3"}


def free_port() -> int:
    """An ephemeral port (32768+ on Linux): outside Ray's worker range 10002-19999 and its defaults."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not 10002 <= port <= 19999 and port not in (6379, 8265, 10001, 52365):
            return port


def ray_env() -> dict[str, str]:
    """The environment of our nodes and jobs: no stranger's RAY_ADDRESS, no token auth (a private cluster)."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update({"RAY_AUTH_MODE": "disabled", "RAY_DATA_DISABLE_PROGRESS_BARS": "1", "RAY_USAGE_STATS_ENABLED": "0"})
    return env


@dataclass
class Node:
    name: str
    proc: subprocess.Popen
    resources: dict[str, float]
    temp_dir: str
    log_path: Path
    node_id: str = ""
    killed: bool = False


@dataclass
class LocalCluster:
    logs: Path
    cpus_per_node: int = 1
    object_store_mb: int = 150
    nodes: dict[str, Node] = field(default_factory=dict)

    def __post_init__(self):
        self.logs.mkdir(parents=True, exist_ok=True)
        # Short: Ray's unix sockets live under the temp folder and their paths are limited to 107 bytes.
        self.tmp = tempfile.mkdtemp(prefix="rcl", dir="/tmp")
        self.port, self.dashboard_port = free_port(), free_port()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    # --- starting ---

    def _start(self, name: str, args: list[str], resources: dict[str, float]) -> Node:
        temp_dir = os.path.join(self.tmp, name)
        ports = ["--dashboard-agent-listen-port", str(free_port()), "--dashboard-agent-grpc-port", str(free_port()),
                 "--metrics-export-port", str(free_port()), "--runtime-env-agent-port", str(free_port())]
        cmd = [RAY, "start", "--block", *args, "--num-cpus", str(self.cpus_per_node), "--resources",
               json.dumps(resources), "--temp-dir", temp_dir, "--object-store-memory",
               str(self.object_store_mb * 2**20), "--disable-usage-stats", *ports]
        log_path = self.logs / f"node-{name}.log"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**ray_env(), **FAST_NODE_DEATH, **SHORT_DRAIN},
                                    start_new_session=True)
        node = self.nodes[name] = Node(name, proc, resources, temp_dir, log_path)
        return node

    def start_head(self, timeout: float = 120) -> Node:
        node = self._start("head", ["--head", "--port", str(self.port), "--dashboard-host", "127.0.0.1",
                                    "--dashboard-port", str(self.dashboard_port)], {"head": 1})
        self._wait_registered(node, timeout)
        return node

    def add_worker(self, name: str, timeout: float = 120) -> Node:
        """A worker node with resources {worker_node: 1, node_<name>: 1} (the second names it for the tests)."""
        node = self._start(name, ["--address", self.address], {"worker_node": 1, f"node_{name}": 1})
        self._wait_registered(node, timeout)
        return node

    def _wait_registered(self, node: Node, timeout: float) -> None:
        marker = next(iter(node.resources)) if node.name == "head" else f"node_{node.name}"
        deadline = time.time() + timeout
        while time.time() < deadline:
            if node.proc.poll() is not None:
                raise RuntimeError(f"`ray start` of node {node.name} exited ({node.proc.returncode}): "
                                   f"{node.log_path.read_text()[-3000:]}")
            try:
                for n in self.alive_nodes():
                    if n.get("resources_total", {}).get(marker):
                        node.node_id = n["node_id"]
                        return
            except OSError:
                pass  # the dashboard is not up yet
            time.sleep(0.5)
        raise TimeoutError(f"node {node.name} did not register within {timeout} s: {node.log_path.read_text()[-3000:]}")

    # --- looking ---

    def alive_nodes(self) -> list[dict]:
        """Alive nodes, from the head's dashboard (Ray's state API over HTTP)."""
        url = f"{self.dashboard_url}/api/v0/nodes?limit=100&filter_keys=state&filter_predicates=%3D&filter_values=ALIVE"
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.loads(r.read())
        return body["data"]["result"]["result"]

    def actor_nodes(self, class_part: str) -> list[str]:
        """Node ids of the alive actors whose class or repr name contains `class_part` (one per actor;
        Ray Data's pool actors are `_MapWorker`s whose repr names the UDF: `MapWorker(Map(ClipWriter))`)."""
        url = (f"{self.dashboard_url}/api/v0/actors?limit=1000&detail=true&filter_keys=state"
               "&filter_predicates=%3D&filter_values=ALIVE")
        with urllib.request.urlopen(url, timeout=10) as r:
            actors = json.loads(r.read())["data"]["result"]["result"]
        return [a["node_id"] for a in actors
                if class_part in f"{a.get('class_name') or ''} {a.get('repr_name') or ''}"]

    def name_of(self, node_id: str) -> str:
        return next((n.name for n in self.nodes.values() if n.node_id == node_id), node_id[:8])

    def wait_dead(self, node: Node, timeout: float = 60) -> float:
        """Seconds until the head has marked the node dead."""
        started = time.time()
        while time.time() - started < timeout:
            if node.node_id not in {n["node_id"] for n in self.alive_nodes()}:
                return time.time() - started
            time.sleep(0.25)
        raise TimeoutError(f"node {node.name} still alive {timeout} s after it was killed")

    # --- failing and stopping ---

    @staticmethod
    def _descendants(pid: int) -> list:
        """psutil handles of the process's descendants (a handle checks its PID was not reused)."""
        import psutil

        try:
            return psutil.Process(pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    @staticmethod
    def _kill_all(processes: list) -> None:
        import psutil

        for p in processes:
            try:
                p.kill()  # SIGKILL by PID, after checking it is still the process we listed
            except psutil.NoSuchProcess:
                pass

    def kill(self, name: str) -> None:
        """Node failure: SIGKILL the node's process group and every descendant (by PID), no clean-up."""
        node = self.nodes[name]
        descendants = self._descendants(node.proc.pid)
        try:
            os.killpg(node.proc.pid, signal.SIGKILL)  # the session started for this node: ours alone
        except ProcessLookupError:
            pass
        self._kill_all(descendants)  # anything that left the group is still a descendant we started
        node.proc.wait(timeout=30)
        node.killed = True

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM to every `ray start --block` (the workers, then the head), then wait for each PID."""
        workers = [n for n in self.nodes.values() if n.name != "head"]
        heads = [n for n in self.nodes.values() if n.name == "head"]
        for group in (workers, heads):
            running = [n for n in group if n.proc.poll() is None]
            leftovers = {n.name: self._descendants(n.proc.pid) for n in running}
            for node in running:
                node.proc.send_signal(signal.SIGTERM)
            for node in running:
                try:
                    node.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:  # a node that does not drain: take its group down
                    os.killpg(node.proc.pid, signal.SIGKILL)
                    node.proc.wait(timeout=30)
                self._kill_all(leftovers[node.name])  # its processes exit with it; make sure of it
        shutil.rmtree(self.tmp, ignore_errors=True)
