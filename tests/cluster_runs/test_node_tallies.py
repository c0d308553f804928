"""The summaries' node tallies without a cluster (fast): rows carry their node, summaries count them, and a
training run's worker groups give each node the steps its ranks trained that count toward the model."""

from __future__ import annotations

import json

from interrvos.annotate.pipeline import _count
from interrvos.annotate.rows import clip_row, with_node
from interrvos.clips.pipeline import RunTally
from interrvos.placement import count_nodes, current_node_id, record_train_worker, train_placement


def test_outside_ray_the_node_is_empty_and_empty_nodes_are_not_counted():
    assert current_node_id() == "" or len(current_node_id()) == 56  # the session's Ray may be up
    assert count_nodes(["b", "a", "", "b"]) == {"a": 1, "b": 2}


def test_extract_summary_counts_written_clips_per_node():
    rows = [{"status": "written", "node": "n1", "frames": 3, "video_id": "v", "stage": "write"},
            {"status": "written", "node": "n2", "frames": 3, "video_id": "v", "stage": "write"},
            {"status": "written", "node": "n1", "frames": 3, "video_id": "w", "stage": "write"},
            {"status": "done", "node": "", "frames": 0, "video_id": "w", "stage": "plan"}]
    tally = RunTally()
    for row in rows:
        tally.add({"clip_id": "", "path": "", "error": "", **row})
    assert tally.summary(2, 1.0)["nodes"] == {"n1": 2, "n2": 1}


def test_annotation_rows_collect_one_node_per_step_and_the_totals_count_them():
    row = clip_row("c1", "todo", {"stats": {}}, nodes=json.dumps({"prepare": "n1"}))
    row["nodes"] = json.dumps({**json.loads(row["nodes"]), "stage1": "n2", "write": "n1"})
    assert json.loads(with_node({}, "prepare")) == {"prepare": current_node_id()}
    totals = {"clips": {}, "stages": {}, "errors": [], "nodes": {}, "nodes_by_step": {}}
    _count(totals, row)
    _count(totals, clip_row("c2", "done"))  # a clip finished by an earlier run: no work, no node
    assert totals["nodes"] == {"n1": 2, "n2": 1}
    assert totals["nodes_by_step"] == {"prepare": {"n1": 1}, "stage1": {"n2": 1}, "write": {"n1": 1}}


def test_training_nodes_count_the_steps_each_group_trained(tmp_path):
    run = str(tmp_path)
    for rank, node in ((0, "a"), (1, "b")):
        record_train_worker(run, rank, 2, 0)
        (tmp_path / "workers" / f"step00000000-rank{rank}.json").write_text(
            json.dumps({"rank": rank, "world_size": 2, "from_step": 0, "node": node}))
    for rank, node in ((0, "a"), (1, "c")):  # node b died; the group restarted from the step-2 checkpoint
        (tmp_path / "workers").joinpath(f"step00000002-rank{rank}.json").write_text(
            json.dumps({"rank": rank, "world_size": 2, "from_step": 2, "node": node}))
    out = train_placement(run, 6)
    assert out["worker_groups"] == [{"from_step": 0, "to_step": 2, "ranks": {"0": "a", "1": "b"}},
                                    {"from_step": 2, "to_step": 6, "ranks": {"0": "a", "1": "c"}}]
    assert out["nodes"] == {"a": 6, "b": 2, "c": 4}
    assert train_placement(str(tmp_path / "none"), 6) == {"worker_groups": [], "nodes": {}}
