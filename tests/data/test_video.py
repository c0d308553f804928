"""Video decoding and writing on real files, and clear errors on broken ones."""

from __future__ import annotations

import numpy as np
import pytest

from interrvos.data.video import Mp4Writer, VideoReader, encode_jpeg, probe_video, read_image, write_mp4
from interrvos.errors import VideoError


def _ramp_frames(n: int, h: int = 48, w: int = 64) -> list[np.ndarray]:
    """Frames whose brightness encodes their index, so decoded order and identity can be checked."""
    return [np.full((h, w, 3), 10 + 12 * i, np.uint8) for i in range(n)]


@pytest.fixture(scope="module")
def ramp_video(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("vid") / "ramp.mp4")
    assert write_mp4(path, _ramp_frames(20), fps=12.5) == 20
    return path


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_written_mp4_decodes_frame_accurately(ramp_video, backend):
    with VideoReader(ramp_video, backend=backend) as r:
        assert (len(r), r.info.width, r.info.height) == (20, 64, 48)
        assert r.info.fps == pytest.approx(12.5, rel=1e-3)
        frames = r.get_frames([17, 3, 9])
        assert frames.shape == (3, 48, 64, 3) and frames.dtype == np.uint8
        assert [round((f.mean() - 10) / 12) for f in frames] == [17, 3, 9]


def test_iter_frames_yields_the_range_in_order(ramp_video):
    with VideoReader(ramp_video) as r:
        levels = [round((f.mean() - 10) / 12) for f in r.iter_frames(5, 19, chunk=4)]
    assert levels == list(range(5, 19))


def test_out_of_range_index_is_an_index_error(ramp_video):
    with VideoReader(ramp_video) as r, pytest.raises(IndexError, match="outside 0..19"):
        r.get_frames([20])


def test_real_videos_probe_and_decode(real_videos):
    for path in real_videos:
        info = probe_video(path)
        assert 150 <= info.num_frames <= 400 and info.fps > 20 and info.width >= 640
        with VideoReader(path) as r:
            last = r.get_frames([info.num_frames - 1])
        assert last.shape == (1, info.height, info.width, 3) and last.std() > 1  # a real picture


def test_both_backends_agree_on_a_real_video(real_videos):
    path = real_videos[0]
    with VideoReader(path, backend="decord") as a, VideoReader(path, backend="pyav") as b:
        assert len(a) == len(b)
        fa, fb = a.get_frames([0, 7]), b.get_frames([0, 7])
    assert np.abs(fa.astype(int) - fb.astype(int)).mean() < 3  # same frames (colour conversion may differ)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p, src: p.write_bytes(b""), "empty"),
        (lambda p, src: p.write_text("this is not a video\n"), "not a readable video"),
        (lambda p, src: p.write_bytes(np.random.default_rng(0).bytes(20000)), "not a readable video"),
        (lambda p, src: p.write_bytes(src.read_bytes()[:2000]), "not a readable video"),
    ],
    ids=["zero-length", "text", "random-bytes", "header-only"],
)
def test_broken_files_raise_video_error_naming_the_file(tmp_path, real_videos, make, reason):
    bad = tmp_path / "broken.mp4"
    make(bad, real_videos[0])
    with pytest.raises(VideoError, match=reason) as info:
        with VideoReader(bad) as r:
            r.get_frames(list(range(len(r))))
    assert info.value.path == str(bad) and str(bad) in str(info.value)


def test_truncated_video_fails_when_decoding_missing_frames(tmp_path, real_videos):
    bad = tmp_path / "truncated.mp4"
    data = real_videos[0].read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError, match="truncated or corrupt") as info:
        with VideoReader(bad) as r:
            for _ in r.iter_frames(0, len(r)):
                pass
    assert str(bad) in str(info.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(VideoError, match="does not exist"):
        VideoReader(tmp_path / "nope.mp4")
    with pytest.raises(VideoError, match="directory"):
        VideoReader(tmp_path)


def test_writer_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "partial.mp4"
    with pytest.raises(RuntimeError):
        with Mp4Writer(target, 10, 32, 32) as w:
            w.write(np.zeros((32, 32, 3), np.uint8))
            raise RuntimeError("producer failed")
    assert list(tmp_path.iterdir()) == []


def test_odd_sizes_are_rejected_with_a_reason(tmp_path):
    with pytest.raises(ValueError, match="even frame sizes"):
        Mp4Writer(tmp_path / "x.mp4", 10, 33, 32)


def test_jpeg_round_trip(tmp_path):
    frame = np.zeros((40, 60, 3), np.uint8)
    frame[:, :30] = (200, 30, 30)
    path = tmp_path / "f.jpg"
    path.write_bytes(encode_jpeg(frame, quality=95))
    back = read_image(path)
    assert back.shape == frame.shape and np.abs(back.astype(int) - frame).mean() < 4
