"""`interrvos demo`: the main job on the embedded default (local Ray, synthetic + sample videos).

synthetic videos -> clip extraction (the paper's rule) -> validation -> annotation (offline backend)
-> validation -> baselines; then the training proof on a short-clip synthetic set: synth -> extract ->
annotate -> train the tiny ReVIOsA (Ray Train + DeepSpeed) -> a sweep (trained and untrained x K: predict +
evaluate, interrvos.sweep) on held-out videos;
-> one Markdown report with tables and pictures.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.markup import escape

from interrvos.clips.finalize import finished_clips
from interrvos.clips.layout import DatasetLayout
from interrvos.config import SHARED_VIDEOS, DemoConfig, ExtractConfig
from interrvos.data import storage
from interrvos.data.video import read_image
from interrvos.errors import InterRVOSError
from interrvos.run_logs import JobLogs, job_logs, run_folder
from interrvos.serving.demo_step import report_section as serving_section
from interrvos.viz import PALETTE, overlay_masks, save_png, tile_rows


def _timed(console: Console, title: str, timings: dict[str, float], fn: Callable[[], Any]) -> Any:
    console.rule(title)
    started = time.perf_counter()
    result = fn()
    timings[title] = round(time.perf_counter() - started, 1)
    console.print(f"[dim]{title}: {timings[title]} s[/dim]")
    return result


def run_demo(cfg: DemoConfig, console: Console | None = None) -> str:
    console = console or Console(stderr=True)
    with job_logs(run_folder(cfg)) as logs:  # Ray's and the libraries' own log lines: files, not the console
        return _run_demo(cfg, console, logs)


def _run_demo(cfg: DemoConfig, console: Console, logs: JobLogs) -> str:
    from interrvos.annotate.report import annotate_for_demo, report_section
    from interrvos.clips.pipeline import run_extract
    from interrvos.data.validate import validate_dataset
    from interrvos.evaluate import baseline_table_markdown
    from interrvos.runtime import ensure_ray
    from interrvos.synth.generate import run_synth

    timings: dict[str, float] = {}
    _timed(console, "start Ray", timings, lambda: ensure_ray(cfg.ray))
    if logs.folder is not None:
        console.print(f"[dim]{escape(logs.describe())}[/dim]", soft_wrap=True)
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
    sections = []
    if cfg.annotate:
        annotated = storage.join(cfg.out, "annotated")
        _timed(console, "annotate clips", timings, lambda: annotate_for_demo(
            extract_cfg.out, annotated, cfg.ray, ground_truth=synth_cfg.out))
        problems += _timed(console, "validate annotated dataset", timings, lambda: [
            f"{split}: {p}" for split in ("train", "valid") for p in validate_dataset(storage.join(annotated, split))])
        sections.append(report_section(annotated, storage.join(cfg.out, "report")))
    if cfg.training.enabled:
        sections.append(training_proof(cfg, console, timings))
    report = _timed(console, "write report", timings, lambda: write_report(
        cfg.out, synth_summary, extract_summary, problems, extract_cfg.out, timings, baselines, sections))
    return report


def training_proof(cfg: DemoConfig, console: Console, timings: dict[str, float]) -> str:
    """Synth -> extract -> annotate a short-clip set, train the tiny model on its `train` split, then sweep
    the trained and the untrained model x 2 values of K on its `valid` split; returns the report section."""
    from interrvos.annotate.report import annotate_for_demo
    from interrvos.clips.pipeline import run_extract
    from interrvos.synth.generate import run_synth
    from interrvos.sweep.proof import train_for_demo

    t = cfg.training
    root = storage.join(cfg.out, "training")
    synth_cfg = t.synth.model_copy(update={"out": storage.join(root, "synth"), "ray": cfg.ray})
    extract_cfg = ExtractConfig(videos=[synth_cfg.out], out=storage.join(root, "dataset"), clip=t.clip,
                                writers=cfg.writers, ray=cfg.ray)
    annotated = storage.join(root, "annotated")

    def prepare():
        run_synth(synth_cfg)
        run_extract(extract_cfg)
        return annotate_for_demo(extract_cfg.out, annotated, cfg.ray, val_fraction=t.val_fraction)

    annotation = _timed(console, "training data (synth, extract, annotate)", timings, prepare)
    splits = annotation["dataset"]["splits"]
    if not splits["valid"]["expressions"] or not splits["train"]["expressions"]:
        raise InterRVOSError(f"{annotated}: the training proof needs expressions in both splits (train "
                             f"{splits['train']['expressions']}, valid {splits['valid']['expressions']}); "
                             "use more or longer videos (training.synth) or another training.val_fraction")
    proof = _timed(console, "train, then sweep (predict, evaluate)", timings,
                   lambda: train_for_demo(annotated, root, cfg.ray, max_steps=t.max_steps))
    served = _timed(console, "serve the trained checkpoint (model app, evaluation app)", timings,
                    lambda: serve_trained(root, proof))
    console.print(f"web page on the trained checkpoint: [bold]{served['command']}[/bold]")
    rel = lambda p: os.path.relpath(p, cfg.out)  # noqa: E731 - report links are relative to the report file
    train = proof["train"]
    jf = proof["jf"]
    lines = [
        "## Training: the tiny ReVIOsA learns",
        f"A second synthetic set ({t.synth.num_videos} videos x {t.synth.num_frames} frames, "
        f"{t.synth.width}x{t.synth.height}) extracted and annotated like the main one: "
        f"{splits['train']['videos']} training clips ({splits['train']['expressions']} expressions) and "
        f"{splits['valid']['videos']} held-out clips ({splits['valid']['expressions']} expressions), disjoint by "
        f"source video. `interrvos train` ran {train['steps']} optimizer steps on {train['workers']} CPU workers "
        f"(Ray Train + DeepSpeed ZeRO-{train['zero_stage']}, global batch {train['global_batch']}) in "
        f"{proof['train_seconds']} s; then a sweep (the engine of `interrvos sweep`: predict, evaluate) of the "
        f"trained and the same model untrained x K (frames the MLLM sees) in {proof['k_values']} on the held-out "
        f"clips, in {proof['sweep_seconds']} s, beside the model-free baselines. The tables are at K={proof['own_k']}, "
        "the model's own setting.",
        f"Overall J&F: trained **{jf['trained']['overall']}**, untrained {jf['untrained']['overall']}, "
        f"best model-free baseline ({proof['best_trivial_baseline']}) "
        f"{jf['baseline_' + proof['best_trivial_baseline']]['overall']}. `random_object` and `largest_object` "
        "read the ground-truth masks of the video's objects (only the choice is trivial). Cross-expression mask IoU "
        f"of the trained model: {_fmt_iou(proof['cross_expression_iou']['trained'])} (0: its masks follow the "
        "expression, as the ground truth's do; 100: one mask whatever the expression).",
        proof["tables"],
        "### The sweep: trained and untrained x K, J&F x100 with 95% intervals",
        proof["sweep_table"],
        *([f"![J&F against K]({rel(proof['sweep_plot'])})"] if proof["sweep_plot"] else []),
        f"Every cell, paired differences and more plots: [{rel(proof['sweep_report'])}]({rel(proof['sweep_report'])}).",
        f"![loss curve]({rel(train['loss_curve'])})",
        "### The trained model's predictions (actor and target overlays)",
        *[f"![{os.path.basename(p)}]({rel(p)})" for p in proof["overlays"]],
        serving_section(served, cfg.out),
    ]
    return "\n\n".join(lines)


def serve_trained(root: str, proof: dict) -> dict:
    """The serving step on the proof's checkpoints: the trained export (default) and the untrained model."""
    from interrvos.serving.demo_step import serve_for_demo

    return serve_for_demo(storage.join(root, "serve"), proof["checkpoints"], proof["val_dataset"],
                          proof["trained_predictions"], proof["jf"]["trained"]["overall"])  # fmt: skip


def _fmt_iou(value: float | None) -> str:
    return "not measured (no non-empty mask)" if value is None else f"{value:.1f}"


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
                 timings: dict[str, float], baselines: str, sections: list[str] = ()) -> str:
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
                             if problems else "The dataset folders are valid (`interrvos validate`)."),
    ]
    parts.append("## Baselines (J&F x100, the floor a trained model must beat)\n" + baselines)
    parts += sections
    if drawn:
        parts.append(f"## Contact sheet\n{drawn} clips, sampled frames, kept objects' masks.\n\n"
                     "![contact sheet](report/contact_sheet.png)")
    path = storage.join(out, "report.md")
    storage.write_bytes(path, ("\n\n".join(parts) + "\n").encode())
    return path
