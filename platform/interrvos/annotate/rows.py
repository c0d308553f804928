"""A clip's row as it travels through the annotation pipeline's Ray Data stages, and what can be read
off a clip's state (the outcomes of its items, those that failed).

Columns: clip_id, status (todo, no_objects, done, error, then annotated / incomplete), state (the
clip's state as JSON, see stages.py), images (the JPEG frames still to be sent, pickled {request
key: [frames]}), error, nodes ({step: Ray node id} as JSON).
"""

from __future__ import annotations

import json
import pickle
from typing import Any

from interrvos.placement import current_node_id


def clip_row(clip_id: str, status: str, state: dict | None = None, images: dict | None = None, **extra: Any) -> dict:
    # Every row has the same columns so Ray Data blocks share one schema.
    return {"clip_id": clip_id, "status": status, "state": json.dumps(state) if state is not None else "",
            "images": pickle.dumps(images) if images else b"", "error": extra.get("error", ""),
            "nodes": extra.get("nodes", "")}


def row_images(row: dict) -> dict[str, list[bytes]]:
    return pickle.loads(row["images"]) if row["images"] else {}


def with_node(row: dict, step: str) -> str:
    """The row's `nodes` column ({step: Ray node id} as JSON) plus the node this step ran on."""
    return json.dumps({**(json.loads(row["nodes"]) if row.get("nodes") else {}), step: current_node_id()})


def frames_still_needed(images: dict[str, list[bytes]], done_stage: str) -> dict[str, list[bytes]]:
    """Only stage 3's frames travel on after stage 1 (cache keys start with their stage)."""
    return {k: v for k, v in images.items() if k.startswith("stage3/")} if done_stage in ("stage1", "stage2") else {}


def failed_items(state: dict) -> list[str]:
    """'stage item: reason' of every item whose answer could not be fetched (not cached; re-asked next run)."""
    out = []
    for outcome in all_outcomes(state):
        if outcome and outcome["status"] == "failed":
            out.append(f"{outcome['stage']} {outcome['item']}: {outcome['reason']}")
    return out


def all_outcomes(state: dict) -> list[dict]:
    return ([*state["stage1"].values(), *state["stage2"]["objects"].values(), state["stage2"]["merge"],
             state["stage3"]] + [e["outcome"] for e in state["stage4"]])
