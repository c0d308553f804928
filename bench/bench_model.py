"""ReVIOsA inference speed: per-frame time and its split between the MLLM, the SAM2 image encoder
and SAM2 propagation (memory attention + mask decoder + memory encoder), in one run.

CPU (the tiny config at 128 and 256 px; one intra-op thread unless --threads):
    .venv/bin/python bench/bench_model.py
GPU (paper-size shapes in bf16; random weights unless real ones are given with --set):
    .venv/bin/python bench/bench_model.py --config 1b --sizes 1024 --device cuda --dtype bfloat16 --frames 200
The figure printed is frames/s and, with --config 1b/4b, the ratio to SAM2's published speed for its
encoder (hiera-large: 40 frames/s on an A100, compiled; REFERENCE.md), for the SAM2 part alone and for
the whole model. Results: docs/model.md ("Benchmarks").
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch

from interrvos.model.inference import inference_context, segment_video
from interrvos.model.reviosa import build_model
from interrvos.model.synthetic import synthetic_clip
from interrvos.model.tracking import Timings

SAM2_PUBLISHED_FPS = {"hiera_t": 91.0, "hiera_s": 85.0, "hiera_b+": 64.0, "hiera_l": 40.0}  # A100, compiled
ANSWER = "It is [SEG_ACT] and [SEG_TAR]."  # teacher-forced: the random model would not emit the tokens


def encoder_name(config: str) -> str:
    return next((k for k in SAM2_PUBLISHED_FPS if k in config), "?")


def run_once(model, frames, expressions: int, device, dtype) -> Timings:
    timings = Timings()
    started, cpu = time.perf_counter(), time.process_time()
    with inference_context(device, dtype):
        segment_video(model, frames, ["red square pushing the blue disc"] * expressions, timings=timings,
                      answers=[ANSWER] * expressions)  # fmt: skip
    if device.type == "cuda":
        torch.cuda.synchronize()
    timings.extra["total"] = time.perf_counter() - started
    timings.extra["cpu"] = time.process_time() - cpu
    return timings


def bench_size(args, size: int) -> dict:
    # The paper's path (memory propagation), whatever the preset's default (tiny decodes every frame prompted).
    overrides = [f"sam.image_size={size}", "inference.propagation=memory", *args.set]
    model = build_model(args.config, overrides).eval()
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    model = model.to(device, dtype)
    clip = synthetic_clip(args.frames, args.height, args.width, seed=0)
    run_once(model, clip.frames[: min(8, args.frames)], args.expressions, device, dtype)  # warm-up
    runs = [run_once(model, clip.frames, args.expressions, device, dtype) for _ in range(args.repeats)]
    best = min(runs, key=lambda t: t.extra["total"])  # least disturbed by other processes
    n = args.frames
    per_frame = {
        "total_ms": 1000 * best.extra["total"] / n,
        "mllm_ms": 1000 * best.mllm / n,
        "sam2_encoder_ms": 1000 * best.encoder / n,
        "propagation_ms": 1000 * best.propagation / n,
    }
    per_frame["other_ms"] = max(0.0, per_frame["total_ms"] - sum(per_frame[k] for k in list(per_frame)[1:]))
    per_frame["cpu_ms"] = 1000 * best.extra["cpu"] / n
    per_frame["median_total_ms"] = 1000 * statistics.median(t.extra["total"] for t in runs) / n
    sam2_s = (best.encoder + best.propagation) / n
    out = {
        "config": args.config, "sam_config": model.cfg.sam.config, "size": size, "frames": n,
        "expressions": args.expressions, "prompts": 2 * args.expressions, "device": str(device),
        "dtype": args.dtype, "threads": torch.get_num_threads(), **{k: round(v, 2) for k, v in per_frame.items()},
        "frames_per_s": round(1000 / per_frame["total_ms"], 2), "sam2_frames_per_s": round(1 / sam2_s, 2),
        "load_avg_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),
    }  # fmt: skip
    published = SAM2_PUBLISHED_FPS.get(encoder_name(model.cfg.sam.config))
    if args.config != "tiny" and published:
        out["published_sam2_fps"] = published
        out["ratio_sam2_vs_published"] = round(out["sam2_frames_per_s"] / published, 3)
        out["ratio_model_vs_published"] = round(out["frames_per_s"] / published, 3)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="tiny", help="tiny, 1b, 4b or a YAML file")
    p.add_argument("--sizes", default="128,256", help="SAM2 input sides to measure")
    p.add_argument("--frames", type=int, default=40, help="clip length")
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--expressions", type=int, default=1, help="expressions tracked together (2 prompts each)")
    p.add_argument("--repeats", type=int, default=5, help="runs per size; the fastest is reported")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (CPU)")
    p.add_argument("--set", action="append", default=[], help="model config override, e.g. mllm.pretrained=DIR")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = [bench_size(args, int(s)) for s in args.sizes.split(",")]
    header = ("size", "total_ms", "mllm_ms", "sam2_encoder_ms", "propagation_ms", "other_ms", "cpu_ms", "frames_per_s")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(str(r[h]) for h in header) + " |")
    print(json.dumps(rows, indent=2))
    for r in rows:
        if "ratio_sam2_vs_published" in r:
            print(f"{r['size']} px: SAM2 part {r['sam2_frames_per_s']} frames/s = {r['ratio_sam2_vs_published']} x the "
                  f"published {r['published_sam2_fps']} (A100, compiled); whole model {r['ratio_model_vs_published']} x")
        else:
            print(f"{r['size']} px: {r['frames_per_s']} frames/s; propagation/encoder time "
                  f"{r['propagation_ms'] / max(r['sam2_encoder_ms'], 1e-9):.2f}")


if __name__ == "__main__":
    main()
