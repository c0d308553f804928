"""Clip-extraction throughput against decode-only throughput of the same clips, in one run.

Both pipelines have the same Ray Data shape (list -> plan -> actor pool of N workers); the
decode-only one decodes every clip frame and drops it, the real one also writes JPEGs, cuts and
filters mask tracks and writes markers. The figure is extract_fps / decode_fps (goal >= 0.8), for
1 and 2 workers, plus the 2-vs-1 worker scaling of each.

    .venv/bin/python bench/bench_extract.py [--videos 6 --frames 2100 --width 640 --height 360]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import ray

from interrvos.clips.pipeline import list_videos, plan_video, run_extract
from interrvos.config import ActorPoolConfig, ClipRuleConfig, ExtractConfig, RayConfig, SynthConfig
from interrvos.data.video import VideoReader
from interrvos.runtime import ensure_ray
from interrvos.synth.generate import run_synth


class DecodeOnly:
    def __call__(self, row: dict) -> dict:
        n = 0
        with VideoReader(row["path"]) as reader:
            for _ in reader.iter_frames(row["start"], row["end"]):
                n += 1
        return {"frames": n}


def decode_fps(sources: list[str], rule: ClipRuleConfig, workers: int) -> float:
    started = time.perf_counter()
    ds = ray.data.from_items(list_videos(sources), override_num_blocks=len(list_videos(sources)))
    ds = ds.flat_map(plan_video, fn_kwargs={"rule": rule, "out": "/nonexistent-bench-out"}, num_cpus=0)
    ds = ds.map(DecodeOnly, compute=ray.data.ActorPoolStrategy(min_size=workers, max_size=workers), num_cpus=1)
    frames = sum(r["frames"] for r in ds.iter_rows())
    return frames / (time.perf_counter() - started)


def extract_fps(sources: list[str], rule: ClipRuleConfig, workers: int, out: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    summary = run_extract(ExtractConfig(videos=sources, out=str(out), clip=rule,
                                        writers=ActorPoolConfig(min_size=workers, max_size=workers)))
    seconds = time.perf_counter() - started
    assert not summary["run"]["errors"], summary["run"]["errors"]
    return summary["run"]["frames_written"] / seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # Defaults: 6 x 2 clips of 500 frames at 640x360 (the real footage's scale), enough work that
    # pool start-up is a small part of each pipeline's time.
    p.add_argument("--videos", type=int, default=6)
    p.add_argument("--frames", type=int, default=2100)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=360)
    p.add_argument("--work", default="runs/bench_extract")
    args = p.parse_args()

    work = Path(args.work)
    ray_cfg = RayConfig(num_cpus=2)
    ensure_ray(ray_cfg)
    synth = SynthConfig(out=str(work / "videos"), num_videos=args.videos, num_frames=args.frames,
                        width=args.width, height=args.height, ray=ray_cfg)
    run_synth(synth)
    sources, rule = [synth.out], ClipRuleConfig()
    decode_fps(sources, rule, 1)  # warm-up: page cache and worker start-up are not what we measure

    results = {}
    for workers in (1, 2):
        d = decode_fps(sources, rule, workers)
        e = extract_fps(sources, rule, workers, work / f"out{workers}")
        results[workers] = {"decode_fps": round(d, 1), "extract_fps": round(e, 1), "ratio": round(e / d, 3)}
    results["scaling_2_vs_1"] = {k: round(results[2][k] / results[1][k], 3) for k in ("decode_fps", "extract_fps")}
    print(f"videos: {args.videos} x {args.frames} frames at {args.width}x{args.height}")
    print("| workers | decode-only frames/s | extraction frames/s | ratio (goal >= 0.8) |")
    print("|---|---|---|---|")
    for w in (1, 2):
        r = results[w]
        print(f"| {w} | {r['decode_fps']} | {r['extract_fps']} | {r['ratio']} |")
    s = results["scaling_2_vs_1"]
    print(f"scaling 2 vs 1 workers: decode x{s['decode_fps']}, extraction x{s['extract_fps']}")
    (work / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
