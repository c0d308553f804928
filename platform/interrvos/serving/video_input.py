"""The frames of a request's video: an uploaded file, a path under the configured video roots, or a
clip of a registered dataset; cut to the request's frame range (start, end exclusive, stride) and
checked against the limits before any model work starts.

Uploads and path videos are decoded once with PyAV, up front: a truncated file is then a 400 before
the answer starts (not a broken stream half-way), and the decoded frames go to a raw file in a temp
folder that is memory-mapped, so long videos do not sit in RAM and SAM2 and the MLLM get random
access. `VideoFrames.close()` (or leaving its `with` block) removes the temp folder.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from interrvos.data import storage
from interrvos.serving.config import Limits, ModelAppConfig
from interrvos.serving.errors import BadRequest, Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType

ACCEPTED_TYPES = "video/* or application/octet-stream"
_MB = 1 << 20


@dataclass(frozen=True)
class FrameRange:
    """Source frames start, start+stride, ... before end (exclusive; None: the video's end)."""

    start: int = 0
    end: int | None = None
    stride: int = 1

    def __post_init__(self):
        if self.start < 0:
            raise BadRequest(f"start: must be >= 0, got {self.start}")
        if self.stride <= 0:
            raise BadRequest(f"stride: must be >= 1, got {self.stride}")
        if self.end is not None and self.end <= self.start:
            raise BadRequest(f"end: must be greater than start ({self.start}), got {self.end}")

    @classmethod
    def of(cls, request) -> FrameRange:
        return cls(request.start, request.end, request.stride)

    def wants(self, i: int) -> bool:
        return i >= self.start and (self.end is None or i < self.end) and (i - self.start) % self.stride == 0

    def select(self, total: int, limits: Limits) -> list[int]:
        """The source indices of a video of `total` frames (BadRequest / PayloadTooLarge naming why)."""
        if self.start >= total:
            raise BadRequest(f"start: {self.start} is past the video's last frame (it has {total} frames)")
        indices = range(self.start, total if self.end is None else min(self.end, total), self.stride)
        check_frame_count(len(indices), limits)
        return list(indices)


def check_frame_count(n: int, limits: Limits) -> None:
    if n > limits.max_frames:
        raise PayloadTooLarge(f"the request selects {n} frames and limits.max_frames is {limits.max_frames}: "
                              "narrow start/end or raise stride")  # fmt: skip


class VideoFrames:
    """A request's frames as a FrameSource (len, [i] -> (H, W, 3) RGB uint8) plus where they came from:
    `source` ("upload:<name>", "path:<p>", "clip:<dataset>/<clip>"), `frame_indices` (the source frame of
    each frame here), `height`, `width`, `decode_s`. Use as a context manager, or call close()."""

    def __init__(self, source: str, read: Callable[[int], np.ndarray], frame_indices: list[int], height: int,
                 width: int, decode_s: float = 0.0, workdir: str | None = None):  # fmt: skip
        self.source, self._read, self.frame_indices = source, read, list(frame_indices)
        self.height, self.width, self.decode_s, self.workdir = height, width, decode_s, workdir
        # a safety net: the temp folder goes even when a caller forgets close() (at garbage collection)
        self._cleanup = weakref.finalize(self, shutil.rmtree, workdir, True) if workdir else None

    def __len__(self) -> int:
        return len(self.frame_indices)

    def __getitem__(self, i: int) -> np.ndarray:
        i = int(i)
        if not 0 <= i < len(self.frame_indices):
            raise IndexError(f"frame {i} of {len(self.frame_indices)}")
        return self._read(i)

    def metadata(self) -> dict:
        """The `video` block of an answer."""
        return {"source": self.source, "frames": len(self), "height": self.height, "width": self.width,
                "frame_indices": list(self.frame_indices)}  # fmt: skip

    def close(self) -> None:
        if self._cleanup is not None:
            self._cleanup()

    def __enter__(self) -> VideoFrames:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass(frozen=True)
class Upload:
    """An uploaded video file (the multipart part `video`): its bytes, file name and Content-Type."""

    data: bytes
    filename: str | None = None
    content_type: str | None = None


def check_content_type(content_type: str | None) -> None:
    """415 unless the part's type is video/* or application/octet-stream (absent: accepted)."""
    if not content_type or not content_type.strip():
        return
    kind = content_type.split(";")[0].strip().lower()
    if not (kind.startswith("video/") or kind == "application/octet-stream"):
        raise UnsupportedMediaType(f"video: Content-Type {kind!r} is not a video; send {ACCEPTED_TYPES}")


def check_upload_size(num_bytes: int, limits: Limits) -> None:
    """413 over limits.max_upload_mb (callable on Content-Length before reading the body)."""
    if num_bytes > limits.max_upload_mb * _MB:
        raise PayloadTooLarge(f"the upload has {num_bytes / _MB:.1f} MB and limits.max_upload_mb is "
                              f"{limits.max_upload_mb:g}")  # fmt: skip


def _safe_name(filename: str | None) -> str:
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    return re.sub(r"[^\w.-]", "_", base)[:120] or "video"


def _workdir(cfg: ModelAppConfig) -> str:
    if cfg.upload_dir:
        os.makedirs(cfg.upload_dir, exist_ok=True)
    return tempfile.mkdtemp(prefix="interrvos-video-", dir=cfg.upload_dir or None)


def frames_from_upload(upload: Upload, frame_range: FrameRange, cfg: ModelAppConfig) -> VideoFrames:
    """Decode an uploaded file (written to a temp folder under cfg.upload_dir, removed with the frames)."""
    check_content_type(upload.content_type)
    name = _safe_name(upload.filename)
    if len(upload.data) == 0:
        raise BadRequest(f"video: the uploaded file {name!r} is empty (0 bytes)")
    check_upload_size(len(upload.data), cfg.limits)
    workdir = _workdir(cfg)
    try:
        path = os.path.join(workdir, "upload")
        with open(path, "wb") as f:
            f.write(upload.data)
        frames = _decode(path, name, f"upload:{name}", frame_range, cfg.limits, workdir)
        os.remove(path)  # the decoded frames are all that is needed from here on
        return frames
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise


def resolve_video_path(path: str, roots: list[str]) -> str:
    """The real location of a request's path, confined to `roots`: relative paths are looked up under
    each root; `..` and symlinks are resolved first, so neither can lead outside (403)."""
    if not roots:
        raise Forbidden("video.path: this server reads no paths (no video_roots configured); upload the file")
    if storage.is_remote(path) or any(storage.is_remote(r) for r in roots):
        return _resolve_remote(path, roots)
    inside_a_root = None
    for root in roots:
        real_root = os.path.realpath(root)
        candidate = os.path.realpath(path if os.path.isabs(path) else os.path.join(real_root, path))
        if os.path.commonpath([real_root, candidate]) != real_root:
            continue
        inside_a_root = inside_a_root or candidate
        if os.path.exists(candidate):
            if not os.path.isfile(candidate):
                raise BadRequest(f"video.path: {path!r} is not a file")
            return candidate
    if inside_a_root is None:
        raise Forbidden(f"video.path: {path!r} lies outside the configured video roots")
    raise NotFound(f"video.path: no file at {path!r}")


def _resolve_remote(path: str, roots: list[str]) -> str:
    scheme, _, rest = path.partition("://") if storage.is_remote(path) else ("", "", path)
    if ".." in rest.split("/"):
        raise Forbidden(f"video.path: {path!r} must not contain '..'")
    for root in roots:
        base = root.rstrip("/")
        full = path if storage.is_remote(path) else f"{base}/{path.lstrip('/')}"
        if storage.is_remote(root) and full.startswith(base + "/"):
            if not storage.exists(full):
                raise NotFound(f"video.path: no file at {path!r}")
            return full
    raise Forbidden(f"video.path: {path!r} lies outside the configured video roots")


def frames_from_path(path: str, frame_range: FrameRange, cfg: ModelAppConfig) -> VideoFrames:
    real = resolve_video_path(path, cfg.video_roots)
    workdir = _workdir(cfg)
    try:
        local = real
        if storage.is_remote(real):  # a URI: copied into the temp folder in chunks, then decoded
            local = os.path.join(workdir, "remote")
            fs, inner = storage.resolve(real)
            with fs.open_input_stream(inner) as src, open(local, "wb") as dst:
                while chunk := src.read(_MB):
                    dst.write(chunk)
        frames = _decode(local, path, f"path:{path}", frame_range, cfg.limits, workdir)
        if local != real:
            os.remove(local)
        return frames
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise


def _decode(path: str, name: str, source: str, frame_range: FrameRange, limits: Limits, workdir: str) -> VideoFrames:
    """Decode the selected frames in one sequential pass into `<workdir>/frames.rgb`, memory-mapped."""
    import av

    started = time.perf_counter()
    try:
        container = av.open(path)
    except Exception as err:  # FFmpeg's InvalidDataError and friends: no container FFmpeg can read
        kind = _container_magic(path)
        if kind:  # it starts like a video file: most likely cut off (an incomplete upload)
            raise BadRequest(f"video: {name!r} is truncated or damaged: it starts as {kind} but cannot be read "
                             f"({_reason(err, path)})") from None  # fmt: skip
        raise BadRequest(f"video: {name!r} is not a video ({_reason(err, path)})") from None
    selected: list[int] = []
    shape = None
    decoded = 0
    with container, open(os.path.join(workdir, "frames.rgb"), "wb") as out:
        if not container.streams.video:
            if container.streams or "mp4" not in (container.format.name or ""):
                raise BadRequest(f"video: {name!r} is not a video (it has no video stream)")
            # an mp4 that opens with no streams at all lost its index (the moov atom at the end)
            raise BadRequest(f"video: {name!r} is truncated (the mp4's index is missing: an incomplete upload?)")
        stream = container.streams.video[0]
        promised = int(stream.frames or 0)
        if promised and frame_range.start < promised:  # fail fast on a range the header says is too long
            check_frame_count(len(range(frame_range.start, min(frame_range.end or promised, promised),
                                        frame_range.stride)), limits)  # fmt: skip
        try:
            for frame in container.decode(stream):
                i, decoded = decoded, decoded + 1
                if frame_range.end is not None and i >= frame_range.end:
                    break
                if not frame_range.wants(i):
                    continue
                check_frame_count(len(selected) + 1, limits)
                rgb = frame.to_ndarray(format="rgb24")
                if shape is None:
                    shape = rgb.shape
                elif rgb.shape != shape:
                    raise BadRequest(f"video: {name!r} changes frame size at frame {i} ({shape[1]}x{shape[0]} "
                                     f"-> {rgb.shape[1]}x{rgb.shape[0]})")  # fmt: skip
                out.write(np.ascontiguousarray(rgb).tobytes())
                selected.append(i)
        except (BadRequest, PayloadTooLarge):
            raise
        except Exception as err:
            if decoded == 0:
                raise BadRequest(f"video: {name!r} is not a video (no frame decodes: {_reason(err, path)})") from None
            raise BadRequest(f"video: {name!r} is truncated or corrupt: decoding failed after frame {decoded - 1} "
                             f"({_reason(err, path)})") from None  # fmt: skip
        complete = frame_range.end is None or decoded <= frame_range.end
    if decoded == 0:
        raise BadRequest(f"video: {name!r} is not a video (no decodable frames)")
    # Ran to the end but short of the header's count: cut off. (A small slack: edit lists may drop a frame.)
    if complete and promised and promised - decoded > max(2, promised // 50):
        raise BadRequest(f"video: {name!r} is truncated: {decoded} of the {promised} frames its header promises decode")
    if not selected:
        raise BadRequest(f"start: {frame_range.start} is past the video's last frame (it has {decoded} frames)")
    frames = np.memmap(os.path.join(workdir, "frames.rgb"), dtype=np.uint8, mode="r", shape=(len(selected), *shape))

    def read(i: int) -> np.ndarray:
        return np.array(frames[i])  # a copy: the caller may keep it past close(), which deletes the file

    return VideoFrames(source, read, selected, shape[0], shape[1], time.perf_counter() - started, workdir)


def _container_magic(path: str) -> str | None:
    """The container a file's first bytes announce (mp4/mov, Matroska/WebM, AVI), or None."""
    with open(path, "rb") as f:
        head = f.read(12)
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide"):
        return "an mp4/mov file"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "a Matroska/WebM file"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "an AVI file"
    return None


def _reason(err: Exception, path: str) -> str:
    """FFmpeg's message without its errno and without the temp path (which says nothing to a client)."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    text = re.sub(r"\[Errno -?\d+\]\s*", "", text).replace(f": '{path}'", "").replace(path, "<file>")
    return text[:200]


# --- clips of registered datasets ---

_datasets: dict[str, object] = {}
_datasets_lock = threading.Lock()


def _dataset(cfg: ModelAppConfig, name: str):
    """A registered dataset, loaded once per process (404 naming the known ones when unknown)."""
    if name not in cfg.datasets:
        known = ", ".join(sorted(cfg.datasets)) or "none"
        raise NotFound(f"video.dataset: unknown dataset {name!r}; registered datasets: {known}")
    from interrvos.data.mevis import load_dataset

    root = cfg.datasets[name]
    with _datasets_lock:
        if root not in _datasets:
            _datasets[root] = load_dataset(root)
        return _datasets[root]


def _clip(cfg: ModelAppConfig, dataset: str, clip: str):
    from interrvos.model.predict import DatasetFrames

    ds = _dataset(cfg, dataset)
    if clip not in ds.videos:
        raise NotFound(f"video.clip: dataset {dataset!r} has no clip {clip!r}")
    return DatasetFrames(ds, clip)


def frames_from_clip(dataset: str, clip: str, frame_range: FrameRange, cfg: ModelAppConfig) -> VideoFrames:
    """A dataset clip, read lazily (JPEG frames on demand, as `interrvos predict` reads them)."""
    started = time.perf_counter()
    source = _clip(cfg, dataset, clip)
    indices = frame_range.select(len(source), cfg.limits)
    height, width = source[indices[0]].shape[:2]
    return VideoFrames(f"clip:{dataset}/{clip}", lambda i: source[indices[i]], indices, height, width,
                       time.perf_counter() - started)  # fmt: skip


def list_clips(cfg: ModelAppConfig) -> list[dict]:
    """Every clip of every registered dataset: {"dataset", "clip", "frames", "expressions": [text...]}."""
    out = []
    for name in sorted(cfg.datasets):
        ds = _dataset(cfg, name)
        for vid, entry in ds.videos.items():
            out.append({"dataset": name, "clip": vid, "frames": len(entry.frames),
                        "expressions": [e.exp for e in entry.expressions.values()]})  # fmt: skip
    return out


def clip_frame(cfg: ModelAppConfig, dataset: str, clip: str, index: int) -> np.ndarray:
    source = _clip(cfg, dataset, clip)
    if not 0 <= index < len(source):
        raise NotFound(f"frame {index}: clip {dataset}/{clip} has {len(source)} frames (0..{len(source) - 1})")
    return source[index]


def clip_frame_jpeg(cfg: ModelAppConfig, dataset: str, clip: str, index: int, quality: int = 85) -> bytes:
    from interrvos.data.video import encode_jpeg

    return encode_jpeg(clip_frame(cfg, dataset, clip, index), quality)


def open_video(request, cfg: ModelAppConfig, upload: Upload | None = None) -> VideoFrames:
    """The frames a SegmentRequest / CompareRequest names (request.video, or the upload when it is null)."""
    from interrvos.serving.requests import ClipVideo, PathVideo, check_video_given

    check_video_given(request, upload is not None)
    frame_range = FrameRange.of(request)
    if upload is not None:
        return frames_from_upload(upload, frame_range, cfg)
    if isinstance(request.video, PathVideo):
        return frames_from_path(request.video.path, frame_range, cfg)
    if isinstance(request.video, ClipVideo):
        return frames_from_clip(request.video.dataset, request.video.clip, frame_range, cfg)
    raise BadRequest("video: missing")
