"""`interrvos sweep`: the command, registered on the main app by `register(app)` (platform/interrvos/cli.py).

    interrvos sweep --config jobs/configs/sweep.yaml [--set axes.K.values=[2,4,8]] [--dry-run]

`python -m interrvos.sweep.cli ...` runs the same command on its own (tests, benchmarks).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def sweep(config: Annotated[Optional[Path], typer.Option("--config", "-c", help="sweep YAML (jobs/configs/sweep.yaml)")] = None,
          set_: Annotated[Optional[list[str]], typer.Option("--set", "-s", help="dotted override, e.g. "
                                                            "axes.K.values=[2,4]")] = None,
          out: Annotated[Optional[str], typer.Option(help="results folder or URI")] = None,
          dry_run: Annotated[bool, typer.Option("--dry-run", help="print the cells, what is cached and the "
                                                "resources each needs, then exit")] = False) -> None:  # fmt: skip
    """Benchmark sweep: checkpoints x datasets x inference settings on Ray, cached, with intervals and plots."""
    from interrvos.cli import _run, console  # at call time: interrvos.cli imports this module

    def body():
        from interrvos.sweep.config import load_sweep_config

        cfg = load_sweep_config(config, [f"out={out}"] * (out is not None) + list(set_ or []))
        if dry_run:
            from interrvos.sweep.plan import format_dry_run, plan_sweep

            print(format_dry_run(plan_sweep(cfg)))
            return
        from interrvos.sweep.run import run_sweep, summary_line

        with console.status("sweep: resolving the grid") as status:
            def progress(event: dict) -> None:
                if event["event"] == "predicted":
                    status.update(f"sweep: predicting {event['cell']} ({event['done']}/{event['total']})")
                elif event["event"] == "scored":
                    status.update(f"sweep: scored {event['cell']}")

            summary = run_sweep(cfg, progress=progress)
        print(summary_line(summary))
        for failed in summary["failed"]:
            console.print(f"  [yellow]failed[/yellow] {failed['label']} ({failed['cell']}): {failed['reason']}",
                          soft_wrap=True)
        console.print(f"[green]report:[/green] {summary['report']}")

    _run(body)


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep)


def main() -> None:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    register(app)
    app(prog_name="interrvos sweep")


if __name__ == "__main__":
    main()
