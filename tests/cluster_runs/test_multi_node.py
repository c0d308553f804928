"""Every long job on a real multi-node cluster (a head and two worker nodes, each its own `ray start`):
the run summaries say which node did what, and the work of each job landed on more than one node."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def _known(cluster, nodes: dict) -> set[str]:
    ids = {n.node_id for n in cluster.nodes.values()}
    assert set(nodes) <= ids, f"unknown node ids in {nodes} (cluster: {ids})"
    return {cluster.name_of(n) for n in nodes}


def test_extraction_writes_clips_on_more_than_one_node(cluster, clean_extract, record):
    run = clean_extract["summary"]["run"]
    assert run["clips_written"] == clean_extract["summary"]["dataset"]["clips"] >= 8 and not run["clips_failed"]
    assert sum(run["nodes"].values()) == run["clips_written"]
    names = _known(cluster, run["nodes"])
    record("extract-clean", seconds=round(clean_extract["seconds"], 1), nodes={cluster.name_of(k): v for k, v in
                                                                               run["nodes"].items()})
    assert len(names) >= 2, run["nodes"]


def test_annotation_stages_run_on_more_than_one_node(cluster, clean_annotate, record):
    run, data = clean_annotate["summary"]["run"], clean_annotate["summary"]["dataset"]
    assert data["clips_unfinished"] == [] and data["expressions"] > 0
    by_step = run["nodes_by_step"]
    # every clip went through prepare and write; the LLM stages only for clips with objects
    assert sum(by_step["prepare"].values()) == sum(by_step["write"].values()) == data["clips"]
    assert sum(run["nodes"].values()) == sum(sum(v.values()) for v in by_step.values())
    names = _known(cluster, run["nodes"])
    record("annotate-clean", seconds=round(clean_annotate["seconds"], 1), requests=clean_annotate["requests"],
           nodes_by_step={s: {cluster.name_of(k): v for k, v in n.items()} for s, n in by_step.items()})
    assert len(names) >= 2, by_step


def test_training_runs_one_worker_per_node(cluster, clean_train, record):
    s = clean_train["summary"]
    assert s["steps"] == s["final_metrics"]["step"] == 6 and s["export"]["step"] == 6
    [group] = s["worker_groups"]  # no failure: one worker group, from step 0 to the end
    assert group["from_step"] == 0 and group["to_step"] == 6 and sorted(group["ranks"]) == ["0", "1"]
    names = _known(cluster, s["nodes"])
    record("train-clean", seconds=round(clean_train["seconds"], 1),
           ranks={r: cluster.name_of(n) for r, n in group["ranks"].items()})
    assert len(set(group["ranks"].values())) == 2 and len(names) == 2  # one Ray Train worker per node
    assert s["nodes"] == {n: 6 for n in group["ranks"].values()}  # each node's rank trained every step


def test_prediction_actors_run_on_more_than_one_node(cluster, clean_predict, record):
    s = clean_predict["summary"]
    assert s["predictions"] == s["expressions"] == s["written"] == 10 and not s["errors"]
    assert sum(s["nodes"].values()) == s["written"]
    names = _known(cluster, s["nodes"])
    record("predict-clean", seconds=round(clean_predict["seconds"], 1),
           nodes={cluster.name_of(k): v for k, v in s["nodes"].items()})
    assert len(names) >= 2, s["nodes"]
