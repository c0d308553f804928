"""Node failure: a worker node (its `ray start`, raylet and workers: its whole process group) is killed
by PID mid-extract, mid-annotate and mid-train. Each job still finishes, through Ray's retries or, where
Ray gives up, through the job's own resume (the same command run again), and its outputs equal the
clean run's: nothing lost, nothing duplicated."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path

import pytest
from job_args import TRAIN_STEPS, annotate_args, extract_args, train_args

pytestmark = pytest.mark.slow


def tree_digest(root: Path, skip: tuple[str, ...] = ("extract_summary.json",)) -> dict[str, str]:
    """The dataset's files (not the run's summary, nor the job's logs/ folder: interrvos.run_logs)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file() and p.name not in skip and p.relative_to(root).parts[0] != "logs"}


def wait_for(condition, proc, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        assert proc.poll() is None, f"the job ended ({proc.returncode}) before {what}"
        time.sleep(0.02)
    raise TimeoutError(what)


def victim(cluster, nodes: list[str]) -> str | None:
    """The worker node (not the head) running most of the given node ids' work (None: none runs any)."""
    workers = {n.node_id: n.name for n in cluster.nodes.values() if n.name != "head" and not n.killed}
    counts = {name: sum(1 for n in nodes if n == nid) for nid, name in workers.items()}
    name = max(counts, key=counts.get)
    return name if counts[name] else None


def busy_worker_node(cluster, proc, started, actor_parts: tuple[str, ...], timeout: float = 240) -> str:
    """Wait until the job has begun (`started()`) and one of its actors is alive on a worker node; that node."""
    found: list[str] = []

    def ready() -> bool:
        if not started():
            return False
        name = victim(cluster, [n for part in actor_parts for n in cluster.actor_nodes(part)])
        found[:] = [name] if name else []
        return bool(name)

    wait_for(ready, proc, timeout, f"the job had begun and an actor ({', '.join(actor_parts)}) ran on a worker node")
    return found[0]


def kill_and_finish(cluster, jobs, proc, name: str, target: str, rerun: list[str], timeout: float = 420) -> dict:
    """Kill node `target`, let the job end; if it failed, run the same command again (the job's resume)."""
    node_id = cluster.nodes[target].node_id
    killed_at = time.perf_counter()
    cluster.kill(target)
    noticed_s = cluster.wait_dead(cluster.nodes[target])
    rc = jobs.finish(name, proc, timeout)
    facts = {"killed": target, "node_id": node_id, "head_noticed_s": round(noticed_s, 1), "first_rc": rc,
             "finished_s_after_kill": round(time.perf_counter() - killed_at, 1), "rerun": rc != 0}
    if rc != 0:
        facts["first_log_tail"] = jobs.tail(name, 1500)
        facts["rerun_s"] = round(jobs.run(f"{name}-rerun", *rerun), 1)
    return facts


def test_extraction_survives_a_worker_node_loss(cluster, jobs, sources, clean_extract, two_worker_nodes, tmp_path,
                                                record):  # fmt: skip
    out = tmp_path / "dataset"
    total = clean_extract["summary"]["dataset"]["clips"]
    args = extract_args(sources, out)
    proc = jobs.start("extract-kill", "extract", *args)
    markers = out / "clips_done"
    target = busy_worker_node(cluster, proc, lambda: markers.exists() and any(markers.glob("*.json")),
                              ("ClipWriter",))
    done_at_kill = len(list(markers.glob("*.json")))
    facts = kill_and_finish(cluster, jobs, proc, "extract-kill", target, ["extract", *args])
    record("extract-node-loss", clips=total, done_at_kill=done_at_kill, **facts)
    assert done_at_kill < total, "the kill must land mid-run for this test to mean anything"
    assert tree_digest(out) == tree_digest(clean_extract["out"])  # every clip once, byte for byte
    summary = json.loads((out / "extract_summary.json").read_text())
    assert summary["dataset"] == clean_extract["summary"]["dataset"] and not summary["run"]["errors"]


class CacheWatcher:
    """When each answer first appeared in the annotation cache (time.monotonic, the stand-in's clock)."""

    def __init__(self, cache: Path):
        self.cache, self.first_seen, self._stop = cache, {}, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            keys = [str(p.relative_to(self.cache))[: -len(".json")] for p in self.cache.rglob("*.json")]
            now = time.monotonic()  # after the listing: never before the file was there
            for key in keys:
                self.first_seen.setdefault(key, now)
            time.sleep(0.02)

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self.thread.join(timeout=5)
        return self.first_seen


def annotation_outputs(out: Path) -> dict[str, bytes]:
    return {f"{s}/{f}": (out / s / f).read_bytes() for s in ("train", "valid")
            for f in ("meta_expressions.json", "mask_dict.json")}


def test_annotation_survives_a_worker_node_loss_and_asks_no_cached_item_again(
        cluster, jobs, clean_extract, clean_annotate, stand_in, two_worker_nodes, tmp_path, record):  # fmt: skip
    out, dataset = tmp_path / "annotated", clean_extract["out"]
    clean_keys = {json.loads(p.read_text())["key"] for p in (clean_annotate["out"] / "cache").rglob("*.json")}
    assert len(clean_keys) == clean_annotate["requests"]  # clean: one request per item
    stand_in.reset()
    stand_in.latency_s = 0.3  # answers take a while, so the kill lands mid-run
    watcher = CacheWatcher(out / "cache")
    args = annotate_args(dataset, out, stand_in.base_url)
    proc = jobs.start("annotate-kill", "annotate", *args)
    try:
        target = busy_worker_node(cluster, proc, lambda: len(watcher.first_seen) >= len(clean_keys) // 4,
                                  ("AnswerStage", "PrepareClip"))
        cached_at_kill = len(watcher.first_seen)
        facts = kill_and_finish(cluster, jobs, proc, "annotate-kill", target, ["annotate", *args])
    finally:
        first_seen = watcher.stop()
        stand_in.latency_s = 0.0
    log = list(stand_in.log)
    asked_after_cached = sorted({e.key for e in log if e.key in first_seen and e.arrived > first_seen[e.key]})
    per_key = {k: sum(1 for e in log if e.key == k) for k in {e.key for e in log}}
    record("annotate-node-loss", items=len(clean_keys), cached_at_kill=cached_at_kill, requests=len(log),
           asked_again=sorted(k for k, n in per_key.items() if n > 1), **facts)
    assert 0 < cached_at_kill < len(clean_keys), "the kill must land mid-run for this test to mean anything"
    assert asked_after_cached == []  # no item answered twice after its answer was cached
    assert set(per_key) == clean_keys  # every item asked (at least once) in this run, nothing else
    cached = {json.loads(p.read_text())["key"] for p in (out / "cache").rglob("*.json")}
    assert cached == clean_keys
    assert annotation_outputs(out) == annotation_outputs(clean_annotate["out"])  # nothing lost or duplicated
    summary = json.loads((out / "annotate_summary.json").read_text())
    assert summary["dataset"]["clips_unfinished"] == [] and summary["dataset"] == clean_annotate["summary"]["dataset"]


def test_training_resumes_from_its_last_checkpoint_on_the_nodes_that_remain(
        cluster, jobs, pushing, clean_train, two_worker_nodes, tmp_path, record):  # fmt: skip
    from interrvos.train.checkpointing import resume_step_hint
    from interrvos.train.observe import read_metrics_csv

    storage = tmp_path / "runs"
    run = storage / "tiny"
    args = train_args(pushing["train"], storage, "tiny", "--set", "checkpoint.export=false")
    proc = jobs.start("train-kill", "train", *args)
    wait_for(lambda: resume_step_hint(str(run)) >= 2, proc, 300, "the step-2 checkpoint was reported")
    ranks = {json.loads(p.read_text())["rank"]: json.loads(p.read_text())["node"]
             for p in (run / "workers").glob("step00000000-rank*.json")}
    target = victim(cluster, list(ranks.values()))
    assert target, f"both training workers on the head? {ranks}"
    step_at_kill = resume_step_hint(str(run))
    facts = kill_and_finish(cluster, jobs, proc, "train-kill", target, ["train", *args])
    summary = json.loads((run / "train_summary.json").read_text())
    groups = summary["worker_groups"]
    record("train-node-loss", step_at_kill=step_at_kill, ranks_before={r: cluster.name_of(n) for r, n in ranks.items()},
           worker_groups=[{**g, "ranks": {r: cluster.name_of(n) for r, n in g["ranks"].items()}} for g in groups],
           **facts)
    assert step_at_kill < TRAIN_STEPS, "the kill must land mid-run for this test to mean anything"
    assert summary["final_metrics"]["step"] == TRAIN_STEPS and not facts["rerun"]  # Ray Train retried by itself
    first, *_, last = groups
    assert first["from_step"] == 0 and 2 <= last["from_step"] < TRAIN_STEPS  # resumed from a checkpoint, not 0
    dead = cluster.nodes[target].node_id
    assert dead not in last["ranks"].values() and len(set(last["ranks"].values())) == 2  # the nodes that remain
    rows = read_metrics_csv(str(run / "report" / "metrics.csv"))
    clean_rows = read_metrics_csv(str(clean_train["run"] / "report" / "metrics.csv"))
    assert [int(r["step"]) for r in rows] == list(range(1, TRAIN_STEPS + 1))  # every step once
    assert [r["loss"] for r in rows] == pytest.approx([r["loss"] for r in clean_rows], rel=1e-5)
