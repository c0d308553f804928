"""What is scored and how scores are averaged: items, settings (paper Table 5), caption types (Table 4).

An *item* is one predicted mask track scored against one ground-truth mask track over a video's
frames; its J and F are means over frames (MeViS/InterRVOS protocol) or over all frames but the
first and the last (DAVIS averaging). Every expression gives items:

  - an expression with an annotated actor-target pair (non-empty `actor_anno_id` and
    `target_anno_id`): two items, in the Actor-Target setting: the predicted actor against the
    union of the actor masks, the predicted target against the union of the target masks;
  - any other expression (single, multi, and interactions without roles, i.e. bidirectional ones):
    one item, in the Referring setting: the predicted actor against the union of all the
    expression's objects (`anno_id`), the standard RVOS ground truth.

Settings: Referring and Actor-Target average their own items; Overall pools every item. The
caption-type table groups the same items by their expression's caption type, so its Overall
equals the Overall setting. All means are means of item means (not of frames), J&F = (J + F) / 2,
and tables report x100. docs/evaluation.md explains the counting with an example.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from interrvos.data.records import CAPTION_TYPES, Expression

Setting = Literal["referring", "actor_target"]
PredictedRole = Literal["actor", "target"]
TruthRole = Literal["all", "actor", "target"]
FrameAveraging = Literal["mevis", "davis"]

SETTINGS: tuple[str, ...] = ("referring", "actor_target", "overall")
SETTING_TITLES = {"referring": "Referring", "actor_target": "Actor-Target", "overall": "Overall"}
# Columns of the paper's Table 4, in its order, then Overall.
CAPTION_TITLES = {
    "single_all": "Single (Appear. + Motion)",
    "single_appearance": "Single (Appear.)",
    "single_motion": "Single (Motion)",
    "multi": "Multi",
    "interaction": "Interaction",
    "overall": "Overall",
}
assert tuple(CAPTION_TITLES)[:-1] == CAPTION_TYPES


@dataclass(frozen=True)
class ItemSpec:
    """Which predicted mask track (`predicted`) is scored against which ground truth (`truth`, a role
    of Dataset.expression_masks), and the setting the item counts in."""

    predicted: PredictedRole
    truth: TruthRole
    setting: Setting


def has_actor_target_pair(e: Expression) -> bool:
    return bool(e.actor_anno_id) and bool(e.target_anno_id)


def expression_items(e: Expression, unpaired_interactions: Setting = "referring") -> list[ItemSpec]:
    """The items an expression is scored as (see the module docstring). `unpaired_interactions`
    moves interaction expressions without an actor-target pair into the Actor-Target setting."""
    if has_actor_target_pair(e):
        return [ItemSpec("actor", "actor", "actor_target"), ItemSpec("target", "target", "actor_target")]
    setting: Setting = "actor_target" if e.caption_type == "interaction" and unpaired_interactions == "actor_target" \
        else "referring"
    return [ItemSpec("actor", "all", setting)]


def scored_frames(num_frames: int, averaging: FrameAveraging) -> range:
    """Frame indices that count in an item's mean. DAVIS drops the first and the last frame (kept
    when a video has fewer than 3 frames, where nothing would be left)."""
    if averaging == "davis" and num_frames >= 3:
        return range(1, num_frames - 1)
    return range(num_frames)


def exact_mean(values: Iterable[float]) -> float:
    """Mean with an exactly rounded sum (math.fsum): the same bits whatever the order of the values,
    so a parallel run gives exactly the numbers of a single-process run. NaN when empty."""
    values = list(values)
    return math.fsum(values) / len(values) if values else float("nan")


def _summary(items: Sequence[dict]) -> dict:
    """{J, F, JF} x100 (None when there are no items), and how many items and expressions."""
    if not items:
        return {"J": None, "F": None, "JF": None, "items": 0, "expressions": 0}
    j, f = exact_mean(i["J"] for i in items), exact_mean(i["F"] for i in items)
    return {"J": 100 * j, "F": 100 * f, "JF": 100 * (j + f) / 2, "items": len(items),
            "expressions": len({(i["video"], i["expression"]) for i in items})}


def summarize_items(items: Sequence[dict]) -> dict:
    """The settings table and the caption-type table from scored items (dicts with video,
    expression, caption_type, setting, J, F in [0, 1]). Items that failed (J is NaN) are left out."""
    scored = [i for i in items if not math.isnan(i["J"])]
    settings = {s: _summary([i for i in scored if s == "overall" or i["setting"] == s]) for s in SETTINGS}
    captions = {c: _summary([i for i in scored if c == "overall" or i["caption_type"] == c]) for c in CAPTION_TITLES}
    return {"settings": settings, "caption_types": captions}
