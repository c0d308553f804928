"""The scoring half of the evaluation app: registered evaluation sets (the ground truth stays on the
server) and the scoring of a submitted predictions file, of predictions made in-process (a
checkpoint's), and of one expression at a time (streamed while a checkpoint runs).

Files are scored by the very code of `interrvos evaluate` (evaluate.run.evaluate, executor local, no
overlays), so a served table equals the CLI's on the same file bit for bit. Problems of a file come
back as Unprocessable (422) with one entry per problem naming the file, video, expression and field.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import PurePosixPath
from typing import Any

from interrvos.data.mevis import Dataset
from interrvos.evaluate.checks import MAX_LISTED, FrameSizes, index_predictions
from interrvos.evaluate.config import EvaluateConfig, OverlayConfig
from interrvos.evaluate.predictions import (
    PredictionError,
    PredictionProblem,
    _prediction_from_record,
    _scanned_record,
    write_predictions,
)
from interrvos.evaluate.protocol import exact_mean, expression_items
from interrvos.evaluate.report import markdown_tables
from interrvos.evaluate.run import evaluate, prepare_dataset
from interrvos.evaluate.score import score_expression
from interrvos.serving.errors import BadRequest, NotFound, Unprocessable, UnsupportedMediaType

SUFFIXES = (".jsonl", ".parquet")  # the file formats `interrvos evaluate` reads
_ROLE = re.compile(r"^'?(actor|target)'?\b")


class EvaluationSets:
    """Registered datasets by name (name -> folder or URI), each loaded on first use and kept."""

    def __init__(self, datasets: Mapping[str, str]):
        self._roots = dict(datasets)
        self._loaded: dict[str, tuple[Dataset, FrameSizes]] = {}
        self._lock = threading.Lock()  # one load per dataset, whatever the number of request threads

    def names(self) -> list[str]:
        return sorted(self._roots)

    def root(self, name: str) -> str:
        if name not in self._roots:
            known = ", ".join(repr(n) for n in self.names()) or "none"
            raise NotFound(f"unknown dataset {name!r} (registered: {known})")
        return self._roots[name]

    def dataset(self, name: str) -> Dataset:
        return self._entry(name)[0]

    def frame_size(self, name: str, video: str) -> tuple[int, int]:
        return self._entry(name)[1](video)

    def _entry(self, name: str) -> tuple[Dataset, FrameSizes]:
        root = self.root(name)
        with self._lock:
            if name not in self._loaded:
                ds = prepare_dataset(root, "dataset")
                self._loaded[name] = (ds, FrameSizes(ds))
            return self._loaded[name]

    def describe(self, name: str) -> dict[str, Any]:
        """{name, videos, expressions, items: {referring, actor_target}} (items: what is scored)."""
        ds = self.dataset(name)
        items = {"referring": 0, "actor_target": 0}
        for _, _, e in ds.all_expressions():
            for spec in expression_items(e):
                items[spec.setting] += 1
        return {"name": name, "videos": len(ds.videos), "expressions": len(ds.all_expressions()), "items": items}

    def list(self) -> list[dict[str, Any]]:
        return [self.describe(name) for name in self.names()]

    def expressions(self, name: str) -> list[dict[str, Any]]:
        """The work of a checkpoint evaluation: [{video, expression, exp (text), frames}] in dataset order."""
        ds = self.dataset(name)
        return [{"video": vid, "expression": exp_id, "exp": e.exp, "frames": len(ds.videos[vid].frames)}
                for vid, exp_id, e in ds.all_expressions()]


def evaluate_config(root: str, predictions: str, name: str) -> EvaluateConfig:
    """What `interrvos evaluate` runs with by default, in one process and without overlays."""
    return EvaluateConfig(dataset=root, predictions=predictions, name=name, executor="local",
                          overlays=OverlayConfig(samples=0))


def score_submission(sets: EvaluationSets, dataset_name: str, filename: str, data: bytes,
                     name: str | None = None, tmp_dir: str | None = None) -> dict[str, Any]:
    """Score an uploaded predictions file (`filename` says its format) on a registered dataset."""
    shown = PurePosixPath(str(filename or "").replace("\\", "/")).name  # never a client's path
    if not shown:
        raise BadRequest("the predictions file has no name (a .jsonl or .parquet file is expected)")
    suffix = PurePosixPath(shown.lower()).suffix
    if suffix not in SUFFIXES:
        raise UnsupportedMediaType(f"{shown}: predictions must be a JSON lines (.jsonl) or parquet (.parquet) file")
    root = sets.root(dataset_name)
    if not data:
        raise Unprocessable(f"{shown}: the file is empty", extra={"problems": [
            _problem_dict(shown, PredictionProblem("malformed", None, None, f"{shown}: the file is empty"), "")]})
    fd, path = tempfile.mkstemp(prefix="submission-", suffix=suffix, dir=_made(tmp_dir))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        if suffix == ".parquet":
            _check_parquet(path, shown)
        return _score_file(sets, dataset_name, root, path, shown, name or shown, file=shown)
    finally:
        os.unlink(path)


def score_lines(sets: EvaluationSets, dataset_name: str, records: Iterable[dict], name: str,
                tmp_dir: str | None = None) -> dict[str, Any]:
    """Score prediction records made in-process (the predictions format, e.g. a checkpoint's answers
    turned into records): written as the JSON lines file `interrvos evaluate` would read, then scored
    as one, so the table equals the CLI's on that file."""
    root = sets.root(dataset_name)
    fd, path = tempfile.mkstemp(prefix="predictions-", suffix=".jsonl", dir=_made(tmp_dir))
    os.close(fd)
    try:
        write_predictions(path, records)
        return _score_file(sets, dataset_name, root, path, name, name, file=None)
    finally:
        if os.path.exists(path):
            os.unlink(path)


def _made(folder: str | None) -> str | None:
    if folder:
        os.makedirs(folder, exist_ok=True)
    return folder


class _OneRecord:
    """A prediction source of records held in memory (what a JSON lines file would hold)."""

    def __init__(self, records: list[Any], label: str):
        self.records, self.label = records, label

    def scan(self, ds: Dataset):
        for n, rec in enumerate(self.records):
            yield _scanned_record(rec, n, f"{self.label} record {n + 1}")

    def load(self, ds: Dataset, video: str, expression: str, locator: Any):
        return _prediction_from_record(self.records[locator], len(ds.videos[video].frames))


def score_record(sets: EvaluationSets, dataset_name: str, record: dict, source: str = "prediction") -> dict[str, Any]:
    """J, F and J&F (x100) of one expression's prediction record, as they stand in the final table's
    per-expression rows: {video, expression, exp, caption_type, setting, J, F, JF, items}. A record
    that does not fit the dataset raises Unprocessable naming what is wrong (`source` names it there)."""
    ds = sets.dataset(dataset_name)
    scanned = _scanned_record(record, 0, "")
    vid, exp = scanned.video, scanned.expression
    records = _OneRecord([record], source)
    wanted = [(vid, exp)] if vid in ds.videos and exp in ds.videos[vid].expressions else []
    index = index_predictions(records, ds, wanted, lambda v: sets.frame_size(dataset_name, v))
    if index.problems:
        raise _unprocessable(PredictionError("", index.problems), source, "", dataset_name)
    rows = score_expression(ds, {source: records}, vid, exp, index.entries[(vid, exp)],
                            sets.frame_size(dataset_name, vid))
    _raise_item_errors(rows, source, dataset_name)
    items = [{"role": r["role"], "truth": r["truth"], "setting": r["setting"], "J": 100 * r["J"], "F": 100 * r["F"],
              "frames": r["frames"], "mask_given": r["mask_given"]} for r in rows]
    e = ds.videos[vid].expressions[exp]
    # The expression's J and F as build_metrics computes them: exact means of its items' x100 values.
    j, f = exact_mean(i["J"] for i in items), exact_mean(i["F"] for i in items)
    return {"video": vid, "expression": exp, "exp": e.exp, "caption_type": e.caption_type,
            "setting": items[0]["setting"], "J": j, "F": f, "JF": (j + f) / 2, "items": items}


# ---- scoring a file ----------------------------------------------------------------------------------

def _check_parquet(path: str, shown: str) -> None:
    import pyarrow.parquet as pq

    try:
        pq.ParquetFile(path).close()
    except Exception as err:  # noqa: BLE001 - whatever pyarrow says of a file that is not parquet
        message = f"{shown}: not a readable parquet file ({type(err).__name__}: {err})"
        raise Unprocessable(message, extra={"problems": [
            _problem_dict(shown, PredictionProblem("malformed", None, None, message), "")]}) from None


def _score_file(sets: EvaluationSets, dataset_name: str, root: str, path: str, shown: str, label: str,
                file: str | None) -> dict:
    """`shown`: what messages call the predictions (the client's file name); `file`: the result's."""
    import pyarrow as pa

    cfg = evaluate_config(root, path, label)
    try:
        metrics = evaluate(cfg, dataset=sets.dataset(dataset_name)).metrics
    except PredictionError as err:
        raise _unprocessable(err, shown, path, dataset_name) from None
    except pa.ArrowException as err:  # a parquet file that breaks part way through
        raise Unprocessable(f"{shown}: cannot be read ({type(err).__name__}: {err})".replace(path, shown),
                            extra={"problems": []}) from None
    _raise_item_errors(metrics["errors"], shown, dataset_name)
    # The temp file's path means nothing to the client, and the dataset's folder is the server's business.
    metrics.update(dataset=dataset_name, predictions=file)
    return _json_safe(result_from_metrics(metrics))


def result_from_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The answer of /v1/evaluate from the metrics of evaluate.run (which it carries whole)."""
    expressions = []
    for e in metrics["expressions"]:
        jf = None if e["J"] is None or e["F"] is None else (e["J"] + e["F"]) / 2
        expressions.append({"video": e["video"], "expression": e["expression"], "exp": e["exp"],
                            "caption_type": e["caption_type"], "setting": e["items"][0]["setting"],
                            "J": e["J"], "F": e["F"], "JF": jf, "items": e["items"]})
    return {"dataset": metrics["dataset"], "name": metrics["name"], "file": metrics["predictions"],
            "settings": metrics["settings"], "caption_types": metrics["caption_types"],
            "expressions": expressions, "counts": metrics["counts"],
            "markdown": markdown_tables({metrics["name"]: metrics}), "metrics": metrics}


def _raise_item_errors(rows: list[dict], shown: str, dataset_name: str) -> None:
    """Items that failed while scoring (a mask whose counts do not decode): the file's fault, so 422
    rather than a table that silently leaves them out. A broken ground truth is the server's fault."""
    failed = [r for r in rows if r["error"]]
    if not failed:
        return
    truth = [r for r in failed if r["error"].startswith("ground truth")]
    if truth:
        raise RuntimeError(f"dataset {dataset_name!r}: {truth[0]['error']}")
    problems = [{"kind": "malformed", "file": shown, "video": r["video"], "expression": r["expression"],
                 "field": r["role"], "location": None, "message": f"{r['role']}: {r['error']}"} for r in failed]
    raise Unprocessable(f"{len(problems)} prediction(s) in {shown} could not be scored on dataset "
                        f"{dataset_name!r}; first: {problems[0]['video']}/{problems[0]['expression']} "
                        f"{problems[0]['message']}", extra={"problems": problems[:MAX_LISTED],
                                                           "problem_count": len(problems)})


def _problem_dict(shown: str, p: PredictionProblem, path: str) -> dict[str, Any]:
    """A PredictionProblem as the 422 answer lists it: where (line or row), and which field."""
    message = p.message.replace(path, shown) if path else p.message
    location, rest = None, message
    m = re.match(rf"^{re.escape(shown)} ((?:line|row|record) \d+): (.*)$", message, re.S)
    if m:
        location, rest = m.group(1), m.group(2)
    role = _ROLE.match(rest)
    by_kind = {"unknown_video": "video", "unknown_expression": "expression", "missing_expression": "expression"}
    field = role.group(1) if role else by_kind.get(p.kind)
    return {"kind": p.kind, "file": shown, "video": p.video, "expression": p.expression, "field": field,
            "location": location, "message": message}


def _unprocessable(err: PredictionError, shown: str, path: str, dataset_name: str) -> Unprocessable:
    if not err.problems:  # a whole-file problem (parquet without the record columns, no expressions)
        message = str(err).replace(path, shown) if path else str(err)
        return Unprocessable(message, extra={"problems": [
            _problem_dict(shown, PredictionProblem("malformed", None, None, message), "")]})
    problems = [_problem_dict(shown, p, path) for p in err.problems]
    # As the CLI words them (kind: video 'v' expression 'e': message), the client's file name in place.
    first = "; ".join(str(replace(p, message=d["message"])) for p, d in zip(err.problems[:3], problems, strict=False))
    return Unprocessable(f"{len(problems)} problem(s) in the predictions {shown} for dataset {dataset_name!r}: "
                         f"{first}" + (" ..." if len(problems) > 3 else ""),
                         extra={"problems": problems[:MAX_LISTED], "problem_count": len(problems)})


def _json_safe(value: Any) -> Any:
    """NaN and infinities as null: a JSON answer (and the results database) cannot hold them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def submission_sha256(data: bytes) -> str:
    """The key a re-submitted identical file is found by (ResultsStore.find)."""
    import hashlib

    return hashlib.sha256(data).hexdigest()
