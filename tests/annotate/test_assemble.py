"""From clip records to the dataset: expressions per caption type, roles per direction, splits
disjoint by source video, evaluation filtering, statistics."""

from __future__ import annotations

from interrvos.annotate.assemble import clip_expressions, evaluation_sources, filter_for_evaluation, video_entry
from interrvos.annotate.config import EvalFilterConfig, SplitConfig
from interrvos.annotate.stats import dataset_stats, plot_stats
from interrvos.data.records import ClipRecord


def ok(answer: dict) -> dict:
    return {"status": "ok", "answer": answer}


def record(cid: str = "v1_clip000") -> dict:
    objects = {o: {"category": c, "anno_id": f"{cid}:{o}"} for o, c in (("1", "dog"), ("2", "ball"), ("3", "cat"))}
    singles = {o: ok({"all": f"{c} running left", "motion": "object running left", "appearance": f"brown {c}"})
               for o, c in (("1", "dog"), ("2", "ball"))}
    return {
        "clip": {"clip_id": cid, "start_frame": 0, "end_frame": 5},
        "objects": objects,
        "stage2": {"objects": {**singles, "3": {"status": "quarantined", "answer": None}},
                   "merge": ok({"merged": "YES", "merged_objects": ["1", "3"], "merged_caption": "animals running"})},
        "stage4": [
            {"type": "unidirectional", "subject": ["1"], "targets": ["2"], "interaction": 0,
             "outcome": ok({"class_level": "dog chasing the ball", "appearance_level": "brown dog chasing the ball"})},
            {"type": "unidirectional", "subject": ["2"], "targets": ["1"], "interaction": 0,
             "outcome": ok({"class_level": "ball being chased by the dog", "appearance_level": "ball chased by dog"})},
            {"type": "bidirectional", "subject": ["1", "3"], "targets": [], "interaction": 1,
             "outcome": ok({"class_level": "dog and cat playing", "appearance_level": "dog and cat playing"})},
            {"type": "unidirectional", "subject": ["3"], "targets": ["1"], "interaction": 2,
             "outcome": {"status": "quarantined", "answer": None}}],
    }


def test_expressions_of_a_record_with_roles_per_direction():
    exps = clip_expressions(record())
    kinds = [e.caption_type for e in exps]
    assert kinds.count("single_all") == 2 and kinds.count("multi") == 1 and kinds.count("interaction") == 5
    chase = [e for e in exps if e.exp == "dog chasing the ball"][0]
    assert (chase.obj_id, chase.actor_ids, chase.target_ids, chase.interaction) == (["1", "2"], ["1"], ["2"],
                                                                                      "unidirectional")
    assert chase.actor_anno_id == ["v1_clip000:1"] and chase.target_anno_id == ["v1_clip000:2"]
    chased = [e for e in exps if e.exp == "ball being chased by the dog"][0]
    assert (chased.actor_ids, chased.target_ids) == (["2"], ["1"])  # the subject is the actor of its expression
    play = [e for e in exps if e.exp == "dog and cat playing"]
    assert len(play) == 1 and play[0].interaction == "bidirectional" and play[0].actor_ids == []  # deduplicated
    entry = video_entry(record())
    assert entry.frames == ["00000", "00001", "00002", "00003", "00004"] and list(entry.expressions) == \
        [str(i) for i in range(len(exps))]


def test_evaluation_split_is_disjoint_by_source_and_stable():
    ids = [f"v{i}" for i in range(20)]
    chosen = evaluation_sources(ids, SplitConfig(val_fraction=0.1, seed=0), with_interactions=["v3", "v7"])
    assert chosen == {"v3", "v7"}  # sources with interactions go first
    assert evaluation_sources(ids, SplitConfig(val_fraction=0.25)) == evaluation_sources(list(reversed(ids)),
                                                                                      SplitConfig(val_fraction=0.25))
    assert evaluation_sources(["only"], SplitConfig(val_fraction=0.5)) == set()
    assert len(evaluation_sources(ids[:2], SplitConfig(val_fraction=0.9))) == 1  # never every source


def test_evaluation_filter_raises_the_share_of_interaction_expressions():
    entry = video_entry(record())
    filtered = filter_for_evaluation(entry, EvalFilterConfig(max_single_per_object=1))
    share = lambda e: sum(x.caption_type == "interaction" for x in e.expressions.values()) / len(e.expressions)  # noqa
    assert share(filtered) > share(entry)
    singles = [e for e in filtered.expressions.values() if e.caption_type.startswith("single")]
    assert sorted(e.caption_type for e in singles) == ["single_all", "single_all"]
    no_interactions = entry.model_copy(update={"expressions": {k: v for k, v in entry.expressions.items()
                                                               if v.caption_type != "interaction"}})
    assert filter_for_evaluation(no_interactions, EvalFilterConfig()) is None


def test_statistics_like_figure_a3(tmp_path):
    entry = video_entry(record())
    clips = {"v1_clip000": ClipRecord(clip_id="v1_clip000", video_id="v1", source_path="", start_frame=0, end_frame=5,
                                      fps=5, width=8, height=8, sampled_frames=[0])}
    stats = dataset_stats({"train": {"v1_clip000": entry}, "valid": {}}, clips)
    s = stats["train"]
    assert s["videos"] == 1 and s["videos_with_interactions"] == 1.0
    assert s["objects_per_interaction"] == {"2": 2} and s["expressions_per_video"] == {str(len(entry.expressions)): 1}
    assert s["top_words"]["dog"] >= 3 and "the" not in s["top_words"] and s["duration_s"]["mean"] == 1.0
    plot_stats(stats, str(tmp_path / "stats.png"))
    assert (tmp_path / "stats.png").read_bytes()[:4] == b"\x89PNG"
