"""Validation of predictions against a dataset, before any scoring: one pass that finds every
missing expression, missing frame, wrong mask size, malformed record and unknown id.

Strict (default): any problem stops the run with one error listing them all. Lenient
(`allow_missing`): unknown ids and duplicates are ignored, missing expressions are not scored,
expressions with missing frames are scored on the frames they have, and expressions with
wrong-sized or malformed masks are not scored; metrics.json lists every problem either way.
Mask counts are checked without decoding here only for their size field; the counts themselves
are checked right before decoding, while scoring (a bad one fails that expression).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from interrvos.data import storage
from interrvos.data.mevis import Dataset, jpeg_size
from interrvos.evaluate.predictions import IGNORABLE, PngFolderPredictions, PredictionError, PredictionProblem

MAX_LISTED = 2000  # problems beyond this are counted in the error message, not printed


@dataclass
class PredictionIndex:
    """Expressions to score, each with its locator in the source, and every problem found."""

    entries: dict[tuple[str, str], Any] = field(default_factory=dict)
    problems: list[PredictionProblem] = field(default_factory=list)

    def raise_if_problems(self, source: str) -> None:
        if not self.problems:
            return
        lines = [str(p) for p in self.problems[:MAX_LISTED]]
        more = len(self.problems) - len(lines)
        raise PredictionError(
            f"{len(self.problems)} problem(s) in the predictions {source}:\n  " + "\n  ".join(lines)
            + (f"\n  ... and {more} more" if more else "")
            + "\nFix them, or pass --allow-missing (allow_missing=true) to score what is present.",
            self.problems,
        )


class FrameSizes:
    """(H, W) of each video's frames, computed once per video."""

    def __init__(self, ds: Dataset):
        self.ds, self._sizes = ds, {}

    def __call__(self, vid: str) -> tuple[int, int]:
        if vid not in self._sizes:
            self._sizes[vid] = tuple(self.ds.frame_size(vid))
        return self._sizes[vid]


def _track_problems(track: Any, num_frames: int, size: tuple[int, int], role: str) -> list[tuple[str, str]]:
    """(kind, message) for a per-frame list of RLE/None."""
    if not isinstance(track, list):
        return [("malformed", f"'{role}' must be a list of masks (RLE or null), one per frame")]
    out = []
    if len(track) < num_frames:
        out.append(("missing_frames", f"{role}: frames {len(track)}..{num_frames - 1} missing "
                                      f"({len(track)} masks for {num_frames} frames)"))
    elif len(track) > num_frames:
        out.append(("malformed", f"{role}: {len(track)} masks for {num_frames} frames"))
    bad_size, malformed = [], []
    for i, rle in enumerate(track[:num_frames]):
        if rle is None:
            continue
        if not isinstance(rle, dict) or "counts" not in rle or not isinstance(rle.get("size"), list | tuple) \
                or len(rle["size"]) != 2:
            malformed.append(i)
        elif tuple(rle["size"]) != size:
            bad_size.append((i, list(rle["size"])))
    if malformed:
        out.append(("malformed", f"{role}: frame {malformed[0]} (and {len(malformed) - 1} more) is not an RLE "
                                 "{'size': [H, W], 'counts': ...} or null"))
    if bad_size:
        i, got = bad_size[0]
        out.append(("wrong_size", f"{role}: frame {i} mask is {got[0]}x{got[1]} but frames are {size[0]}x{size[1]}"
                                  + (f" (and {len(bad_size) - 1} more frames)" if len(bad_size) > 1 else "")))
    return out


def _folder_problems(source: PngFolderPredictions, vid: str, exp: str, present: list[str] | None,
                     frames: list[str], size: tuple[int, int], role: str) -> list[tuple[str, str]]:
    """(kind, message) for a folder of PNGs: missing and unknown frames; the first PNG's size."""
    have, known = set(present or []), set(frames)
    out = []
    missing = [f for f in frames if f not in have]
    if missing:
        out.append(("missing_frames", f"{role}: {len(missing)} of {len(frames)} frames have no PNG "
                                      f"(first: {missing[0]})"))
    unknown = sorted(have - known)
    if unknown:
        out.append(("unknown_frame", f"{role}: PNGs for frames the video does not have: {unknown[:5]}"
                                     + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")))
    first = next((f for f in frames if f in have), None)
    if first is not None:
        refs, _ = source.paths(vid, exp, [first], [first], target=role == "target")
        try:
            got = jpeg_size(refs[0])  # any image header: PIL reads PNGs too
        except Exception as err:  # noqa: BLE001 - reported as a problem, never fatal here
            out.append(("malformed", f"{role}: {refs[0]}: {err}"))
        else:
            if got != size:
                out.append(("wrong_size", f"{role}: {refs[0]} is {got[0]}x{got[1]} but frames are {size[0]}x{size[1]}"))
    return out


def index_predictions(source: Any, ds: Dataset, wanted: list[tuple[str, str]],
                      frame_sizes: Callable[[str], tuple[int, int]] | None = None) -> PredictionIndex:
    """Scan a prediction source once; `wanted` are the (video, expression) pairs to score. Returns the
    entries to score under lenient rules and every problem (raise_if_problems for strict rules)."""
    frame_sizes = frame_sizes or FrameSizes(ds)
    wanted_set = set(wanted)
    index = PredictionIndex()
    dropped: set[tuple[str, str]] = set()
    seen: set[tuple[str, str]] = set()
    folder = isinstance(source, PngFolderPredictions)

    def problem(kind: str, vid: str | None, exp: str | None, message: str) -> None:
        index.problems.append(PredictionProblem(kind, vid, exp, message))

    for rec in source.scan(ds):
        vid, exp = rec.video, rec.expression
        if rec.locator is None:  # a record that could not be read at all
            problem("malformed", None, None, rec.where)
            continue
        if vid not in ds.videos:
            problem("unknown_video", vid, None, f"{rec.where}: the dataset has no video {vid!r}")
            continue
        if (vid, exp) not in wanted_set:
            problem("unknown_expression", vid, exp, f"{rec.where}: video {vid!r} has no expression {exp!r}")
            continue
        if (vid, exp) in seen:
            problem("duplicate", vid, exp, f"{rec.where}: a second prediction for this expression (the first is used)")
            continue
        seen.add((vid, exp))
        frames, size = ds.videos[vid].frames, frame_sizes(vid)
        found = []
        for role, track in (("actor", rec.actor), ("target", rec.target)):
            if rec.generated or (role == "target" and track is None):
                continue  # no target predicted: scored as empty masks (docs/evaluation.md)
            if folder:
                found += _folder_problems(source, vid, exp, track, frames, size, role)
            else:
                found += _track_problems(track, len(frames), size, role)
        for kind, message in found:
            problem(kind, vid, exp, f"{rec.where}: {message}")
        if any(kind in ("wrong_size", "malformed") for kind, _ in found):
            dropped.add((vid, exp))
        else:
            index.entries[(vid, exp)] = rec.locator
    for vid, exp in wanted:
        if (vid, exp) not in seen:
            where = storage.join(source.root, vid, exp) if folder else getattr(source, "uri", "")
            problem("missing_expression", vid, exp, f"no prediction ({where})")
    for key in dropped:
        index.entries.pop(key, None)
    index.problems.sort(key=lambda p: (p.kind in IGNORABLE, p.video or "", p.expression or "", p.kind))
    return index
