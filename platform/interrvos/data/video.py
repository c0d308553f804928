"""Frame-indexed video decoding (decord, PyAV as fallback) and writing (PyAV mp4, OpenCV JPEG).

Frames are RGB uint8 arrays of shape (H, W, 3). Every failure to read a video becomes a
VideoError naming the file and the reason; pipelines turn it into an error record.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from interrvos.errors import VideoError


@dataclass(frozen=True)
class VideoInfo:
    path: str
    num_frames: int
    fps: float
    width: int
    height: int


def _clean(err: Exception) -> str:
    """decord errors carry C++ log prefixes ('[12:00:00] /src/x.cc:218: '); keep the message."""
    text = re.sub(r"\[\d\d:\d\d:\d\d\] \S+:\d+: ", "", str(err)).strip()
    return text.splitlines()[0][:300] if text else type(err).__name__


def _check_file(path: str) -> None:
    if not os.path.exists(path):
        raise VideoError(path, "file does not exist")
    if os.path.isdir(path):
        raise VideoError(path, "is a directory, not a video file")
    if os.path.getsize(path) == 0:
        raise VideoError(path, "file is empty (0 bytes)")


class _DecordBackend:
    name = "decord"

    def __init__(self, path: str):
        import decord

        try:
            self._vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
            first = self._vr[0].shape if len(self._vr) else None
        except Exception as e:  # decord raises DECORDError / RuntimeError with C++ traces
            raise VideoError(path, f"cannot open with decord: {_clean(e)}") from None
        if not first:
            raise VideoError(path, "no decodable video frames")
        self.num_frames = len(self._vr)
        self.fps = float(self._vr.get_avg_fps())
        self.height, self.width = int(first[0]), int(first[1])

    def get(self, indices: Sequence[int]) -> np.ndarray:
        return self._vr.get_batch(list(indices)).asnumpy()

    def close(self) -> None:
        del self._vr


class _PyAVBackend:
    """Sequential decode with PyAV; random access by decoding from the start (fallback only)."""

    name = "pyav"

    def __init__(self, path: str):
        import av

        self.path = path
        try:
            with av.open(path) as c:
                if not c.streams.video:
                    raise VideoError(path, "container has no video stream")
                s = c.streams.video[0]
                self.fps = float(s.average_rate or s.guessed_rate or 0) or 25.0
                self.width, self.height = s.codec_context.width, s.codec_context.height
                self.num_frames = s.frames or sum(1 for _ in c.decode(s))
        except VideoError:
            raise
        except Exception as e:
            raise VideoError(path, f"cannot open with PyAV: {_clean(e)}") from None
        if self.num_frames == 0:
            raise VideoError(path, "no decodable video frames")

    def get(self, indices: Sequence[int]) -> np.ndarray:
        import av

        wanted = sorted(set(indices))
        found: dict[int, np.ndarray] = {}
        with av.open(self.path) as c:
            for i, frame in enumerate(c.decode(video=0)):
                if i in wanted:
                    found[i] = frame.to_ndarray(format="rgb24")
                if i >= wanted[-1]:
                    break
        return np.stack([found[i] for i in indices])

    def close(self) -> None:
        pass


class VideoReader:
    """Random access to a video's frames by index. `backend`: auto (decord, else PyAV), decord, pyav."""

    def __init__(self, path: str | os.PathLike, backend: str = "auto"):
        self.path = str(path)
        _check_file(self.path)
        if backend not in ("auto", "decord", "pyav"):
            raise ValueError(f"unknown video backend {backend!r}: use auto, decord or pyav")
        try:
            self._b = _PyAVBackend(self.path) if backend == "pyav" else _DecordBackend(self.path)
        except (VideoError, ImportError) as first:
            if backend != "auto":
                raise
            try:
                self._b = _PyAVBackend(self.path)
            except VideoError as second:
                raise VideoError(self.path, f"not a readable video ({first.reason if isinstance(first, VideoError) else first}; "
                                            f"{second.reason})") from None
        self.info = VideoInfo(self.path, self._b.num_frames, self._b.fps, self._b.width, self._b.height)

    @property
    def backend(self) -> str:
        return self._b.name

    def __len__(self) -> int:
        return self.info.num_frames

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        """Frames at `indices` as (N, H, W, 3) uint8 RGB."""
        bad = [i for i in indices if not 0 <= i < self.info.num_frames]
        if bad:
            raise IndexError(f"{self.path}: frame indices {bad[:5]} outside 0..{self.info.num_frames - 1}")
        try:
            return self._b.get(indices)
        except Exception as e:
            raise VideoError(self.path, f"decoding frames {indices[0]}..{indices[-1]} failed "
                                        f"(truncated or corrupt?): {_clean(e)}") from None

    def iter_frames(self, start: int, end: int, chunk: int = 32) -> Iterator[np.ndarray]:
        """Frames start..end-1 in order, decoded `chunk` at a time (bounded memory)."""
        for lo in range(start, end, chunk):
            yield from self.get_frames(list(range(lo, min(lo + chunk, end))))

    def close(self) -> None:
        self._b.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def probe_video(path: str | os.PathLike) -> VideoInfo:
    with VideoReader(path) as r:
        return r.info


class Mp4Writer:
    """Streams RGB frames into an h264 mp4 with PyAV; written to a temp name and renamed on close."""

    def __init__(self, path: str | os.PathLike, fps: float, width: int, height: int, crf: int = 18):
        import av

        if width % 2 or height % 2:
            raise ValueError(f"h264 yuv420p needs even frame sizes, got {width}x{height}")
        self.path = str(path)
        self._tmp = f"{self.path}.tmp-{os.getpid()}.mp4"
        self._container = av.open(self._tmp, mode="w")
        rate = Fraction(fps).limit_denominator(1001)
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = {"crf": str(crf), "preset": "veryfast"}
        self._av = av

    def write(self, frame: np.ndarray) -> None:
        vf = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        for packet in self._stream.encode(vf):
            self._container.mux(packet)

    def close(self) -> None:
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        os.replace(self._tmp, self.path)

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, exc_type, *_) -> None:
        if exc_type is None:
            self.close()
        else:
            self._container.close()
            if os.path.exists(self._tmp):
                os.remove(self._tmp)


def write_mp4(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float, crf: int = 18) -> int:
    """Write RGB frames as an h264 mp4; returns the number of frames written."""
    it = iter(frames)
    first = next(it)
    h, w = first.shape[:2]
    n = 0
    with Mp4Writer(path, fps, w, h, crf=crf) as writer:
        for frame in _chain(first, it):
            writer.write(frame)
            n += 1
    return n


def _chain(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest


def encode_jpeg(frame: np.ndarray, quality: int = 90) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file (JPEG/PNG) as (H, W, 3) RGB uint8."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise VideoError(str(path), "cannot read image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
