"""Predictions to score: the documented file format (JSON lines or parquet) and MeViS-style PNG
folders (their validation is in checks.py).

One record per expression (docs/evaluation.md, "Predictions format"):

    {"video": "v1", "expression": "2",
     "actor":  [RLE | null, ... one per frame of the video, in the dataset's frame order],
     "target": [RLE | null, ...] | null}

RLE is COCO's `{"size": [H, W], "counts": str}`; null is an empty mask; `target` is null or absent
when the model predicted no target. The same columns in a parquet file (`actor`/`target` as lists
of `struct<size: list<int32>, counts: string>`) hold the same records. A PNG folder holds
`<vid>/<exp>/<frame>.png` (the actor; nonzero pixels are the mask, MeViS's layout) and optionally
`<vid>/<exp>/target/<frame>.png`.

Sources are picklable (paths only): a driver `scan`s them once to validate and index, and workers
`load` one expression at a time by its locator, so memory stays bounded by one expression's masks.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from interrvos.data import storage
from interrvos.data.mevis import Dataset
from interrvos.data.rle import RLE, decode_rle, encode_mask, rle_problem
from interrvos.errors import InterRVOSError

# Problems that only drop the offending record (lenient mode); the others drop the expression's score
# or, for missing frames, leave those frames out of its means.
IGNORABLE = ("unknown_video", "unknown_expression", "unknown_frame", "duplicate")


class PredictionError(InterRVOSError):
    """Predictions that cannot be scored as given; the message lists every problem found, and
    `problems` holds them (PredictionProblem) for callers that answer with them (the scoring server)."""

    def __init__(self, message: str, problems: Iterable[PredictionProblem] = ()):
        super().__init__(message)
        self.problems = list(problems)


@dataclass(frozen=True)
class PredictionProblem:
    kind: str  # missing_expression | missing_frames | wrong_size | malformed | unknown_* | duplicate
    video: str | None
    expression: str | None
    message: str

    def __str__(self) -> str:
        where = " ".join(f"{k} {v!r}" for k, v in (("video", self.video), ("expression", self.expression)) if v)
        return f"{self.kind}: {where}: {self.message}" if where else f"{self.kind}: {self.message}"


@dataclass
class ExpressionPrediction:
    """One expression's predicted masks. A mask ref is an RLE, None (empty) or a PNG path; frames
    listed in `missing` have no prediction (lenient mode scores the other frames only)."""

    actor: list[Any]
    target: list[Any] | None
    missing_actor: set[int] = field(default_factory=set)
    missing_target: set[int] = field(default_factory=set)


def load_mask(ref: Any, height: int, width: int) -> np.ndarray:
    """A mask ref as an (H, W) uint8 0/1 mask; PredictionError when it is malformed or of another size."""
    if ref is None:
        return np.zeros((height, width), np.uint8, order="F")  # the order pycocotools decodes to
    if isinstance(ref, np.ndarray):
        mask = ref
    elif isinstance(ref, dict):
        problem = rle_problem(ref)  # pycocotools does not check counts: it would write past its buffer
        if problem:
            raise PredictionError(f"malformed RLE: {problem}")
        mask = decode_rle(ref)
    else:
        mask = read_png_mask(str(ref))
    if mask.shape != (height, width):
        raise PredictionError(f"a {mask.shape[0]}x{mask.shape[1]} mask for {height}x{width} frames ({_name(ref)})")
    return mask


def _name(ref: Any) -> str:
    return ref if isinstance(ref, str) else "RLE"


def read_png_mask(uri: str) -> np.ndarray:
    """A PNG mask as uint8 0/1: nonzero pixels (grey value, palette index, or any RGB channel)."""
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(storage.read_bytes(uri))) as img:
            arr = np.asarray(img)
    except OSError as err:
        raise PredictionError(f"{uri}: not a readable PNG ({err})") from None
    return (arr.any(axis=2) if arr.ndim == 3 else arr != 0).astype(np.uint8)


# ---- the record format: writing ---------------------------------------------------------------------

def prediction_record(video: str, expression: str, actor: Iterable[Any], target: Iterable[Any] | None = None) -> dict:
    """A record of the predictions format from per-frame masks (arrays, RLEs or None)."""
    def encode(masks):
        return [m if m is None or isinstance(m, dict) else (encode_mask(np.asarray(m)) if np.any(m) else None)
                for m in masks]

    return {"video": str(video), "expression": str(expression), "actor": encode(actor),
            "target": None if target is None else encode(target)}


def _parquet_schema():
    import pyarrow as pa

    rle = pa.struct([("size", pa.list_(pa.int32())), ("counts", pa.string())])
    return pa.schema([("video", pa.string()), ("expression", pa.string()),
                      ("actor", pa.list_(rle)), ("target", pa.list_(rle))])


def write_predictions(uri: str, records: Iterable[dict], row_group_size: int = 64) -> None:
    """Write records as JSON lines (`.jsonl`) or parquet (`.parquet`), atomically."""
    if str(uri).endswith(".parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(list(records), schema=_parquet_schema())
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, row_group_size=row_group_size)
        storage.write_bytes(uri, sink.getvalue().to_pybytes())
        return
    storage.write_bytes(uri, b"".join(json.dumps(r, separators=(",", ":")).encode() + b"\n" for r in records))


# ---- sources -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scanned:
    """What the validation pass learns of one prediction record (from any source)."""

    video: str
    expression: str
    locator: Any  # JSON-able; how `load` finds the record again
    actor: Any  # per-frame list (record formats), or a sorted list of present frame names (PNG folders)
    target: Any
    where: str  # for messages: line or row number, or folder
    generated: bool = False  # made from the dataset itself (baselines): nothing to check


class JsonLinesPredictions:
    """A `.jsonl` file (local or URI): one record per line; located by byte offset and length."""

    def __init__(self, uri: str):
        self.uri = uri

    def scan(self, ds: Dataset) -> Iterator[Scanned]:
        for line_no, (offset, line) in enumerate(_lines_with_offsets(self.uri), start=1):
            if not line.strip():
                continue
            where = f"{self.uri} line {line_no}"
            try:
                rec = json.loads(line)
            except ValueError as err:  # JSONDecodeError, or UnicodeDecodeError on bytes that are not UTF-8
                yield Scanned("", "", None, None, None, f"{where}: not JSON ({err})")
                continue
            yield _scanned_record(rec, [offset, len(line)], where)

    def load(self, ds: Dataset, video: str, expression: str, locator: Any) -> ExpressionPrediction:
        fs, path = storage.resolve(self.uri)
        with fs.open_input_file(path) as f:
            rec = json.loads(f.read_at(locator[1], locator[0]))
        return _prediction_from_record(rec, len(ds.videos[video].frames))


class ParquetPredictions:
    """A `.parquet` file with the record columns; located by (row group, row). A worker keeps the
    row group it read last, and work is handed out in file order, so each group is read about once."""

    def __init__(self, uri: str):
        self.uri = uri
        self._group: tuple[int, list[dict]] | None = None

    def __getstate__(self):
        return {"uri": self.uri, "_group": None}

    def _file(self):
        import pyarrow.parquet as pq

        fs, path = storage.resolve(self.uri)
        return pq.ParquetFile(fs.open_input_file(path))

    def scan(self, ds: Dataset) -> Iterator[Scanned]:
        pf = self._file()
        missing = {"video", "expression", "actor"} - set(pf.schema_arrow.names)
        if missing:
            raise PredictionError(f"{self.uri}: parquet predictions need columns video, expression, actor "
                                  f"(and optionally target); missing {sorted(missing)}")
        row_no = 0
        for g in range(pf.num_row_groups):
            for i, rec in enumerate(pf.read_row_group(g).to_pylist()):
                row_no += 1
                yield _scanned_record(rec, [g, i], f"{self.uri} row {row_no}")

    def load(self, ds: Dataset, video: str, expression: str, locator: Any) -> ExpressionPrediction:
        group, row = locator
        if self._group is None or self._group[0] != group:
            self._group = (group, self._file().read_row_group(group).to_pylist())
        return _prediction_from_record(self._group[1][row], len(ds.videos[video].frames))


class PngFolderPredictions:
    """A MeViS-style folder: `<vid>/<exp>/<frame>.png` (actor) and `<vid>/<exp>/target/<frame>.png`."""

    def __init__(self, root: str):
        self.root = root

    def scan(self, ds: Dataset) -> Iterator[Scanned]:
        for vid in storage.list_dir(self.root):
            if vid.startswith("."):
                continue
            folder = storage.join(self.root, vid)
            if not storage.is_dir(folder):
                continue
            for exp in storage.list_dir(folder):
                exp_dir = storage.join(folder, exp)
                if not storage.is_dir(exp_dir):
                    continue
                names = storage.list_dir(exp_dir)
                actor = sorted(n[:-4] for n in names if n.endswith(".png"))
                target = None
                if "target" in names and storage.is_dir(storage.join(exp_dir, "target")):
                    target = sorted(n[:-4] for n in storage.list_dir(storage.join(exp_dir, "target")) if n.endswith(".png"))
                yield Scanned(vid, exp, {"actor": actor, "target": target}, actor, target, exp_dir)

    def paths(self, video: str, expression: str, frames: list[str], present: list[str] | None, target: bool):
        """Per-frame PNG paths (None where missing) and the missing frame indices."""
        have = set(present or [])
        base = storage.join(self.root, video, expression, *(["target"] if target else []))
        refs = [storage.join(base, f"{f}.png") if f in have else None for f in frames]
        return refs, {i for i, f in enumerate(frames) if f not in have}

    def load(self, ds: Dataset, video: str, expression: str, locator: Any) -> ExpressionPrediction:
        frames = ds.videos[video].frames
        actor, missing_actor = self.paths(video, expression, frames, locator["actor"], target=False)
        if locator["target"] is None:
            return ExpressionPrediction(actor, None, missing_actor)
        target, missing_target = self.paths(video, expression, frames, locator["target"], target=True)
        return ExpressionPrediction(actor, target, missing_actor, missing_target)


def open_predictions(uri: str):
    """The source for a predictions path: a folder of PNGs, a `.parquet` file or a `.jsonl` file."""
    if storage.is_dir(uri):
        return PngFolderPredictions(uri)
    if not storage.exists(uri):
        raise PredictionError(f"predictions not found: {uri} (a .jsonl or .parquet file, or a folder of PNG masks)")
    if str(uri).endswith(".parquet"):
        return ParquetPredictions(uri)
    return JsonLinesPredictions(uri)


def _lines_with_offsets(uri: str, chunk: int = 1 << 22) -> Iterator[tuple[int, bytes]]:
    """(byte offset, line without its newline) for every line, streaming."""
    fs, path = storage.resolve(uri)
    with fs.open_input_stream(path) as f:
        offset, tail = 0, b""
        while data := f.read(chunk):
            buf, start = tail + data, 0
            while (end := buf.find(b"\n", start)) != -1:
                yield offset + start, buf[start:end]
                start = end + 1
            offset, tail = offset + start, buf[start:]
        if tail:
            yield offset, tail


def _scanned_record(rec: Any, locator: Any, where: str) -> Scanned:
    if not isinstance(rec, dict) or not isinstance(rec.get("video"), str | int) \
            or not isinstance(rec.get("expression"), str | int):
        return Scanned("", "", None, None, None, f"{where}: expected an object with 'video', 'expression' and 'actor'")
    return Scanned(str(rec["video"]), str(rec["expression"]), locator, rec.get("actor"), rec.get("target"), where)


def _prediction_from_record(rec: dict, num_frames: int) -> ExpressionPrediction:
    def padded(track: list) -> tuple[list, set[int]]:
        # A short list is missing its last frames (validation reported them); they are never loaded.
        return track + [None] * (num_frames - len(track)), set(range(len(track), num_frames))

    actor, missing_actor = padded(list(rec["actor"]))
    if rec.get("target") is None:
        return ExpressionPrediction(actor, None, missing_actor)
    target, missing_target = padded(list(rec["target"]))
    return ExpressionPrediction(actor, target, missing_actor, missing_target)
