"""Finalise an annotation run (driver): from the finished clip records (not from this run's rows,
so the result is the same however many runs and kills it took) build the train and evaluation
splits, the statistics, the quarantine list, the report's visual prompts and the summary."""

from __future__ import annotations

from collections import Counter
from typing import Any

from interrvos.annotate.assemble import (evaluation_sources, filter_for_evaluation, interaction_share, video_entry,
                                         write_split)
from interrvos.annotate.config import STAGES, AnnotateConfig
from interrvos.annotate.layout import AnnotateLayout
from interrvos.annotate.rows import all_outcomes
from interrvos.annotate.samples import save_visual_prompt_samples
from interrvos.annotate.stats import dataset_stats, plot_stats
from interrvos.data import storage
from interrvos.data.records import ClipRecord


def read_records(out: str, clips: list[ClipRecord]) -> dict[str, dict]:
    layout = AnnotateLayout(out)
    have = set(storage.list_dir(layout.records_dir))
    return {c.clip_id: storage.read_json(layout.record(c.clip_id)) for c in clips if f"{c.clip_id}.json" in have}


def quarantined(records: dict[str, dict]) -> list[dict]:
    """Every quarantined item with its reason and raw answers (nothing is dropped silently)."""
    out = []
    for clip_id, rec in sorted(records.items()):
        for o in all_outcomes(rec):
            if o and o["status"] == "quarantined":
                out.append({"clip_id": clip_id, "stage": o["stage"], "item": o["item"], "reason": o["reason"],
                            "problems": o["problems"], "raw": o["raw"], "model": o["model"], "key": o["key"]})
    return out


def _run_section(totals: dict, seconds: float) -> dict[str, Any]:
    stages = {}
    for stage in STAGES:
        s = dict(totals["stages"].get(stage) or {})
        if s:
            s["items_per_s"] = round(s.get("items", 0) / seconds, 2) if seconds else 0.0
        stages[stage] = s
    sums = Counter()
    reasons: Counter[str] = Counter()
    for s in stages.values():
        for k in ("items", "llm_calls", "cache_hits", "answer_retries", "http_retries", "failed", "prompt_tokens",
                  "completion_tokens"):
            sums[k] += s.get(k, 0)
        reasons.update(s.get("quarantined", {}))
    return {"seconds": round(seconds, 2), "clips": dict(sorted(totals["clips"].items())), "stages": stages,
            "total": {**dict(sums), "quarantined": dict(sorted(reasons.items())),
                      "cost_usd": round(sum(s.get("cost_usd", 0.0) for s in stages.values()), 4),
                      "items_per_s": round(sums["items"] / seconds, 2) if seconds else 0.0},
            "errors": totals["errors"],
            # clip-steps (prepare, stage1..4, write) run per Ray node, in all and per step
            "nodes": dict(sorted(totals.get("nodes", {}).items())),
            "nodes_by_step": {k: dict(sorted(v.items())) for k, v in totals.get("nodes_by_step", {}).items()}}


def finalize_annotation(cfg: AnnotateConfig, clips: list[ClipRecord], totals: dict, seconds: float) -> dict[str, Any]:
    layout = AnnotateLayout(cfg.out)
    records = read_records(cfg.out, clips)
    by_id = {c.clip_id: c for c in clips}
    entries = {cid: video_entry(rec) for cid, rec in sorted(records.items())}
    without_objects = sorted(cid for cid, rec in records.items() if not rec["objects"])
    without_expressions = sorted(cid for cid, e in entries.items() if rec_has_objects(records[cid]) and not e.expressions)
    usable = {cid: e for cid, e in entries.items() if e.expressions}
    interacting = {by_id[c].video_id for c, e in usable.items()
                   if any(x.caption_type == "interaction" for x in e.expressions.values())}
    valid_sources = evaluation_sources({by_id[c].video_id for c in usable}, cfg.split, interacting)
    train = {c: e for c, e in usable.items() if by_id[c].video_id not in valid_sources}
    valid_all = {c: e for c, e in usable.items() if by_id[c].video_id in valid_sources}
    valid = {c: f for c, e in valid_all.items() if (f := filter_for_evaluation(e, cfg.eval_filter)) is not None}
    for name, split in (("train", train), ("valid", valid)):
        write_split(layout.split(name), split, cfg.dataset, cfg.link_frames)
    stats = dataset_stats({"train": train, "valid": valid}, by_id)
    storage.write_json(storage.join(layout.stats_dir, "stats.json"), stats, indent=2)
    plot_stats(stats, storage.join(layout.stats_dir, "stats.png"))
    bad = quarantined(records)
    storage.write_json(layout.quarantine, bad, indent=2)
    samples = save_visual_prompt_samples(cfg, records, by_id)
    caption_types = Counter(e.caption_type for v in usable.values() for e in v.expressions.values())
    dataset = {
        "clips": len(clips), "clips_annotated": len(records) - len(without_objects),
        "clips_without_objects": without_objects, "clips_without_expressions": without_expressions,
        "clips_unfinished": sorted(set(by_id) - set(records)),
        "expressions": sum(caption_types.values()), "caption_types": dict(sorted(caption_types.items())),
        "quarantined_items": len(bad),
        "splits": {"train": {"videos": len(train), "expressions": stats["train"]["expressions"],
                             "source_videos": len({by_id[c].video_id for c in train})},
                   "valid": {"videos": len(valid), "expressions": stats["valid"]["expressions"],
                             "source_videos": len({by_id[c].video_id for c in valid}),
                             "dropped_by_filter": len(valid_all) - len(valid),
                             "interaction_share_before_filter": interaction_share(valid_all.values()),
                             "interaction_share": interaction_share(valid.values())}},
        "visual_prompt_samples": samples,
    }
    summary = {"run": _run_section(totals, seconds), "dataset": dataset}
    if cfg.ground_truth:
        from interrvos.annotate.quality import score_annotations

        summary["quality"] = score_annotations(records.values(), cfg.ground_truth)
    storage.write_json(layout.summary, summary, indent=2)
    return summary


def rec_has_objects(record: dict) -> bool:
    return bool(record["objects"])
