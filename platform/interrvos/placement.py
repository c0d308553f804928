"""Which Ray node did what: the node id a worker runs on, and the per-node tallies the jobs' summaries
carry (`"nodes": {node_id: items}`), so a run on a multi-node cluster shows where its work landed.

Node ids, not IPs: nodes of one machine (a local multi-node cluster, containers sharing a host network)
all report the same IP. Rows produced outside a Ray worker (unit tests calling a stage directly) get ''.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from interrvos.data import storage

TRAIN_WORKERS_DIR = "workers"  # <run>/workers/step<from>-rank<r>.json: where each rank of each worker group ran


def current_node_id() -> str:
    """The Ray node id of this process ('' when Ray is not initialised here)."""
    try:
        import ray

        if not ray.is_initialized():
            return ""
        return ray.get_runtime_context().get_node_id() or ""
    except Exception:  # a tally must never fail the work it describes
        return ""


def count_nodes(nodes: Iterable[str]) -> dict[str, int]:
    """{node_id: how many items} of the given per-item node ids, sorted by node id ('' is dropped)."""
    return dict(sorted(Counter(n for n in nodes if n).items()))


def merge_counts(into: dict[str, int], more: Mapping[str, int]) -> dict[str, int]:
    for node, n in more.items():
        into[node] = into.get(node, 0) + n
    return into


# --- training: one record per rank per worker group (a restart after a failure starts a new group) ---


def record_train_worker(run_uri: str, rank: int, world_size: int, from_step: int) -> None:
    """Called by every training worker once it knows the step it resumes from."""
    storage.write_json(storage.join(run_uri, TRAIN_WORKERS_DIR, f"step{from_step:08d}-rank{rank}.json"),
                       {"rank": rank, "world_size": world_size, "from_step": from_step, "node": current_node_id()})


def train_placement(run_uri: str, total_steps: int) -> dict[str, Any]:
    """The run's worker groups in order ({from_step, to_step, ranks: {rank: node}}) and `nodes`: the
    optimizer steps each node's ranks trained that count toward the final model (steps redone after a
    failure count once, for the group that redid them)."""
    folder = storage.join(run_uri, TRAIN_WORKERS_DIR)
    groups: dict[int, dict[str, str]] = {}
    if storage.exists(folder):
        for name in storage.list_dir(folder):
            if name.endswith(".json"):
                rec = storage.read_json(storage.join(folder, name))
                groups.setdefault(int(rec["from_step"]), {})[str(rec["rank"])] = rec["node"]
    starts = sorted(groups)
    out, nodes = [], {}
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else total_steps
        ranks = dict(sorted(groups[start].items(), key=lambda kv: int(kv[0])))
        out.append({"from_step": start, "to_step": end, "ranks": ranks})
        merge_counts(nodes, count_nodes(node for node in ranks.values() for _ in range(end - start)))
    return {"worker_groups": out, "nodes": dict(sorted(nodes.items()))}
