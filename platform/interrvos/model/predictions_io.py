"""The predictions file `interrvos predict` writes: JSON lines, one line per (video, expression).

    {"video": "7181519736_clip000", "expression": "0",
     "actor":  [RLE | null, ...],          # one entry per frame of the video, in frame order
     "target": [RLE | null, ...] | null,   # null: the model emitted no [SEG_TAR] for this expression
     "answer": "It is [SEG_ACT] and [SEG_TAR]."}   # optional: the generated answer(s), for inspection

RLE is a COCO run-length encoding with str counts ({"size": [h, w], "counts": "..."}), as in
mask_dict.json; null stands for an empty mask (writers here always write an RLE). Readers must
ignore keys they do not know. Lines are ordered as the dataset lists its videos and expressions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from interrvos.data import storage
from interrvos.data.rle import RLE, rle_problem
from interrvos.errors import InterRVOSError

REQUIRED = ("video", "expression", "actor", "target")


class PredictionsError(InterRVOSError):
    """A predictions file or line does not follow the format."""


def prediction_line(video: str, expression: str, actor: list[RLE | None], target: list[RLE | None] | None,
                    answer: str | None = None) -> dict[str, Any]:  # fmt: skip
    line: dict[str, Any] = {"video": str(video), "expression": str(expression), "actor": actor, "target": target}
    if answer is not None:
        line["answer"] = answer
    return line


def check_line(line: Any, where: str = "line") -> dict[str, Any]:
    """Raise PredictionsError naming what is wrong; return the line."""
    if not isinstance(line, dict):
        raise PredictionsError(f"{where}: expected a JSON object")
    missing = [k for k in REQUIRED if k not in line]
    if missing:
        raise PredictionsError(f"{where}: missing {missing}")
    for role in ("actor", "target"):
        masks = line[role]
        if masks is None and role == "target":
            continue
        if not isinstance(masks, list):
            raise PredictionsError(f"{where} ({line['video']}/{line['expression']}): {role} must be a list of RLE|null")
        for i, rle in enumerate(masks):
            problem = None if rle is None else rle_problem(rle)
            if problem:
                raise PredictionsError(f"{where} ({line['video']}/{line['expression']}): {role}[{i}]: {problem}")
    if line["target"] is not None and len(line["target"]) != len(line["actor"]):
        raise PredictionsError(f"{where} ({line['video']}/{line['expression']}): actor and target frame counts differ")
    return line


def dumps_line(line: dict[str, Any]) -> str:
    return json.dumps(line, separators=(",", ":"))


def write_predictions(uri: str, lines: Iterable[dict[str, Any]]) -> int:
    """Write every line (atomically: temp file then rename); returns how many."""
    text = [dumps_line(check_line(line, f"line {i + 1}")) for i, line in enumerate(lines)]
    storage.write_bytes(uri, ("\n".join(text) + ("\n" if text else "")).encode("utf-8"))
    return len(text)


def iter_predictions(uri: str) -> Iterator[dict[str, Any]]:
    if not storage.exists(uri):
        raise PredictionsError(f"{uri}: predictions file is missing")
    for n, raw in enumerate(storage.read_bytes(uri).decode("utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except json.JSONDecodeError as err:
            raise PredictionsError(f"{uri}:{n}: not JSON ({err})") from None
        yield check_line(line, f"{uri}:{n}")


def read_predictions(uri: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(video, expression) -> line; a repeated key is an error."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for line in iter_predictions(uri):
        key = (line["video"], line["expression"])
        if key in out:
            raise PredictionsError(f"{uri}: video {key[0]!r} expression {key[1]!r} appears twice")
        out[key] = line
    return out
