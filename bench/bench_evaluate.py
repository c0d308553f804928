"""Evaluation speed: this implementation of J and F against a per-frame DAVIS-style one, on the same
masks, in one run; then the whole `interrvos evaluate` on Ray with 1 and 2 workers.

1. Metric time (single process): every (prediction, ground truth) frame pair of a synthetic
   benchmark set at 480x854 (the DAVIS/MeViS frame size) is decoded once, untimed; then both
   implementations score every pair and their J and F must be identical. The figure is
   davis_seconds / ours_seconds (goal >= 10). Also from the RLEs as stored: pycocotools decoding
   plus the DAVIS-style code against the RLE path the evaluation job uses (rle_band).
2. Scaling: `score_predictions` (validation, RLE decoding, scoring, means) with the Ray executor
   and an actor pool of exactly 1 and of exactly 2 workers; the figure is t(1) / t(2).

    .venv/bin/python bench/bench_evaluate.py [--videos 16 --frames 80 --height 480 --width 854]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from davis_reference import db_eval_boundary, db_eval_iou  # noqa: E402

from interrvos.config import ActorPoolConfig, RayConfig  # noqa: E402
from interrvos.data.mevis import load_dataset, write_dataset  # noqa: E402
from interrvos.data.records import Expression, VideoEntry  # noqa: E402
from interrvos.data.rle import decode_rle, encode_mask  # noqa: E402
from interrvos.evaluate.config import EvaluateConfig, OverlayConfig  # noqa: E402
from interrvos.evaluate.metrics import jf_score  # noqa: E402
from interrvos.evaluate.predictions import load_mask, open_predictions, prediction_record, write_predictions  # noqa: E402
from interrvos.evaluate.rle_band import foreground_runs, jf_from_runs, union_runs  # noqa: E402
from interrvos.evaluate.run import score_predictions  # noqa: E402
from interrvos.evaluate.score import truth_mask  # noqa: E402
from interrvos.runtime import ensure_ray  # noqa: E402

# Ellipse radii (px) at 480x854: roughly 0.1-0.7%, 0.7-4% and 4-13% of the frame.
RADII = {"small": (10, 30), "medium": (30, 70), "large": (70, 130)}


def ellipse(h: int, w: int, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    yy, xx = np.ogrid[:h, :w]
    return ((((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2) <= 1).astype(np.uint8)


def make_benchmark_set(root: Path, videos: int, frames: int, h: int, w: int, seed: int = 0) -> str:
    """Videos of 3 moving ellipses (small, medium, large), each hidden now and then; per video a single,
    a multi and an actor-target expression; predictions = the truth jittered, sometimes empty or wrong."""
    rng = np.random.default_rng(seed)
    entries, masks, records = {}, {}, []
    names = [f"{i:05d}" for i in range(frames)]
    for v in range(videos):
        vid = f"bench{v:03d}"
        tracks = {}
        for k, size in enumerate(RADII):
            ry, rx = rng.uniform(*RADII[size], 2)
            y, x = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w
            vy, vx = rng.uniform(-2, 2, 2)
            hidden = rng.random(frames) < 0.1
            tracks[f"{vid}:{k}"] = [None if hidden[t] else encode_mask(ellipse(h, w, y + vy * t, x + vx * t, ry, rx))
                                    for t in range(frames)]
        masks.update(tracks)
        anno = list(tracks)
        entries[vid] = VideoEntry(vid_id=vid, frames=names, objects={str(k): {"category": s, "anno_id": a}
                                                                     for k, (s, a) in enumerate(zip(RADII, anno))},
                                  expressions={
            "0": Expression(exp="the medium one", caption_type="single_all", obj_id=["1"], anno_id=[anno[1]]),
            "1": Expression(exp="small and large", caption_type="multi", obj_id=["0", "2"], anno_id=[anno[0], anno[2]]),
            "2": Expression(exp="large pushing small", caption_type="interaction", interaction="unidirectional",
                            obj_id=["2", "0"], anno_id=[anno[2], anno[0]], actor_ids=["2"], target_ids=["0"],
                            actor_anno_id=[anno[2]], target_anno_id=[anno[0]])})

        def jitter(track):
            out = []
            for rle in track:
                if rle is None or rng.random() < 0.08:
                    out.append(None if rng.random() < 0.7 else tracks[anno[int(rng.integers(0, 3))]][0])
                    continue
                m = decode_rle(rle)
                m = np.roll(m, tuple(rng.integers(-6, 7, 2)), axis=(0, 1))
                out.append(encode_mask(m))
            return out

        records += [prediction_record(vid, "0", jitter(tracks[anno[1]])),
                    prediction_record(vid, "1", jitter(tracks[anno[0]])),
                    prediction_record(vid, "2", jitter(tracks[anno[2]]), jitter(tracks[anno[0]]))]
    write_dataset(str(root / "dataset"), entries, masks)
    write_predictions(str(root / "predictions.jsonl"), records)
    return str(root / "predictions.jsonl")


def frame_pairs(root: Path, predictions: str):
    """Per expression item: the (prediction RLE, truth RLEs) of every frame, the decoded (prediction,
    truth) masks, and the time pycocotools took to decode them."""
    ds, source = load_dataset(str(root / "dataset")), open_predictions(predictions)
    from interrvos.evaluate.checks import index_predictions
    from interrvos.evaluate.protocol import expression_items
    from interrvos.evaluate.score import truth_anno_ids

    wanted = [(v, e) for v, e, _ in ds.all_expressions()]
    index = index_predictions(source, ds, wanted)
    for (vid, exp), locator in index.entries.items():
        e, size = ds.videos[vid].expressions[exp], tuple(ds.frame_size(vid))
        pred = source.load(ds, vid, exp, locator)
        for spec in expression_items(e):
            track = pred.actor if spec.predicted == "actor" else pred.target
            annos = truth_anno_ids(e, spec.truth)
            rles = [(track[i], [ds.masks(a)[i] for a in annos]) for i in range(len(track))]
            started = time.perf_counter()
            pairs = [(load_mask(track[i], *size), truth_mask(ds, vid, annos, i, size)) for i in range(len(track))]
            yield size, rles, pairs, time.perf_counter() - started


def metric_ratio(root: Path, predictions: str) -> dict:
    davis_s = ours_s = decode_s = from_rle_s = 0.0
    n = 0
    worst = 0.0
    for (h, w), rles, pairs, decode in frame_pairs(root, predictions):
        decode_s += decode
        started = time.perf_counter()
        ref = [(db_eval_iou(g, p), db_eval_boundary(p, g)) for p, g in pairs]
        davis_s += time.perf_counter() - started
        started = time.perf_counter()
        got = [jf_score(p, g) for p, g in pairs]
        ours_s += time.perf_counter() - started
        started = time.perf_counter()
        from_rle = [jf_from_runs(foreground_runs(p, h, w), union_runs([foreground_runs(t, h, w) for t in truths]), h, w)
                    for p, truths in rles]
        from_rle_s += time.perf_counter() - started
        worst = max([worst] + [abs(a - b) for r, g in zip(ref, got) for a, b in zip(r, g)])
        assert from_rle == got
        n += len(pairs)
    return {"frame_pairs": n, "davis_s": round(davis_s, 3), "ours_s": round(ours_s, 3),
            "ratio": round(davis_s / ours_s, 2), "max_abs_difference": worst, "decode_s": round(decode_s, 3),
            "from_rle_s": round(from_rle_s, 3), "end_to_end_ratio": round((davis_s + decode_s) / from_rle_s, 2),
            "davis_ms_per_pair": round(1000 * davis_s / n, 3), "ours_ms_per_pair": round(1000 * ours_s / n, 3)}


def ratio_by_object_size(h: int, w: int, repeats: int = 30) -> dict:
    """The same comparison on one ellipse against itself moved by (4, -5) px, per size: the fast path
    works on the two masks' bounding box, so its advantage shrinks as objects fill the frame."""
    out = {}
    for label, radii in {"small (r=20)": (20, 20), "medium (r=60)": (60, 60), "large (r=120)": (120, 120),
                         "huge (r=220)": (220, 220)}.items():
        g = ellipse(h, w, h / 2, w / 2, *radii)
        p = np.roll(g, (4, -5), axis=(0, 1))
        started = time.perf_counter()
        for _ in range(repeats):
            ref = (db_eval_iou(g, p), db_eval_boundary(p, g))
        davis = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(repeats):
            got = jf_score(p, g)
        ours = time.perf_counter() - started
        assert got == ref, (label, got, ref)
        out[label] = round(davis / ours, 2)
    return out


def scaling(root: Path, predictions: str) -> dict:
    out = {}
    # The first Ray run starts worker processes and imports: a warm-up, untimed (as in bench_extract).
    runs = (("warm-up", "ray", 2), ("local", "local", 1), ("ray_1", "ray", 1), ("ray_2", "ray", 2))
    for label, executor, workers in runs:
        cfg = EvaluateConfig(dataset=str(root / "dataset"), predictions=predictions, executor=executor,
                             expressions_per_task=2, workers=ActorPoolConfig(min_size=workers, max_size=workers),
                             overlays=OverlayConfig(samples=0))
        started = time.perf_counter()
        metrics = score_predictions(cfg)
        out[label] = {"seconds": round(time.perf_counter() - started, 2), "overall_JF": metrics["settings"]["overall"]["JF"]}
    del out["warm-up"]
    assert out["ray_1"]["overall_JF"] == out["ray_2"]["overall_JF"] == out["local"]["overall_JF"]
    out["scaling_2_vs_1"] = round(out["ray_1"]["seconds"] / out["ray_2"]["seconds"], 2)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, default=16)
    p.add_argument("--frames", type=int, default=80)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--width", type=int, default=854)
    p.add_argument("--work", default="runs/bench_evaluate")
    args = p.parse_args()
    work = Path(args.work)
    predictions = make_benchmark_set(work, args.videos, args.frames, args.height, args.width)
    metric = metric_ratio(work, predictions)
    by_size = ratio_by_object_size(args.height, args.width)
    ensure_ray(RayConfig(num_cpus=2))
    scale = scaling(work, predictions)
    print(f"{args.videos} videos x {args.frames} frames at {args.height}x{args.width}, "
          f"{metric['frame_pairs']} scored frame pairs")
    print("| implementation | seconds | ms per frame pair |")
    print("|---|---|---|")
    print(f"| DAVIS-style per frame (skimage disk + cv2.dilate) | {metric['davis_s']} | {metric['davis_ms_per_pair']} |")
    print(f"| interrvos.evaluate.metrics | {metric['ours_s']} | {metric['ours_ms_per_pair']} |")
    print(f"ratio (goal >= 10): {metric['ratio']}x; max |difference| of J and F: {metric['max_abs_difference']}")
    print("ratio by object size: " + ", ".join(f"{k} {v}x" for k, v in by_size.items()))
    print(f"from RLEs: pycocotools decoding {metric['decode_s']} s + DAVIS-style {metric['davis_s']} s vs "
          f"interrvos.evaluate.rle_band (parse + band decode + J&F) {metric['from_rle_s']} s: "
          f"{metric['end_to_end_ratio']}x, same numbers")
    print(f"whole evaluation: one process {scale['local']['seconds']} s, Ray 1 worker {scale['ray_1']['seconds']} s, "
          f"Ray 2 workers {scale['ray_2']['seconds']} s; scaling 2 vs 1: x{scale['scaling_2_vs_1']}")
    (work / "results.json").write_text(json.dumps({"metric": metric, "by_object_size": by_size, "scaling": scale, "args": vars(args)}, indent=2))


if __name__ == "__main__":
    main()
