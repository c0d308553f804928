"""Serving on Ray Serve: what HTTP and Serve add to a /v1/segment call, load, replicas, shared encoding,
and a soak with bad requests, against the model app on a private local Ray, in one run.

1. Latency: p50 of POST /v1/segment through HTTP against the same call in-process (parse the request,
   open the clip, `run_segment`) on the same checkpoint with 1 torch thread, as a replica runs it;
   calls interleaved so both see the same machine load. Figure: http_p50 / inprocess_p50 (goal <= 1.15).
2. Load: N concurrent clients share a bounded number of requests: p50/p95, errors (goal 0), requests/s
   with 1 replica and, after redeploying with num_replicas 2, with 2 replicas. Figure: rps(2) / rps(1).
3. Shared encoding: 4 expressions on one clip in one request against 4 one-expression requests in a
   row. Figures: separate_s / one_s and the summed encoder_s of the answers (one pass against four).
4. Soak: for a fixed time, 2 clients loop over requests of which every 5th is bad (malformed JSON,
   unknown clip, not-a-video upload, negative start, too many expressions): 5xx (goal 0), replica
   restarts (the /healthz pid before and after, goal 0), the replica's RSS sampled every few seconds.

Everything (synthetic clip, tiny checkpoint) lives in a temp folder that is removed at the end; Serve
listens on a free port of 127.0.0.1 only. ~3-5 minutes on 2 cores.

    .venv/bin/python bench/bench_serve.py          # --frames 16 --clients 4 --load-requests 40 --soak-s 60
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import psutil  # noqa: E402
import requests  # noqa: E402

ANSWER = "It is [SEG_ACT] and [SEG_TAR]."  # teacher-forced: the random tiny model would not emit the tokens
EXPRESSIONS = ["red square pushing the blue disc", "the square on the left", "the disc being pushed",
               "the object moving right"]  # fmt: skip
CHECKPOINT, DATASET, CLIP = "tiny", "bench", "vid0"
TIMEOUT_S = 120



def run_threads(threads: list[threading.Thread]) -> float:
    """Start the client threads together and wait for all; returns the wall seconds."""
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_world(root: Path, frames: int, height: int, width: int) -> tuple[str, str]:
    """A one-clip dataset (the synthetic pushing clip) and one tiny checkpoint, as in tests/serving."""
    from interrvos.data.mevis import write_dataset, write_frame
    from interrvos.data.records import Expression, VideoEntry
    from interrvos.data.rle import encode_mask
    from interrvos.model.checkpoint import save_checkpoint
    from interrvos.model.reviosa import build_model
    from interrvos.model.synthetic import synthetic_clip

    ds, ckpts = root / "dataset", root / "checkpoints"
    clip = synthetic_clip(frames, height, width, seed=0)
    names = [f"{i:05d}" for i in range(frames)]
    for name, frame in zip(names, clip.frames, strict=True):
        write_frame(str(ds), CLIP, name, frame)
    masks = {f"{CLIP}:0": [encode_mask(m) for m in clip.actor], f"{CLIP}:1": [encode_mask(m) for m in clip.target]}
    uni = Expression(exp=EXPRESSIONS[0], caption_type="interaction", obj_id=["0", "1"],
                     anno_id=[f"{CLIP}:0", f"{CLIP}:1"], interaction="unidirectional", actor_ids=["0"],
                     target_ids=["1"], actor_anno_id=[f"{CLIP}:0"], target_anno_id=[f"{CLIP}:1"])  # fmt: skip
    entry = VideoEntry(vid_id=CLIP, frames=names, expressions={"0": uni},
                       objects={"0": {"category": "square", "anno_id": f"{CLIP}:0"},
                                "1": {"category": "disc", "anno_id": f"{CLIP}:1"}})  # fmt: skip
    write_dataset(str(ds), {CLIP: entry}, masks)
    save_checkpoint(build_model("tiny"), str(ckpts / CHECKPOINT))
    return str(ds), str(ckpts)


def app_config(dataset: str, checkpoints: str, replicas: int):
    from interrvos.serving.config import ModelAppConfig

    return ModelAppConfig(
        checkpoints_root=checkpoints, default_checkpoint=CHECKPOINT, max_models_per_replica=1,
        datasets={DATASET: dataset}, device="cpu", dtype="float32", num_threads=1,
        limits={"max_upload_mb": 4, "max_frames": 256, "max_expressions": 4, "request_timeout_s": TIMEOUT_S},
        deployment={"num_replicas": replicas, "num_cpus": 0.5, "max_ongoing_requests": 4,
                    "max_queued_requests": 32, "health_check_period_s": 2},
    )  # fmt: skip


def deploy(cfg) -> None:
    from ray import serve

    from interrvos.serving.model_app import model_deployment

    serve.run(model_deployment(cfg).bind(cfg.model_dump(mode="json")), name="model", route_prefix="/")


def body(expressions: list[str], **extra) -> dict:
    return {"checkpoint": CHECKPOINT, "video": {"dataset": DATASET, "clip": CLIP}, "expressions": expressions,
            "force_answers": [ANSWER] * len(expressions), **extra}  # fmt: skip


def post(url: str, session: requests.Session | None = None, **kw) -> tuple[int, float, dict | None]:
    """(status, client seconds, JSON answer or None); a connection failure is status 0."""
    started = time.perf_counter()
    try:
        r = (session or requests).post(f"{url}/v1/segment", timeout=TIMEOUT_S, **kw)
    except requests.RequestException:
        return 0, time.perf_counter() - started, None
    seconds = time.perf_counter() - started
    try:
        return r.status_code, seconds, r.json()
    except ValueError:
        return r.status_code, seconds, None


def area(rle: dict) -> int:
    from pycocotools import mask as mask_utils

    return int(mask_utils.area({"size": rle["size"], "counts": rle["counts"].encode("ascii")}))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


# ---- 1. latency ----------------------------------------------------------------------------------------


def latency(url: str, cfg, repeats: int) -> dict:
    import torch

    from interrvos.serving.checkpoints import CheckpointCatalog, load_model
    from interrvos.serving.requests import SegmentRequest, parse_request
    from interrvos.serving.segment import run_segment
    from interrvos.serving.video_input import open_video

    torch.set_num_threads(1)  # as a replica (cfg.num_threads)
    info = CheckpointCatalog(cfg.checkpoints_root).get(CHECKPOINT)
    model = load_model(info, cfg.device, cfg.dtype)
    payload = body(EXPRESSIONS[:1])

    def in_process() -> tuple[float, dict]:
        started = time.perf_counter()
        req = parse_request(json.dumps(payload).encode(), SegmentRequest, cfg.limits)
        with open_video(req, cfg) as video:
            answer = run_segment(model, info, video, req)
        return time.perf_counter() - started, answer

    session = requests.Session()
    for _ in range(2):  # warm-up: the replica loads the checkpoint on its first request
        assert post(url, session, json=payload)[0] == 200
        in_process()
    http_s, local_s, same = [], [], True
    stages = {"replica": [], "inprocess": []}  # the answers' own timings: where a difference lies
    for _ in range(repeats):
        status, seconds, served = post(url, session, json=payload)
        assert status == 200, served
        http_s.append(seconds)
        stages["replica"].append(served["timings"])
        seconds, answer = in_process()
        local_s.append(seconds)
        stages["inprocess"].append(answer["timings"])
        same = same and all(a["actor"] == b["actor"] and a["target"] == b["target"]
                            for a, b in zip(served["expressions"], answer["expressions"], strict=True))  # fmt: skip
    assert same, "the served masks differ from the in-process ones"
    drawn = sum(area(r) > 0 for r in served["expressions"][0]["actor"])  # frames with a non-empty actor mask
    http_p50, local_p50 = statistics.median(http_s), statistics.median(local_s)
    return {"requests": repeats, "http_p50_s": round(http_p50, 4), "inprocess_p50_s": round(local_p50, 4),
            "ratio": round(http_p50 / local_p50, 3), "overhead_ms": round(1000 * (http_p50 - local_p50), 1),
            "same_masks": same, "frames_with_masks": drawn,
            "stage_p50_s": {where: {k: round(statistics.median(t[k] for t in runs), 4) for k in runs[0]}
                            for where, runs in stages.items()}}  # fmt: skip


# ---- 2. load ---------------------------------------------------------------------------------------------


def healthz_pid(url: str) -> int:
    return requests.get(f"{url}/healthz", timeout=30).json()["pid"]


def replica_pids(url: str, want: int, tries: int = 40) -> list[int]:
    """The replicas' pids, from /healthz answers (the proxy spreads them over the replicas)."""
    seen: set[int] = set()
    for _ in range(tries):
        seen.add(healthz_pid(url))
        if len(seen) >= want:
            break
    return sorted(seen)


def cpu_seconds(pids: list[int]) -> list[float]:
    return [sum(psutil.Process(pid).cpu_times()[:2]) for pid in pids]


def load(url: str, clients: int, total: int, pids: list[int] | None = None) -> dict:
    """`clients` threads take requests from one counter until `total` have been sent. With the replicas'
    pids, also the CPU seconds each replica used per wall second (how many cores they actually got)."""
    lock, sent = threading.Lock(), [0]
    results: list[tuple[int, float]] = []
    payload = body(EXPRESSIONS[:1])

    def client() -> None:
        session = requests.Session()
        while True:
            with lock:
                if sent[0] >= total:
                    return
                sent[0] += 1
            status, seconds, _ = post(url, session, json=payload)
            with lock:
                results.append((status, seconds))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    cpu_before = cpu_seconds(pids or [])
    wall = run_threads(threads)
    cores = [round((b - a) / wall, 2) for a, b in zip(cpu_before, cpu_seconds(pids or []), strict=True)]
    ok = [s for status, s in results if status == 200]
    return {"clients": clients, "requests": len(results), "errors": len(results) - len(ok),
            "p50_s": round(pct(ok, 0.5), 3), "p95_s": round(pct(ok, 0.95), 3), "wall_s": round(wall, 2),
            "rps": round(len(ok) / wall, 3), "replicas": len(pids or []), "replica_cores_used": cores}  # fmt: skip


# ---- 3. shared encoding ------------------------------------------------------------------------------------


def shared_encoding(url: str, repeats: int) -> dict:
    session = requests.Session()
    one, separate, enc_one, enc_separate, drawn = [], [], [], [], True
    for _ in range(repeats):
        status, seconds, answer = post(url, session, json=body(EXPRESSIONS))
        assert status == 200, answer
        one.append(seconds)
        enc_one.append(answer["timings"]["encoder_s"])
        drawn = drawn and all(e["target"] is not None for e in answer["expressions"])
        started, enc = time.perf_counter(), 0.0
        for text in EXPRESSIONS:
            status, _, answer = post(url, session, json=body([text]))
            assert status == 200, answer
            enc += answer["timings"]["encoder_s"]
        separate.append(time.perf_counter() - started)
        enc_separate.append(enc)
    one_s, sep_s = statistics.median(one), statistics.median(separate)
    e1, e4 = statistics.median(enc_one), statistics.median(enc_separate)
    return {"expressions": len(EXPRESSIONS), "repeats": repeats, "one_request_s": round(one_s, 3),
            "separate_requests_s": round(sep_s, 3), "ratio": round(sep_s / one_s, 2),
            "encoder_s_one_request": round(e1, 3), "encoder_s_separate": round(e4, 3),
            "encoder_passes": round(e4 / e1, 2), "targets_drawn": drawn}  # fmt: skip


# ---- 4. soak ---------------------------------------------------------------------------------------------


def bad_requests() -> list[tuple[str, dict]]:
    upload = {"request": (None, json.dumps({"expressions": EXPRESSIONS[:1]}))}
    return [
        ("malformed JSON", {"data": b'{"video": {"dataset": ', "headers": {"Content-Type": "application/json"}}),
        ("unknown clip", {"json": {**body(EXPRESSIONS[:1]), "video": {"dataset": DATASET, "clip": "no-such-clip"}}}),
        ("not-a-video upload", {"files": {**upload, "video": ("x.mp4", b"this is not a video" * 50, "video/mp4")}}),
        ("negative start", {"json": body(EXPRESSIONS[:1], start=-3)}),
        ("too many expressions", {"json": body(EXPRESSIONS + ["one more"])}),
    ]  # fmt: skip


def soak(url: str, seconds: float, clients: int, max_requests: int, sample_s: float) -> dict:
    pid = healthz_pid(url)
    bad = bad_requests()
    lock, counter = threading.Lock(), [0]
    statuses: dict[str, dict[int, int]] = {"good": {}, **{name: {} for name, _ in bad}}
    rss: list[int] = []
    stop = threading.Event()
    deadline = time.monotonic() + seconds

    def sample() -> None:
        proc = psutil.Process(pid)
        while not stop.is_set():
            try:
                rss.append(proc.memory_info().rss)
            except psutil.Error:
                return
            stop.wait(sample_s)

    def client() -> None:
        session = requests.Session()
        while time.monotonic() < deadline:
            with lock:
                if counter[0] >= max_requests:
                    return
                i, counter[0] = counter[0], counter[0] + 1
            name, kwargs = bad[(i // 5) % len(bad)] if i % 5 == 4 else ("good", {"json": body(EXPRESSIONS[:1])})
            status = post(url, session, **kwargs)[0]
            with lock:
                statuses[name][status] = statuses[name].get(status, 0) + 1

    sampler = threading.Thread(target=sample)
    sampler.start()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    wall = run_threads(threads)
    stop.set()
    sampler.join()
    after = healthz_pid(url)
    every = [(name, status, n) for name, counts in statuses.items() for status, n in counts.items()]
    mb = [r / 2**20 for r in rss]
    return {
        "seconds": round(wall, 1), "requests": sum(n for _, _, n in every),
        "bad": sum(n for name, _, n in every if name != "good"),
        "server_errors_5xx": sum(n for _, status, n in every if status >= 500 or status == 0),
        "good_not_200": sum(n for name, status, n in every if name == "good" and status != 200),
        "bad_not_4xx": sum(n for name, status, n in every if name != "good" and not 400 <= status < 500),
        "statuses": {name: {str(s): n for s, n in sorted(c.items())} for name, c in statuses.items()},
        "replica_restarts": int(after != pid), "pid_before": pid, "pid_after": after,
        "rss_samples": len(mb), "rss_first_mb": round(mb[0], 1), "rss_last_mb": round(mb[-1], 1),
        "rss_max_mb": round(max(mb), 1), "rss_growth": round(mb[-1] / mb[0], 3),
        "rss_mb": [round(m) for m in mb],
    }  # fmt: skip


# ---- main ------------------------------------------------------------------------------------------------


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--height", type=int, default=96)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--latency-requests", type=int, default=10, help="each way (HTTP, in-process)")
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--load-requests", type=int, default=40, help="per replica count")
    p.add_argument("--shared-repeats", type=int, default=3)
    p.add_argument("--soak-s", type=float, default=60.0)
    p.add_argument("--soak-clients", type=int, default=2)
    p.add_argument("--soak-max-requests", type=int, default=400)
    args = p.parse_args()

    import ray
    from ray import serve

    from interrvos.config import RayConfig
    from interrvos.runtime import ensure_ray

    began = time.perf_counter()
    load_before = os.getloadavg()[0]
    out: dict = {"args": vars(args), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        dataset, checkpoints = make_world(Path(tmp), args.frames, args.height, args.width)
        ensure_ray(RayConfig(num_cpus=2, object_store_mb=256))
        try:
            port = free_port()
            serve.start(http_options={"host": "127.0.0.1", "port": port})
            url = f"http://127.0.0.1:{port}"
            t = time.perf_counter()
            deploy(app_config(dataset, checkpoints, 1))
            out["deploy_s"] = round(time.perf_counter() - t, 1)
            cfg = app_config(dataset, checkpoints, 1)
            out["latency"] = latency(url, cfg, args.latency_requests)
            out["load_1_replica"] = load(url, args.clients, args.load_requests, replica_pids(url, 1))
            out["shared_encoding"] = shared_encoding(url, args.shared_repeats)
            out["soak"] = soak(url, args.soak_s, args.soak_clients, args.soak_max_requests, sample_s=3.0)
            t = time.perf_counter()
            deploy(app_config(dataset, checkpoints, 2))
            out["redeploy_2_s"] = round(time.perf_counter() - t, 1)
            load(url, args.clients, 2 * args.clients)  # warm-up: each new replica loads the checkpoint
            pids = replica_pids(url, 2)
            assert len(pids) == 2, f"/healthz answered from {pids} only"
            out["load_2_replicas"] = load(url, args.clients, args.load_requests, pids)
        finally:
            serve.shutdown()
            ray.shutdown()
    lat, l1, l2, sh, so = (out[k] for k in ("latency", "load_1_replica", "load_2_replicas", "shared_encoding", "soak"))
    out["throughput_ratio_2_vs_1"] = round(l2["rps"] / l1["rps"], 2)
    out["load_avg_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    out["wall_s"] = round(time.perf_counter() - began, 1)

    print(f"{args.frames} frames {args.height}x{args.width}, tiny checkpoint, CPU fp32, 1 torch thread per replica; "
          f"load average {out['load_avg_1m'][0]} -> {out['load_avg_1m'][1]}")  # fmt: skip
    rows = [
        ("latency p50, 1 expression", f"{lat['http_p50_s']} s HTTP", f"{lat['inprocess_p50_s']} s in-process",
         f"{lat['ratio']}x", "<= 1.15"),
        (f"load, {l1['clients']} clients, 1 replica", f"p50 {l1['p50_s']} / p95 {l1['p95_s']} s, {l1['rps']} req/s",
         f"{l1['errors']} errors of {l1['requests']}", "", "0 errors"),
        (f"load, {l2['clients']} clients, 2 replicas", f"p50 {l2['p50_s']} / p95 {l2['p95_s']} s, {l2['rps']} req/s",
         f"{l2['errors']} errors of {l2['requests']}", f"{out['throughput_ratio_2_vs_1']}x req/s", "0 errors"),
        ("  replica CPU s per wall s", " + ".join(map(str, l2["replica_cores_used"])),
         f"{sum(l1['replica_cores_used']):.2f} (1 replica)", "", "2 vs 1 if cores are free"),
        ("4 expressions, 1 request vs 4", f"{sh['one_request_s']} s", f"{sh['separate_requests_s']} s",
         f"{sh['ratio']}x", "~4x"),
        ("  encoder_s of the answers", f"{sh['encoder_s_one_request']} s", f"{sh['encoder_s_separate']} s",
         f"{sh['encoder_passes']} passes", "1 vs 4"),
        (f"soak {so['seconds']} s, {so['requests']} requests ({so['bad']} bad)", f"{so['server_errors_5xx']} 5xx",
         f"{so['replica_restarts']} restarts", f"RSS {so['rss_first_mb']} -> {so['rss_last_mb']} MB "
         f"(max {so['rss_max_mb']})", "0, 0, flat"),
    ]  # fmt: skip
    print("| measure | value | baseline | ratio | goal |\n|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(json.dumps(out, separators=(",", ":")))


if __name__ == "__main__":
    main()
