"""What a node boundary costs clip extraction: frames/s on 1 node with 2 CPUs against 2 nodes with 1 CPU
each (the same total CPUs), in one run.

Each cluster is real `ray start --block` processes on this machine, each node with its own raylet and
object store, stopped by PID: "one" is a head with 2 CPUs; "two" is a head with 1 CPU plus a worker node
with 1 CPU. The job is `run_extract` with exactly 2 writers of 1 CPU each, so on "two" one writer runs
on each node (the summary's per-node clip counts show it) and rows cross the node boundary. Runs
alternate between the clusters (`--repeats` each, after one warm-up run per cluster that fills the page
cache and the worker pools); the figure is mean frames/s of "two" / "one".

    .venv/bin/python bench/bench_extract_nodes.py [--videos 4 --frames 1300 --width 640 --height 360]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_autoscale import RAY_ENV, RayNode  # noqa: E402  (`ray start` processes stopped by PID)


def extract_once(address: str, videos: str, out: Path) -> dict:
    import ray

    from interrvos.clips.pipeline import run_extract
    from interrvos.config import ActorPoolConfig, ClipRuleConfig, ExtractConfig, RayConfig

    shutil.rmtree(out, ignore_errors=True)
    cfg = ExtractConfig(videos=[videos], out=str(out), clip=ClipRuleConfig(),
                        writers=ActorPoolConfig(min_size=2, max_size=2, num_cpus=1), ray=RayConfig(address=address))
    try:
        started = time.perf_counter()
        summary = run_extract(cfg)
        seconds = time.perf_counter() - started  # connecting to the cluster included, as a job sees it
    finally:
        ray.shutdown()
    run = summary["run"]
    assert not run["errors"], run["errors"]
    frames = run["frames_written"]
    return {"frames": frames, "seconds": round(seconds, 2), "fps": round(frames / seconds, 1),
            "clips_per_node": run.get("nodes", {})}


def make_videos(address: str, out: Path, videos: int, frames: int, width: int, height: int) -> str:
    import ray

    from interrvos.config import RayConfig, SynthConfig
    from interrvos.synth.generate import run_synth

    synth = SynthConfig(out=str(out), num_videos=videos, num_frames=frames, width=width, height=height, seed=3,
                        ray=RayConfig(address=address))
    try:
        run_synth(synth)
    finally:
        ray.shutdown()
    return synth.out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # 4 videos x 1,300 frames at 640x360: 2 clips each ([0, 500) and [1000, 1300)), 3,200 clip frames.
    p.add_argument("--videos", type=int, default=4)
    p.add_argument("--frames", type=int, default=1300)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=360)
    p.add_argument("--repeats", type=int, default=2, help="measured runs per cluster (after one warm-up)")
    p.add_argument("--work", default="runs/bench_extract_nodes")
    args = p.parse_args()

    work = Path(args.work).resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    os.environ.update(RAY_ENV)
    nodes: list[RayNode] = []
    runs: dict[str, list[dict]] = {"one": [], "two": []}
    try:
        one = RayNode(work, "one", num_cpus=2)
        nodes.append(one)
        videos = make_videos(one.address, work / "videos", args.videos, args.frames, args.width, args.height)
        two = RayNode(work, "two_head", num_cpus=1)
        nodes.append(two)
        nodes.append(RayNode(work, "two_worker", num_cpus=1, address=two.address))
        clusters = {"one": one.address, "two": two.address}
        for name, address in clusters.items():
            extract_once(address, videos, work / f"out_{name}")  # warm-up
        for _ in range(args.repeats):
            for name, address in clusters.items():
                runs[name].append(extract_once(address, videos, work / f"out_{name}"))
                print(name, runs[name][-1], flush=True)
    finally:
        with ThreadPoolExecutor(len(nodes) or 1) as pool:  # each drains up to 30 s: in parallel
            left = dict(zip([n.name for n in nodes], pool.map(RayNode.stop, nodes), strict=True))
    mean = {name: round(statistics.mean(r["fps"] for r in rs), 1) for name, rs in runs.items()}
    result = {
        "videos": f"{args.videos} x {args.frames} frames at {args.width}x{args.height}",
        "clip_frames_per_run": runs["one"][0]["frames"],
        "one_node_2_cpus": {"fps_mean": mean["one"], "runs": runs["one"]},
        "two_nodes_1_cpu_each": {"fps_mean": mean["two"], "runs": runs["two"]},
        "ratio_two_over_one": round(mean["two"] / mean["one"], 3),
        "processes_left_after_stop": left,
    }
    (work / "result.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=2))
    print(f"2 nodes x 1 CPU / 1 node x 2 CPUs = {result['ratio_two_over_one']}x extraction frames/s "
          f"({mean['two']} vs {mean['one']})")


if __name__ == "__main__":
    main()
