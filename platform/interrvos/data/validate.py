"""Check a dataset folder and list every problem found, each naming its file, video, expression and field.

The rules are in docs/dataset-format.md ("Validation"). Validation never stops at the first problem:
a user fixes a dataset in one pass. It stays cheap on big datasets: images are checked by listing
folders and reading one JPEG header per video, masks by their "size" field and by checking their
counts add up, never by decoding them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from interrvos.data import storage
from interrvos.data.mevis import (
    ANNOTATIONS_DIR,
    IMAGES_DIR,
    MASK_FILE,
    META_FILE,
    RELEASE_CAPTION_TYPES,
    DatasetKind,
    detect_kind,
    jpeg_size,
    normalise_expression,
    normalise_video,
    read_json_file,
    read_meta,
)
from interrvos.data.records import CAPTION_TYPES, Expression, VideoEntry
from interrvos.data.rle import rle_problem
from interrvos.errors import DatasetError

INTERACTION_KINDS = ("unidirectional", "bidirectional", "none")
# Role fields and the field each must be a subset of.
_ROLE_FIELDS = {"actor_ids": "obj_id", "target_ids": "obj_id", "actor_anno_id": "anno_id", "target_anno_id": "anno_id"}
# Fields whose pydantic errors are replaced by the clearer checks of _expression_problems.
_CHECKED_BY_HAND = {"exp", "caption_type", "interaction"}


@dataclass(frozen=True, kw_only=True)
class Problem:
    """One thing wrong with a dataset. `file` is relative to the dataset folder; `field` is a dotted
    path inside the video or expression (pydantic's), or the anno id for mask_dict.json problems."""

    file: str
    video: str | None = None
    expression: str | None = None
    field: str | None = None
    message: str

    def __str__(self) -> str:
        where = [
            f"{name} {value!r}"
            for name, value in (("video", self.video), ("expression", self.expression), ("field", self.field))
            if value is not None
        ]
        return f"{self.file}: {', '.join(where)}: {self.message}" if where else f"{self.file}: {self.message}"


def validate_dataset(root: str, check_images: bool = True) -> list[Problem]:
    """Every problem of the dataset folder at `root` (local path or URI); empty when it is valid.
    A folder that is not a dataset at all gives one problem naming the missing or broken file."""
    try:
        raw_videos = read_meta(root)
    except DatasetError as err:
        return [Problem(file=META_FILE, message=str(err))]
    kind = detect_kind(root, raw_videos)
    problems: list[Problem] = []
    mask_dict = _read_mask_dict(root, kind, problems)

    videos: dict[str, VideoEntry] = {}
    for vid, raw in raw_videos.items():
        vid = str(vid)
        if not isinstance(raw, dict):
            message = "expected an object with vid_id, frames, expressions"
            problems.append(Problem(file=META_FILE, video=vid, message=message))
            continue
        entry = _video_problems(vid, raw, problems)
        if entry is not None:
            videos[vid] = entry
        objects = set(map(str, raw["objects"])) if isinstance(raw.get("objects"), dict) and raw["objects"] else None
        expressions = raw.get("expressions")
        for exp_id, raw_exp in (expressions.items() if isinstance(expressions, dict) else []):
            problems += _expression_problems(vid, str(exp_id), raw_exp, kind, objects, mask_dict)

    frame_sizes: dict[str, tuple[int, int]] = {}
    if check_images:
        for vid, entry in videos.items():
            size = _image_problems(root, vid, entry, problems)
            if size:
                frame_sizes[vid] = size
        if kind == "refytvos":
            problems += _annotation_folder_problems(root, videos)
    if mask_dict is not None:
        problems += _mask_problems(mask_dict, _anno_owners(raw_videos, videos), videos, frame_sizes)
    return problems


def _read_mask_dict(root: str, kind: DatasetKind, problems: list[Problem]) -> dict[str, Any] | None:
    """mask_dict.json, or None (with a problem recorded) when it cannot be used to check anno ids."""
    if kind == "refytvos":
        return None  # masks are PNGs; anno ids are made from obj ids
    try:
        masks = read_json_file(storage.join(root, MASK_FILE))
    except DatasetError as err:
        problems.append(Problem(file=MASK_FILE, message=f"{err}; anno ids and masks were not checked"))
        return None
    if not isinstance(masks, dict):
        problems.append(Problem(file=MASK_FILE, message="expected an object mapping anno id -> list of masks"))
        return None
    return masks


def _schema_problems(err: ValidationError, **where: Any) -> list[Problem]:
    return [
        Problem(file=META_FILE, field=".".join(map(str, e["loc"])) or None, message=e["msg"], **where)
        for e in err.errors()
    ]


def _video_problems(vid: str, raw: Mapping[str, Any], problems: list[Problem]) -> VideoEntry | None:
    try:
        entry = VideoEntry.model_validate(normalise_video(raw, vid))
    except ValidationError as err:
        problems += _schema_problems(err, video=vid)
        return None
    if not entry.frames:
        problems.append(Problem(file=META_FILE, video=vid, field="frames", message="the video lists no frames"))
    return entry


def _ids(e: Mapping[str, Any], key: str) -> list[str] | None:
    """A list-of-ids field as str; None when it is malformed (the schema check reports that)."""
    value = e.get(key)
    values = [] if value is None else value if isinstance(value, list) else [value]
    if not all(isinstance(v, str | int) and not isinstance(v, bool) for v in values):
        return None
    return [str(v) for v in values]


def _expression_problems(
    vid: str,
    exp_id: str,
    raw: Any,
    kind: DatasetKind,
    objects: set[str] | None,
    mask_dict: Mapping[str, Any] | None,
) -> list[Problem]:
    def problem(field: str | None, message: str) -> Problem:
        return Problem(file=META_FILE, video=vid, expression=exp_id, field=field, message=message)

    if not isinstance(raw, dict):
        return [problem(None, "expected an object with exp, obj_id, anno_id, caption_type")]
    e = normalise_expression(raw, vid, kind)
    out: list[Problem] = []
    text = e.get("exp")
    if text is None:
        out.append(problem("exp", "the expression text is missing"))
    elif not isinstance(text, str):
        out.append(problem("exp", f"the expression text must be a str, got {type(text).__name__}"))
    elif not text.strip():
        out.append(problem("exp", "the expression text is empty"))
    caption_type, interaction = e.get("caption_type"), e.get("interaction", "none")
    if caption_type not in CAPTION_TYPES:
        allowed = ", ".join([*CAPTION_TYPES, *RELEASE_CAPTION_TYPES])
        message = f"unknown caption type {raw.get('caption_type')!r}; expected one of {allowed}"
        out.append(problem("caption_type", message))
    if interaction not in INTERACTION_KINDS:
        message = f"unknown interaction {interaction!r}; expected one of {', '.join(INTERACTION_KINDS)}"
        out.append(problem("interaction", message))
    if caption_type == "interaction" and interaction == "none":
        message = "caption_type 'interaction' needs interaction 'unidirectional' or 'bidirectional'"
        out.append(problem("interaction", message))

    ids = {key: _ids(e, key) for key in ("obj_id", "anno_id", *_ROLE_FIELDS)}
    if interaction == "unidirectional":
        for key in ("actor_ids", "target_ids"):
            if ids[key] == []:
                out.append(problem(key, f"a unidirectional interaction needs {key} (who acts, on whom)"))
    for key, whole_key in _ROLE_FIELDS.items():
        whole = ids[whole_key]
        outside = [i for i in ids[key] or [] if whole is not None and i not in whole]
        if outside:
            out.append(problem(key, f"{outside} not among the expression's {whole_key} {whole}"))
    obj_ids, anno_ids = ids["obj_id"], ids["anno_id"]
    if "anno_id" in e and obj_ids is not None and anno_ids is not None and len(anno_ids) != len(obj_ids):
        out.append(problem("anno_id", f"{len(anno_ids)} anno ids for {len(obj_ids)} obj ids: expected one per object"))
    unknown = [o for o in obj_ids or [] if objects is not None and o not in objects]
    if unknown:
        out.append(problem("obj_id", f"object(s) {unknown} are not among the video's objects {sorted(objects or [])}"))
    for key in ("anno_id", "actor_anno_id", "target_anno_id"):
        unknown = [a for a in ids[key] or [] if mask_dict is not None and a not in mask_dict]
        if unknown:
            out.append(problem(key, f"anno id(s) {unknown} have no masks in {MASK_FILE}"))

    try:
        Expression.model_validate(e)
    except ValidationError as err:
        out += [
            p
            for p in _schema_problems(err, video=vid, expression=exp_id)
            if p.field is not None and p.field.split(".")[0] not in _CHECKED_BY_HAND
        ]
    return out


def _image_problems(root: str, vid: str, entry: VideoEntry, problems: list[Problem]) -> tuple[int, int] | None:
    """Missing JPEGs of a video; returns its frame size from the first JPEG's header (None if unknown)."""
    folder = f"{IMAGES_DIR}/{vid}"
    if not storage.is_dir(storage.join(root, IMAGES_DIR, vid)):
        message = f"the frame folder is missing: none of the {len(entry.frames)} frames has a JPEG"
        problems.append(Problem(file=folder, video=vid, field="frames", message=message))
        return None
    present = set(storage.list_dir(storage.join(root, IMAGES_DIR, vid)))
    missing = [(i, f) for i, f in enumerate(entry.frames) if f"{f}.jpg" not in present]
    problems += [
        Problem(
            file=f"{folder}/{f}.jpg", video=vid, field=f"frames.{i}", message=f"frame {f!r} is listed but its JPEG is missing"
        )
        for i, f in missing
    ]
    first = next((f for f in entry.frames if f"{f}.jpg" in present), None)
    if first is None:
        return None
    try:
        return jpeg_size(storage.join(root, IMAGES_DIR, vid, f"{first}.jpg"))
    except DatasetError:
        problems.append(Problem(file=f"{folder}/{first}.jpg", video=vid, message="not a readable image"))
        return None


def _annotation_folder_problems(root: str, videos: Mapping[str, VideoEntry]) -> list[Problem]:
    if not storage.is_dir(storage.join(root, ANNOTATIONS_DIR)):
        return [Problem(file=ANNOTATIONS_DIR, message="missing: this Ref-YouTube-VOS style folder has no masks")]
    return [
        Problem(file=f"{ANNOTATIONS_DIR}/{vid}", video=vid, message="the mask folder is missing: this video has no masks")
        for vid in videos
        if not storage.is_dir(storage.join(root, ANNOTATIONS_DIR, vid))
    ]


def _anno_owners(raw_videos: Mapping[str, Any], videos: Mapping[str, VideoEntry]) -> dict[str, str]:
    """anno id -> the video whose expressions or objects refer to it (the first one, in file order)."""
    owners: dict[str, str] = {}
    for vid, raw in raw_videos.items():
        if not isinstance(raw, dict):
            continue
        for e in (raw.get("expressions") or {}).values() if isinstance(raw.get("expressions"), dict) else []:
            if isinstance(e, dict):
                for key in ("anno_id", "actor_anno_id", "target_anno_id"):
                    for anno in _ids(e, key) or []:
                        owners.setdefault(anno, str(vid))
    for vid, entry in videos.items():
        for info in entry.objects.values():
            if "anno_id" in info:
                owners.setdefault(info["anno_id"], vid)
    return owners


def _mask_problems(
    mask_dict: Mapping[str, Any],
    owners: Mapping[str, str],
    videos: Mapping[str, VideoEntry],
    frame_sizes: Mapping[str, tuple[int, int]],
) -> list[Problem]:
    """Malformed masks, mask lists of the wrong length and masks of the wrong size. Problems of one
    anno id are grouped (first frame and a count) so a broken track gives one line, not hundreds."""
    out: list[Problem] = []
    sizes_by_video: dict[str, Counter[tuple[int, int]]] = defaultdict(Counter)
    well_formed: dict[str, list[tuple[int, tuple[int, int]]]] = {}
    for anno, masks in mask_dict.items():
        vid = owners.get(anno)
        where = {"file": MASK_FILE, "video": vid, "field": str(anno)}
        if not isinstance(masks, list):
            message = f"expected a list of masks (one per frame), got {type(masks).__name__}"
            out.append(Problem(**where, message=message))
            continue
        entry = videos.get(vid) if vid else None
        if entry is not None and len(masks) != len(entry.frames):
            message = f"{len(masks)} masks for the {len(entry.frames)} frames of video {vid!r}"
            out.append(Problem(**where, message=message))
        bad = [(i, why) for i, m in enumerate(masks) if m is not None and (why := rle_problem(m))]
        if bad:
            i, why = bad[0]
            more = f" (and {len(bad) - 1} more frames)" if len(bad) > 1 else ""
            out.append(Problem(**where, message=f"malformed mask at frame {i}: {why}{more}"))
        bad_frames = {i for i, _ in bad}
        well_formed[anno] = [(i, tuple(m["size"])) for i, m in enumerate(masks) if m is not None and i not in bad_frames]
        if vid:
            sizes_by_video[vid].update(size for _, size in well_formed[anno])

    for anno, sized in well_formed.items():
        vid = owners.get(anno)
        if vid is None:
            continue
        expected = frame_sizes.get(vid) or (sizes_by_video[vid].most_common(1)[0][0] if sizes_by_video[vid] else None)
        wrong = [(i, size) for i, size in sized if size != tuple(expected)] if expected else []
        if wrong:
            (i, size), source = wrong[0], "its first JPEG" if vid in frame_sizes else "most of its masks"
            message = (
                f"{len(wrong)} of {len(sized)} masks have a size other than the video's {list(expected)} "
                f"(from {source}), first at frame {i}: {list(size)}"
            )
            out.append(Problem(file=MASK_FILE, video=vid, field=str(anno), message=message))
    return out
