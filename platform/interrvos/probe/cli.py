"""`interrvos probe-text` and `interrvos pretrain-text`, registered on the main app by `register(app)`
(platform/interrvos/cli.py).

    interrvos probe-text --dataset runs/annotated/train --dataset runs/annotated/valid [--checkpoint DIR]
        [--set mllm.pretrained=/abs/dir] [--out probe.json]
    interrvos pretrain-text --config jobs/configs/pretrain_text.yaml --dataset runs/annotated/train
    interrvos train --config jobs/configs/train_tiny.yaml --set data.answers=reading \
        --set 'model.overrides=[random_templates=false, loss.dice_weight=2.0, mllm.pretrained=/abs/dir,
                                tokenizer.kind=pretrained]'
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape


def probe_text(
    dataset: Annotated[list[str], typer.Option(help="dataset folder (repeatable): every expression is probed")],
    checkpoint: Annotated[Optional[str], typer.Option(help="model checkpoint folder (default: the preset)")] = None,
    model: Annotated[str, typer.Option(help="model preset or YAML when no checkpoint is given")] = "tiny",
    set_: Annotated[Optional[list[str]], typer.Option("--set", "-s", help="dotted model override, e.g. "
                                                      "mllm.pretrained=/abs/dir (with --model)")] = None,
    num_frames: Annotated[int, typer.Option(help="first K frames of each clip shown to the MLLM")] = 4,
    folds: Annotated[int, typer.Option(help="grouped folds (by source video)")] = 5,
    seed: Annotated[int, typer.Option(help="fold assignment seed")] = 0,
    blank: Annotated[bool, typer.Option(help="also probe over blank (zeroed) frames, the control")] = True,
    out: Annotated[Optional[Path], typer.Option(help="write the result as JSON here")] = None,
) -> None:
    """Held-out linear probe of the expression's colour and shape words from the [SEG_ACT] hidden state."""
    from interrvos.cli import _run, console  # at call time: interrvos.cli imports this module

    def body():
        import torch

        from interrvos.probe.features import load_probe_model
        from interrvos.probe.measure import measure_reading, summary_line

        torch.set_grad_enabled(False)
        m = load_probe_model(checkpoint, model, list(set_ or []))
        result = measure_reading(m, dataset, num_frames=num_frames, folds=folds, seed=seed, blank=blank)
        result["model"] = checkpoint or {"preset": model, "overrides": list(set_ or [])}
        if out:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(result, indent=2))
        console.print_json(json.dumps(result))
        print(f"held-out probe accuracy %: {summary_line(result)}")

    _run(body)


def pretrain_text(
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="TrainConfig YAML")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", "-s", help="dotted override")] = None,
    name: Annotated[Optional[str], typer.Option(help="run name (a re-run with the same name resumes)")] = None,
    storage: Annotated[Optional[str], typer.Option(help="runs folder or URI")] = None,
    dataset: Annotated[Optional[str], typer.Option(help="one dataset folder (replaces data.sources)")] = None,
    max_steps: Annotated[Optional[int], typer.Option(help="optimizer steps")] = None,
    order: Annotated[str, typer.Option(help="colour_first, or random (colour or shape first in each answer)")] =
    "colour_first",
) -> None:
    """Pretrain the tiny MLLM to read the expression (Ray Train + DeepSpeed): an mllm.pretrained folder."""
    from interrvos.cli import _load, _run, console

    def body():
        from interrvos.probe.text_pretrain import run_pretrain_text
        from interrvos.train.config import TrainConfig

        cfg = _load(TrainConfig, config, set_, name=name, storage=storage, **{
            "data.sources": f"[{dataset}]" if dataset else None, "optim.max_steps": max_steps})  # fmt: skip
        summary = run_pretrain_text(cfg, order=order)
        console.print_json(json.dumps({k: v for k, v in summary.items() if k != "first_metrics"}, default=str))
        if "train_overrides" in summary:
            console.print(f"[green]pretrained:[/green] {summary['pretrained']}  (train from it with --set "
                          + escape(f"'model.overrides=[{', '.join(summary['train_overrides'])}]'") + ")")

    _run(body)


def register(app: typer.Typer) -> None:
    app.command("probe-text")(probe_text)
    app.command("pretrain-text")(pretrain_text)
