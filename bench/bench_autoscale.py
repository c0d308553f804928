"""Annotation throughput with the real Ray autoscaler against a fixed one-node cluster, in one run.

The autoscaled cluster is Ray's fake multi-node provider (`RAY_FAKE_CLUSTER=1`): a real `ray start
--head --block --autoscaling-config=...` whose autoscaler launches simulated worker nodes as local
processes. The head has 1 CPU and no `annot` resource; the worker type has {CPU: 1, annot: 1} (min 0,
max `--max-workers`). The job is `interrvos annotate --backend openai --set ray.address=...` as a
subprocess, against the stand-in OpenAI-compatible endpoint of tests/annotate (its own process, a
fixed latency per answer); the four LLM stage pools need `annot` (`pools.stageN.resources`), so they
can only run on autoscaled nodes, and each actor keeps few requests in flight, so one node's worth of
actors cannot use the endpoint: demand exceeds the head, the autoscaler adds nodes, Ray Data adds
actors, and after the job the idle nodes are removed (`idle_timeout_minutes`).

The fixed cluster is a plain head of the head's CPUs plus one node's `annot` (1 CPU, annot 1): the same
job, the same dataset, one node's worth of LLM actors.

Sampled every second: alive nodes (from the GCS); answers/s from the endpoint's request log. Figures:
answers/s of each (answers / time from the first request to the last answer), their ratio, time to the
first and the last added node, time until the idle nodes were gone; a PNG plot of both series.

    .venv/bin/python bench/bench_autoscale.py [--videos 6 --frames 480 --latency 1.0 --max-workers 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_annotate import Endpoint  # noqa: E402  (the stand-in endpoint in its own process)

RAY = str(Path(sys.executable).with_name("ray"))
INTERRVOS = str(Path(sys.executable).with_name("interrvos"))
# No token auth on these private benchmark clusters; the client must say the same (ENVIRONMENT.md).
RAY_ENV = {"RAY_AUTH_MODE": "disabled"}


def free_port() -> int:
    """A free TCP port in the ephemeral range: outside Ray's worker ports (10002-19999) and defaults."""
    import socket

    while True:
        with socket.socket() as s:
            s.bind(("", 0))
            port = s.getsockname()[1]
        if port >= 20000:
            return port


def node_ip() -> str:
    import ray._private.services as services

    return services.get_node_ip_address()


class RayNode:
    """One `ray start ... --block` process we started (a head, or a worker joining `address`), in its own
    --temp-dir, with its own ports. Stopped by its PID; every process it (or its autoscaler) started is
    remembered while it runs and any still alive after the drain is ended by PID too."""

    def __init__(self, work: Path, name: str, num_cpus: int, resources: dict | None = None,
                 address: str | None = None, autoscaling_config: Path | None = None, env: dict | None = None,
                 object_store_mb: int = 256, port: int | None = None):
        self.name, self.temp_dir = name, tempfile.mkdtemp(prefix=f"rb_{name}_", dir="/tmp")  # short: socket paths
        self.port = None if address else (port or free_port())
        self.address = address or f"{node_ip()}:{self.port}"
        cmd = [RAY, "start", "--block", f"--temp-dir={self.temp_dir}", f"--num-cpus={num_cpus}",
               f"--resources={json.dumps(resources or {})}", f"--object-store-memory={object_store_mb * 2**20}",
               f"--node-manager-port={free_port()}", f"--object-manager-port={free_port()}",
               f"--metrics-export-port={free_port()}", f"--runtime-env-agent-port={free_port()}",
               f"--dashboard-agent-listen-port={free_port()}", f"--dashboard-agent-grpc-port={free_port()}"]
        if address:
            cmd += [f"--address={address}"]
        else:
            cmd += ["--head", f"--port={self.port}", "--include-dashboard=false",
                    f"--ray-client-server-port={free_port()}"]
        if autoscaling_config:
            cmd += [f"--autoscaling-config={autoscaling_config}"]
        self.log_path = work / f"{name}.log"
        self.log_file = open(self.log_path, "w")  # noqa: SIM115 (open for the process's life)
        self.proc = subprocess.Popen(cmd, stdout=self.log_file, stderr=subprocess.STDOUT,
                                     env={**os.environ, **RAY_ENV, **(env or {})})
        self.seen: dict[int, float] = {}  # pid -> create_time of every descendant seen
        self._wait_started()

    def _wait_started(self, timeout: float = 90) -> None:
        marker = Path(self.temp_dir) / "ray_current_cluster"  # written once the node is up
        deadline = time.monotonic() + timeout
        while not marker.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: `ray start` did not come up; see {self.log_path}")
            time.sleep(0.3)
        self.remember_processes()

    def remember_processes(self) -> None:
        try:
            for child in psutil.Process(self.proc.pid).children(recursive=True):
                self.seen.setdefault(child.pid, child.create_time())
        except psutil.NoSuchProcess:
            pass

    def _left_over(self) -> list[psutil.Process]:
        alive = []
        for pid, created in self.seen.items():
            try:
                p = psutil.Process(pid)
                if p.create_time() == created and p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
            except psutil.NoSuchProcess:
                pass
        return alive

    def stop(self) -> int:
        """SIGTERM to `ray start --block`, wait for its drain, then end what it left behind (the fake
        provider's nodes are processes of the autoscaler, not of this one). Returns how many were left."""
        self.remember_processes()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self.log_file.close()
        left = self._left_over()
        for p in left:
            try:
                p.terminate()
            except psutil.NoSuchProcess:
                pass
        _, still = psutil.wait_procs(left, timeout=10)
        for p in still:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(still, timeout=10)
        if self._left_over():
            raise RuntimeError(f"{self.name}: processes left after stop: {[p.pid for p in self._left_over()]}")
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        return len(left)


class NodeSampler:
    """Every `interval` s: the cluster's alive nodes, read from the GCS directly (no driver: a driver whose
    raylet is a removed node would die with it), and the processes of the head's tree (for clean-up)."""

    def __init__(self, head: RayNode, interval: float = 1.0):
        from ray._private.state import GlobalState
        from ray._raylet import GcsClientOptions

        self.head, self.interval = head, interval
        self.state = GlobalState()
        self.state._initialize_global_state(GcsClientOptions.create(
            head.address, None, allow_cluster_id_nil=True, fetch_cluster_id_if_nil=False))
        self.samples: list[tuple[float, int]] = []  # (monotonic time, alive nodes)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="node-sampler")
        self._thread.start()

    def alive(self) -> int:
        return sum(1 for n in self.state.node_table() if n["Alive"])

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.monotonic(), self.alive()))
            except Exception:  # the GCS going away at the end must not kill the benchmark
                pass
            self.head.remember_processes()
            self._stop.wait(self.interval)

    def wait_for(self, predicate, timeout: float) -> float | None:
        """Wait until `predicate(alive nodes)`; the monotonic time it first held, or None on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.samples and predicate(self.samples[-1][1]):
                return self.samples[-1][0]
            time.sleep(0.2)
        return None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.state.disconnect()


def autoscaling_config(path: Path, port: int, max_workers: int, idle_minutes: float) -> Path:
    """A full launcher config for the fake multi-node provider (the recipe of ENVIRONMENT.md)."""
    worker = {"resources": {"CPU": 1, "annot": 1, "object_store_memory": 200 * 2**20}, "node_config": {},
              "min_workers": 0, "max_workers": max_workers}
    cfg = {
        "cluster_name": "bench-autoscale",
        "max_workers": max_workers,
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": idle_minutes,
        "provider": {"type": "fake_multinode", "gcs_address": f"{node_ip()}:{port}",
                     # node ids stand in for IPs (all fake nodes share this machine's IP); the fake
                     # provider is read-only, so node updaters and the launch-config check must be off
                     "use_node_id_as_ip": True, "disable_node_updaters": True, "disable_launch_config_check": True},
        "auth": {"ssh_user": "ray"},
        "available_node_types": {
            "ray.head.default": {"resources": {"CPU": 1}, "node_config": {}, "max_workers": 0},
            "ray.worker.annot": worker,
        },
        "head_node_type": "ray.head.default",
        "file_mounts": {}, "cluster_synced_files": [], "file_mounts_sync_continuously": False,
        "rsync_exclude": [], "rsync_filter": [],
        "initialization_commands": [], "setup_commands": [], "head_setup_commands": [], "worker_setup_commands": [],
        "head_start_ray_commands": [], "worker_start_ray_commands": [],
    }
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def make_dataset(work: Path, address: str, videos: int, frames: int, clip_frames: int) -> str:
    """Tiny synthetic videos cut into many short clips, on the cluster at `address`."""
    import ray

    from interrvos.clips.pipeline import run_extract
    from interrvos.config import ClipRuleConfig, ExtractConfig, RayConfig, SynthConfig
    from interrvos.synth.generate import run_synth

    ray_cfg = RayConfig(address=address)
    synth = SynthConfig(out=str(work / "synth"), num_videos=videos, num_frames=frames, width=128, height=96,
                        seed=14, min_objects=2, max_objects=4, ray=ray_cfg)
    dataset = work / "dataset"
    shutil.rmtree(dataset, ignore_errors=True)
    try:
        run_synth(synth)
        rule = ClipRuleConfig(bin_frames=clip_frames, min_bin_frames=clip_frames, clip_frames=clip_frames,
                              keep_bins="all")
        run_extract(ExtractConfig(videos=[synth.out], out=str(dataset), clip=rule, ray=ray_cfg))
    finally:
        ray.shutdown()
    return str(dataset)


def job_config(path: Path, dataset: str, endpoint: Endpoint, args) -> Path:
    llm_pool = {"min_size": 1, "max_size": args.max_workers, "num_cpus": 0.1, "resources": {"annot": 0.25},
                "clips_in_flight": args.clips_in_flight}
    cfg = {"dataset": dataset, "backend": "openai",  # `out` and `ray.address` are set per run
           "openai": {"base_url": endpoint.base_url, "max_concurrency": args.max_concurrency, "qps": 500},
           "highlight": {"max_frames": args.frames_per_prompt}, "report_samples": 0,
           # prepare and write stay on the head (no `annot`); the LLM stages only fit on `annot` nodes
           "pools": {"prepare": {"min_size": 1, "max_size": 1, "num_cpus": 0.5},
                     "write": {"min_size": 1, "max_size": 1, "num_cpus": 0.1},
                     **{f"stage{i}": json.loads(json.dumps(llm_pool)) for i in (1, 2, 3, 4)}}}  # copies: no YAML anchors
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def run_job(work: Path, tag: str, head: RayNode, cfg_path: Path, upscale_threshold: float | None) -> dict:
    out = work / f"annotated_{tag}"
    # Ray Data adds an actor to a pool above `upscale_threshold` utilisation (tasks in flight / (actors x
    # concurrent calls)); None keeps Ray Data's default (175%, which the LLM pools reach: 2x clips queued).
    env = {**os.environ, **RAY_ENV}
    if upscale_threshold is not None:
        env["RAY_DATA_DEFAULT_ACTOR_POOL_UTIL_UPSCALING_THRESHOLD"] = str(upscale_threshold)
    shutil.rmtree(out, ignore_errors=True)
    log = work / f"annotate_{tag}.log"
    started = time.monotonic()
    with open(log, "w") as f:
        rc = subprocess.run([INTERRVOS, "annotate", "--config", str(cfg_path), "--set", f"out={out}",
                             "--set", f"ray.address={head.address}"], stdout=f, stderr=subprocess.STDOUT,
                            env=env, cwd=str(REPO)).returncode
    ended = time.monotonic()
    if rc != 0:
        raise RuntimeError(f"annotate on the {tag} cluster failed (rc {rc}); see {log}")
    summary = json.loads((out / "annotate_summary.json").read_text())
    return {"started": started, "ended": ended, "summary": summary}


def answers_per_s(log: list, t0: float, bin_s: float) -> list[tuple[float, float]]:
    ends = sorted(e.end - t0 for e in log if e.end and e.status == 200)
    if not ends:
        return []
    bins = [0] * (int(ends[-1] // bin_s) + 1)
    for t in ends:
        bins[int(t // bin_s)] += 1
    return [(i * bin_s + bin_s / 2, n / bin_s) for i, n in enumerate(bins)]


def throughput(log: list, job: dict) -> dict:
    done = [e for e in log if e.end and e.status == 200]
    window = max(e.end for e in done) - min(e.arrived for e in done)
    s = job["summary"]
    return {"answers": len(done), "requests": len(log), "llm_calls": s["run"]["total"]["llm_calls"],
            "clips": s["dataset"]["clips"], "active_window_s": round(window, 1),
            "answers_per_s": round(len(done) / window, 2), "job_wall_s": round(job["ended"] - job["started"], 1),
            "answers_per_s_incl_startup": round(len(done) / (job["ended"] - job["started"]), 2),
            "first_request_after_s": round(min(e.arrived for e in done) - job["started"], 1),
            # which node ran each step of how many clips (fake node ids: ...00000 is the head)
            "clips_by_step_node": {step: {node[-5:]: n for node, n in nodes.items()}
                                   for step, nodes in s["run"].get("nodes_by_step", {}).items()}}


def plot(path: Path, auto: dict, fixed: dict, max_workers: int, bin_s: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_nodes, ax_rate) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True)
    t, n = zip(*auto["nodes"], strict=True)
    ax_nodes.step(t, n, where="post", color="tab:blue", label="autoscaled cluster (head + workers)")
    ax_nodes.axhline(max_workers + 1, color="grey", ls=":", lw=1, label=f"head + max_workers ({max_workers})")
    ax_nodes.axhline(1, color="tab:orange", ls="--", lw=1, label="fixed cluster (1 node)")
    ax_nodes.axvline(auto["job_end_s"], color="black", lw=0.8)
    ax_nodes.text(auto["job_end_s"], 0.2, " job done", fontsize=8)
    ax_nodes.set_ylabel("alive nodes")
    ax_nodes.set_ylim(0, max_workers + 2.6)
    ax_nodes.legend(fontsize=7, loc="upper left", ncol=3)
    series_of = ((auto["rate"], "autoscaled", "tab:blue"), (fixed["rate"], "fixed 1 node", "tab:orange"))
    for series, label, color in series_of:
        if series:
            x, y = zip(*series, strict=True)
            ax_rate.plot(x, y, color=color, label=label, drawstyle="steps-mid")
    ax_rate.axvline(auto["job_end_s"], color="tab:blue", lw=0.8, ls=":")
    ax_rate.axvline(fixed["job_end_s"], color="tab:orange", lw=0.8, ls=":")
    ax_rate.set_ylabel(f"answers/s ({bin_s:g} s bins)")
    ax_rate.set_xlabel("seconds since the job was started")
    ax_rate.legend(fontsize=8, loc="upper right")
    fig.suptitle(f"Annotation on Ray's autoscaler (fake multi-node): {auto['answers_per_s']} vs "
                 f"{fixed['answers_per_s']} answers/s", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, default=6)
    p.add_argument("--frames", type=int, default=480)
    p.add_argument("--clip-frames", type=int, default=40, help="one clip per this many frames")
    p.add_argument("--latency", type=float, default=1.0, help="seconds per answer of the endpoint")
    p.add_argument("--slots", type=int, default=64, help="answers the endpoint serves at once")
    p.add_argument("--max-workers", type=int, default=3)
    p.add_argument("--idle-minutes", type=float, default=0.25)
    p.add_argument("--clips-in-flight", type=int, default=2, help="per LLM actor")
    p.add_argument("--max-concurrency", type=int, default=4, help="requests in flight per LLM actor")
    p.add_argument("--frames-per-prompt", type=int, default=4)
    p.add_argument("--bin-s", type=float, default=2.0, help="answers/s time bins")
    p.add_argument("--upscale-threshold", type=float, default=None,
                   help="Ray Data's actor-pool utilisation that adds an actor (default: Ray Data's, 1.75)")
    p.add_argument("--work", default="runs/bench_autoscale")
    p.add_argument("--plot", default=str(REPO / "docs" / "img" / "autoscale.png"))
    args = p.parse_args()

    work = Path(args.work).resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    os.environ.update(RAY_ENV)
    endpoint = Endpoint(args.latency, args.slots)
    result: dict = {"endpoint": {"latency_s": args.latency, "slots": args.slots}}
    left_over = {}
    try:
        # 1. The fixed cluster: one node with the head's CPU and one worker's `annot`. It also makes the data.
        head = RayNode(work, "fixed", num_cpus=1, resources={"annot": 1})
        try:
            dataset = make_dataset(work, head.address, args.videos, args.frames, args.clip_frames)
            cfg_path = job_config(work / "annotate.yaml", dataset, endpoint, args)
            sampler = NodeSampler(head)
            endpoint.reset()
            job = run_job(work, "fixed", head, cfg_path, args.upscale_threshold)
            sampler.stop()
            log = endpoint.log()
            fixed_dataset = job["summary"]["dataset"]
            fixed = {**throughput(log, job), "nodes_max": max(n for _, n in sampler.samples),
                     "job_end_s": round(job["ended"] - job["started"], 1),
                     "rate": answers_per_s(log, job["started"], args.bin_s)}
        finally:
            left_over["fixed"] = head.stop()

        # 2. The autoscaled cluster: the real autoscaler on the fake multi-node provider.
        port = free_port()
        cfg = autoscaling_config(work / "cluster.yaml", port, args.max_workers, args.idle_minutes)
        head = RayNode(work, "autoscaled", num_cpus=1, autoscaling_config=cfg, port=port,
                       env={"RAY_FAKE_CLUSTER": "1", "AUTOSCALER_UPDATE_INTERVAL_S": "1"})
        try:
            sampler = NodeSampler(head)
            endpoint.reset()
            job = run_job(work, "autoscaled", head, cfg_path, args.upscale_threshold)
            t_gone = sampler.wait_for(lambda n: n == 1, timeout=60 * args.idle_minutes + 120)
            sampler.stop()
            log = endpoint.log()
            t0 = job["started"]
            nodes = [(round(t - t0, 1), n) for t, n in sampler.samples]
            peak = max(n for _, n in nodes)
            same = job["summary"]["dataset"] == fixed_dataset  # the same annotated dataset, however it scaled
            auto = {**throughput(log, job), "nodes_max": peak, "same_dataset_as_fixed": same,
                    "first_worker_after_s": next((t for t, n in nodes if n > 1), None),
                    "peak_after_s": next((t for t, n in nodes if n == peak), None),
                    "idle_nodes_gone_after_job_s": round(t_gone - job["ended"], 1) if t_gone else None,
                    "job_end_s": round(job["ended"] - t0, 1), "nodes": nodes,
                    "rate": answers_per_s(log, t0, args.bin_s)}
        finally:
            left_over["autoscaled"] = head.stop()
    finally:
        endpoint.stop()

    plot(Path(args.plot), auto, fixed, args.max_workers, args.bin_s)
    result.update({
        "clips": auto["clips"], "max_workers": args.max_workers, "idle_timeout_minutes": args.idle_minutes,
        "pools": {"llm_stage": {"max_size": args.max_workers, "clips_in_flight": args.clips_in_flight,
                                "max_concurrency": args.max_concurrency, "resources": {"annot": 0.25}}},
        "fixed": {k: v for k, v in fixed.items() if k != "rate"},
        "autoscaled": {k: v for k, v in auto.items() if k not in ("rate", "nodes")},
        "ratio": round(auto["answers_per_s"] / fixed["answers_per_s"], 2),
        "ratio_incl_startup": round(auto["answers_per_s_incl_startup"] / fixed["answers_per_s_incl_startup"], 2),
        "processes_left_after_head_stop": left_over, "plot": str(args.plot)})
    (work / "result.json").write_text(json.dumps({**result, "series": {"nodes": auto["nodes"], "rate_autoscaled":
                                                  auto["rate"], "rate_fixed": fixed["rate"]}}, indent=1))
    print(json.dumps(result, indent=2))
    print(f"autoscaled / fixed = {result['ratio']}x answers/s ({auto['answers_per_s']} vs {fixed['answers_per_s']}); "
          f"nodes 1 -> {auto['nodes_max']} (first worker after {auto['first_worker_after_s']} s), idle nodes gone "
          f"{auto['idle_nodes_gone_after_job_s']} s after the job")


if __name__ == "__main__":
    main()
