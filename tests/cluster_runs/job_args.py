"""The jobs of the multi-node tests: `interrvos <job> ... --set ray.address=<cluster>` as subprocesses
(each with its log file) and their arguments, sized for a cluster of 1-CPU nodes."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from local_cluster import LocalCluster, ray_env

REPO = Path(__file__).resolve().parents[2]
REAL_VIDEOS = REPO.parent / "shared" / "data" / "videos"
INTERRVOS = Path(sys.executable).with_name("interrvos")
TRAIN_STEPS = 6
# A Ray Data actor pool starts dispatching when its first actor is up; on inputs this small that actor (on
# the head, where workers start first) may take everything before the others have loaded. Waiting for
# the pool's min_size actors makes every pool start with all its actors, on every node they were put on.
POOLS_START_WHOLE = {"RAY_DATA_DEFAULT_WAIT_FOR_MIN_ACTORS_S": "300"}

EXTRACT_ARGS = ["--set", "clip.bin_frames=60", "--set", "clip.min_bin_frames=30", "--set", "clip.clip_frames=30",
                "--set", "writers.min_size=3", "--set", "writers.max_size=3", "--set", "writers.num_cpus=0.5"]
ANNOTATE_POOLS = ["--set", "pools.prepare.min_size=1", "--set", "pools.prepare.max_size=1",
                  "--set", "pools.prepare.num_cpus=0.5", "--set", "split.val_fraction=0.34"] + [
    arg for stage in ("stage1", "stage2", "stage3", "stage4")
    for arg in ("--set", f"pools.{stage}.min_size=1", "--set", f"pools.{stage}.max_size=1",
                "--set", f"pools.{stage}.num_cpus=0.25")]


@dataclass
class Jobs:
    """`interrvos <job> ... --set ray.address=<cluster>` as subprocesses, each with its log file."""

    cluster: LocalCluster
    logs: Path

    def command(self, job: str, *args: str) -> list[str]:
        exe = [str(INTERRVOS)] if INTERRVOS.exists() else [sys.executable, "-m", "interrvos.cli"]
        return [*exe, job, *args, "--set", f"ray.address={self.cluster.address}"]

    def start(self, name: str, job: str, *args: str) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115  (closed with the process)
        proc = subprocess.Popen(self.command(job, *args), stdout=log, stderr=subprocess.STDOUT,
                                env={**ray_env(), **POOLS_START_WHOLE},
                                cwd=REPO)
        proc.log_file = log  # type: ignore[attr-defined]
        return proc

    def finish(self, name: str, proc: subprocess.Popen, timeout: float = 600) -> int:
        try:
            rc = proc.wait(timeout=timeout)
        finally:
            proc.log_file.close()  # type: ignore[attr-defined]
        return rc

    def run(self, name: str, job: str, *args: str, timeout: float = 600) -> float:
        """Run to the end; fail with the log's tail unless it succeeds. Returns the seconds it took."""
        started = time.perf_counter()
        rc = self.finish(name, self.start(name, job, *args), timeout)
        assert rc == 0, f"{name} exited {rc}:\n{self.tail(name)}"
        return time.perf_counter() - started

    def tail(self, name: str, chars: int = 4000) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-chars:]


def extract_args(sources: list[str], out: Path) -> list[str]:
    return ["--out", str(out), "--set", f"videos=[{','.join(sources)}]", *EXTRACT_ARGS]


def annotate_args(dataset: Path, out: Path, base_url: str) -> list[str]:
    return ["--dataset", str(dataset), "--out", str(out), "--backend", "openai",
            "--set", f"openai.base_url={base_url}", *ANNOTATE_POOLS]


def train_args(dataset: str, storage: Path, name: str, *extra: str) -> list[str]:
    return ["--config", "jobs/configs/train_tiny.yaml", "--dataset", dataset, "--storage", str(storage),
            "--name", name, "--max-steps", str(TRAIN_STEPS), "--set", "checkpoint.every_n_steps=2",
            "--set", "data.frames_per_sample=2", "--set", "data.expressions_per_sample=2", *extra]
