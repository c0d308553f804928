"""Sweep speed: `interrvos sweep` against the same cells run one after another through the CLI
(`interrvos predict` then `interrvos evaluate` per cell, each a fresh process with its own local Ray),
same machine, one run; then a metric-only re-run of the sweep (another frame averaging: every
prediction comes from the cache).

Figures: sequential_seconds / sweep_seconds (goal >= 1.5 on 2 cores: one Ray and one model load per
checkpoint shared by its cells, scoring beside prediction), and metric_only_seconds / sweep_seconds.
Both sides start from an empty cache and the same two tiny checkpoints (one model taught 40 and 65
steps on a synthetic clip, so that it draws masks); the per-cell Overall J&F of the
two must be equal (checked).

    .venv/bin/python bench/bench_sweep.py [--videos 4 --frames 8 --values 2 5]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from interrvos.model.checkpoint import save_checkpoint
from interrvos.model.reviosa import build_model
from interrvos.train.sample_data import teach_tiny, write_pushing_dataset


def timed(cmd: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--values", type=int, nargs="+", default=[2, 5], help="values of K (inference.num_frames)")
    parser.add_argument("--cpus", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        root = Path(tmp)
        dataset = write_pushing_dataset(root / "ds", num_videos=args.videos, num_frames=args.frames)
        ckpts = {"tiny-a": root / "ckpt" / "tiny-a", "tiny-b": root / "ckpt" / "tiny-b"}
        model = build_model("tiny", ["random_templates=false"])  # taught a little: masks that are not empty
        for steps, path in zip((40, 25), ckpts.values(), strict=True):
            teach_tiny(model, steps)
            save_checkpoint(model, str(path))
        tree = {"name": "bench", "out": str(root / "sweep"), "cache": str(root / "cache"),
                "checkpoints": [{"id": k, "path": str(p)} for k, p in ckpts.items()],
                "datasets": [{"id": "push", "path": dataset}],
                "axes": {"K": {"field": "inference.num_frames", "values": args.values}},
                "scoring": {"sensitivity_pairs": 8}, "ray": {"num_cpus": args.cpus}}  # fmt: skip
        config = root / "sweep.yaml"
        config.write_text(yaml.safe_dump(tree))
        sweep = [sys.executable, "-m", "interrvos.sweep.cli", "--config", str(config)]

        sweep_s = timed(sweep)
        metric_s = timed([*sweep, "--out", str(root / "davis"), "--set", "scoring.frame_averaging=davis"])
        cells = json.loads((root / "sweep" / "cells.json").read_text())

        cli = [sys.executable, "-m", "interrvos.cli"]
        sequential_s, mismatches = 0.0, []
        for n, cell in enumerate(cells):
            settings = json.loads(cell["settings"])
            pred, ev = root / "seq" / f"{n}.jsonl", root / "seq" / f"ev{n}"
            sequential_s += timed([*cli, "predict", "--dataset", dataset, "--checkpoint", cell["checkpoint_path"],
                                   "--out", str(pred), "--set", f"inference={json.dumps(settings['inference'])}",
                                   "--set", f"ray.num_cpus={args.cpus}"])  # fmt: skip
            sequential_s += timed([*cli, "evaluate", "--dataset", dataset, "--predictions", str(pred), "--out", str(ev),
                                   "--set", "sensitivity_pairs=8", "--set", "overlays.samples=0",
                                   "--set", f"ray.num_cpus={args.cpus}"])  # fmt: skip
            by_hand = json.loads((ev / "metrics.json").read_text())["settings"]["overall"]["JF"]
            if by_hand != cell["overall_JF"]:
                mismatches.append((cell["label"], by_hand, cell["overall_JF"]))
        expressions = sum(c["expressions"] for c in cells)
        result = {"cells": len(cells), "expressions": expressions, "sweep_s": round(sweep_s, 1),
                  "sequential_cli_s": round(sequential_s, 1), "speedup": round(sequential_s / sweep_s, 2),
                  "metric_only_rerun_s": round(metric_s, 1), "metric_only_fraction": round(metric_s / sweep_s, 2),
                  "numbers_equal": not mismatches}  # fmt: skip
        print(f"{len(cells)} cells x {expressions // len(cells)} expressions ({args.videos} videos x {args.frames} "
              f"frames), 2 tiny checkpoints, K in {args.values}, {args.cpus} CPUs")
        print(f"sweep {sweep_s:.1f} s vs the same cells one after another with the CLI {sequential_s:.1f} s: "
              f"{result['speedup']}x")
        print(f"metric-only re-run {metric_s:.1f} s = {result['metric_only_fraction']} of the first run")
        if mismatches:
            print(f"MISMATCH between the sweep and the CLI: {mismatches}")
        print(json.dumps(result))


if __name__ == "__main__":
    main()
