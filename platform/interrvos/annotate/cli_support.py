"""Console output of `interrvos annotate`: a live status line with per-stage counters, and the summary."""

from __future__ import annotations

import io
from typing import Any

from interrvos.annotate.config import STAGES


def progress_printer(status: Any):
    """A progress callback updating a rich status line: clips by status, then items/calls per stage."""
    def update(row: dict, totals: dict) -> None:
        clips = ", ".join(f"{k} {v}" for k, v in sorted(totals["clips"].items()))
        per_stage = "  ".join(f"{s}: {t.get('items', 0)} items/{t.get('llm_calls', 0)} calls"
                              for s, t in totals["stages"].items() if t)
        status.update(f"annotating: {clips} (last {row['clip_id']})  {per_stage}")

    return update


def print_annotate_summary(console: Any, summary: dict, out: str) -> None:
    from rich import box
    from rich.table import Table

    run, data = summary["run"], summary["dataset"]
    table = Table(title=f"annotate summary ({run['seconds']} s)", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("stage", "items", "calls", "cached", "retries", "http", "quarantined", "failed", "tokens", "cost $",
                "items/s"):
        table.add_column(col, no_wrap=True)
    for stage in STAGES:
        s = run["stages"].get(stage) or {}
        table.add_row(stage, *(str(x) for x in (
            s.get("items", 0), s.get("llm_calls", 0), s.get("cache_hits", 0), s.get("answer_retries", 0),
            s.get("http_retries", 0), ", ".join(f"{k} {v}" for k, v in s.get("quarantined", {}).items()) or "-",
            s.get("failed", 0), s.get("prompt_tokens", 0) + s.get("completion_tokens", 0),
            round(s.get("cost_usd", 0.0), 4), s.get("items_per_s", 0.0))))
    # Rendered at a fixed width so no column is cut when the output is piped (80 columns by default).
    from rich.console import Console

    wide = Console(width=max(console.width, 120), record=True, file=io.StringIO())
    wide.print(table)
    console.print(wide.export_text(), soft_wrap=True, crop=False, highlight=False)
    splits = data["splits"]
    console.print(f"clips: {', '.join(f'{k} {v}' for k, v in run['clips'].items())}; expressions {data['expressions']} "
                  f"({', '.join(f'{k} {v}' for k, v in data['caption_types'].items())})")
    console.print(f"train: {splits['train']['videos']} videos, {splits['train']['expressions']} expressions; "
                  f"valid: {splits['valid']['videos']} videos, {splits['valid']['expressions']} expressions "
                  f"(interaction share {splits['valid']['interaction_share']})")
    if data["clips_without_objects"]:
        console.print(f"[yellow]{len(data['clips_without_objects'])} clip(s) without objects (no expressions):[/yellow] "
                      + ", ".join(data["clips_without_objects"]))
    if data["quarantined_items"]:
        console.print(f"[yellow]{data['quarantined_items']} item(s) quarantined[/yellow] (see {out}/quarantine.json)")
    for err in run["errors"]:
        console.print(f"  [yellow]{err['status']}[/yellow] {err['clip_id']}: {err['error']}")
    if "quality" in summary:
        q = summary["quality"]
        console.print(f"stage 3 vs ground truth: precision {q['precision']}, recall {q['recall']}")
    console.print(f"[green]dataset:[/green] {out}/train, {out}/valid (summary: {out}/annotate_summary.json)")
