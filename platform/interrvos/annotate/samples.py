"""Sample visual prompts of an annotation run (the highlighted frames a vision model sees) as PNG, with
the expressions they led to: written by finalize, shown by the run report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interrvos.annotate.assemble import video_entry
from interrvos.annotate.config import AnnotateConfig
from interrvos.annotate.layout import AnnotateLayout
from interrvos.annotate.prepare import prompt_frame_indices
from interrvos.annotate.visual_prompts import decode_or_none, load_frames, render_multi_object, render_single_object
from interrvos.clips.layout import DatasetLayout
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
