"""Training benchmark: Ray Train + DeepSpeed vs plain torchrun + DeepSpeed, the same tiny ReVIOsA, data,
sample plan and DeepSpeed config, measured in one run; and samples/s with 1 and 2 Ray Train workers.

    .venv/bin/python bench/bench_train.py            # --steps 40 --warmup 10 --stage 2

Step time = wall time between consecutive optimizer steps (data wait, forward, backward, optimizer,
the metrics all-reduce and on Ray whatever the loop reports), median over the steps after `warmup`
(10: Ray Data starts its decoding actors at the first batch, and each one spends ~5 s of CPU importing
torch and the model's processor while Ray's first ~8 steps run; torchrun's DataLoader worker forks
the ready process). Overhead = Ray step time / torchrun step time (goal <= 1.1).

Both Ray variants write every step's metrics to the local CSV; `ray_2` reports to Ray Train only with
its checkpoint (the default), `ray_2_per_step` calls `ray.train.report` every step as the loop did
before (`log.report_every_n_steps=1`, poll 0.1 s). `--rounds` (2) repeats torchrun and the two Ray
variants (their order swapped every round; torchrun also closes the run) and pools each variant's
steps: the speed of this shared 2-core machine drifts by 10-20% within minutes.
Prints a Markdown table and writes JSON.
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
                    "max_failures": 0, "report_poll_s": args.poll},
        "checkpoint": {"every_n_steps": args.steps, "export": False},
        "log": {"every_n_steps": 1, "report_every_n_steps": None, "progress": False},
    }  # fmt: skip


def per_step_reports(tree: dict) -> dict:
    """The loop as it was before it reported only with checkpoints: `ray.train.report` every step, 0.1 s poll."""
    tree["log"]["report_every_n_steps"], tree["workers"]["report_poll_s"] = 1, 0.1
    return tree


def median_after(times: list[float], warmup: int) -> float:
    return statistics.median(times[warmup:])


def pooled(runs: list[dict], warmup: int, workers: int) -> dict:
    """One figure from repeated runs of a variant: the median of all their steps after `warmup`."""
    step = statistics.median([t for r in runs for t in r["times"][warmup:]])
    return {"step_time_s": step, "samples_per_s": workers / step,
            "wall_s": statistics.mean(r["wall_s"] for r in runs), "losses": runs[0]["losses"],
            "times": [t for r in runs for t in r["times"]], "runs": [r["step_time_s"] for r in runs]}  # fmt: skip


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
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--stage", type=int, default=2)
    parser.add_argument("--frames", type=int, default=2)
    parser.add_argument("--expressions", type=int, default=2)
    parser.add_argument("--poll", type=float, default=0.5, help="workers.report_poll_s of the default runs")
    parser.add_argument("--rounds", type=int, default=2,
                        help="rounds of torchrun, Ray with per-step reports, Ray (this machine's speed drifts)")
    parser.add_argument("--out", default="runs/bench/train.json")
    args = parser.parse_args()

    import ray

    from interrvos.config import RayConfig
    from interrvos.runtime import ensure_ray
    from interrvos.train.sample_data import write_pushing_dataset

    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        dataset = write_pushing_dataset(os.path.join(tmp, "data"), num_videos=8, num_frames=8, height=96, width=128)
        load = os.getloadavg()[0]
        torchrun_tree, runs = train_config(dataset, tmp, "torchrun", 2, args), os.path.join(tmp, "runs")
        each: dict[str, list[dict]] = {"torchrun_2": [], "ray_2_per_step": [], "ray_2": [], "ray_1": []}
        for i in range(args.rounds + 1):  # torchrun opens every round and closes the last (Ray stopped meanwhile)
            each["torchrun_2"].append(torchrun_run(torchrun_tree, args.warmup, tmp))
            ensure_ray(RayConfig(num_cpus=2, object_store_mb=512))
            if i < args.rounds:  # the two Ray variants swap places every round
                trees = {"ray_2_per_step": per_step_reports(train_config(dataset, runs, f"per_step{i}", 2, args)),
                         "ray_2": train_config(dataset, runs, f"ray2_{i}", 2, args)}  # fmt: skip
                for name in list(trees)[:: 1 if i % 2 == 0 else -1]:
                    each[name].append(ray_run(trees[name], args.warmup))
            else:
                each["ray_1"].append(ray_run(train_config(dataset, runs, "ray1", 1, args), args.warmup))
            ray.shutdown()  # free the cores for torchrun
        each["torchrun_2"].append(torchrun_run(torchrun_tree, args.warmup, tmp))
        results = {name: pooled(r, args.warmup, 1 if name == "ray_1" else 2) for name, r in each.items()}

    ray2, tr2, ray1 = results["ray_2"], results["torchrun_2"], results["ray_1"]
    overhead = ray2["step_time_s"] / tr2["step_time_s"]
    overhead_per_step = results["ray_2_per_step"]["step_time_s"] / tr2["step_time_s"]
    scaling = ray2["samples_per_s"] / ray1["samples_per_s"]
    same_losses = max(abs(a - b) for a, b in zip(ray2["losses"], tr2["losses"], strict=False))
    print(f"\nTiny ReVIOsA, ZeRO-{args.stage}, fp32 on CPU, batch 1 per worker, {args.frames} frames x "
          f"{args.expressions} expressions per sample, {args.steps} steps (median after {args.warmup}); "
          f"load average at the start {load:.2f}\n")
    print("| run | workers | step time (s) | samples/s | run wall time (s) |")
    print("|---|---|---|---|---|")
    labels = {"torchrun_2": "torchrun + DeepSpeed", "ray_2_per_step": "Ray Train + DeepSpeed, report every step",
              "ray_2": "Ray Train + DeepSpeed, report with checkpoints", "ray_1": "Ray Train + DeepSpeed"}
    for name, workers in (("torchrun_2", 2), ("ray_2_per_step", 2), ("ray_2", 2), ("ray_1", 1)):
        r = results[name]
        print(f"| {labels[name]} | {workers} | {r['step_time_s']:.3f} | {r['samples_per_s']:.2f} | "
              f"{r['wall_s']:.0f} |")
    print(f"\nOverhead (Ray Train / torchrun step time, 2 workers): {overhead:.3f}  (goal <= 1.1); "
          f"with a report every step: {overhead_per_step:.3f}")
    for name in ("torchrun_2", "ray_2_per_step", "ray_2"):
        print(f"{name} per run: " + " / ".join(f"{t:.3f}" for t in results[name]["runs"]))
    print(f"Scaling (samples/s, 2 workers / 1 worker): {scaling:.2f}x")
    print(f"Largest loss difference, Ray vs torchrun, same steps: {same_losses:.2e}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"args": vars(args), "load_average_at_start": load, "overhead": overhead,
                                          "overhead_per_step_reports": overhead_per_step, "scaling": scaling,
                                          "max_loss_difference": same_losses, "results": results}, indent=2))


if __name__ == "__main__":
    main()
