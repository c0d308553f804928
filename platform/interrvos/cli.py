"""The `interrvos` command: one subcommand per job, each reading a typed config (YAML + --set)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from interrvos.config import DemoConfig, ExtractConfig, SynthConfig, load_config
from interrvos.errors import ConfigError, InterRVOSError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="InterRVOS Platform: interaction-aware referring video object segmentation on Ray.")
console = Console(stderr=True)

ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML config file")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", "-s", help="dotted override, e.g. clip.clip_frames=300")]
PlanOpt = Annotated[bool, typer.Option("--show-plan", help="print the job's Ray Data stages and what each reserves "
                                                            "(CPUs, GPUs, memory, actors), then exit")]


def _load(model, config: Path | None, sets: list[str] | None, **shortcuts):
    overrides = [f"{k}={v}" for k, v in shortcuts.items() if v is not None] + list(sets or [])
    return load_config(model, config, overrides)


def _show_plan(job: str, stages) -> None:
    from interrvos.stages import format_plan, plan_rows

    print(format_plan(job, plan_rows(stages)))


def _run(fn):
    """Run a job body, turning our typed errors into a clear message and a non-zero exit. Every command runs
    here: Ray's own log lines and the workers' output go to `<run folder>/logs/` (interrvos.run_logs) and
    the console ends with where they are (before the error line, when there is one)."""
    from interrvos.run_logs import job_logs

    with job_logs() as logs:
        try:
            result = fn()
        except ConfigError as e:
            _say_where_logs_are(logs)
            console.print(f"[red]config error:[/red] {escape(str(e))}", soft_wrap=True)
            raise typer.Exit(2) from None
        except InterRVOSError as e:
            _say_where_logs_are(logs)
            console.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
            raise typer.Exit(1) from None
        except BaseException:
            _say_where_logs_are(logs)
            raise
        _say_where_logs_are(logs)
        return result


def _say_where_logs_are(logs) -> None:
    if logs.folder is not None:  # only when the command started or joined Ray
        console.print(f"[dim]{escape(logs.describe())}[/dim]", soft_wrap=True)


@app.command()
def synth(config: ConfigOpt = None, set_: SetOpt = None,
          out: Annotated[Optional[str], typer.Option(help="output folder or URI")] = None,
          num_videos: Annotated[Optional[int], typer.Option(help="how many videos")] = None,
          seed: Annotated[Optional[int], typer.Option(help="random seed")] = None) -> None:
    """Generate synthetic interaction videos with ground-truth masks and events."""
    from interrvos.synth.generate import run_synth

    def body():
        cfg = _load(SynthConfig, config, set_, out=out, num_videos=num_videos, seed=seed)
        summary = run_synth(cfg)
        console.print_json(json.dumps(summary))

    _run(body)


@app.command()
def extract(config: ConfigOpt = None, set_: SetOpt = None,
            videos: Annotated[Optional[str], typer.Option(help="folder or URI of source videos")] = None,
            out: Annotated[Optional[str], typer.Option(help="dataset folder or URI")] = None,
            show_plan: PlanOpt = False) -> None:
    """Cut clips from source videos (the paper's clip rule) into a dataset folder, on Ray Data."""
    from interrvos.clips.pipeline import run_extract, stage_plan

    def body():
        cfg = _load(ExtractConfig, config, set_, videos=videos, out=out)
        if show_plan:
            return _show_plan("extract", stage_plan(cfg))
        with console.status("extracting clips") as status:
            done = [0]

            def progress(row):
                done[0] += row["status"] in ("written", "done")
                status.update(f"extracting clips: {done[0]} finished (last: {row['clip_id'] or row['video_id']})")

            summary = run_extract(cfg, progress=progress)
        _print_extract_summary(summary)
        if summary["run"]["errors"]:
            console.print(f"[yellow]{len(summary['run']['errors'])} item(s) skipped with errors (see "
                          f"{cfg.out}/extract_summary.json)[/yellow]")

    _run(body)


def _print_extract_summary(summary: dict) -> None:
    from rich.table import Table

    table = Table(title="extract summary", show_header=False)
    for section in ("run", "dataset"):
        for key, value in summary[section].items():
            if key != "errors":
                table.add_row(f"{section}.{key}", str(value))
    console.print(table)
    for err in summary["run"]["errors"]:
        console.print(f"  [yellow]skipped[/yellow] {err['clip_id'] or err['video_id']} ({err['stage']}): {err['error']}")


@app.command()
def annotate(config: ConfigOpt = None, set_: SetOpt = None,
             dataset: Annotated[Optional[str], typer.Option(help="output folder of `interrvos extract`")] = None,
             out: Annotated[Optional[str], typer.Option(help="annotated dataset folder or URI")] = None,
             backend: Annotated[Optional[str], typer.Option(help="local | openai | vllm")] = None,
             show_plan: PlanOpt = False) -> None:
    """Annotate extracted clips with the paper's four LLM stages into an InterRVOS dataset, on Ray Data."""
    from interrvos.annotate.cli_support import print_annotate_summary, progress_printer
    from interrvos.annotate.config import AnnotateConfig
    from interrvos.annotate.pipeline import run_annotate, stage_plan

    def body():
        cfg = _load(AnnotateConfig, config, set_, dataset=dataset, out=out, backend=backend)
        if show_plan:
            return _show_plan("annotate", stage_plan(cfg))
        with console.status("annotating clips") as status:
            summary = run_annotate(cfg, progress=progress_printer(status))
        print_annotate_summary(console, summary, cfg.out)

    _run(body)


@app.command()
def validate(directory: Annotated[str, typer.Argument(help="dataset folder or URI")],
             images: Annotated[bool, typer.Option(help="also check that every frame's JPEG exists")] = True) -> None:
    """Check a dataset folder; print every problem with file, video, expression and field."""
    from interrvos.data.validate import validate_dataset

    def body():
        problems = validate_dataset(directory, check_images=images)
        for p in problems:
            print(p)
        if problems:
            console.print(f"[red]{len(problems)} problem(s)[/red] in {directory}")
            raise typer.Exit(1)
        console.print(f"[green]ok[/green]: {directory} is a valid dataset")

    _run(body)


@app.command()
def demo(config: ConfigOpt = None, set_: SetOpt = None,
         out: Annotated[Optional[str], typer.Option(help="run folder")] = None) -> None:
    """The main job on the embedded default: synthetic videos -> clips -> dataset -> report."""
    from interrvos.demo import run_demo

    def body():
        cfg = _load(DemoConfig, config, set_, out=out)
        report = run_demo(cfg, console=console)
        console.print(f"[green]report:[/green] {report}")

    _run(body)


@app.command()
def evaluate(config: ConfigOpt = None, set_: SetOpt = None,
             dataset: Annotated[Optional[str], typer.Option(help="dataset folder or URI (ground truth)")] = None,
             predictions: Annotated[Optional[str], typer.Option(help=".jsonl/.parquet file or PNG folder")] = None,
             out: Annotated[Optional[str], typer.Option(help="output folder")] = None,
             baseline: Annotated[Optional[str], typer.Option(
                 help="oracle, empty, full, random_object or largest_object instead of predictions")] = None,
             allow_missing: Annotated[Optional[bool], typer.Option(
                 "--allow-missing", help="score what is present and report what is missing")] = None,
             show_plan: PlanOpt = False) -> None:
    """Score predictions (or a baseline) with J&F: Referring, Actor-Target, Overall, caption types."""
    from interrvos.evaluate.config import EvaluateConfig
    from interrvos.evaluate.report import markdown_tables
    from interrvos.evaluate.run import run_evaluate, stage_plan

    def body():
        cfg = _load(EvaluateConfig, config, set_, dataset=dataset, predictions=predictions, out=out,
                    baseline=baseline, allow_missing=allow_missing)
        if show_plan:
            return _show_plan("evaluate", stage_plan(cfg))
        with console.status("scoring expressions") as status:
            done = [0]

            def progress(item):
                done[0] += 1
                status.update(f"scoring: {done[0]} items (last: {item['video']}/{item['expression']})")

            metrics = run_evaluate(cfg, progress=progress)
        print(markdown_tables({metrics["name"]: metrics}))
        for kind, count in metrics["problem_counts"].items():
            console.print(f"[yellow]{count} prediction problem(s) of kind {kind}[/yellow] (see metrics.json)")
        if metrics["errors"]:
            console.print(f"[yellow]{len(metrics['errors'])} item(s) failed[/yellow] (see metrics.json)")
        console.print(f"[green]reports:[/green] {cfg.out}/metrics.json, {cfg.out}/metrics.md")

    _run(body)


@app.command()
def predict(config: ConfigOpt = None, set_: SetOpt = None,
            dataset: Annotated[Optional[str], typer.Option(help="dataset folder or URI")] = None,
            checkpoint: Annotated[Optional[str], typer.Option(help="ReVIOsA checkpoint or merged export")] = None,
            out: Annotated[Optional[str], typer.Option(help="predictions file (.jsonl)")] = None,
            show_plan: PlanOpt = False) -> None:
    """Segment every expression of a dataset with a ReVIOsA checkpoint (Ray Data actor pool)."""
    from interrvos.model.config import PredictConfig
    from interrvos.model.predict import run_predict, stage_plan

    def body():
        cfg = _load(PredictConfig, config, set_, dataset=dataset, checkpoint=checkpoint, out=out)
        if show_plan:
            return _show_plan("predict", stage_plan(cfg))
        with console.status("predicting") as status:
            done = [0]

            def progress(row):
                done[0] += 1
                status.update(f"predicting: {done[0]} expressions (last: {row['video']}/{row['expression']})")

            summary = run_predict(cfg, progress=progress)
        console.print_json(json.dumps({k: v for k, v in summary.items() if k != "errors"}))
        for err in summary["errors"]:
            console.print(f"  [yellow]failed[/yellow] {err['video']}/{err['expression']}: {err['error']}")

    _run(body)


@app.command()
def train(config: ConfigOpt = None, set_: SetOpt = None,
          name: Annotated[Optional[str], typer.Option(help="run name (a re-run with the same name resumes)")] = None,
          storage: Annotated[Optional[str], typer.Option(help="runs folder or URI")] = None,
          dataset: Annotated[Optional[str], typer.Option(help="one training dataset folder (replaces data.sources)")] = None,
          model: Annotated[Optional[str], typer.Option(help="model preset (tiny, 1b, 4b) or YAML")] = None,
          max_steps: Annotated[Optional[int], typer.Option(help="optimizer steps (instead of epochs)")] = None,
          workers: Annotated[Optional[int], typer.Option(help="Ray Train workers")] = None,
          stage: Annotated[Optional[int], typer.Option(help="DeepSpeed ZeRO stage (0-3)")] = None,
          show_plan: PlanOpt = False) -> None:
    """Train ReVIOsA on Ray Train with DeepSpeed ZeRO; checkpoints, resume, export (docs/training.md)."""
    from interrvos.train.config import TrainConfig

    def body():
        cfg = _load(TrainConfig, config, set_, name=name, storage=storage, **{
            "data.sources": f"[{dataset}]" if dataset else None, "model.config": model,
            "optim.max_steps": max_steps, "workers.num_workers": workers, "deepspeed.stage": stage})  # fmt: skip
        if show_plan:
            from interrvos.train.data import stage_plan

            return _show_plan("train", stage_plan(cfg))
        from interrvos.train.run import run_train

        with console.status(f"training {cfg.name} on Ray Train ({cfg.workers.num_workers} workers)"):
            summary = run_train(cfg)
        console.print_json(json.dumps({k: v for k, v in summary.items() if k not in ("first_metrics",)}, default=str))
        console.print(f"[green]model:[/green] {summary.get('export', {}).get('checkpoint', '-')}  "
                      f"[green]report:[/green] {summary['report']}")

    _run(body)


@app.command()
def serve(which: Annotated[str, typer.Argument(help="model, evaluate or all")] = "all",
          config: Annotated[Optional[Path], typer.Option("--config", "-c", help="Serve deploy config (serve/*.yaml)")] = None,
          set_: Annotated[Optional[list[str]], typer.Option("--set", "-s", help=(
              "override of an app's args (APP.key=value; key=value for one app; ray.address=HOST:PORT joins a "
              "cluster)"))] = None,  # fmt: skip
          host: Annotated[Optional[str], typer.Option(help="HTTP host (default: the config's)")] = None,
          port: Annotated[Optional[int], typer.Option(help="HTTP port (default: the config's)")] = None) -> None:
    """Start the Serve apps (model, evaluate or all) from their deploy configs; blocks until Ctrl-C."""
    from interrvos.config import RayConfig
    from interrvos.serving.launch import load_specs, start_apps

    def body():
        sets = list(set_ or [])
        ray_sets = [s.removeprefix("ray.") for s in sets if s.startswith("ray.")]
        ray_cfg = load_config(RayConfig, None, ray_sets)
        specs, http = load_specs(which, config, [s for s in sets if not s.startswith("ray.")])
        with console.status("starting Ray Serve"):
            url = start_apps(specs, host or http.get("host", "127.0.0.1"), port or int(http.get("port", 8000)), ray_cfg)
        for spec in specs:
            console.print(f"[green]{spec.name}[/green]: {url}{spec.route_prefix.rstrip('/')}/  ({spec.import_path})")
        if any(s.name == "model" for s in specs):
            console.print(f"web page: {url}/  leaderboard: {url}/leaderboard  API: docs/serving.md")
        console.print("Ctrl-C stops the apps")
        _block_until_interrupted()

    _run(body)


def _block_until_interrupted() -> None:
    import time

    from ray import serve as ray_serve

    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        ray_serve.shutdown()


# `interrvos cluster ...`: the cluster files of cluster/, rendered from cluster/cluster.yaml (docs/cluster.md).
cluster_app = typer.Typer(add_completion=False, no_args_is_help=True,
                          help="Cluster files: Ray launcher YAMLs and KubeRay manifests from cluster/cluster.yaml.")
app.add_typer(cluster_app, name="cluster")


@cluster_app.command("render")
def cluster_render(
        check: Annotated[bool, typer.Option("--check", help="write nothing; exit 1 naming each file that differs")] = False,
        spec: Annotated[Optional[Path], typer.Option("--spec", help="cluster spec (default cluster/cluster.yaml)")] = None,
) -> None:  # fmt: skip
    """Render cluster/*.yaml and cluster/kuberay/*.yaml from the cluster spec, validated offline."""
    from interrvos.cluster.render import differing, render, write
    from interrvos.cluster.spec import load_spec

    def body():
        report = render(load_spec(spec))
        for note in report.notes:
            console.print(f"[yellow]note:[/yellow] {note}", soft_wrap=True)
        if check:
            stale = differing(report.files)
            for line in stale:
                console.print(f"[red]not what cluster/cluster.yaml renders:[/red] {line}", soft_wrap=True)
            if stale:
                console.print("run `interrvos cluster render` to update them")
                raise typer.Exit(1)
            console.print(f"[green]{len(report.files)} cluster files up to date[/green]")
            return
        changed = write(report.files)
        for path in changed:
            console.print(f"wrote {path}")
        console.print(f"[green]{len(report.files)} cluster files rendered and validated[/green] ({len(changed)} changed)")

    _run(body)


from interrvos.sweep.cli import register as register_sweep  # noqa: E402 (the command lives beside its engine)

register_sweep(app)

from interrvos.pretrain.cli import register as register_pretrain  # noqa: E402

register_pretrain(app)

from interrvos.probe.cli import register as register_probe  # noqa: E402 (probe-text, pretrain-text)

register_probe(app)

from interrvos.proof.cli import register as register_proof  # noqa: E402

register_proof(app)


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    app(prog_name="interrvos")


if __name__ == "__main__":
    sys.exit(main())
