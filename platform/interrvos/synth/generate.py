"""Writing synthetic videos: one video without Ray (`generate_video`), many fanned out as Ray tasks
(`run_synth`). Both are idempotent: a video whose three files exist, made with the same settings,
is skipped (it would come out identical: everything derives from (seed, index)).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterator

import numpy as np

from interrvos.config import SynthConfig
from interrvos.data import storage
from interrvos.data.video import Mp4Writer
from interrvos.errors import ConfigError
from interrvos.synth.appearance import render_background
from interrvos.synth.events import VERB_CYCLE
from interrvos.synth.plan import Director, make_cast, split_episodes
from interrvos.synth.render import Compositor

GENERATOR_VERSION = 1  # bump when a change alters the output for the same settings
SUMMARY_NAME = "synth_summary.json"
MOVED_PX = 0.5  # an object whose centre never strays further than this from its start is static


def video_id_for(seed: int, index: int) -> str:
    """'synth_00007' for seed 0; other seeds are named in the id so several seeds can share a folder."""
    return f"synth_{index:05d}" if seed == 0 else f"synth_s{seed}_{index:05d}"


def output_paths(out: str, video_id: str) -> dict[str, str]:
    return {kind: storage.join(out, f"{video_id}.{kind}") for kind in ("mp4", "masks.json", "meta.json")}


def _settings(index: int, cfg: SynthConfig) -> dict:
    """What decides a video's content: its meta must match these for the video to be reused."""
    return {"version": GENERATOR_VERSION, "index": index, "seed": cfg.seed, "width": cfg.width,
            "height": cfg.height, "fps": cfg.fps, "num_frames": cfg.num_frames,
            "min_objects": cfg.min_objects, "max_objects": cfg.max_objects}


def video_rng(seed: int, index: int) -> np.random.Generator:
    """The per-video random stream: video i is the same whatever the number of videos."""
    return np.random.default_rng(np.random.SeedSequence([seed % 2**63, index, GENERATOR_VERSION]))


@contextlib.contextmanager
def _local_file(uri: str) -> Iterator[str]:
    """A local path to write `uri` to; for a remote URI it is uploaded when the block ends."""
    if not storage.is_remote(uri):
        yield storage.resolve(uri)[1]
        return
    with tempfile.TemporaryDirectory(prefix="interrvos-synth-") as tmp:
        local = os.path.join(tmp, os.path.basename(uri))
        yield local
        with open(local, "rb") as f:
            storage.write_bytes(uri, f.read())


def _stats(meta: dict, skipped: bool) -> dict:
    return {
        "video_id": meta["video_id"],
        "skipped": skipped,
        "num_frames": meta["num_frames"],
        "num_objects": len(meta["objects"]),
        "events_by_verb": dict(Counter(e["verb"] for e in meta["events"])),
        "events_by_direction": dict(Counter(e["direction"] for e in meta["events"])),
        "multi_instance_groups": len({tuple(m["object_ids"]) for m in meta["multi_instance"]}),
        "static_objects": sum(o["motion"] == "static" for o in meta["objects"].values()),
    }


def _reusable(paths: dict[str, str], settings: dict) -> dict | None:
    """The existing meta when all three files exist and were made with these settings."""
    if not all(storage.exists(p) for p in paths.values()):
        return None
    try:
        meta = storage.read_json(paths["meta.json"])
    except (OSError, ValueError):
        return None
    return meta if meta.get("generator") == settings else None


def generate_video(video_id: str, index: int, cfg: SynthConfig, overwrite: bool = False) -> dict:
    """Render video `index` of `cfg` into <out>/<video_id>.{mp4,masks.json,meta.json}; returns its stats.

    Unless `overwrite`, an existing complete video made with the same settings is left as it is."""
    if cfg.width % 2 or cfg.height % 2:
        raise ConfigError(f"synth.width and synth.height must be even for h264 video, got {cfg.width}x{cfg.height}")
    settings = _settings(index, cfg)
    paths = output_paths(cfg.out, video_id)
    if not overwrite and (meta := _reusable(paths, settings)) is not None:
        return _stats(meta, skipped=True)

    rng = video_rng(cfg.seed, index)
    background, background_name = render_background(rng, cfg.height, cfg.width)
    cast = make_cast(rng, cfg)
    director = Director(rng, cast, cfg.width, cfg.height, first_verb=VERB_CYCLE[(cfg.seed + index) % len(VERB_CYCLE)])
    compositor = Compositor(cast, cfg.width, cfg.height, background)
    tracks: dict[str, list] = {o.obj_id: [] for o in cast}
    start_pos: dict[str, np.ndarray] = {}
    moved = {o.obj_id: False for o in cast}
    events, multi, episodes = [], [], []
    storage.makedirs(cfg.out)
    with _local_file(paths["mp4"]) as local_mp4, Mp4Writer(local_mp4, cfg.fps, cfg.width, cfg.height) as writer:
        # Episodes are planned one at a time and frames streamed to the encoder: memory stays
        # bounded by one episode's trajectories plus the (compact) RLE masks.
        for start, end in split_episodes(rng, cfg.num_frames):
            episode = director.plan(start, end)
            for oid, pos in episode.positions.items():
                first = start_pos.setdefault(oid, pos[0])
                moved[oid] = moved[oid] or bool(np.abs(pos - first).max() > MOVED_PX)
            for frame, masks in compositor.render(episode):
                writer.write(frame)
                for oid, rle in masks.items():
                    tracks[oid].append(rle)
            events += episode.events
            multi += episode.multi_instance
            episodes.append({"start_frame": start, "end_frame": end,
                             "num_events": len(episode.events)})

    masks_json = {o.obj_id: {"category": o.category, "mask": tracks[o.obj_id]} for o in cast}
    storage.write_json(paths["masks.json"], masks_json)
    meta = {
        "video_id": video_id,
        "width": cfg.width,
        "height": cfg.height,
        "fps": cfg.fps,
        "num_frames": cfg.num_frames,
        "seed": cfg.seed,
        "index": index,
        "background": background_name,
        "objects": {
            o.obj_id: {"category": o.category, "colour": o.colour, "size": o.size, "texture": o.texture,
                       "motion": "moving" if moved[o.obj_id] else "static"}
            for o in cast
        },
        "events": events,
        "multi_instance": multi,
        "episodes": episodes,
        "occluded_object_frames": compositor.occluded_object_frames,
        "generator": settings,
    }
    storage.write_json(paths["meta.json"], meta, indent=1)  # written last: its presence marks completion
    return _stats(meta, skipped=False)


def _generate_index(index: int, cfg: SynthConfig) -> dict:
    """One video for run_synth; a failure becomes a record so the other videos still finish."""
    video_id = video_id_for(cfg.seed, index)
    try:
        return generate_video(video_id, index, cfg)
    except Exception as e:  # noqa: BLE001 - reported in the summary, not lost
        return {"video_id": video_id, "error": f"{type(e).__name__}: {e}"}


def run_synth(cfg: SynthConfig) -> dict:
    """Generate cfg.num_videos videos as Ray tasks (one CPU each) and write <out>/synth_summary.json."""
    import ray

    from interrvos.runtime import ensure_ray

    ensure_ray(cfg.ray)
    began = time.time()
    task = ray.remote(num_cpus=1)(_generate_index)
    window = max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))  # bounded in flight for huge counts
    pending, results = [], []
    for index in range(cfg.num_videos):
        if len(pending) >= window:
            done, pending = ray.wait(pending, num_returns=1)
            results += ray.get(done)
        pending.append(task.remote(index, cfg))
    results += ray.get(pending)
    results.sort(key=lambda r: r["video_id"])
    summary = summarize(results, cfg, time.time() - began)
    storage.write_json(storage.join(cfg.out, SUMMARY_NAME), summary, indent=1)
    return summary


def summarize(results: list[dict], cfg: SynthConfig, seconds: float) -> dict:
    ok = [r for r in results if "error" not in r]
    verbs: Counter = Counter()
    directions: Counter = Counter()
    for r in ok:
        verbs.update(r["events_by_verb"])
        directions.update(r["events_by_direction"])
    return {
        "out": cfg.out,
        "videos": len(results),
        "written": sum(not r["skipped"] for r in ok),
        "skipped": sum(r["skipped"] for r in ok),
        "failed": [r for r in results if "error" in r],
        "frames": sum(r["num_frames"] for r in ok),
        "objects": sum(r["num_objects"] for r in ok),
        "static_objects": sum(r["static_objects"] for r in ok),
        "multi_instance_groups": sum(r["multi_instance_groups"] for r in ok),
        "events": sum(verbs.values()),
        "events_by_verb": dict(sorted(verbs.items())),
        "events_by_direction": dict(sorted(directions.items())),
        "seconds": round(seconds, 2),
        "video_ids": [r["video_id"] for r in ok],
    }
