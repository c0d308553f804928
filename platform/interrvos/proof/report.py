"""The proof's report: the goals checked, the results tables (paper Tables 4/5 layouts), the ablation
over modes (paper Table 6), the pretraining figures, loss curves and overlays."""

from __future__ import annotations

import os
import statistics
from typing import Any

from interrvos.data import storage
from interrvos.proof.config import ProofConfig, ProofGoals


def goals(summary: dict[str, Any], g: ProofGoals) -> list[dict[str, Any]]:
    """Each goal as {goal, value, threshold, met} for the headline model."""
    jf, head = summary["jf"], summary["headline"]
    out = []
    for setting, baselines in (("overall", g.beat_overall), ("actor_target", g.beat_actor_target)):
        for b in baselines:
            value, threshold = jf[head][setting], jf[f"baseline_{b}"][setting]
            out.append({"goal": f"{setting} J&F above {b}", "value": value, "threshold": threshold,
                        "met": value is not None and threshold is not None and value > threshold})  # fmt: skip
    cross = summary["cross_expression_iou"][head]
    out.append({"goal": f"cross-expression IoU <= {g.max_cross_iou:g}", "value": cross, "threshold": g.max_cross_iou,
                "met": cross is not None and cross <= g.max_cross_iou})  # fmt: skip
    return out


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def _mean_range(values: list[float | None]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ({min(values):.1f}-{max(values):.1f}, {len(values)} seeds)"


def ablation_table(cfg: ProofConfig, summary: dict[str, Any]) -> str:
    """Paper Table 6's direction: each mode's J&F (mean over seeds, range) and cross-expression IoU."""
    from interrvos.proof.run import run_name

    rows = []
    for mode in cfg.training.modes:
        names = [run_name(mode, s) for s in cfg.training.seeds]
        cell = lambda key: _mean_range([summary["jf"][n][key] for n in names])  # noqa: E731
        rows.append([mode, cell("actor_target"), cell("referring"), cell("overall"),
                     _mean_range([summary["cross_expression_iou"][n] for n in names])])  # fmt: skip
    return _table(["mode", "Actor-Target J&F", "Referring J&F", "Overall J&F", "cross-expression IoU"], rows)


def _pretraining_section(summary: dict[str, Any]) -> list[str]:
    parts = []
    for kind, s in summary["pretraining"].items():
        figures = s.get("figures") or {}
        parts.append(f"### Pretraining: {kind}\n\n" + (_table(["figure", "value"], [[k, v] for k, v in figures.items()])
                                                       if figures else "(no figures recorded)"))
        if s.get("report"):
            parts.append(f"Its report: `{s['report']}`.")
    return parts


def write_report(cfg: ProofConfig, summary: dict[str, Any], metrics: dict[str, dict], baselines: dict[str, dict]) -> str:
    from interrvos.evaluate.report import markdown_tables

    rel = lambda p: os.path.relpath(p, cfg.out) if not storage.is_remote(p) else p  # noqa: E731
    results = dict(metrics) | {f"baseline: {b}": m for b, m in baselines.items()}
    splits = summary["data"]["splits"]
    lines = [
        "# Referring proof: pretraining, then ReVIOsA training, on synthetic interaction videos",
        f"{splits['train']['videos']} training clips ({splits['train']['expressions']} expressions), "
        f"{splits['valid']['videos']} held-out clips ({splits['valid']['expressions']} expressions), disjoint by "
        f"source video. Pretrained parts: {', '.join(summary['pretraining']) or 'none'}; model overrides "
        f"`{summary['pretrained_overrides']}`. Headline model: `{summary['headline']}`. {summary['seconds']} s in all.",
        "## Goals\n\n" + _table(["goal", "value", "threshold", "met"],
                                [[g["goal"], g["value"], g["threshold"], "yes" if g["met"] else "**no**"]
                                 for g in summary["goals"]]),
        "## Results on the held-out clips\n\n" + markdown_tables(results),
        "## Ablation: how the actor and the target are segmented (paper Table 6)\n\n" + ablation_table(cfg, summary),
        *_pretraining_section(summary),
        "## Loss curves\n\n" + "\n\n".join(f"![{n}]({rel(r['loss_curve'])})" for n, r in summary["runs"].items()
                                          if r.get("loss_curve")),
        "## The headline model's predictions\n\n" + "\n\n".join(f"![{os.path.basename(p)}]({rel(p)})"
                                                               for p in summary["overlays"]),
        f"Every sweep cell with 95% intervals: [{rel(summary['sweep_report'])}]({rel(summary['sweep_report'])}).",
    ]  # fmt: skip
    path = storage.join(cfg.out, "report.md")
    storage.write_bytes(path, ("\n\n".join(lines) + "\n").encode())
    return path
