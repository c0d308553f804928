"""What an annotation run shows people: a Markdown section for run reports (counters per stage, the
dataset, the sample visual prompts that finalize saved: samples.py) and the entry point the demo calls."""

from __future__ import annotations

import os
from typing import Any

from interrvos.annotate.config import AnnotateConfig, LLMPoolConfig, PoolsConfig, SplitConfig
from interrvos.annotate.layout import AnnotateLayout
from interrvos.annotate.pipeline import run_annotate
from interrvos.config import ActorPoolConfig, RayConfig
from interrvos.data import storage


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
    small = LLMPoolConfig(min_size=1, max_size=1, clips_in_flight=4)
    split = SplitConfig() if val_fraction is None else SplitConfig(val_fraction=val_fraction)
    cfg = AnnotateConfig(dataset=dataset_dir, out=out_dir, backend="local", ground_truth=ground_truth, split=split,
                         ray=ray_cfg or RayConfig(num_cpus=2),
                         pools=PoolsConfig(prepare=ActorPoolConfig(min_size=1, max_size=2, num_cpus=1.0),
                                           stage1=small, stage2=small, stage3=small, stage4=small))
    return run_annotate(cfg)
