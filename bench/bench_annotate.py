"""Annotation throughput against a local OpenAI-compatible endpoint of fixed latency and capacity
(default 200 ms per answer, 16 concurrent slots; requests beyond that wait for a slot), in one run:

- sequential: what the reference scripts do, one request at a time (clip by clip, stage by stage),
  through the same `openai` backend, prompts and checks, on the first clips for `--sequential-s`;
- pipeline: `interrvos annotate` (Ray Data, one actor per stage, `clips_in_flight` clips per actor,
  at most `max_concurrency` requests in flight per actor) on every clip.

Figures: items/s of each (an item is one LLM answer), their ratio, and the fraction of the endpoint's
capacity the pipeline used (busy slot-seconds / (slots x the time from its first request to its last
answer); goal >= 0.9).

    .venv/bin/python bench/bench_annotate.py [--videos 100 --frames 200 --latency 0.2 --slots 16]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


STAND_IN = REPO / "tests" / "annotate" / "stand_in_server.py"


def load_stand_in():
    spec = importlib.util.spec_from_file_location("stand_in_server", STAND_IN)
    module = importlib.util.module_from_spec(spec)
    sys.modules["stand_in_server"] = module
    spec.loader.exec_module(module)
    return module


class Endpoint:
    """The stand-in server in its own process, so its work never competes with the client's for a GIL."""

    def __init__(self, latency: float, slots: int):
        import subprocess
        import urllib.request

        self.module = load_stand_in()
        self.port, self.slots = self.module.free_port(), slots
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.proc = subprocess.Popen([sys.executable, str(STAND_IN), "--port", str(self.port), "--latency",
                                      str(latency), "--slots", str(slots)], cwd=str(REPO))
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_log", timeout=2)
                break
            except OSError:
                if time.time() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("the stand-in endpoint did not start") from None
                time.sleep(0.2)

    def log(self) -> list:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_log", timeout=30) as r:
            return [self.module.Logged(**e) for e in json.loads(r.read())]

    def reset(self) -> None:
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{self.port}/_reset", method="POST"), timeout=30)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def make_dataset(work: Path, tag: str, videos: int, frames: int) -> str:
    from interrvos.clips.pipeline import run_extract
    from interrvos.config import ClipRuleConfig, ExtractConfig, SynthConfig
    from interrvos.synth.generate import run_synth

    synth = SynthConfig(out=str(work / f"{tag}_synth"), num_videos=videos, num_frames=frames, width=160, height=120,
                        seed=21, min_objects=3, max_objects=5)
    run_synth(synth)
    dataset = work / tag
    run_extract(ExtractConfig(videos=[synth.out], out=str(dataset), clip=ClipRuleConfig(clip_frames=frames)))
    return str(dataset)


def sequential_items_per_s(cfg, seconds: float) -> tuple[float, int]:
    """One request at a time, clip by clip and stage by stage, until `seconds` have passed."""
    from interrvos.annotate import stages
    from interrvos.annotate.answers import ask
    from interrvos.annotate.backends.factory import build_backend
    from interrvos.annotate.cache import AnswerCache
    from interrvos.annotate.prepare import prepare_clip
    from interrvos.clips.finalize import read_clips_table

    async def go() -> tuple[float, int]:
        backends = {s: build_backend(cfg, s) for s in stages.REQUESTS}
        cache = AnswerCache(cfg.out)  # empty: nothing is served from it
        clips = read_clips_table(cfg.dataset)
        started, items = time.perf_counter(), 0
        try:
            for clip in clips:
                status, state, images = prepare_clip(cfg.dataset, clip, cfg, cache)
                if status != "todo":
                    continue
                for stage, backend in backends.items():
                    results = []
                    for slot, request in stages.requests(stage, state, cfg):
                        request.images = images.get(request.key, [])
                        outcome = await ask(backend.complete, request, model=backend.model_id, cost=backend.cost,
                                            max_retries=0, clip_id=clip.clip_id, item=str(slot))
                        items += outcome.attempts
                        results.append((slot, outcome))
                    stages.apply(stage, state, results)
                    if time.perf_counter() - started > seconds:
                        return items / (time.perf_counter() - started), items
            return items / (time.perf_counter() - started), items
        finally:
            for backend in backends.values():
                await backend.aclose()

    return asyncio.run(go())


def client_ceiling(server: Endpoint, slots: int, n: int = 200) -> tuple[float, float]:
    """The most any client on this machine gets from the endpoint: one asyncio loop, `slots` requests in
    flight, small text prompts, no pipeline at all. (items/s, capacity used)."""
    from interrvos.annotate import prompts
    from interrvos.annotate.answers import ask
    from interrvos.annotate.backends.base import ChatRequest
    from interrvos.annotate.backends.openai_backend import OpenAIBackend
    from interrvos.annotate.config import GenerationConfig, OpenAIConfig

    async def go() -> float:
        backend = OpenAIBackend(OpenAIConfig(base_url=server.base_url, max_concurrency=slots, qps=1000), "text")
        reqs = [ChatRequest(key=f"ceiling/{i}", stage="stage2", kind="expressions", system=prompts.STAGE2_SINGLE_SYSTEM,
                            user=prompts.stage2_single_user("A dog.", "It runs."), generation=GenerationConfig())
                for i in range(n)]
        started = time.perf_counter()
        try:
            await asyncio.gather(*(ask(backend.complete, r, model=backend.model_id, cost=backend.cost, max_retries=0,
                                       clip_id="c", item="x") for r in reqs))
        finally:
            await backend.aclose()
        return n / (time.perf_counter() - started)

    server.reset()
    rate = asyncio.run(go())
    return rate, server.module.busy_fraction(server.log(), slots)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, default=100)
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--latency", type=float, default=0.2)
    p.add_argument("--slots", type=int, default=16)
    p.add_argument("--clips-in-flight", type=int, default=8)
    p.add_argument("--max-concurrency", type=int, default=16)
    p.add_argument("--sequential-s", type=float, default=15.0)
    p.add_argument("--frames-per-prompt", type=int, default=16)
    p.add_argument("--work", default="runs/bench_annotate")
    args = p.parse_args()

    from interrvos.annotate.config import AnnotateConfig
    from interrvos.annotate.pipeline import run_annotate
    from interrvos.config import RayConfig
    from interrvos.runtime import ensure_ray

    work = Path(args.work)
    ensure_ray(RayConfig(num_cpus=2))
    tag = f"dataset_{args.videos}x{args.frames}"
    dataset = str(work / tag) if (work / tag / "clips.parquet").exists() else \
        make_dataset(work, tag, args.videos, args.frames)
    server = Endpoint(args.latency, args.slots)
    pool = {"min_size": 1, "max_size": 1, "num_cpus": 0.2, "clips_in_flight": args.clips_in_flight}
    fields = {"dataset": dataset, "backend": "openai",
              "openai": {"base_url": server.base_url, "max_concurrency": args.max_concurrency, "qps": 500},
              "highlight": {"max_frames": args.frames_per_prompt},
              "pools": {"prepare": {"min_size": 2, "max_size": 2, "num_cpus": 0.5},
                        "stage1": pool, "stage2": pool, "stage3": pool, "stage4": pool}}
    try:
        ceiling_rate, ceiling_used = client_ceiling(server, args.slots)
        seq_out = work / "sequential"
        shutil.rmtree(seq_out, ignore_errors=True)
        seq_rate, seq_items = sequential_items_per_s(AnnotateConfig.model_validate({**fields, "out": str(seq_out)}),
                                                     args.sequential_s)
        server.reset()
        out = work / "pipeline"
        shutil.rmtree(out, ignore_errors=True)
        started = time.perf_counter()
        summary = run_annotate(AnnotateConfig.model_validate({**fields, "out": str(out)}))
        wall = time.perf_counter() - started
        log = server.log()
        (work / "pipeline_requests.json").write_text(json.dumps([vars(e) for e in log]))
        done = [e for e in log if e.end]
        window = max(e.end for e in done) - min(e.start for e in done)
        items = summary["run"]["total"]["llm_calls"]
        result = {
            "endpoint": {"latency_s": args.latency, "slots": args.slots,
                         "capacity_items_per_s": round(args.slots / args.latency, 1)},
            "clips": summary["dataset"]["clips"],
            "sequential": {"items": seq_items, "items_per_s": round(seq_rate, 2)},
            "pipeline": {"items": items, "items_per_s": round(items / window, 2), "active_window_s": round(window, 2),
                         "wall_s_incl_ray_startup": round(wall, 2),
                         "items_per_s_incl_startup": round(items / wall, 2),
                         "clips_in_flight_per_actor": args.clips_in_flight,
                         "max_concurrency_per_actor": args.max_concurrency},
            "client_ceiling": {"items_per_s": round(ceiling_rate, 2), "capacity_used": round(ceiling_used, 3),
                               "what": "one asyncio loop, no pipeline: the most this machine's CPU lets any client get"},
            "ratio": round(items / window / seq_rate, 2),
            "capacity_used": round(server.module.busy_fraction(log, args.slots), 3),
            "mean_outstanding_requests": round(sum(e.end - e.arrived for e in done) / window, 1),
        }
    finally:
        server.stop()
    print(json.dumps(result, indent=2))
    print(f"pipeline / sequential = {result['ratio']}x; endpoint capacity used {result['capacity_used']:.0%} "
          f"(goal >= 90%; a bare client on this machine reaches {result['client_ceiling']['capacity_used']:.0%})")


if __name__ == "__main__":
    main()
