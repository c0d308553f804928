"""Training benchmark: Ray Train + DeepSpeed vs plain torchrun + DeepSpeed, the same tiny ReVIOsA, data,
sample plan and DeepSpeed config, measured in one run; and samples/s with 1 and 2 Ray Train workers.

    .venv/bin/python bench/bench_train.py            # --steps 12 --warmup 3 --stage 2

Step time = wall time between consecutive optimizer steps (data wait, forward, backward, optimizer,
and on Ray the per-step metrics report included), median over the steps after `warmup`.
Overhead = Ray step time / torchrun step time (goal <= 1.1). Prints a Markdown table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")

REPO = Path(__file__).resolve().parents[1]


def train_config(dataset: str, storage: str, name: str, workers: int, args) -> dict:
    return {
        "name": name, "storage": storage, "seed": 0,
        "data": {"sources": [dataset], "frames_per_sample": args.frames, "expressions_per_sample": args.expressions,
                 "samples_per_epoch": 64, "decode_cpus": 0.25, "prefetch_batches": 2},
        "model": {"config": "tiny"},
        "optim": {"batch_size": 1, "grad_accum": 1, "max_steps": args.steps, "lr": 1e-3},
        "deepspeed": {"stage": args.stage},
        "workers": {"num_workers": workers, "use_gpu": False, "cpus_per_worker": 0.75, "torch_threads": 1,
                    "max_failures": 0, "report_poll_s": 0.1},
        "checkpoint": {"every_n_steps": args.steps, "export": False},
        "log": {"every_n_steps": 1, "progress": False},
    }  # fmt: skip


def median_after(times: list[float], warmup: int) -> float:
    return statistics.median(times[warmup:])


def ray_run(cfg_tree: dict, warmup: int) -> dict:
    from interrvos.train.config import TrainConfig
    from interrvos.train.observe import read_metrics_csv
    from interrvos.train.run import run_train

    started = time.perf_counter()
    summary = run_train(TrainConfig.model_validate(cfg_tree))
    rows = read_metrics_csv(summary["metrics_csv"])
    times = [r["step_time_s"] for r in rows]
    step = median_after(times, warmup)
    return {"step_time_s": step, "samples_per_s": cfg_tree["workers"]["num_workers"] / step,
            "wall_s": time.perf_counter() - started, "losses": [r["loss"] for r in rows], "times": times}


def torchrun_run(cfg_tree: dict, warmup: int, tmp: str) -> dict:
    cfg_file, out_file = os.path.join(tmp, "torchrun_cfg.json"), os.path.join(tmp, "torchrun_out.json")
    Path(cfg_file).write_text(json.dumps(cfg_tree))
    started = time.perf_counter()
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1", "MASTER_PORT": "29533"}
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node",
                    str(cfg_tree["workers"]["num_workers"]), "--master_port", "29533",
                    str(REPO / "bench" / "torchrun_train.py"), cfg_file, out_file], check=True, env=env)  # fmt: skip
    out = json.loads(Path(out_file).read_text())
    step = median_after(out["step_time_s"], warmup)
    return {"step_time_s": step, "samples_per_s": cfg_tree["workers"]["num_workers"] / step,
            "wall_s": time.perf_counter() - started, "losses": out["loss"], "times": out["step_time_s"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--stage", type=int, default=2)
    parser.add_argument("--frames", type=int, default=2)
    parser.add_argument("--expressions", type=int, default=2)
    parser.add_argument("--out", default="runs/bench/train.json")
    args = parser.parse_args()

    import ray

    from interrvos.config import RayConfig
    from interrvos.runtime import ensure_ray
    from interrvos.train.sample_data import write_pushing_dataset

    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        dataset = write_pushing_dataset(os.path.join(tmp, "data"), num_videos=8, num_frames=8, height=96, width=128)
        results = {}
        ensure_ray(RayConfig(num_cpus=2, object_store_mb=512))
        for workers in (2, 1):
            tree = train_config(dataset, os.path.join(tmp, "runs"), f"ray{workers}", workers, args)
            results[f"ray_{workers}"] = ray_run(tree, args.warmup)
        ray.shutdown()  # free the cores for torchrun
        results["torchrun_2"] = torchrun_run(train_config(dataset, tmp, "torchrun", 2, args), args.warmup, tmp)

    ray2, tr2, ray1 = results["ray_2"], results["torchrun_2"], results["ray_1"]
    overhead = ray2["step_time_s"] / tr2["step_time_s"]
    scaling = ray2["samples_per_s"] / ray1["samples_per_s"]
    same_losses = max(abs(a - b) for a, b in zip(ray2["losses"], tr2["losses"], strict=False))
    print(f"\nTiny ReVIOsA, ZeRO-{args.stage}, fp32 on CPU, batch 1 per worker, {args.frames} frames x "
          f"{args.expressions} expressions per sample, {args.steps} steps (median after {args.warmup})\n")
    print("| run | workers | step time (s) | samples/s | run wall time (s) |")
    print("|---|---|---|---|---|")
    for name, workers in (("torchrun_2", 2), ("ray_2", 2), ("ray_1", 1)):
        r = results[name]
        label = "torchrun + DeepSpeed" if name.startswith("torchrun") else "Ray Train + DeepSpeed"
        print(f"| {label} | {workers} | {r['step_time_s']:.3f} | {r['samples_per_s']:.2f} | {r['wall_s']:.0f} |")
    print(f"\nOverhead (Ray Train / torchrun step time, 2 workers): {overhead:.3f}  (goal <= 1.1)")
    print(f"Scaling (samples/s, 2 workers / 1 worker): {scaling:.2f}x")
    print(f"Largest loss difference, Ray vs torchrun, same steps: {same_losses:.2e}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"args": vars(args), "overhead": overhead, "scaling": scaling,
                                          "max_loss_difference": same_losses, "results": results}, indent=2))


if __name__ == "__main__":
    main()
