"""`interrvos evaluate`: validate predictions, score every expression on Ray, write the reports.

Pipeline: load the dataset and scan the predictions (driver: one streaming pass, every problem found
before scoring) -> shards of `expressions_per_task` expressions -> Ray Data `flat_map` over an actor
pool (each actor loads the ground truth once and scores one expression at a time, frame by frame)
-> item rows back to the driver -> means (protocol.summarize_items) -> metrics.json, metrics.md,
overlays. Rows are tiny and the means are exactly rounded sums, so a parallel run gives the very
numbers of `executor: local` (one process, no Ray), whatever the order work finishes in.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from interrvos.config import RayConfig
from interrvos.data.mevis import Dataset, load_dataset
from interrvos.data.records import Expression
from interrvos.evaluate.baselines import BASELINES, BaselinePredictions
from interrvos.evaluate.checks import FrameSizes, PredictionIndex, index_predictions
from interrvos.evaluate.config import EvaluateConfig, OverlayConfig
from interrvos.evaluate.predictions import PredictionError, open_predictions
from interrvos.evaluate.protocol import exact_mean, summarize_items
from interrvos.evaluate.report import markdown_tables, write_reports
from interrvos.evaluate.score import score_expression
from interrvos.evaluate.sensitivity import expression_sensitivity
from interrvos.stages import Stage


def object_expressions(ds: Dataset) -> Dataset:
    """The dataset with one referring expression per object ('the <category>', single_all), in place of
    its own: scores a dataset that has objects but no expressions yet (an extraction skeleton)."""
    for vid, video in ds.videos.items():
        expressions = {}
        for obj, anno in sorted(ds.object_anno_ids(vid).items()):
            category = video.objects.get(obj, {}).get("category", "object")
            expressions[f"object_{obj}"] = Expression(exp=f"the {category}", caption_type="single_all",
                                                      obj_id=[obj], anno_id=[anno])
        video.expressions = expressions
    return ds


def prepare_dataset(root: str, expressions: str) -> Dataset:
    ds = load_dataset(root)
    return object_expressions(ds) if expressions == "objects" else ds


def open_source(cfg: EvaluateConfig):
    return BaselinePredictions(cfg.baseline, cfg.seed) if cfg.baseline else open_predictions(cfg.predictions)


class ShardScorer:
    """Ray Data callable class: loads the ground truth once per actor, scores a shard of expressions
    for each named prediction source."""

    def __init__(self, dataset: str | Dataset, expressions: str, sources: dict[str, Any], options: dict[str, Any]):
        self.ds = dataset if isinstance(dataset, Dataset) else prepare_dataset(dataset, expressions)
        self.sources, self.options = sources, options
        self.sizes = FrameSizes(self.ds)

    def __call__(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        for vid, exp, locator in json.loads(row["shard"]):
            out += score_expression(self.ds, self.sources, vid, exp, locator, self.sizes(vid), **self.options)
        return out


def _shards(ds: Dataset, index: PredictionIndex, per_task: int) -> list[list]:
    """Work in the source's own order (file offset, row group), so readers go through files forward."""
    order = {(vid, exp): n for n, (vid, exp, _) in enumerate(ds.all_expressions())}

    def key(item):
        (vid, exp), locator = item
        return (locator if isinstance(locator, list) else [], order[(vid, exp)])

    work = [[vid, exp, locator] for (vid, exp), locator in sorted(index.entries.items(), key=key)]
    return [work[i:i + per_task] for i in range(0, len(work), per_task)]


def score_items(cfg: EvaluateConfig, ds: Dataset, index: PredictionIndex, sources: dict[str, Any],
                progress: Callable[[dict], None] | None = None) -> list[dict]:
    """Item rows of every indexed expression for every source, in one process or on Ray."""
    options = {"averaging": cfg.frame_averaging, "unpaired_interactions": cfg.unpaired_interactions}
    shards = _shards(ds, index, cfg.expressions_per_task)
    if cfg.executor == "local" or not shards:
        scorer = ShardScorer(ds, cfg.expressions, sources, options)
        return [i for s in shards for i in scorer({"shard": json.dumps(s)})]
    return _score_on_ray(cfg, shards, sources, options, progress)


def stage_plan(cfg: EvaluateConfig) -> list[Stage]:
    """The scoring stage of `interrvos evaluate` and what each actor reserves (`--show-plan`)."""
    note = f"{cfg.expressions_per_task} expressions a task"
    if cfg.executor == "local":
        return [Stage("score", "driver", note=f"executor: local (one process, no Ray); {note}")]
    return [Stage.actor_pool("score", cfg.workers, note=note)]


def _score_on_ray(cfg: EvaluateConfig, shards: list[list], sources: dict[str, Any], options: dict,
                  progress: Callable[[dict], None] | None) -> list[dict]:
    import ray

    from interrvos.runtime import ensure_ray

    ensure_ray(cfg.ray)
    (stage,) = stage_plan(cfg)
    rows = [{"shard": json.dumps(s)} for s in shards]
    data = ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows), 2000)))
    data = data.flat_map(
        ShardScorer,
        fn_constructor_kwargs={"dataset": cfg.dataset, "expressions": cfg.expressions, "sources": sources,
                               "options": options},
        **stage.ray_args(),
    )
    items = []
    for item in data.iter_rows():
        items.append(dict(item))
        if progress:
            progress(item)
    return items


@dataclass
class Evaluation:
    """What a run produced: the metrics, and what the reports need to draw overlays without re-reading."""

    metrics: dict[str, Any]
    dataset: Dataset
    source: Any
    index: PredictionIndex


def score_predictions(cfg: EvaluateConfig, progress: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """Validate and score; returns the metrics (no files written). PredictionError lists every problem
    of the predictions unless `allow_missing`."""
    return evaluate(cfg, progress).metrics


def evaluate(cfg: EvaluateConfig, progress: Callable[[dict], None] | None = None,
             dataset: Dataset | None = None) -> Evaluation:
    """`dataset`: cfg.dataset already loaded (prepare_dataset), e.g. a server's cached ground truth."""
    started = time.perf_counter()
    ds = dataset if dataset is not None else prepare_dataset(cfg.dataset, cfg.expressions)
    wanted = [(vid, exp) for vid, exp, _ in ds.all_expressions()]
    if not wanted:
        raise PredictionError(f"{cfg.dataset}: the dataset has no expressions to score "
                              "(set expressions=objects to score one expression per object)")
    source = open_source(cfg)
    sizes = FrameSizes(ds)
    index = index_predictions(source, ds, wanted, sizes)
    if not cfg.allow_missing:
        index.raise_if_problems(cfg.predictions or cfg.baseline)
    items = score_items(cfg, ds, index, {cfg.label: source}, progress)
    sensitivity = expression_sensitivity(ds, source, index, cfg.sensitivity_pairs)
    metrics = build_metrics(cfg, ds, items, index, time.perf_counter() - started, sensitivity)
    return Evaluation(metrics, ds, source, index)


def build_metrics(cfg: EvaluateConfig, ds: Dataset, items: list[dict], index: PredictionIndex,
                  seconds: float, sensitivity: dict[str, Any] | None = None) -> dict[str, Any]:
    order = {(vid, exp): n for n, (vid, exp, _) in enumerate(ds.all_expressions())}
    items = sorted(items, key=lambda i: (order[(i["video"], i["expression"])], i["role"]))
    expressions: dict[tuple[str, str], dict] = {}
    for i in items:
        key = (i["video"], i["expression"])
        entry = expressions.setdefault(key, {
            "video": key[0], "expression": key[1], "caption_type": i["caption_type"],
            "exp": ds.videos[key[0]].expressions[key[1]].exp, "items": []})
        ok = not i["error"]
        entry["items"].append({"role": i["role"], "truth": i["truth"], "setting": i["setting"],
                               "J": 100 * i["J"] if ok else None, "F": 100 * i["F"] if ok else None,
                               "frames": i["frames"], "mask_given": i["mask_given"], **({"error": i["error"]} if not ok else {})})
    for entry in expressions.values():  # the expression's own J and F: the mean of its items
        ok = [x for x in entry["items"] if x["J"] is not None]
        entry["J"] = exact_mean(x["J"] for x in ok) if ok else None
        entry["F"] = exact_mean(x["F"] for x in ok) if ok else None
    summary = summarize_items(items)
    return {
        "name": cfg.label,
        "dataset": cfg.dataset,
        "predictions": cfg.predictions,
        "baseline": cfg.baseline,
        "protocol": {"frame_averaging": cfg.frame_averaging, "unpaired_interactions": cfg.unpaired_interactions,
                     "expressions": cfg.expressions, "boundary_tolerance": "ceil(0.008 * sqrt(H^2 + W^2)) px",
                     "scale": "J, F and J&F x100; means of item means"},
        **summary,
        "expression_sensitivity": sensitivity,
        "counts": {"expressions_in_dataset": len(order), "expressions_scored": len({k for k, e in expressions.items()
                                                                                   if any(x["J"] is not None for x in e["items"])}),
                   "items_scored": sum(1 for i in items if not i["error"]),
                   "items_failed": sum(1 for i in items if i["error"]),
                   "targets_not_given": sum(1 for i in items if i["role"] == "target" and not i["mask_given"])},
        "problems": [str(p) for p in index.problems],
        "problem_counts": dict(Counter(p.kind for p in index.problems)),
        "errors": [{"video": i["video"], "expression": i["expression"], "role": i["role"], "error": i["error"]}
                   for i in items if i["error"]],
        "expressions": list(expressions.values()),
        "seconds": round(seconds, 2),
    }


def run_evaluate(cfg: EvaluateConfig, progress: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """Score and write `out/metrics.json`, `out/metrics.md` and the overlays; returns the metrics."""
    evaluation = evaluate(cfg, progress)
    write_reports(cfg, evaluation)
    return evaluation.metrics


def baseline_table_markdown(dataset_root: str, baselines: Sequence[str] = BASELINES, ray_cfg: RayConfig | None = None,
                            executor: str = "ray", heading: str = "###", sensitivity_pairs: int = 32) -> str:
    """The Markdown tables (paper's Tables 5 and 4 layouts) of the model-free baselines on a dataset,
    one row each: the floor a trained model must beat. A dataset without expressions yet (an
    extraction skeleton) is scored on one 'the <category>' expression per object, and says so."""
    started = time.perf_counter()
    ds = load_dataset(dataset_root)
    expressions = "dataset" if any(v.expressions for v in ds.videos.values()) else "objects"
    if expressions == "objects":
        object_expressions(ds)
    cfg = EvaluateConfig(dataset=dataset_root, baseline=baselines[0], expressions=expressions, executor=executor,
                         ray=ray_cfg or RayConfig(), overlays=OverlayConfig(samples=0),
                         sensitivity_pairs=sensitivity_pairs)  # fmt: skip
    sources = {name: BaselinePredictions(name, cfg.seed) for name in baselines}
    # One pass for all baselines: each frame's ground truth is decoded once for the five of them.
    index = index_predictions(sources[baselines[0]], ds, [(v, e) for v, e, _ in ds.all_expressions()])
    items = score_items(cfg, ds, index, sources)
    seconds = time.perf_counter() - started
    results = {name: build_metrics(cfg.model_copy(update={"baseline": name, "name": name}), ds,
                                   [i for i in items if i["source"] == name], index, seconds,
                                   expression_sensitivity(ds, sources[name], index, cfg.sensitivity_pairs))
               for name in baselines}  # fmt: skip
    note = ("The dataset has no expressions yet: each object is scored as the referring expression "
            "'the <category>'.\n\n" if expressions == "objects" else "")
    return note + markdown_tables(results, heading=heading)
