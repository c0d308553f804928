"""Evaluation outputs: metrics.json, the Markdown tables in the layout of the paper's Tables 4 and 5,
and overlays of sample expressions (actor blue, target pink, as in the paper's figures)."""

from __future__ import annotations

import io
import math
import re
import numpy as np

from interrvos.data import storage
from interrvos.data.rle import encode_mask
from interrvos.evaluate.config import EvaluateConfig
from interrvos.evaluate.protocol import CAPTION_TITLES, SETTING_TITLES, has_actor_target_pair
from interrvos.evaluate.score import truth_anno_ids, truth_mask
from interrvos.viz import overlay_masks, tile_rows

ACTOR_RGB = (30, 144, 255)  # blue
TARGET_RGB = (255, 105, 180)  # pink


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def settings_table(results: dict[str, dict]) -> str:
    """Table 5 layout: per method, J, F and J&F of Referring, Actor-Target and Overall (x100)."""
    header = ["Method"] + [f"{SETTING_TITLES[s]} {m}" for s in SETTING_TITLES for m in ("J", "F", "J&F")]
    rows = [[name] + [_fmt(m["settings"][s][k]) for s in SETTING_TITLES for k in ("J", "F", "JF")]
            for name, m in results.items()]
    return _table(header, rows)


def caption_table(results: dict[str, dict]) -> str:
    """Table 4 layout: per method, J&F by caption type and overall (x100)."""
    header = ["Method"] + list(CAPTION_TITLES.values())
    rows = [[name] + [_fmt(m["caption_types"][c]["JF"]) for c in CAPTION_TITLES] for name, m in results.items()]
    return _table(header, rows)


def item_counts(metrics: dict) -> str:
    s = metrics["settings"]
    return (f"Items scored: Referring {s['referring']['items']} (from {s['referring']['expressions']} expressions), "
            f"Actor-Target {s['actor_target']['items']} (from {s['actor_target']['expressions']} expressions, "
            f"an actor and a target item each), Overall {s['overall']['items']}.")


def sensitivity_table(results: dict[str, dict]) -> str | None:
    """Per method, the cross-expression mask IoU (evaluate/sensitivity.py); None when none was measured."""
    rows = [[name, str(s["pairs"]), _fmt(s["cross_iou"])] for name, m in results.items()
            if (s := m.get("expression_sensitivity"))]  # fmt: skip
    return _table(["Method", "expression pairs", "cross-expression mask IoU"], rows) if rows else None


def markdown_tables(results: dict[str, dict], heading: str = "###") -> str:
    """Both tables for one or more methods (name -> metrics from score_predictions), and the
    cross-expression IoU when measured."""
    first = next(iter(results.values()))
    parts = [
        f"{heading} Settings (layout of the paper's Table 5), x100\n\n" + settings_table(results),
        f"{heading} Caption types (layout of the paper's Table 4), J&F x100\n\n" + caption_table(results),
        item_counts(first),
    ]
    sensitivity = sensitivity_table(results)
    if sensitivity:
        parts.append(f"{heading} Does the mask follow the expression?\n\nMean mask IoU (x100) between the actor "
                     "masks predicted for two expressions of one clip that refer to different objects: the ground "
                     "truth gives 0, one mask whatever the expression gives 100.\n\n" + sensitivity)
    return "\n\n".join(parts)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:60]


def pick_samples(metrics: dict, n: int) -> list[dict]:
    """Up to n scored expressions, evenly spread; about half of them actor-target expressions."""
    scored = [e for e in metrics["expressions"] if all(i["J"] is not None for i in e["items"])]
    paired = [e for e in scored if any(i["setting"] == "actor_target" and i["truth"] != "all" for i in e["items"])]
    others = [e for e in scored if e not in paired]
    k_paired = min(len(paired), max(n - len(others), math.ceil(n / 2)))
    k_others = min(len(others), n - k_paired)

    def spread(seq: list, k: int) -> list:
        return [seq[round(i * (len(seq) - 1) / max(k - 1, 1))] for i in range(k)] if k else []

    return spread(paired, k_paired) + spread(others, k_others)


def _frame(ds, vid: str, frame: str, size: tuple[int, int]) -> np.ndarray:
    try:
        return ds.read_frame(vid, frame)
    except Exception:  # noqa: BLE001 - a dataset without JPEGs still gets overlays, on grey
        return np.full((*size, 3), 96, np.uint8)


def _overlay(image: np.ndarray, actor: np.ndarray | None, target: np.ndarray | None) -> np.ndarray:
    layers = [(label, encode_mask(m), rgb) for label, m, rgb in (("", actor, ACTOR_RGB), ("", target, TARGET_RGB))
              if m is not None and m.any()]
    return overlay_masks(image, layers)


def draw_overlays(cfg: EvaluateConfig, evaluation) -> list[tuple[str, str]]:
    """One strip (prediction row over ground-truth row) or GIF per sample; returns (path relative to
    out, title) of each."""
    from interrvos.evaluate.predictions import load_mask

    ds, source, locators = evaluation.dataset, evaluation.source, evaluation.index.entries
    written = []
    for n, sample in enumerate(pick_samples(evaluation.metrics, cfg.overlays.samples)):
        vid, exp_id = sample["video"], sample["expression"]
        if (vid, exp_id) not in locators:
            continue
        e, frames = ds.videos[vid].expressions[exp_id], ds.videos[vid].frames
        size = tuple(ds.frame_size(vid))
        pred = source.load(ds, vid, exp_id, locators[(vid, exp_id)])
        paired = has_actor_target_pair(e)
        k = min(cfg.overlays.frames, len(frames))
        picks = sorted({round(i * (len(frames) - 1) / max(k - 1, 1)) for i in range(k)})
        pred_cells, truth_cells = [], []
        for i in picks:
            image = _frame(ds, vid, frames[i], size)
            actor = None if i in pred.missing_actor else load_mask(pred.actor[i], *size)
            target = None if pred.target is None or i in pred.missing_target else load_mask(pred.target[i], *size)
            pred_cells.append(_overlay(image, actor, target))
            truth_actor = truth_mask(ds, vid, truth_anno_ids(e, "actor" if paired else "all"), i, size)
            truth_target = truth_mask(ds, vid, truth_anno_ids(e, "target"), i, size) if paired else None
            truth_cells.append(_overlay(image, truth_actor, truth_target))
        jf = [(i["J"] + i["F"]) / 2 for i in sample["items"]]
        title = f"{vid}/{exp_id}: {e.exp} (J&F {', '.join(f'{v:.1f}' for v in jf)})"
        name = f"overlays/{n:02d}_{_safe(vid)}_{_safe(exp_id)}.{cfg.overlays.format}"
        if cfg.overlays.format == "gif":
            _write_gif(storage.join(cfg.out, name), pred_cells, truth_cells, cfg.overlays.cell_width)
        else:
            from interrvos.viz import save_png

            save_png(storage.join(cfg.out, name), tile_rows([pred_cells, truth_cells],
                                                            [f"prediction {title}", "ground truth"],
                                                            cell_width=cfg.overlays.cell_width))
        written.append((name, title))
    return written


def _write_gif(path: str, pred_cells: list[np.ndarray], truth_cells: list[np.ndarray], width: int) -> None:
    """Prediction beside ground truth, one GIF frame per sampled video frame."""
    from PIL import Image

    from interrvos.viz import fit

    pages = [Image.fromarray(np.hstack([fit(p, width), np.full((fit(p, width).shape[0], 4, 3), 255, np.uint8),
                                        fit(t, width)])) for p, t in zip(pred_cells, truth_cells)]
    buf = io.BytesIO()
    pages[0].save(buf, format="GIF", save_all=True, append_images=pages[1:], duration=500, loop=0)
    storage.write_bytes(path, buf.getvalue())


def write_reports(cfg: EvaluateConfig, evaluation) -> None:
    """metrics.json, metrics.md and overlays/ under cfg.out (`evaluation`: run.Evaluation)."""
    metrics = evaluation.metrics
    overlays = draw_overlays(cfg, evaluation) if cfg.overlays.samples else []
    metrics["overlays"] = [name for name, _ in overlays]
    storage.write_json(storage.join(cfg.out, "metrics.json"), metrics, indent=1)
    c = metrics["counts"]
    parts = [
        f"# Evaluation: {metrics['name']}",
        f"Dataset `{cfg.dataset}`; " + (f"baseline `{cfg.baseline}`" if cfg.baseline else f"predictions `{cfg.predictions}`")
        + f"; frame averaging `{cfg.frame_averaging}`; {c['expressions_scored']} of {c['expressions_in_dataset']} "
          f"expressions scored in {metrics['seconds']} s.",
        markdown_tables({metrics["name"]: metrics}, heading="##"),
    ]
    if c["targets_not_given"]:
        parts.append(f"{c['targets_not_given']} actor-target expression(s) came without a target mask: "
                     "their target items were scored as empty masks.")
    if metrics["problems"]:
        listed = "\n".join(f"- {p}" for p in metrics["problems"][:50])
        more = len(metrics["problems"]) - 50
        parts.append(f"## Problems in the predictions ({len(metrics['problems'])})\n\n{listed}"
                     + (f"\n- ... and {more} more (metrics.json)" if more > 0 else ""))
    if metrics["errors"]:
        parts.append(f"## Items that failed ({len(metrics['errors'])})\n\n"
                     + "\n".join(f"- {e['video']}/{e['expression']} {e['role']}: {e['error']}" for e in metrics["errors"][:50]))
    if overlays:
        parts.append("## Overlays\n\nActor blue, target pink; top row prediction, bottom row ground truth.\n\n"
                     + "\n\n".join(f"![{title}]({name})" for name, title in overlays))
    storage.write_bytes(storage.join(cfg.out, "metrics.md"), ("\n\n".join(parts) + "\n").encode())
