"""`interrvos demo`: the main job on the embedded default (local Ray, synthetic + sample videos).

synthetic videos -> clip extraction (the paper's rule) -> dataset skeleton -> validation -> report.
Later capabilities (annotation, training, evaluation) add their steps and report sections here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.console import Console

from interrvos.clips.finalize import finished_clips
from interrvos.clips.layout import DatasetLayout
from interrvos.config import SHARED_VIDEOS, DemoConfig, ExtractConfig
from interrvos.data import storage
from interrvos.data.video import read_image
from interrvos.viz import PALETTE, overlay_masks, save_png, tile_rows


def _timed(console: Console, title: str, timings: dict[str, float], fn: Callable[[], Any]) -> Any:
    console.rule(title)
    started = time.perf_counter()
    result = fn()
    timings[title] = round(time.perf_counter() - started, 1)
    console.print(f"[dim]{title}: {timings[title]} s[/dim]")
    return result


def run_demo(cfg: DemoConfig, console: Console | None = None) -> str:
    from interrvos.clips.pipeline import run_extract
    from interrvos.data.validate import validate_dataset
    from interrvos.evaluate import baseline_table_markdown
    from interrvos.runtime import ensure_ray
    from interrvos.synth.generate import run_synth

    console = console or Console(stderr=True)
    timings: dict[str, float] = {}
    _timed(console, "start Ray", timings, lambda: ensure_ray(cfg.ray))
    synth_cfg = cfg.synth.model_copy(update={"out": storage.join(cfg.out, "synth"), "ray": cfg.ray})
    synth_summary = _timed(console, "synthesise videos", timings, lambda: run_synth(synth_cfg))
    sources = [synth_cfg.out]
    if cfg.include_real_videos and SHARED_VIDEOS.is_dir():
        sources.append(str(SHARED_VIDEOS))
    extract_cfg = ExtractConfig(videos=sources, out=storage.join(cfg.out, "dataset"), clip=cfg.clip,
                                writers=cfg.writers, ray=cfg.ray)
    extract_summary = _timed(console, "extract clips", timings, lambda: run_extract(extract_cfg))
    problems = _timed(console, "validate dataset", timings, lambda: validate_dataset(extract_cfg.out))
    # One process is faster than a Ray pool for a dataset this small on 2 cores (docs/benchmarks.md).
    baselines = _timed(console, "score baselines", timings, lambda: baseline_table_markdown(
        extract_cfg.out, ray_cfg=cfg.ray, executor="local", heading="###"))
    return _timed(console, "write report", timings, lambda: write_report(
        cfg.out, synth_summary, extract_summary, problems, extract_cfg.out, timings, baselines))


def contact_sheet(dataset: str, png: str, max_clips: int = 8, frames_per_clip: int = 4) -> int:
    """Sampled frames of the first clips with their kept objects' masks; returns the clips drawn."""
    layout = DatasetLayout(dataset)
    rows, titles = [], []
    clips = finished_clips(dataset)
    # Prefer clips with objects, then fill with the rest (real videos have no masks).
    clips.sort(key=lambda c: (not c[0].object_ids, c[0].clip_id))
    for clip, _ in clips[:max_clips]:
        tracks = storage.read_json(layout.tracks(clip.clip_id))
        step = max(1, len(clip.sampled_frames) // frames_per_clip)
        cells = []
        for f in clip.sampled_frames[::step][:frames_per_clip]:
            with storage.local_path(storage.join(layout.frames_dir(clip.clip_id), f"{f:05d}.jpg")) as p:
                frame = read_image(p)
            masks = [(obj_id, tracks[obj_id]["mask"][f], PALETTE[i % len(PALETTE)])
                     for i, obj_id in enumerate(clip.object_ids)]
            cells.append(overlay_masks(frame, masks))
        rows.append(cells)
        titles.append(f"{clip.clip_id} frames {clip.start_frame}-{clip.end_frame - 1} "
                      f"{len(clip.object_ids)} objects")
    if rows:
        save_png(png, tile_rows(rows, titles))
    return len(rows)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_report(out: str, synth_summary: dict, extract_summary: dict, problems: list, dataset: str,
                 timings: dict[str, float], baselines: str) -> str:
    report_dir = storage.join(out, "report")
    drawn = contact_sheet(dataset, storage.join(report_dir, "contact_sheet.png"))
    clips = finished_clips(dataset)
    run, data = extract_summary["run"], extract_summary["dataset"]
    parts = [
        "# InterRVOS demo report",
        "Embedded default: a local Ray, synthetic interaction videos and the sample videos in shared/data.",
        "## Steps\n" + _table(["step", "seconds"], [[k, v] for k, v in timings.items()]),
        "## Synthetic videos\n" + _table(["field", "value"], [[k, v] for k, v in synth_summary.items()
                                                            if not isinstance(v, (list, dict))]),
        "### Events by verb\n" + _table(["verb", "events"], list(synth_summary["events_by_verb"].items())),
        "## Clip extraction\n" + _table(["field", "value"], [[f"run.{k}", v] for k, v in run.items() if k != "errors"]
                                        + [[f"dataset.{k}", v] for k, v in data.items()]),
        "### Clips\n" + _table(["clip", "source video", "frames", "kept objects", "dropped objects"],
                               [[c.clip_id, c.video_id, f"{c.start_frame}-{c.end_frame - 1}",
                                 ", ".join(c.object_ids) or "-",
                                 ", ".join(f"{o} ({why})" for o, why in d.items()) or "-"] for c, d in clips]),
        "### Skipped inputs\n" + (_table(["item", "stage", "reason"],
                                         [[e["clip_id"] or e["video_id"], e["stage"], e["error"]] for e in run["errors"]])
                                  if run["errors"] else "none"),
        "## Validation\n" + (f"{len(problems)} problem(s):\n\n" + "\n".join(f"- {p}" for p in problems[:50])
                             if problems else "The dataset folder is valid (`interrvos validate`)."),
    ]
    parts.append("## Baselines (J&F x100, the floor a trained model must beat)\n" + baselines)
    if drawn:
        parts.append(f"## Contact sheet\n{drawn} clips, sampled frames, kept objects' masks.\n\n"
                     "![contact sheet](report/contact_sheet.png)")
    path = storage.join(out, "report.md")
    storage.write_bytes(path, ("\n\n".join(parts) + "\n").encode())
    return path
