"""Finalise an extraction: from the finished clips' markers (not from this run's rows, so the result
is the same however many runs and kills it took) write the clips table, the MeViS-format skeleton
(videos, frames, objects, empty expressions; mask_dict with one track per kept object) and a summary."""

from __future__ import annotations

import io
from collections import Counter
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from interrvos.clips.layout import DatasetLayout, anno_id
from interrvos.data import storage
from interrvos.data.mevis import write_dataset
from interrvos.data.records import ClipRecord, VideoEntry

CLIPS_SCHEMA = pa.schema([
    ("clip_id", pa.string()), ("video_id", pa.string()), ("source_path", pa.string()),
    ("start_frame", pa.int64()), ("end_frame", pa.int64()), ("num_frames", pa.int64()), ("fps", pa.float64()),
    ("width", pa.int64()), ("height", pa.int64()), ("sampled_frames", pa.list_(pa.int64())),
    ("object_ids", pa.list_(pa.string())),
])


def finished_clips(root: str) -> list[tuple[ClipRecord, dict[str, str]]]:
    """(clip record, {dropped object: filter}) of every finished clip, sorted by clip id."""
    layout = DatasetLayout(root)
    out = []
    for name in storage.list_dir(layout.markers_dir):
        if name.endswith(".json"):
            marker = storage.read_json(storage.join(layout.markers_dir, name))
            out.append((ClipRecord.model_validate(marker["clip"]), marker["dropped_objects"]))
    return sorted(out, key=lambda c: c[0].clip_id)


def read_clips_table(root: str) -> list[ClipRecord]:
    table = pq.read_table(io.BytesIO(storage.read_bytes(DatasetLayout(root).clips_table)))
    return [ClipRecord.model_validate({k: v for k, v in row.items() if k != "num_frames"}) for row in table.to_pylist()]


def _write_parquet(uri: str, rows: list[dict[str, Any]]) -> None:
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=CLIPS_SCHEMA), buf)
    storage.write_bytes(uri, buf.getvalue())


def finalize_dataset(root: str, run: dict[str, Any]) -> dict[str, Any]:
    layout = DatasetLayout(root)
    # Writers of a killed run leave temporary folders behind; no writer is running now.
    for folder in (root, storage.join(root, "JPEGImages"), storage.join(root, "tracks"), layout.markers_dir):
        storage.sweep_temporaries(folder)
    clips = finished_clips(root)
    videos: dict[str, VideoEntry] = {}
    mask_dict: dict[str, list] = {}
    dropped_by_filter: Counter[str] = Counter()
    for clip, dropped in clips:
        dropped_by_filter.update(dropped.values())
        tracks = storage.read_json(layout.tracks(clip.clip_id))
        objects = {}
        for obj_id in clip.object_ids:
            objects[obj_id] = {"category": tracks[obj_id]["category"], "anno_id": anno_id(clip.clip_id, obj_id)}
            mask_dict[anno_id(clip.clip_id, obj_id)] = tracks[obj_id]["mask"]
        videos[clip.clip_id] = VideoEntry(vid_id=clip.clip_id, frames=[f"{i:05d}" for i in range(clip.num_frames)],
                                          objects=objects)
    _write_parquet(layout.clips_table, [{**c.model_dump(), "num_frames": c.num_frames} for c, _ in clips])
    write_dataset(root, videos, mask_dict)
    summary = {
        "run": run,
        "dataset": {
            "clips": len(clips),
            "source_videos": len({c.video_id for c, _ in clips}),
            "frames": sum(c.num_frames for c, _ in clips),
            "objects_kept": sum(len(c.object_ids) for c, _ in clips),
            "objects_dropped": dict(sorted(dropped_by_filter.items())),
        },
    }
    storage.write_json(layout.summary, summary, indent=2)
    return summary
