"""How good is stage 3? Precision and recall of (actor, target, direction) against the synthetic
ground-truth events (`<video>.meta.json`, see interrvos.synth).

A ground-truth event counts for a clip when both its objects were kept and at least half of the
event lies inside the clip; an event only partly inside (less than half) is neither required nor
held against a prediction. Unidirectional triples are ordered (actor, target); bidirectional ones
are unordered pairs. Predictions are stage 3's interactions: actors x targets for unidirectional,
every pair of the group for bidirectional.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from interrvos.data import storage
from interrvos.data.records import ClipRecord

Triple = tuple[str, str, str]  # (actor, target, "uni") or (low id, high id, "bi")
MIN_INSIDE = 0.5


def _event_triples(event: Mapping[str, Any]) -> list[Triple]:
    if event["direction"] == "unidirectional":
        return [(a, t, "uni") for a in event["actor_ids"] for t in event["target_ids"]]
    ids = sorted(event["participant_ids"], key=lambda o: (len(o), o))
    return [(x, y, "bi") for i, x in enumerate(ids) for y in ids[i + 1:]]


def truth_triples(meta: Mapping[str, Any], clip: ClipRecord) -> tuple[set[Triple], set[Triple], dict[Triple, str]]:
    """(required, tolerated, verb of each required triple) for one clip."""
    required: set[Triple] = set()
    tolerated: set[Triple] = set()
    verbs: dict[Triple, str] = {}
    kept = set(clip.object_ids)
    for event in meta.get("events", []):
        ids = set(event.get("actor_ids", [])) | set(event.get("target_ids", [])) | set(event.get("participant_ids", []))
        if not ids <= kept:
            continue
        length = max(1, event["end_frame"] - event["start_frame"])
        inside = min(event["end_frame"], clip.end_frame) - max(event["start_frame"], clip.start_frame)
        if inside <= 0:
            continue
        triples = _event_triples(event)
        tolerated.update(triples)
        if inside / length >= MIN_INSIDE:
            required.update(triples)
            for t in triples:
                verbs.setdefault(t, event["verb"])
    return required, tolerated, verbs


def predicted_triples(interactions: Iterable[Mapping[str, Any]]) -> set[Triple]:
    """Triples of stage-3 interactions (ids with or without brackets)."""
    def ids(xs: Iterable[str]) -> list[str]:
        return [str(x).strip("[]") for x in xs]

    out: set[Triple] = set()
    for it in interactions:
        if it["type"] == "unidirectional":
            out.update((a, t, "uni") for a in ids(it["actors"]) for t in ids(it["targets"]))
        else:
            group = sorted(ids(it["object_pair"]), key=lambda o: (len(o), o))
            out.update((x, y, "bi") for i, x in enumerate(group) for y in group[i + 1:])
    return out


def score(clips: Iterable[tuple[set[Triple], set[Triple], set[Triple], dict[Triple, str]]]) -> dict[str, Any]:
    """clips: (predicted, required, tolerated, verbs) per clip -> precision, recall and counts."""
    tp = fp = fn = 0
    found_by_verb: Counter[str] = Counter()
    total_by_verb: Counter[str] = Counter()
    wrong_direction = 0
    n = 0
    for predicted, required, tolerated, verbs in clips:
        n += 1
        tp += len(predicted & required)
        fn += len(required - predicted)
        extra = predicted - tolerated
        fp += len(extra)
        wrong_direction += sum(1 for a, t, d in extra if d == "uni" and (t, a, "uni") in required)
        for t in required:
            total_by_verb[verbs[t]] += 1
            found_by_verb[verbs[t]] += t in predicted
    return {
        "clips": n, "true_positives": tp, "false_positives": fp, "false_negatives": fn,
        "precision": round(tp / (tp + fp), 3) if tp + fp else 1.0,
        "recall": round(tp / (tp + fn), 3) if tp + fn else 1.0,
        "reversed_direction": wrong_direction,
        "recall_by_verb": {v: f"{found_by_verb[v]}/{total_by_verb[v]}" for v in sorted(total_by_verb)},
    }


def synth_meta(synth_dir: str, video_id: str) -> dict[str, Any] | None:
    path = storage.join(synth_dir, f"{video_id}.meta.json")
    return storage.read_json(path) if storage.exists(path) else None


def score_annotations(records: Iterable[Mapping[str, Any]], synth_dir: str) -> dict[str, Any]:
    """Score the stage-3 answers of annotated clip records (annotate's `annotations/<clip>.json`)."""
    rows = []
    for rec in records:
        clip = ClipRecord.model_validate(rec["clip"])
        meta = synth_meta(synth_dir, clip.video_id)
        if meta is None or len(clip.object_ids) < 2:
            continue
        stage3 = (rec.get("stage3") or {}).get("answer") or {}
        required, tolerated, verbs = truth_triples(meta, clip)
        rows.append((predicted_triples(stage3.get("interactions", [])), required, tolerated, verbs))
    return score(rows)


def score_local_stage3(dataset: str, synth_dir: str) -> dict[str, Any]:
    """The local backend's stage 3 on every clip of an extracted dataset, scored (no Ray, no cache)."""
    from interrvos.annotate.evidence import measure_clip
    from interrvos.annotate.interactions import find_interactions
    from interrvos.annotate.local_facts import clip_facts
    from interrvos.clips.finalize import read_clips_table
    from interrvos.clips.layout import DatasetLayout

    rows = []
    for clip in read_clips_table(dataset):
        meta = synth_meta(synth_dir, clip.video_id)
        if meta is None or len(clip.object_ids) < 2:
            continue
        tracks = storage.read_json(DatasetLayout(dataset).tracks(clip.clip_id))
        m = measure_clip({o: tracks[o]["mask"] for o in clip.object_ids}, clip.width, clip.height)
        facts = clip_facts(dataset, clip, tracks, m)
        found = find_interactions(m, facts)
        required, tolerated, verbs = truth_triples(meta, clip)
        rows.append((predicted_triples(i.as_answer() for i in found), required, tolerated, verbs))
    return score(rows)


def score_local_on_synth(synth_dir: str) -> dict[str, Any]:
    """The local backend's stage 3 on whole synthetic videos (each video one clip with all its objects),
    straight from `interrvos synth` output: no extraction needed."""
    from interrvos.annotate.evidence import measure_clip
    from interrvos.annotate.interactions import find_interactions
    from interrvos.annotate.local_facts import clip_facts
    from interrvos.clips.plan import sample_frames
    from interrvos.data.video import VideoReader

    rows = []
    for name in storage.list_dir(synth_dir):
        if not name.endswith(".meta.json"):
            continue
        meta = storage.read_json(storage.join(synth_dir, name))
        vid = meta["video_id"]
        tracks = storage.read_json(storage.join(synth_dir, f"{vid}.masks.json"))
        ids = sorted(tracks, key=lambda o: (len(o), o))
        n = meta["num_frames"]
        clip = ClipRecord(clip_id=vid, video_id=vid, source_path="", start_frame=0, end_frame=n, fps=meta["fps"],
                          width=meta["width"], height=meta["height"], sampled_frames=sample_frames(n, 16), object_ids=ids)
        with storage.local_path(storage.join(synth_dir, f"{vid}.mp4")) as path, VideoReader(path) as reader:
            frames = list(reader.get_frames(clip.sampled_frames))
        m = measure_clip({o: tracks[o]["mask"] for o in ids}, clip.width, clip.height)
        found = find_interactions(m, clip_facts("", clip, tracks, m, frames))
        required, tolerated, verbs = truth_triples(meta, clip)
        rows.append((predicted_triples(i.as_answer() for i in found), required, tolerated, verbs))
    return score(rows)


if __name__ == "__main__":  # python -m interrvos.annotate.quality SYNTH_DIR [EXTRACTED_DATASET]
    import json
    import sys

    if len(sys.argv) not in (2, 3):
        sys.exit("usage: python -m interrvos.annotate.quality SYNTH_DIR [EXTRACTED_DATASET]")
    result = score_local_stage3(sys.argv[2], sys.argv[1]) if len(sys.argv) == 3 else score_local_on_synth(sys.argv[1])
    print(json.dumps(result, indent=2))
