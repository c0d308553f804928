"""The grid: checkpoints and datasets resolved, then expanded into cells (checkpoint x dataset x every
combination of axis values), each with a stable id, its effective prediction settings and the cache
key of every expression it scores.

A cell's id hashes what the config says of it (checkpoint id and path, dataset id, path and filter,
the prediction settings it adds); what the cache keys hash is what the files contain (keys.py). A
checkpoint or dataset that cannot be read fails its cells with the reason; the others go on.
"""

from __future__ import annotations

import fnmatch
import glob as globlib
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from interrvos.data import storage
from interrvos.data.mevis import IMAGES_DIR, Dataset, load_dataset
from interrvos.errors import ConfigError, InterRVOSError
from interrvos.sweep.cache import PredictionCache
from interrvos.sweep.config import CheckpointEntry, DatasetEntry, SweepConfig
from interrvos.sweep.keys import digest, expression_key, prediction_code_version, settings_key, video_key


@dataclass
class Checkpoint:
    id: str
    source: str  # the folder configured or matched
    path: str  # the model checkpoint to load (an export, for a training checkpoint)
    content_hash: str | None = None
    inference: dict[str, Any] | None = None  # the checkpoint's own inference settings
    problem: str | None = None


@dataclass
class DatasetView:
    """A dataset with its evaluation filter applied: the expressions its cells predict and score."""

    id: str
    entry: DatasetEntry
    ds: Dataset | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)  # video, expression, text, video_key (dataset order)
    content_hash: str | None = None
    problem: str | None = None


@dataclass
class Cell:
    id: str
    label: str
    checkpoint: Checkpoint
    dataset: DatasetView
    coords: dict[str, Any]  # axis name -> value
    settings: dict[str, Any] = field(default_factory=dict)  # inference, model_overrides, device, dtype
    settings_key: str | None = None
    keys: list[str] = field(default_factory=list)  # one per dataset row
    problem: str | None = None

    @property
    def model_group(self) -> tuple:
        """Cells that share a loaded model (one actor pool): same checkpoint, model overrides, device, dtype."""
        s = self.settings
        return self.checkpoint.path, tuple(s.get("model_overrides", ())), s.get("device"), s.get("dtype")


# ---- checkpoints -----------------------------------------------------------------------------------


def _matches(pattern: str) -> list[str]:
    """Folders a glob matches, sorted; a URI may have wildcards in its last part only."""
    if not storage.is_remote(pattern):
        return sorted(p.rstrip("/") for p in globlib.glob(pattern) if storage.is_dir(p))
    parent, _, last = pattern.rstrip("/").rpartition("/")
    return [storage.join(parent, n) for n in storage.list_dir(parent)
            if fnmatch.fnmatch(n, last) and storage.is_dir(storage.join(parent, n))]


def _base(path: str) -> str:
    return str(path).rstrip("/").rsplit("/", 1)[-1]


def _expand_entries(entries: list[CheckpointEntry]) -> list[tuple[str, str]]:
    """(id, folder) of every configured checkpoint; ConfigError for a glob that matches nothing or ids
    that collide (before anything runs)."""
    out = []
    for i, e in enumerate(entries):
        if e.path is not None:
            out.append((e.id or _base(e.path), e.path))
            continue
        found = _matches(e.glob)
        if not found:
            raise ConfigError(f"checkpoints[{i}].glob {e.glob!r}: matches no folder")
        out += [(f"{e.id}{_base(p)}" if e.id else _base(p), p) for p in found]
    ids = [i for i, _ in out]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise ConfigError(f"checkpoints: ids {twice} appear more than once; give each entry an id (a prefix for a glob)")
    return out


def _training_export(folder: str, cache: PredictionCache, export: bool) -> str | None:
    """The model checkpoint of a training checkpoint (step_*/ of a run), exported once per content into
    the cache; None when a dry run finds it not exported yet."""
    target = storage.join(cache.folder, "exports", cache.folder_hash(folder)[:20])
    if not storage.exists(storage.join(target, "checkpoint.json")):
        if not export:
            return None
        from interrvos.train.export import export_folder

        export_folder(folder, target)
    return target


def resolve_checkpoint(cid: str, folder: str, cache: PredictionCache, export: bool = True) -> Checkpoint:
    """A checkpoint's content hash and own inference settings; `problem` says why it cannot be used."""
    from interrvos.model.checkpoint import read_config, read_info
    from interrvos.train.checkpointing import STATE_FILE

    ckpt = Checkpoint(cid, folder, folder)
    try:
        if not storage.exists(storage.join(folder, "checkpoint.json")) and storage.exists(storage.join(folder, STATE_FILE)):
            exported = _training_export(folder, cache, export)
            if exported is None:
                return ckpt  # a dry run: its predictions cannot be looked up before the export
            ckpt.path = exported
        read_info(ckpt.path)
        ckpt.inference = read_config(ckpt.path).inference.model_dump(mode="json")
        ckpt.content_hash = cache.folder_hash(ckpt.path)
    except Exception as err:  # noqa: BLE001 - whatever a bad checkpoint (or its export) raises fails its cells only
        why = str(err) if isinstance(err, InterRVOSError) else f"{type(err).__name__}: {err}"
        ckpt.problem = f"checkpoint {cid!r} ({folder}): {why}"
    return ckpt


# ---- datasets --------------------------------------------------------------------------------------


def filter_expressions(ds: Dataset, entry: DatasetEntry) -> list[tuple[str, str, Any]]:
    """The (video, expression id, expression) a dataset entry's filter keeps, in dataset order."""
    rows = [(v, e, x) for v, e, x in ds.all_expressions()
            if (entry.videos is None or v in entry.videos)
            and (entry.caption_types is None or x.caption_type in entry.caption_types)]
    return rows[: entry.limit] if entry.limit else rows


def filtered_dataset(ds: Dataset, entry: DatasetEntry) -> Dataset:
    """The dataset restricted to the filter's expressions (what `interrvos evaluate` then scores)."""
    keep: dict[str, set[str]] = {}
    for v, e, _ in filter_expressions(ds, entry):
        keep.setdefault(v, set()).add(e)
    videos = {}
    for vid, video in ds.videos.items():
        if vid in keep:
            videos[vid] = video.model_copy(update={"expressions": {k: x for k, x in video.expressions.items()
                                                                  if k in keep[vid]}})
    view = Dataset(root=ds.root, kind=ds.kind, videos=videos, skipped=list(ds.skipped))
    view._mask_dict = ds._mask_dict  # share what is already read
    return view


def resolve_dataset(entry: DatasetEntry, cache: PredictionCache) -> DatasetView:
    view = DatasetView(entry.id or _base(entry.path), entry)
    try:
        view.ds = load_dataset(entry.path)
        kept = filter_expressions(view.ds, entry)
        if not kept:
            raise InterRVOSError(f"no expression passes the filter {json.dumps(entry.filter_spec())} "
                                 f"({len(view.ds.all_expressions())} in the dataset)")
        keys: dict[str, str] = {}
        for vid in dict.fromkeys(v for v, _, _ in kept):
            frames = view.ds.videos[vid].frames
            try:
                folder = cache.folder_hash(storage.join(entry.path, IMAGES_DIR, vid))
            except OSError:
                folder = "unreadable"  # its expressions fail when predicted, with the reader's message
            keys[vid] = video_key(frames, folder)
        view.rows = [{"video": v, "expression": e, "text": x.exp, "video_key": keys[v]} for v, e, x in kept]
        view.content_hash = digest("dataset", [(r["video_key"], r["expression"], r["text"]) for r in view.rows])[:16]
    except (InterRVOSError, OSError, ValueError) as err:
        view.problem = f"dataset {view.id!r} ({entry.path}): {err}"
    return view


# ---- cells -----------------------------------------------------------------------------------------


def short_name(axis: str) -> str:
    """Axis names in labels: `inference.num_frames` -> `num_frames`."""
    return axis.rsplit(".", 1)[-1]


def _resolved_device(device: str, dtype: str, num_gpus: float) -> tuple[str, str]:
    dev = device if device != "auto" else ("cuda" if num_gpus > 0 else "cpu")
    return dev, dtype if dtype != "auto" else ("bfloat16" if dev == "cuda" else "float32")


def cell_settings(cfg: SweepConfig, ckpt: Checkpoint, coords: dict[str, Any]) -> dict[str, Any]:
    """The effective prediction settings of a cell: the checkpoint's inference settings, then the
    config's, then the axes'; model overrides likewise. ValueError when they do not combine."""
    from interrvos.model.config import InferenceSettings

    p = cfg.predict
    inference = {**(ckpt.inference or {}), **p.inference}
    overrides, device, dtype = list(p.model_overrides), p.device, p.dtype
    for name, value in coords.items():
        f = cfg.axes[name].field
        if f.startswith("inference."):
            inference[f.removeprefix("inference.")] = value
        elif f.startswith("model."):
            overrides.append(f"{f.removeprefix('model.')}={json.dumps(value)}")
        elif f == "device":
            device = value
        elif f == "dtype":
            dtype = value
    device, dtype = _resolved_device(device, dtype, p.workers.num_gpus)
    inference = InferenceSettings.model_validate(inference).model_dump(mode="json")
    return {"inference": inference, "model_overrides": sorted(overrides), "device": device, "dtype": dtype}


def cell_label(ckpt: Checkpoint, view: DatasetView, coords: dict[str, Any], many_datasets: bool) -> str:
    parts = [ckpt.id] + ([f"@{view.id}"] if many_datasets else [])
    return " ".join(parts + [f"{short_name(n)}={v}" for n, v in coords.items()])


def expand_cells(cfg: SweepConfig, checkpoints: list[Checkpoint], views: list[DatasetView],
                 code_version: str | None = None) -> list[Cell]:  # fmt: skip
    """Every cell, in grid order (checkpoint, dataset, then the axes in config order)."""
    code_version = code_version or (cfg.code_version if cfg.code_version != "auto" else prediction_code_version())
    names = list(cfg.axes)
    combos = [dict(zip(names, values, strict=True)) for values in itertools.product(*(cfg.axes[n].values for n in names))]
    base = cfg.predict.model_dump(mode="json", include={"inference", "model_overrides", "device", "dtype"})
    cells = []
    for ckpt, view, coords in itertools.product(checkpoints, views, combos):
        cid = "c" + digest(ckpt.id, ckpt.source, view.id, view.entry.path, view.entry.filter_spec(),
                           {cfg.axes[n].field: v for n, v in coords.items()}, base)[:10]
        cell = Cell(cid, cell_label(ckpt, view, coords, len(views) > 1), ckpt, view, coords)
        cell.problem = ckpt.problem or view.problem
        if cell.problem is None and ckpt.content_hash is not None:
            try:
                cell.settings = cell_settings(cfg, ckpt, coords)
            except ValueError as err:
                cell.problem = f"settings of {cell.label!r} do not combine with the checkpoint's: {err}"
            else:
                cell.settings_key = settings_key(ckpt.content_hash, cell.settings, code_version)
                cell.keys = [expression_key(cell.settings_key, r["video_key"], r["text"]) for r in view.rows]
        cells.append(cell)
    return cells


def resolve_grid(cfg: SweepConfig, cache: PredictionCache, export: bool = True) -> list[Cell]:
    """Checkpoints and datasets read (each once), then the cells."""
    checkpoints = [resolve_checkpoint(cid, folder, cache, export) for cid, folder in _expand_entries(cfg.checkpoints)]
    views = [resolve_dataset(entry, cache) for entry in cfg.datasets]
    return expand_cells(cfg, checkpoints, views)
