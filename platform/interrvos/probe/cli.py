"""`interrvos probe-text` and `interrvos pretrain-text`, registered on the main app by `register(app)`
(platform/interrvos/cli.py).

    interrvos probe-text --dataset runs/annotated/train --dataset runs/annotated/valid [--checkpoint DIR]
        [--set mllm.pretrained=/abs/dir] [--out probe.json]
    interrvos pretrain-text --config jobs/configs/pretrain_text.yaml --dataset runs/annotated/train
    interrvos train-reading --config jobs/configs/train_tiny.yaml --dataset runs/annotated/train \
        --set 'model.overrides=[random_templates=false, loss.dice_weight=2.0, mllm.pretrained=/abs/dir]'
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


def _train_command(runner: str, doc: str, **extra):
    """A command with `interrvos train`'s options that runs interrvos.probe.text_pretrain.<runner>(TrainConfig);
    `extra`: runner keyword arguments offered as options ({name: default})."""

    def command(
        config: Annotated[Optional[Path], typer.Option("--config", "-c", help="TrainConfig YAML")] = None,
        set_: Annotated[Optional[list[str]], typer.Option("--set", "-s", help="dotted override")] = None,
        name: Annotated[Optional[str], typer.Option(help="run name (a re-run with the same name resumes)")] = None,
        storage: Annotated[Optional[str], typer.Option(help="runs folder or URI")] = None,
        dataset: Annotated[Optional[str], typer.Option(help="one dataset folder (replaces data.sources)")] = None,
        max_steps: Annotated[Optional[int], typer.Option(help="optimizer steps")] = None,
        order: Annotated[str, typer.Option(help="pretrain-text: colour_first, or random (colour or shape first in "
                                           "each answer)")] = "colour_first",
    ) -> None:
        from interrvos.cli import _load, _run, console

        if "order" not in extra and order != "colour_first":
            raise typer.BadParameter("--order is an option of pretrain-text")

        def body():
            from interrvos.probe import text_pretrain
            from interrvos.train.config import TrainConfig

            cfg = _load(TrainConfig, config, set_, name=name, storage=storage, **{
                "data.sources": f"[{dataset}]" if dataset else None, "optim.max_steps": max_steps})  # fmt: skip
            summary = getattr(text_pretrain, runner)(cfg, **({"order": order} if "order" in extra else {}))
            console.print_json(json.dumps({k: v for k, v in summary.items() if k != "first_metrics"}, default=str))
            if "pretrained" in summary:
                console.print(f"[green]pretrained:[/green] {summary['pretrained']}  (use it as --set "
                              + escape(f"'model.overrides=[mllm.pretrained={summary['pretrained']}]')"))

        _run(body)

    command.__doc__ = doc
    return command


pretrain_text = _train_command(
    "run_pretrain_text", "Pretrain the tiny MLLM to read the expression (Ray Train + DeepSpeed): an mllm.pretrained folder.",
    order="colour_first")
train_reading = _train_command(
    "run_train_keep_reading", "`interrvos train` with the reading answer kept in ReVIOsA's answers (an auxiliary loss).")


def register(app: typer.Typer) -> None:
    app.command("probe-text")(probe_text)
    app.command("pretrain-text")(pretrain_text)
    app.command("train-reading")(train_reading)
