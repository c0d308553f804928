"""`interrvos extract`: source videos (+ per-object mask tracks) -> clips, on Ray Data.

Pipeline: list videos (driver) -> plan clips per video (tasks) -> write each clip (autoscaling actor
pool: decode its frames, write JPEGs, cut and filter mask tracks) -> finalise (driver: clips table,
MeViS-format skeleton, summary). A clip counts as finished only when its marker file exists, and
the marker is written last, after the clip's frames and tracks were renamed into place; a re-run
skips finished clips, so killing the job and re-running gives the same output as one clean run.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from interrvos.clips.layout import DatasetLayout
from interrvos.clips.plan import clip_id, filter_objects, plan_clips, sample_frames
from interrvos.config import ClipRuleConfig, ExtractConfig
from interrvos.data import storage
from interrvos.data.records import ClipRecord
from interrvos.data.video import VideoReader, encode_jpeg
from interrvos.errors import InterRVOSError
from interrvos.placement import count_nodes, current_node_id
from interrvos.stages import Stage

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")


def _is_video_name(name: str) -> bool:
    return any(name.lower().endswith(s) for s in VIDEO_SUFFIXES)


def list_videos(sources: list[str]) -> list[dict[str, str]]:
    """Rows {video_id, path, masks_path} for every video of the given folders or files, sorted by id.
    A video's mask tracks are the sibling `<stem>.masks.json` when present ('' otherwise)."""
    rows: dict[str, dict[str, str]] = {}
    for source in sources:
        if storage.is_dir(source):
            folder, names = source, [n for n in storage.list_dir(source) if _is_video_name(n)]
        elif storage.exists(source):
            folder, names = source.rsplit("/", 1)[0] if "/" in source else ".", [source.rsplit("/", 1)[-1]]
        else:
            raise InterRVOSError(f"videos source not found: {source} (give a folder of videos or a video file)")
        for name in names:
            stem = name.rsplit(".", 1)[0]
            if stem in rows:
                raise InterRVOSError(f"two source videos share the id {stem!r}: {rows[stem]['path']} and {name}")
            masks = storage.join(folder, f"{stem}.masks.json")
            rows[stem] = {"video_id": stem, "path": storage.join(folder, name),
                          "masks_path": masks if storage.exists(masks) else ""}
    return [rows[k] for k in sorted(rows)]


# Every row carries every column, so Ray Data blocks always share one schema.
ROW_DEFAULTS: dict[str, Any] = {
    "video_id": "", "path": "", "masks_path": "", "clip_id": "", "status": "", "stage": "", "error": "",
    "start": 0, "end": 0, "fps": 0.0, "width": 0, "height": 0, "video_frames": 0,
    "seconds": 0.0, "frames": 0, "kept": 0, "dropped": 0, "node": "",
}


def _row(base: dict[str, Any], **updates: Any) -> dict[str, Any]:
    return {**ROW_DEFAULTS, **base, **updates}


def _error_row(row: dict[str, Any], stage: str, err: Exception) -> dict[str, Any]:
    return _row(row, status="error", stage=stage, error=f"{type(err).__name__}: {err}")


def plan_video(row: dict[str, Any], rule: ClipRuleConfig, out: str) -> list[dict[str, Any]]:
    """One video row -> one row per clip still to write (finished clips are skipped), or an error row."""
    layout = DatasetLayout(out)
    try:
        with storage.local_path(row["path"]) as local, VideoReader(local) as reader:
            info = reader.info
    except Exception as e:  # a bad video is recorded and skipped, never fatal
        return [_error_row(row, "probe", e)]
    spans = plan_clips(info.num_frames, rule)
    if not spans:
        return [_row(row, status="no_clips", stage="plan",
                     error=f"{info.num_frames} frames: no bin of >= {rule.min_bin_frames} frames")]
    out_rows = []
    for span in spans:
        cid = clip_id(row["video_id"], span.index)
        status = "done" if storage.exists(layout.marker(cid)) else "todo"
        out_rows.append(_row(row, clip_id=cid, status=status, stage="plan", start=span.start, end=span.end,
                             fps=info.fps, width=info.width, height=info.height, video_frames=info.num_frames))
    return out_rows


class ClipWriter:
    """Ray Data actor: writes one clip's frames, mask tracks and marker. Bad clips become error rows."""

    def __init__(self, rule: ClipRuleConfig, out: str, jpeg_quality: int):
        self.rule, self.layout, self.quality = rule, DatasetLayout(out), jpeg_quality
        self._tracks_cache: tuple[str, dict] | None = None  # a video's tracks, reused by its next clip

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        if row["status"] != "todo":
            return row
        started = time.perf_counter()
        try:
            record, dropped = self._write_clip(row)
        except Exception as e:
            return _error_row(row, "write", e)
        return _row(row, status="written", seconds=time.perf_counter() - started, frames=record.num_frames,
                    kept=len(record.object_ids), dropped=len(dropped), node=current_node_id())

    def _source_tracks(self, row: dict[str, Any]) -> dict[str, dict]:
        if not row["masks_path"]:
            return {}
        if self._tracks_cache is None or self._tracks_cache[0] != row["masks_path"]:
            self._tracks_cache = (row["masks_path"], storage.read_json(row["masks_path"]))
        return self._tracks_cache[1]

    def _write_clip(self, row: dict[str, Any]) -> tuple[ClipRecord, dict[str, str]]:
        cid, start, end = row["clip_id"], row["start"], row["end"]
        n = end - start
        source = self._source_tracks(row)
        for obj_id, track in source.items():
            if len(track["mask"]) != row["video_frames"]:
                raise InterRVOSError(f"{row['masks_path']}: object {obj_id} has {len(track['mask'])} masks "
                                     f"for a video of {row['video_frames']} frames")
        tracks = {obj_id: t["mask"][start:end] for obj_id, t in source.items()}
        sampled = sample_frames(n, self.rule.num_sampled_frames)
        kept, dropped = filter_objects(tracks, sampled, row["width"] * row["height"], self.rule)

        with storage.staged_dir(self.layout.frames_dir(cid)) as tmp, \
                storage.local_path(row["path"]) as local, VideoReader(local) as reader:
            for i, frame in enumerate(reader.iter_frames(start, end)):
                with open(f"{tmp}/{i:05d}.jpg", "wb") as f:
                    f.write(encode_jpeg(frame, self.quality))
            if i + 1 != n:
                raise InterRVOSError(f"{row['path']}: decoded {i + 1} frames of {start}..{end}")

        record = ClipRecord(clip_id=cid, video_id=row["video_id"], source_path=row["path"], start_frame=start,
                            end_frame=end, fps=row["fps"], width=row["width"], height=row["height"],
                            sampled_frames=sampled, object_ids=kept)
        kept_tracks = {o: {"category": source[o]["category"], "mask": tracks[o]} for o in kept}
        storage.write_json(self.layout.tracks(cid), kept_tracks)
        storage.write_json(self.layout.marker(cid), {"clip": record.model_dump(), "dropped_objects": dropped})
        return record, dropped


def stage_plan(cfg: ExtractConfig) -> list[Stage]:
    """The Ray Data stages of `interrvos extract` and what each reserves (`interrvos extract --show-plan`)."""
    return [Stage.tasks("plan", cfg.planners, note="reads container headers, cuts clips"),
            Stage.actor_pool("write", cfg.writers, note="decodes frames, writes JPEGs and tracks")]


def run_extract(cfg: ExtractConfig, progress: Any = None) -> dict[str, Any]:
    """Run the extraction pipeline on Ray and finalise the dataset folder; returns the run summary."""
    import ray

    from interrvos.clips.finalize import finalize_dataset
    from interrvos.runtime import ensure_ray

    ensure_ray(cfg.ray)
    started = time.perf_counter()
    videos = list_videos(cfg.videos)
    storage.makedirs(cfg.out)
    if not videos:
        raise InterRVOSError(f"no video files ({', '.join(VIDEO_SUFFIXES)}) in {', '.join(cfg.videos)}")
    plan, write = stage_plan(cfg)
    ds = ray.data.from_items(videos, override_num_blocks=len(videos))
    ds = ds.flat_map(plan_video, fn_kwargs={"rule": cfg.clip, "out": cfg.out}, **plan.ray_args())
    ds = ds.map(ClipWriter, fn_constructor_kwargs={"rule": cfg.clip, "out": cfg.out, "jpeg_quality": cfg.jpeg_quality},
                **write.ray_args())
    tally = RunTally()
    for row in ds.iter_rows():
        tally.add(row)
        if progress:
            progress(row)
    run = tally.summary(len(videos), time.perf_counter() - started)
    return finalize_dataset(cfg.out, run)


class RunTally:
    """What the driver keeps of the rows streaming back: counters and the errors, never the rows."""

    def __init__(self) -> None:
        self.status: Counter[str] = Counter()
        self.probe_failed: set[str] = set()  # videos that could not be read
        self.write_failed = self.frames = 0
        self.nodes: Counter[str] = Counter()  # clips written per Ray node
        self.errors: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any]) -> None:
        self.status[row["status"]] += 1
        if row["status"] == "written":
            self.frames += int(row.get("frames") or 0)
            self.nodes[row["node"]] += 1
        elif row["status"] == "error":
            if row["stage"] == "probe":
                self.probe_failed.add(row["video_id"])
            elif row["stage"] == "write":
                self.write_failed += 1
        if row["status"] in ("error", "no_clips"):
            self.errors.append({k: row[k] for k in ("video_id", "clip_id", "path", "stage", "error")})

    def summary(self, videos_listed: int, seconds: float) -> dict[str, Any]:
        return {
            "videos_listed": videos_listed,
            "videos_failed": len(self.probe_failed),
            "videos_without_clips": self.status["no_clips"],
            "clips_written": self.status["written"],
            "clips_skipped_already_done": self.status["done"],
            "clips_failed": self.write_failed,
            "frames_written": self.frames,
            "seconds": round(seconds, 2),
            "frames_per_second": round(self.frames / seconds, 1) if seconds else 0.0,
            "nodes": count_nodes(self.nodes.elements()),  # clips written per Ray node
            "errors": sorted(self.errors, key=lambda e: (e["video_id"], e["clip_id"])),
        }
