"""From finished clip records to the MeViS-compatible dataset (docs/dataset-format.md).

Per clip: three single-object expressions per object (stage 2: all, motion, appearance), one
multi-object expression per merge (stage 2), and two interaction expressions (class level,
appearance level) per direction of each interaction (stage 4). A unidirectional interaction gives
one direction per participating object, whose grammatical subject is the expression's actor and
the other side its target; a bidirectional one names every participant with no roles.
Train and evaluation videos are split by source video (never one source in both); the evaluation
split is filtered to raise the share of interaction expressions.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterable, Mapping
from typing import Any

from interrvos.annotate.config import EvalFilterConfig, SplitConfig
from interrvos.annotate.stages import ok_answer
from interrvos.data import storage
from interrvos.data.mevis import IMAGES_DIR, write_dataset
from interrvos.data.records import Expression, VideoEntry

SINGLE_TYPES = (("all", "single_all"), ("motion", "single_motion"), ("appearance", "single_appearance"))


def clip_expressions(record: Mapping[str, Any]) -> list[Expression]:
    """Every expression of one clip record, in a fixed order, without duplicates."""
    anno = {o: info["anno_id"] for o, info in record["objects"].items()}
    out: list[Expression] = []
    seen: set[tuple] = set()

    def add(text: str, caption_type: str, objs: list[str], interaction: str = "none",
            actors: Iterable[str] = (), targets: Iterable[str] = ()) -> None:
        text = " ".join(text.split())
        actors, targets = list(actors), list(targets)
        key = (text.lower(), tuple(objs), tuple(actors))
        if not text or key in seen or any(o not in anno for o in objs):
            return
        seen.add(key)
        out.append(Expression(exp=text, caption_type=caption_type, obj_id=objs, anno_id=[anno[o] for o in objs],
                              interaction=interaction, actor_ids=actors, target_ids=targets,
                              actor_anno_id=[anno[o] for o in actors], target_anno_id=[anno[o] for o in targets]))

    for o in record["objects"]:
        answer = ok_answer(record["stage2"]["objects"].get(o))
        for key, caption_type in SINGLE_TYPES:
            if answer:
                add(answer[key], caption_type, [o])
    merge = ok_answer(record["stage2"].get("merge"))
    if merge and merge["merged"] == "YES":
        add(merge["merged_caption"], "multi", list(merge["merged_objects"]))
    for entry in record.get("stage4", []):
        answer = ok_answer(entry.get("outcome"))
        if not answer:
            continue
        for level in ("class_level", "appearance_level"):
            if entry["type"] == "unidirectional":
                add(answer[level], "interaction", entry["subject"] + entry["targets"], "unidirectional",
                    entry["subject"], entry["targets"])
            else:
                add(answer[level], "interaction", entry["subject"], "bidirectional")
    return out


def video_entry(record: Mapping[str, Any]) -> VideoEntry:
    clip = record["clip"]
    exps = clip_expressions(record)
    return VideoEntry(vid_id=clip["clip_id"], frames=[f"{i:05d}" for i in range(clip["end_frame"] - clip["start_frame"])],
                      objects={o: dict(info) for o, info in record["objects"].items()},
                      expressions={str(i): e for i, e in enumerate(exps)})


def evaluation_sources(source_ids: Iterable[str], cfg: SplitConfig, with_interactions: Iterable[str] = ()) -> set[str]:
    """Source videos of the evaluation split: a share of them, at least one when any is asked for,
    never all. Sources with interaction expressions go first (the evaluation set is about them),
    in a fixed pseudo-random order (seeded hash of the id), so reruns pick the same ones."""
    ids = sorted(set(source_ids))
    if cfg.val_fraction <= 0 or len(ids) < 2:
        return set()
    n = min(len(ids) - 1, max(1, round(cfg.val_fraction * len(ids))))
    preferred = set(with_interactions)
    ranked = sorted(ids, key=lambda v: (v not in preferred, hashlib.sha256(f"{cfg.seed}:{v}".encode()).hexdigest()))
    return set(ranked[:n])


def filter_for_evaluation(entry: VideoEntry, cfg: EvalFilterConfig) -> VideoEntry | None:
    """Keep interaction expressions, multi-object ones (optional) and at most N single-object ones per
    object (the 'all' kind first); drop the video when it has no interaction expression (optional)."""
    if not cfg.enabled:
        return entry
    kept: list[Expression] = []
    singles: dict[str, int] = {}
    order = {"single_all": 0, "single_appearance": 1, "single_motion": 2}
    exps = sorted(entry.expressions.values(), key=lambda e: order.get(e.caption_type, -1))
    for e in exps:
        if e.caption_type == "interaction" or (e.caption_type == "multi" and cfg.keep_multi):
            kept.append(e)
        elif e.caption_type in order:
            obj = e.obj_id[0]
            if singles.get(obj, 0) < cfg.max_single_per_object:
                singles[obj] = singles.get(obj, 0) + 1
                kept.append(e)
    if cfg.require_interaction and not any(e.caption_type == "interaction" for e in kept):
        return None
    original = list(entry.expressions.values())
    kept.sort(key=original.index)
    return entry.model_copy(update={"expressions": {str(i): e for i, e in enumerate(kept)}})


def _link_or_copy(src: str, dst: str, link: bool) -> None:
    if storage.is_remote(src) or storage.is_remote(dst):
        storage.write_bytes(dst, storage.read_bytes(src))
        return
    src_path, dst_path = storage.resolve(src)[1], storage.resolve(dst)[1]
    os.makedirs(os.path.dirname(dst_path), exist_ok=True)
    if link:
        try:
            os.link(src_path, dst_path)
            return
        except OSError:
            pass  # another filesystem, or links not allowed: copy
    tmp = f"{dst_path}.tmp-copy"
    shutil.copyfile(src_path, tmp)
    os.replace(tmp, dst_path)


def write_split(root: str, entries: Mapping[str, VideoEntry], dataset: str, link: bool = True) -> None:
    """A MeViS-format folder: frames (linked from the extracted dataset), masks of every object, expressions."""
    images = storage.join(root, IMAGES_DIR)
    for stale in set(storage.list_dir(images)) - set(entries):
        storage.remove_tree(storage.join(images, stale))  # videos of an earlier run that moved or left
    mask_dict: dict[str, list] = {}
    for vid, entry in entries.items():
        have = set(storage.list_dir(storage.join(images, vid)))
        for frame in entry.frames:
            if f"{frame}.jpg" not in have:
                _link_or_copy(storage.join(dataset, IMAGES_DIR, vid, f"{frame}.jpg"),
                              storage.join(images, vid, f"{frame}.jpg"), link)
        tracks = storage.read_json(storage.join(dataset, "tracks", f"{vid}.json"))
        for obj, info in entry.objects.items():
            mask_dict[info["anno_id"]] = tracks[obj]["mask"]
    write_dataset(root, dict(sorted(entries.items())), mask_dict)


def interaction_share(entries: Iterable[VideoEntry]) -> float:
    exps = [e for v in entries for e in v.expressions.values()]
    return round(sum(e.caption_type == "interaction" for e in exps) / len(exps), 3) if exps else 0.0
