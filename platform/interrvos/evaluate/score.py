"""Scoring one expression: its items (protocol.expression_items), frame by frame, in bounded memory.

Only one frame's masks are decoded at a time, so an expression of any length costs the memory of a
frame; RLE masks are decoded only in the columns J and F look at (rle_band). A failure (a malformed mask, a ground truth that does not decode) becomes an error row for
the items it touches, with J and F NaN; the run reports it and goes on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from interrvos.data.mevis import Dataset
from interrvos.data.records import Expression
from interrvos.data.rle import RLE, decode_rle
from interrvos.errors import DatasetError
from interrvos.evaluate.metrics import BOUND_TH, jf_score
from interrvos.evaluate.predictions import load_mask
from interrvos.evaluate.protocol import FrameAveraging, ItemSpec, Setting, exact_mean, expression_items, scored_frames
from interrvos.evaluate.rle_band import MalformedRLE, foreground_runs, jf_from_runs, union_runs


def truth_anno_ids(e: Expression, truth: str) -> list[str]:
    return {"all": e.anno_id, "actor": e.actor_anno_id, "target": e.target_anno_id}[truth]


def truth_mask(ds: Dataset, vid: str, anno_ids: list[str], frame: int, size: tuple[int, int]) -> np.ndarray:
    """The union of the given objects' masks at one frame (what Dataset.union_masks gives per frame)."""
    # Column-major, like pycocotools' decoded masks, so metrics.jf_score can work on views.
    mask = None
    for anno in anno_ids:
        track = ds.masks(anno)
        rle = track[frame] if frame < len(track) else None
        if rle is None:
            continue
        if tuple(rle["size"]) != size:
            raise DatasetError(f"ground truth: video {vid!r} anno id {anno!r} frame {frame} has a {rle['size']} mask "
                               f"but frames are {list(size)} (run `interrvos validate`)")
        decoded = decode_rle(rle)
        mask = decoded if mask is None else np.bitwise_or(mask, decoded, out=mask)
    return np.zeros(size, np.uint8, order="F") if mask is None else mask


def _truth_rles(ds: Dataset, anno_ids: list[str], frame: int) -> list[RLE | None]:
    return [track[frame] if frame < len(track) else None for track in (ds.masks(a) for a in anno_ids)]


def item_row(vid: str, exp_id: str, e: Expression, spec: ItemSpec, **values: Any) -> dict[str, Any]:
    """One scored item; every row has every column (Ray Data blocks then share one schema)."""
    row = {"source": "", "video": vid, "expression": exp_id, "caption_type": e.caption_type, "setting": spec.setting,
           "role": spec.predicted, "truth": spec.truth, "J": float("nan"), "F": float("nan"),
           "frames": 0, "mask_given": True, "error": ""}
    row.update(values)
    return row


def score_expression(ds: Dataset, sources: Mapping[str, Any], vid: str, exp_id: str, locator: Any,
                     size: tuple[int, int], *, averaging: FrameAveraging = "mevis",
                     unpaired_interactions: Setting = "referring", bound_th: float = BOUND_TH) -> list[dict[str, Any]]:
    """Item rows of one expression for each named prediction source (J and F: means over the scored
    frames, in [0, 1]). Several sources share one decoding of the ground truth per frame (the
    baselines table scores five at once); `locator` is where every source finds this expression."""
    e = ds.videos[vid].expressions[exp_id]
    specs = expression_items(e, unpaired_interactions)
    rows, predictions = [], {}
    for name, source in sources.items():
        try:
            predictions[name] = source.load(ds, vid, exp_id, locator)
        except Exception as err:  # noqa: BLE001 - a bad record fails its expression, never the run
            rows += [item_row(vid, exp_id, e, s, source=name, error=f"reading the prediction: {type(err).__name__}: {err}")
                     for s in specs]
    n = len(ds.videos[vid].frames)
    for spec in specs:
        tracks, frames, given = {}, {}, {}
        for name, p in predictions.items():
            track = p.actor if spec.predicted == "actor" else p.target
            missing = p.missing_actor if spec.predicted == "actor" else p.missing_target
            given[name] = track is not None
            if track is None:  # no target predicted: scored as an empty mask on every frame
                track, missing = [None] * n, set()
            tracks[name] = track
            frames[name] = [i for i in scored_frames(n, averaging) if i not in missing]
        scores: dict[str, list[tuple[float, float]]] = {name: [] for name in predictions}
        errors: dict[str, str] = {name: "no predicted frame to score" for name in predictions if not frames[name]}
        annos = truth_anno_ids(e, spec.truth)
        every_frame = sorted(set().union(*frames.values())) if frames else []
        for i in every_frame:
            try:
                truth = union_runs([foreground_runs(rle, *size) for rle in _truth_rles(ds, annos, i)])
            except Exception as err:  # noqa: BLE001 - a broken ground truth fails the item for everyone
                errors.update({name: f"ground truth of video {vid!r} frame {i}: {err} (run `interrvos validate`)"
                               for name in predictions})
                break
            truth_array = None  # decoded only for predictions given as arrays or PNGs
            for name in predictions:
                if name in errors or i not in frames[name]:
                    continue
                ref = tracks[name][i]
                try:
                    if ref is None or isinstance(ref, dict):  # an RLE: decode only the columns that matter
                        scores[name].append(jf_from_runs(foreground_runs(ref, *size), truth, *size, bound_th))
                        continue
                    if truth_array is None:
                        truth_array = truth_mask(ds, vid, annos, i, size)
                    scores[name].append(jf_score(load_mask(ref, *size), truth_array, bound_th))
                except Exception as err:  # noqa: BLE001
                    kind = "malformed RLE" if isinstance(err, MalformedRLE) else type(err).__name__
                    errors[name] = f"frame {i}: {kind}: {err}"
        for name in predictions:
            if name in errors:
                rows.append(item_row(vid, exp_id, e, spec, source=name, mask_given=given[name], error=errors[name]))
            else:
                pairs = scores[name]
                rows.append(item_row(vid, exp_id, e, spec, source=name, J=exact_mean(p[0] for p in pairs),
                                     F=exact_mean(p[1] for p in pairs), frames=len(pairs), mask_given=given[name]))
    return rows
