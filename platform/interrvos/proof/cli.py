"""`interrvos proof`: the long referring proof (`make proof`), registered on the main app by `register(app)`.

    interrvos proof --config jobs/configs/proof.yaml [--set training.seeds=[0,1,2]] [--out runs/proof]
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def proof(config: Annotated[Optional[Path], typer.Option("--config", "-c", help="proof YAML (jobs/configs/proof.yaml)")] = None,
          set_: Annotated[Optional[list[str]], typer.Option("--set", "-s", help="dotted override, e.g. "
                                                            "training.max_steps=600")] = None,
          out: Annotated[Optional[str], typer.Option(help="run folder or URI")] = None) -> None:  # fmt: skip
    """Pretrain the tiny SAM2 and MLLM on synthetic data, train ReVIOsA on top (modes x seeds), evaluate on held-out videos."""
    from interrvos.cli import _run, console  # at call time: interrvos.cli imports this module

    def body():
        from rich.markup import escape

        from interrvos import run_logs
        from interrvos.config import load_config
        from interrvos.demo import _timed
        from interrvos.proof.config import ProofConfig
        from interrvos.proof.run import run_proof
        from interrvos.runtime import ensure_ray

        # Ray's own log lines go to <out>/logs/ (the CLI runner routes them; the last line says where).
        cfg = load_config(ProofConfig, config, [f"out={out}"] * (out is not None) + list(set_ or []))
        timings: dict[str, float] = {}
        _timed(console, "start Ray", timings, lambda: ensure_ray(cfg.ray))
        logs = run_logs.current()
        if logs is not None and logs.folder is not None:  # a long job: say at the start where its logs are
            console.print(f"[dim]{escape(logs.describe())}[/dim]", soft_wrap=True)
        summary = run_proof(cfg, step=lambda title, fn: _timed(console, title, timings, fn))
        for g in summary["goals"]:
            mark = "[green]met[/green]" if g["met"] else "[red]not met[/red]"
            console.print(f"  {g['goal']}: {g['value']} (threshold {g['threshold']}) {mark}")
        console.print(f"[green]report:[/green] {summary['report']}")

    _run(body)


def register(app: typer.Typer) -> None:
    app.command("proof")(proof)
