"""`interrvos pretrain-sam`: the command, registered on the main app by `register(app)` (interrvos/cli.py).

    interrvos pretrain-sam --config jobs/configs/pretrain_sam.yaml [--max-steps 600] [--set model.trunk=hiera-t]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer


def pretrain_sam(
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML (jobs/configs/pretrain_sam.yaml)")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", "-s", help="dotted override, e.g. optim.lr=3e-4")] = None,
    name: Annotated[Optional[str], typer.Option(help="run name (a re-run with the same name resumes)")] = None,
    storage: Annotated[Optional[str], typer.Option(help="runs folder or URI")] = None,
    max_steps: Annotated[Optional[int], typer.Option(help="optimizer steps")] = None,
) -> None:  # fmt: skip
    """Pretrain SAM2 from random init on synthetic masks (point and box prompts, short clips for its memory)."""
    from interrvos.cli import _load, _run, console  # at call time: interrvos.cli imports this module

    def body():
        from interrvos.pretrain.config import PretrainConfig
        from interrvos.pretrain.run import run_pretrain

        cfg = _load(PretrainConfig, config, set_, name=name, storage=storage, **{"optim.max_steps": max_steps})
        s = run_pretrain(cfg)
        keep = ("run", "steps", "s_per_step", "train_seconds", "heldout", "sam2_checkpoint", "train_overrides")
        console.print_json(json.dumps({k: s[k] for k in keep}, default=str))
        console.print(f"[green]checkpoint:[/green] {s['sam2_checkpoint']}  [green]report:[/green] "
                      f"{s['pretrain_report']}\n[green]interrvos train[/green] --set '{s['train_set']}'", soft_wrap=True)

    _run(body)


def register(app: typer.Typer) -> None:
    app.command("pretrain-sam")(pretrain_sam)
