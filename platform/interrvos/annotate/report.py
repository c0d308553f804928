"""What an annotation run shows people: sample visual prompts (the highlighted frames a vision model
sees) as PNG with the expressions they led to, a Markdown section for run reports, and the entry
point the demo calls."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from interrvos.annotate.assemble import video_entry
from interrvos.annotate.config import AnnotateConfig, PoolsConfig
from interrvos.annotate.layout import AnnotateLayout
from interrvos.annotate.prepare import prompt_frame_indices
from interrvos.annotate.visual_prompts import decode_or_none, load_frames, render_multi_object, render_single_object
from interrvos.clips.layout import DatasetLayout
from interrvos.config import ActorPoolConfig, RayConfig
from interrvos.data import storage
from interrvos.data.records import ClipRecord
from interrvos.viz import save_png, tile_rows

FRAMES_SHOWN = 4


def _pick_samples(records: Mapping[str, dict], n: int) -> list[str]:
    """Clips with the most interaction expressions first, then the most objects."""
    def rank(cid: str) -> tuple:
        exps = video_entry(records[cid]).expressions.values()
        return (-sum(e.caption_type == "interaction" for e in exps), -len(records[cid]["objects"]), cid)

    return sorted((c for c in records if records[c]["objects"]), key=rank)[:n]


def save_visual_prompt_samples(cfg: AnnotateConfig, records: Mapping[str, dict],
                               clips: Mapping[str, ClipRecord]) -> list[dict[str, Any]]:
    """For a few clips: stage 1's frames for one object and stage 3's frames, as one PNG each."""
    out = []
    folder = storage.join(AnnotateLayout(cfg.out).report_dir, "visual_prompts")
    for cid in _pick_samples(records, cfg.report_samples):
        clip = clips[cid]
        tracks = storage.read_json(DatasetLayout(cfg.dataset).tracks(cid))
        indices = prompt_frame_indices(clip, cfg.highlight.max_frames)
        step = max(1, len(indices) // FRAMES_SHOWN)
        frames = load_frames(cfg.dataset, cid, indices)
        masks = {o: [decode_or_none(tracks[o]["mask"][i]) for i in indices] for o in clip.object_ids}
        first = clip.object_ids[0]
        single = render_single_object(frames, masks[first], cfg.highlight.first_frame_min_area,
                                      cfg.highlight.tall_frame_min_height)
        # Show the labelled frame (the first clear one) among the sampled ones.
        labelled = next((i for i, m in enumerate(masks[first]) if m is not None and m.mean() > 0.005), 0)
        shown = sorted({labelled, *range(0, len(indices), step)})[:FRAMES_SHOWN]
        rows = [[single[i] for i in shown]]
        titles = [f"stage 1: object [{first}] ({tracks[first]['category']})"]
        if len(clip.object_ids) > 1:
            multi = render_multi_object(frames, masks, cfg.highlight.tall_frame_min_height)
            rows.append([multi[i] for i in shown])
            titles.append(f"stage 3: objects {', '.join(clip.object_ids)}")
        png = storage.join(folder, f"{cid}.png")
        save_png(png, tile_rows(rows, titles))
        exps = list(video_entry(records[cid]).expressions.values())
        picked = [e for e in exps if e.caption_type == "interaction"][:4] + [e for e in exps if e.obj_id == [first]][:3]
        out.append({"clip_id": cid, "png": f"report/visual_prompts/{cid}.png",
                    "expressions": [{"exp": e.exp, "caption_type": e.caption_type, "obj_id": e.obj_id,
                                     "actor_ids": e.actor_ids, "target_ids": e.target_ids} for e in picked]})
    return out


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def report_section(out_dir: str, report_dir: str) -> str:
    """Markdown for a run report: run counters per stage, the dataset, sample expressions with their
    highlighted frames. Images are copied into `report_dir`; links are relative to its parent (the
    run folder, where the report's .md file sits)."""
    summary = storage.read_json(AnnotateLayout(out_dir).summary)
    run, data = summary["run"], summary["dataset"]
    run_folder = os.path.dirname(os.path.normpath(report_dir))

    def copy(src_rel: str, name: str) -> str:
        dst = storage.join(report_dir, "annotate", name)
        storage.write_bytes(dst, storage.read_bytes(storage.join(out_dir, src_rel)))
        return os.path.relpath(dst, run_folder) if not storage.is_remote(dst) else dst

    stage_rows = [[s, v.get("items", 0), v.get("llm_calls", 0), v.get("cache_hits", 0), v.get("answer_retries", 0),
                   ", ".join(f"{k}: {n}" for k, n in v.get("quarantined", {}).items()) or "-",
                   v.get("prompt_tokens", 0) + v.get("completion_tokens", 0), v.get("items_per_s", 0)]
                  for s, v in run["stages"].items()]
    parts = ["## Annotation (four LLM stages)",
             f"Backend answers cached under `{out_dir}/cache`; {run['seconds']} s; clips: "
             + ", ".join(f"{k} {v}" for k, v in run["clips"].items()) + ".",
             _table(["stage", "items", "LLM calls", "cache hits", "retries", "quarantined", "tokens", "items/s"],
                    stage_rows),
             _table(["dataset", "value"], [
                 ["expressions", data["expressions"]],
                 ["caption types", ", ".join(f"{k} {v}" for k, v in data["caption_types"].items())],
                 ["train videos / expressions", f"{data['splits']['train']['videos']} / {data['splits']['train']['expressions']}"],
                 ["valid videos / expressions", f"{data['splits']['valid']['videos']} / {data['splits']['valid']['expressions']}"],
                 ["valid interaction share (before filter)",
                  f"{data['splits']['valid']['interaction_share']} ({data['splits']['valid']['interaction_share_before_filter']})"],
                 ["clips without objects (no expressions)", ", ".join(data["clips_without_objects"]) or "-"],
                 ["quarantined items", data["quarantined_items"]]])]
    if "quality" in summary:
        q = summary["quality"]
        parts.append(f"Stage 3 against the synthetic ground truth: precision {q['precision']}, recall {q['recall']} "
                     f"({q['true_positives']} of {q['true_positives'] + q['false_negatives']} interactions found).")
    if storage.exists(storage.join(out_dir, "stats", "stats.png")):
        parts.append(f"![dataset statistics]({copy('stats/stats.png', 'stats.png')})")
    for sample in data.get("visual_prompt_samples", []):
        link = copy(sample["png"], f"{sample['clip_id']}.png")
        lines = [f"### {sample['clip_id']}", f"![visual prompts of {sample['clip_id']}]({link})", ""]
        for e in sample["expressions"]:
            roles = f" (actor {e['actor_ids']}, target {e['target_ids']})" if e["actor_ids"] else ""
            lines.append(f"- *{e['caption_type']}* {e['obj_id']}{roles}: \"{e['exp']}\"")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def annotate_for_demo(dataset_dir: str, out_dir: str, ray_cfg: RayConfig | None = None,
                      ground_truth: str | None = None, val_fraction: float | None = None) -> dict[str, Any]:
    """The demo's annotation step: the local backend with templates (fast, offline), small pools."""
    from interrvos.annotate.config import LLMPoolConfig, SplitConfig
    from interrvos.annotate.pipeline import run_annotate

    small = LLMPoolConfig(min_size=1, max_size=1, clips_in_flight=4)
    split = SplitConfig() if val_fraction is None else SplitConfig(val_fraction=val_fraction)
    cfg = AnnotateConfig(dataset=dataset_dir, out=out_dir, backend="local", ground_truth=ground_truth, split=split,
                         ray=ray_cfg or RayConfig(num_cpus=2),
                         pools=PoolsConfig(prepare=ActorPoolConfig(min_size=1, max_size=2, num_cpus=1.0),
                                           stage1=small, stage2=small, stage3=small, stage4=small))
    return run_annotate(cfg)
