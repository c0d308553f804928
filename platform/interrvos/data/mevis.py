"""The MeViS-compatible dataset folder: read (three flavours) and write (ours), local or remote.

A folder holds `meta_expressions.json`, `mask_dict.json` and `JPEGImages/<vid>/<frame>.jpg`
(docs/dataset-format.md). Three flavours load into the same records:
  - "interrvos": ours, MeViS plus actor/target fields (also the authors' release, whose roles sit in
    a "subject/object" block and whose caption types are single/multi/unidirectional/bidirectional);
  - "mevis": plain MeViS (int ids, no interaction fields, caption_type often absent);
  - "refytvos": Ref-YouTube-VOS (one str obj_id per expression, no anno ids, masks as palette PNGs
    `Annotations/<vid>/<frame>.png` whose pixel value is the object id).
All I/O goes through interrvos.data.storage, so an s3:// root reads by the same code path.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import ValidationError

from interrvos.data import storage
from interrvos.data.records import Expression, VideoEntry
from interrvos.data.rle import RLE, decode_rle, encode_mask
from interrvos.errors import DatasetError

DatasetKind = Literal["interrvos", "mevis", "refytvos"]
Role = Literal["all", "actor", "target"]

META_FILE = "meta_expressions.json"
MASK_FILE = "mask_dict.json"
IMAGES_DIR = "JPEGImages"
ANNOTATIONS_DIR = "Annotations"  # Ref-YouTube-VOS palette PNGs
REFYTVOS_OBJECTS_FILE = "meta.json"  # Ref-YouTube-VOS object categories, optional

# Keys whose presence marks our extension (or the authors' release) rather than plain MeViS.
EXTENSION_KEYS = ("interaction", "actor_ids", "target_ids", "actor_anno_id", "target_anno_id", "subject/object")
# The authors' caption types, as (our caption_type, interaction kind).
RELEASE_CAPTION_TYPES: dict[str, tuple[str, str | None]] = {
    "single": ("single_all", None),
    "unidirectional": ("interaction", "unidirectional"),
    "bidirectional": ("interaction", "bidirectional"),
}


def refytvos_anno_id(vid: str, obj_id: str) -> str:
    """Ref-YouTube-VOS has no anno ids: one is made per (video, object) so masks are looked up alike."""
    return f"{vid}:{obj_id}"


def _id_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def normalise_expression(raw: Mapping[str, Any], vid: str, kind: DatasetKind) -> dict[str, Any]:
    """Turn one expression as stored by any flavour into the fields of `records.Expression`.
    Leaves values it does not understand alone so that validation reports them."""
    e = dict(raw)
    roles = e.pop("subject/object", None)  # authors' release: subject = actor, object = target
    if isinstance(roles, dict):
        obj, anno = roles.get("obj_id") or {}, roles.get("anno_id") or {}
        if isinstance(obj, dict):
            e.setdefault("actor_ids", obj.get("subject"))
            e.setdefault("target_ids", obj.get("object"))
        if isinstance(anno, dict):
            e.setdefault("actor_anno_id", anno.get("subject"))
            e.setdefault("target_anno_id", anno.get("object"))
    caption_type = e.get("caption_type")
    if caption_type is None:  # plain MeViS / Ref-YouTube-VOS: infer from how many objects are referred to
        e["caption_type"] = "multi" if len(_id_list(e.get("obj_id"))) > 1 else "single_all"
    elif isinstance(caption_type, str) and caption_type in RELEASE_CAPTION_TYPES:
        e["caption_type"], interaction = RELEASE_CAPTION_TYPES[caption_type]
        if interaction:
            e.setdefault("interaction", interaction)
    if kind == "refytvos" and "anno_id" not in e:
        e["anno_id"] = [refytvos_anno_id(vid, str(o)) for o in _id_list(e.get("obj_id"))]
    return e


def normalise_video(raw: Mapping[str, Any], vid: str) -> dict[str, Any]:
    """Video-level fields of `records.VideoEntry` (expressions excluded: they are parsed one by one)."""
    v = dict(raw)
    if isinstance(v.get("expressions", {}), dict):
        v["expressions"] = {}  # parsed one by one by parse_video; anything else is left for pydantic to report
    vid_id = v.get("vid_id", vid)
    v["vid_id"] = str(vid_id) if isinstance(vid_id, int | str) else vid_id  # MeViS: int, Ref-YTVOS: absent
    return v


def parse_video(vid: str, raw: Mapping[str, Any], kind: DatasetKind) -> tuple[VideoEntry, dict[str, ValidationError]]:
    """One video of meta_expressions.json as a record. A video-level schema error raises
    ValidationError; a bad expression is left out and returned (exp_id -> error) instead."""
    entry = VideoEntry.model_validate(normalise_video(raw, vid))
    bad: dict[str, ValidationError] = {}
    for exp_id, raw_exp in (raw.get("expressions") or {}).items():
        try:
            fields = normalise_expression(raw_exp, vid, kind) if isinstance(raw_exp, dict) else raw_exp
            entry.expressions[str(exp_id)] = Expression.model_validate(fields)
        except ValidationError as err:
            bad[str(exp_id)] = err
    return entry, bad


def read_json_file(uri: str) -> Any:
    """A JSON file, or DatasetError naming it when it is missing or not JSON."""
    if not storage.exists(uri):
        raise DatasetError(f"{uri}: file is missing")
    try:
        return json.loads(storage.read_bytes(uri))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DatasetError(f"{uri}: not valid JSON ({err})") from None


def read_meta(root: str) -> dict[str, Any]:
    """The raw `videos` mapping of a folder's meta_expressions.json; DatasetError if it is not a dataset."""
    path = storage.join(root, META_FILE)
    if not storage.exists(path):
        raise DatasetError(f"{root}: not a dataset folder ({META_FILE} is missing)")
    meta = read_json_file(path)
    if not isinstance(meta, dict) or not isinstance(meta.get("videos"), dict):
        raise DatasetError(f"{path}: expected an object with a 'videos' object mapping video id -> video")
    return meta["videos"]


def detect_kind(root: str, raw_videos: Mapping[str, Any]) -> DatasetKind:
    """Which flavour a folder is, from what it holds (see the module docstring)."""
    expressions = [
        e
        for v in raw_videos.values()
        if isinstance(v, dict) and isinstance(v.get("expressions"), dict)
        for e in v["expressions"].values()
        if isinstance(e, dict)
    ]
    if not storage.exists(storage.join(root, MASK_FILE)):
        # Masks as PNGs, or no masks at all and no anno ids (a Ref-YouTube-VOS test split).
        if storage.is_dir(storage.join(root, ANNOTATIONS_DIR)) or not any("anno_id" in e for e in expressions):
            return "refytvos"
    extended = any(k in e for e in expressions for k in EXTENSION_KEYS) or any(
        isinstance(v, dict) and v.get("objects") for v in raw_videos.values()
    )
    return "interrvos" if extended else "mevis"


@dataclass
class Dataset:
    """A loaded dataset folder. Masks are read on first use (mask_dict.json, or PNGs for refytvos)."""

    root: str
    kind: DatasetKind
    videos: dict[str, VideoEntry]
    # "video V expression E: reason" for every item left out because it did not parse.
    skipped: list[str] = field(default_factory=list)
    _mask_dict: dict[str, list[RLE | None]] | None = field(default=None, repr=False)
    _png_masks: dict[str, list[RLE | None]] = field(default_factory=dict, repr=False)

    def frame_path(self, vid: str, frame: str) -> str:
        return storage.join(self.root, IMAGES_DIR, vid, f"{frame}.jpg")

    def read_frame(self, vid: str, frame: str) -> np.ndarray:
        """A frame as (H, W, 3) RGB uint8."""
        import cv2

        path = self.frame_path(vid, frame)
        img = cv2.imdecode(np.frombuffer(storage.read_bytes(path), np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise DatasetError(f"{path}: not a readable image")
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)

    def all_expressions(self) -> list[tuple[str, str, Expression]]:
        """Every (video id, expression id, expression), in file order."""
        return [(vid, exp_id, e) for vid, v in self.videos.items() for exp_id, e in v.expressions.items()]

    @property
    def mask_dict(self) -> dict[str, list[RLE | None]]:
        if self.kind == "refytvos":
            raise DatasetError(f"{self.root}: a Ref-YouTube-VOS folder has no {MASK_FILE}; use masks()")
        if self._mask_dict is None:
            masks = read_json_file(storage.join(self.root, MASK_FILE))
            if not isinstance(masks, dict):
                raise DatasetError(f"{storage.join(self.root, MASK_FILE)}: expected an object anno id -> masks")
            self._mask_dict = masks
        return self._mask_dict

    def masks(self, anno_id: str) -> list[RLE | None]:
        """One mask per frame of the anno id's video (None where the object is not visible)."""
        if self.kind == "refytvos":
            return self._refytvos_masks(anno_id)
        masks = self.mask_dict.get(str(anno_id))
        if masks is None:
            raise DatasetError(f"{storage.join(self.root, MASK_FILE)}: unknown anno id {anno_id!r}")
        return masks

    def object_anno_ids(self, vid: str) -> dict[str, str]:
        """obj id -> anno id for a video: from `objects` when present, else from its expressions
        (plain MeViS pairs obj_id[i] with anno_id[i])."""
        video = self.videos[vid]
        pairs = {obj: info["anno_id"] for obj, info in video.objects.items() if "anno_id" in info}
        for e in video.expressions.values():
            if len(e.obj_id) == len(e.anno_id):
                for obj, anno in zip(e.obj_id, e.anno_id, strict=True):
                    pairs.setdefault(obj, anno)
        return pairs

    def frame_size(self, vid: str) -> tuple[int, int]:
        """(height, width) of a video's frames: the most common mask size, else the first JPEG's header."""
        sizes: Counter[tuple[int, int]] = Counter()
        for anno in self.object_anno_ids(vid).values():
            sizes.update(tuple(m["size"]) for m in self.masks(anno) if m is not None)
        if sizes:
            return sizes.most_common(1)[0][0]
        return jpeg_size(self.frame_path(vid, self.videos[vid].frames[0]))

    def union_masks(self, vid: str, anno_ids: Sequence[str]) -> list[np.ndarray]:
        """Per frame, the union of the given anno ids' masks as (H, W) uint8 (all zero where none is visible)."""
        h, w = self.frame_size(vid)
        out = [np.zeros((h, w), dtype=np.uint8) for _ in self.videos[vid].frames]
        for anno in anno_ids:
            for i, rle in enumerate(self.masks(anno)[: len(out)]):
                if rle is None:
                    continue
                if list(rle["size"]) != [h, w]:
                    raise DatasetError(
                        f"{self.root}: video {vid!r} anno id {anno!r} frame {i} has a {rle['size']} mask but "
                        f"frames are {[h, w]} (run `interrvos validate {self.root}`)"
                    )
                out[i] |= decode_rle(rle)
        return out

    def object_masks(self, vid: str, obj_ids: Sequence[str]) -> list[np.ndarray]:
        """Per frame, the union of the given objects' masks as (H, W) uint8."""
        anno_of = self.object_anno_ids(vid)
        missing = [o for o in map(str, obj_ids) if o not in anno_of]
        if missing:
            raise DatasetError(f"{self.root}: video {vid!r} has no object(s) {missing}")
        return self.union_masks(vid, [anno_of[str(o)] for o in obj_ids])

    def expression_masks(self, vid: str, exp_id: str, role: Role = "all") -> list[np.ndarray]:
        """Ground truth of an expression: every referred object ("all"), or only its actors / targets."""
        e = self.videos[vid].expressions[exp_id]
        anno_ids = {"all": e.anno_id, "actor": e.actor_anno_id, "target": e.target_anno_id}[role]
        return self.union_masks(vid, anno_ids)

    def annotation_path(self, vid: str, frame: str) -> str:
        return storage.join(self.root, ANNOTATIONS_DIR, vid, f"{frame}.png")

    def _refytvos_masks(self, anno_id: str) -> list[RLE | None]:
        if anno_id not in self._png_masks:
            vid, _, _ = anno_id.rpartition(":")
            if vid not in self.videos:
                raise DatasetError(f"{self.root}: anno id {anno_id!r} names no video of this dataset")
            self._png_masks.update(self._read_palette_pngs(vid))
        if anno_id not in self._png_masks:
            raise DatasetError(f"{self.root}: unknown anno id {anno_id!r}")
        return self._png_masks[anno_id]

    def _read_palette_pngs(self, vid: str) -> dict[str, list[RLE | None]]:
        """Every object of a video in one pass over its PNGs (each PNG holds all objects)."""
        objects = sorted(self.object_anno_ids(vid).items())
        tracks: dict[str, list[RLE | None]] = {anno: [] for _, anno in objects}
        for frame in self.videos[vid].frames:
            path = self.annotation_path(vid, frame)
            labels = read_palette_png(path) if storage.exists(path) else None
            for obj, anno in objects:
                mask = labels == int(obj) if labels is not None and obj.isdigit() else None
                tracks[anno].append(encode_mask(mask) if mask is not None and mask.any() else None)
        return tracks


def jpeg_size(uri: str) -> tuple[int, int]:
    """(height, width) from an image's header, without decoding its pixels."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(storage.read_bytes(uri))) as img:
            return img.height, img.width
    except (OSError, ValueError) as err:
        raise DatasetError(f"{uri}: not a readable image ({err})") from None


def read_palette_png(uri: str) -> np.ndarray:
    """A label PNG as (H, W) ints: the palette index (= object id) of each pixel, not its colour."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(storage.read_bytes(uri))) as img:
            if img.mode not in ("P", "L", "I", "I;16"):
                raise DatasetError(f"{uri}: expected a palette or grey label PNG, got mode {img.mode}")
            return np.asarray(img).astype(np.int64)
    except OSError as err:
        raise DatasetError(f"{uri}: not a readable PNG ({err})") from None


def load_dataset(root: str) -> Dataset:
    """Read a dataset folder (any flavour). Raises DatasetError when it is not a dataset at all;
    videos or expressions that do not parse are left out and listed in `Dataset.skipped`."""
    raw_videos = read_meta(root)
    kind = detect_kind(root, raw_videos)
    categories = read_refytvos_categories(root) if kind == "refytvos" else {}
    videos: dict[str, VideoEntry] = {}
    skipped: list[str] = []
    for vid, raw in raw_videos.items():
        try:
            if not isinstance(raw, dict):
                raise DatasetError("expected an object")
            entry, bad = parse_video(str(vid), raw, kind)
        except (ValidationError, DatasetError) as err:
            skipped.append(f"video {vid!r}: {_one_line(err)}")
            continue
        skipped += [f"video {vid!r} expression {exp_id!r}: {_one_line(err)}" for exp_id, err in bad.items()]
        if kind == "refytvos":
            add_refytvos_objects(entry, str(vid), categories.get(str(vid)))
        videos[str(vid)] = entry
    return Dataset(root=str(root), kind=kind, videos=videos, skipped=skipped)


def _one_line(err: Exception) -> str:
    if isinstance(err, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or '(expression)'}: {e['msg']}" for e in err.errors())
    return str(err)


def read_refytvos_categories(root: str) -> dict[str, Any]:
    """Ref-YouTube-VOS keeps object categories in an optional meta.json beside the PNGs:
    {"videos": {vid: {"objects": {obj_id: {"category": ...}}}}}. Missing or unreadable: {}."""
    path = storage.join(root, REFYTVOS_OBJECTS_FILE)
    try:
        videos = read_json_file(path).get("videos", {}) if storage.exists(path) else {}
    except (DatasetError, AttributeError):
        return {}
    return videos if isinstance(videos, dict) else {}


def add_refytvos_objects(entry: VideoEntry, vid: str, known: Mapping[str, Any] | None) -> None:
    """Fill `objects` with every referred (or meta.json-listed) object and its synthesised anno id."""
    known_objects = (known or {}).get("objects") or {}
    referred = {o for e in entry.expressions.values() for o in e.obj_id}
    for obj in sorted(set(map(str, known_objects)) | referred, key=lambda o: (len(o), o)):
        category = str((known_objects.get(obj) or {}).get("category", "object"))
        entry.objects[obj] = {"category": category, "anno_id": refytvos_anno_id(vid, obj)}


def write_dataset(
    root: str,
    videos: Mapping[str, VideoEntry],
    mask_dict: Mapping[str, Sequence[RLE | None]],
    *,
    indent: int | None = None,
) -> None:
    """Write meta_expressions.json and mask_dict.json (frames are written with `write_frame`).
    mask_dict goes first: meta_expressions.json is what makes a folder a dataset, so a reader never
    sees expressions whose masks are not written yet. Each file is replaced atomically."""
    storage.write_json(storage.join(root, MASK_FILE), {str(k): list(v) for k, v in mask_dict.items()}, indent=indent)
    meta = {"videos": {vid: entry.model_dump(mode="json") for vid, entry in videos.items()}}
    storage.write_json(storage.join(root, META_FILE), meta, indent=indent)


def write_frame(root: str, vid: str, frame: str, image: np.ndarray, quality: int = 90) -> str:
    """Write one (H, W, 3) RGB frame as JPEGImages/<vid>/<frame>.jpg; returns its path."""
    from interrvos.data.video import encode_jpeg

    path = storage.join(root, IMAGES_DIR, vid, f"{frame}.jpg")
    storage.write_bytes(path, encode_jpeg(image, quality=quality))
    return path
