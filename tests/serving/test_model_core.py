"""The model app's request handling without Serve: auth, request parsing, video input (uploads written
with PyAV, paths confined to roots, dataset clips), the checkpoint catalog, segmentation answers and
streams (equal to `segment_video` and `interrvos predict`), cancellation, and the A/B comparison."""

from __future__ import annotations

import base64
import json
import os
import shutil

import cv2
import numpy as np
import pytest

from interrvos.data.rle import decode_rle, encode_mask
from interrvos.serving.config import AuthSettings, Limits, ModelAppConfig
from interrvos.serving.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RequestTimeout,
    Unauthorized,
    UnsupportedMediaType,
)

BOTH = "It is [SEG_ACT] and [SEG_TAR]."
ACTOR_ONLY = "It is [SEG_ACT]."
UNI = "red square pushing the blue disc"


@pytest.fixture(autouse=True)
def one_torch_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --- fixtures: a tiny dataset, two identical tiny checkpoints, real video files ---


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    """One synthetic clip of 6 frames (48x64) with a unidirectional and a single-object expression."""
    from interrvos.data.mevis import write_dataset, write_frame
    from interrvos.data.records import Expression, VideoEntry
    from interrvos.model.synthetic import synthetic_clip

    root = tmp_path_factory.mktemp("core") / "ds"
    clip, vid = synthetic_clip(6, 48, 64, seed=0), "vid0"
    names = [f"{i:05d}" for i in range(6)]
    for name, frame in zip(names, clip.frames, strict=True):
        write_frame(str(root), vid, name, frame)
    masks = {f"{vid}:0": [encode_mask(m) for m in clip.actor], f"{vid}:1": [encode_mask(m) for m in clip.target]}
    uni = Expression(exp=UNI, caption_type="interaction", obj_id=["0", "1"], anno_id=[f"{vid}:0", f"{vid}:1"],
                     interaction="unidirectional", actor_ids=["0"], target_ids=["1"], actor_anno_id=[f"{vid}:0"],
                     target_anno_id=[f"{vid}:1"])  # fmt: skip
    solo = Expression(exp="the blue disc", caption_type="single_all", obj_id=["1"], anno_id=[f"{vid}:1"])
    entry = VideoEntry(vid_id=vid, frames=names, expressions={"0": uni, "1": solo},
                       objects={"0": {"category": "square", "anno_id": f"{vid}:0"},
                                "1": {"category": "disc", "anno_id": f"{vid}:1"}})  # fmt: skip
    write_dataset(str(root), {vid: entry}, masks)
    return root


@pytest.fixture(scope="module")
def checkpoints_root(tmp_path_factory):
    """`a` and `b`: the same tiny checkpoint twice (b a byte copy), and a folder that is not one."""
    from interrvos.model.checkpoint import save_checkpoint
    from interrvos.model.reviosa import build_model

    root = tmp_path_factory.mktemp("core") / "checkpoints"
    save_checkpoint(build_model("tiny", ["inference.num_frames=2"]), str(root / "a"))
    shutil.copytree(root / "a", root / "b")
    (root / "notes").mkdir()
    (root / "notes" / "readme.txt").write_text("not a checkpoint")
    return root


@pytest.fixture(scope="module")
def cfg(tmp_path_factory, checkpoints_root, dataset_dir):
    base = tmp_path_factory.mktemp("core")
    (base / "videos").mkdir()
    return ModelAppConfig(checkpoints_root=str(checkpoints_root), datasets={"synth": str(dataset_dir)},
                          video_roots=[str(base / "videos")], upload_dir=str(base / "uploads"), device="cpu",
                          dtype="float32", limits=Limits(max_frames=50, max_upload_mb=4))  # fmt: skip


@pytest.fixture(scope="module")
def loaded(cfg):
    """(model, info) of checkpoint a, loaded as a replica loads it."""
    from interrvos.serving.checkpoints import CheckpointCatalog

    return CheckpointCatalog(cfg.checkpoints_root).load("a", cfg.device, cfg.dtype)


def _frames(n=8, h=48, w=64, noise=False):
    from interrvos.model.synthetic import synthetic_clip

    if noise:  # incompressible: every frame is a sizeable part of the file, so a cut lands mid-stream
        rng = np.random.default_rng(0)
        return [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for _ in range(n)]
    return synthetic_clip(n, h, w, seed=4).frames


def _write_faststart_mp4(path, frames, fps=10):
    """An mp4 whose index (moov) comes first, as streaming-friendly encoders write it."""
    import av

    with av.open(str(path), "w", options={"movflags": "faststart"}) as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def _decoded(path):
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


@pytest.fixture(scope="module")
def mp4(tmp_path_factory):
    from interrvos.data.video import write_mp4

    path = tmp_path_factory.mktemp("core") / "clip.mp4"
    write_mp4(path, _frames(8), fps=10)
    return path


def _request(limits=None, **body):
    from interrvos.serving.requests import parse_segment_request

    body.setdefault("expressions", [UNI])
    return parse_segment_request(json.dumps(body), limits or Limits(), has_upload="video" not in body)


# --- auth ---


def test_api_key_is_required_only_when_configured_and_never_echoed(monkeypatch):
    from interrvos.serving.auth import api_key, check_api_key

    settings = AuthSettings(api_key_env="INTERRVOS_TEST_KEY")
    monkeypatch.delenv("INTERRVOS_TEST_KEY", raising=False)
    check_api_key(None, settings)  # no key configured: open
    monkeypatch.setenv("INTERRVOS_TEST_KEY", "")
    assert api_key(settings) is None
    check_api_key(None, settings)
    monkeypatch.setenv("INTERRVOS_TEST_KEY", "s3cret-κey")
    for header in (None, "", "Basic czNjcmV0", "Bearer "):
        with pytest.raises(Unauthorized) as err:
            check_api_key(header, settings)
        assert err.value.status == 401 and err.value.headers["WWW-Authenticate"] == "Bearer"
    for wrong in ("Bearer nope", "Bearer s3cret-κey2", "Bearer ümlaut"):
        with pytest.raises(Forbidden) as err:
            check_api_key(wrong, settings)
        assert err.value.status == 403 and "s3cret" not in json.dumps(err.value.body())
    check_api_key("Bearer s3cret-κey", settings)
    check_api_key("bearer  s3cret-κey ", settings)


# --- requests ---


def test_a_segment_request_parses_with_defaults_and_checks_each_field():
    from interrvos.serving.requests import ClipVideo, PathVideo

    r = _request(video={"dataset": "synth", "clip": "vid0"}, expressions=["  the   dog "])
    assert isinstance(r.video, ClipVideo) and r.expressions == ["the dog"]
    assert (r.start, r.end, r.stride, r.output, r.checkpoint, r.num_frames) == (0, None, 1, "rle", None, None)
    assert isinstance(_request(video={"path": "a.mp4"}).video, PathVideo)
    cases = [
        ("start", {"start": -1}), ("stride", {"stride": 0}), ("end", {"start": 5, "end": 3}),
        ("expressions", {"expressions": []}), ("expressions", {"expressions": ["ok", "  "]}),
        ("video", {"video": {"path": "a", "clip": "b"}}), ("output", {"output": "png"}),
        ("colour", {"colour": "red"}), ("force_answers", {"force_answers": [BOTH, BOTH]}),
        ("num_frames", {"num_frames": 0}),
    ]  # fmt: skip
    for field, body in cases:
        body = {"video": {"path": "a.mp4"}, **body}
        with pytest.raises(BadRequest, match=field) as err:
            _request(**body)
        assert any(field in p["field"] or field in p["message"] for p in err.value.extra["problems"])


def test_malformed_bodies_and_limits_are_named():
    from interrvos.serving.requests import (
        CompareRequest,
        parse_compare_request,
        parse_multipart_request,
        parse_segment_request,
    )

    limits = Limits(max_expressions=2)
    for body, message in ((b"{not json", "malformed JSON at line 1 column 2"), (b"", "empty"),
                          (b"[1, 2]", "JSON object"), (b"\xff\xfe", "UTF-8")):  # fmt: skip
        with pytest.raises(BadRequest, match=message):
            parse_segment_request(body, limits)
    with pytest.raises(PayloadTooLarge, match="limits.max_expressions is 2"):
        parse_segment_request(json.dumps({"video": {"path": "a"}, "expressions": ["a", "b", "c"]}), limits)
    with pytest.raises(BadRequest, match="video: missing"):
        parse_segment_request(json.dumps({"expressions": ["a"]}), limits)
    with pytest.raises(BadRequest, match="'request' part"):
        parse_multipart_request(None, True, CompareRequest, limits)
    with pytest.raises(BadRequest, match="not both"):
        parse_multipart_request(json.dumps({"video": {"path": "a"}, "expressions": ["a"], "checkpoints": ["x", "y"]}),
                                True, CompareRequest, limits)  # fmt: skip
    compare = parse_multipart_request(json.dumps({"expressions": ["a"], "checkpoints": ["x", "y"], "stride": 2}),
                                      True, CompareRequest, limits)  # fmt: skip
    one = compare.for_checkpoint("y")
    assert one.checkpoint == "y" and one.stride == 2 and one.expressions == ["a"]
    with pytest.raises(BadRequest, match="checkpoints"):
        parse_compare_request(json.dumps({"video": {"path": "a"}, "expressions": ["a"], "checkpoints": ["x"]}), limits)


# --- video input ---


def test_an_uploaded_mp4_is_decoded_exactly_and_its_temp_folder_removed(cfg, mp4):
    from interrvos.serving.video_input import FrameRange, Upload, frames_from_upload

    data = mp4.read_bytes()
    reference = _decoded(mp4)
    with frames_from_upload(Upload(data, "../../my clip.mp4", "video/mp4"), FrameRange(), cfg) as frames:
        assert len(frames) == 8 and (frames.height, frames.width) == (48, 64)
        assert frames.source == "upload:my_clip.mp4" and frames.frame_indices == list(range(8))
        assert all(np.array_equal(frames[i], reference[i]) for i in range(8)) and frames[3].dtype == np.uint8
        workdir = frames.workdir
        assert os.path.dirname(workdir) == cfg.upload_dir and os.path.isdir(workdir)
        assert os.listdir(workdir) == ["frames.rgb"]  # the uploaded bytes are gone once decoded
        with pytest.raises(IndexError):
            frames[8]
    assert not os.path.exists(workdir)
    with frames_from_upload(Upload(data, None, "application/octet-stream"), FrameRange(2, 7, 2), cfg) as frames:
        assert frames.frame_indices == [2, 4, 6] and frames.metadata()["frames"] == 3
        assert all(np.array_equal(frames[k], reference[i]) for k, i in enumerate([2, 4, 6]))
        assert frames.source == "upload:video"


def test_bad_uploads_are_4xx_naming_the_problem_and_leave_nothing_behind(cfg, mp4, tmp_path):
    from interrvos.serving.video_input import FrameRange, Upload, frames_from_upload

    noisy = tmp_path / "noisy.mp4"
    _write_faststart_mp4(noisy, _frames(20, noise=True))
    cut_stream = noisy.read_bytes()[: int(noisy.stat().st_size * 0.7)]
    import av

    with av.open(str(noisy)) as c:  # a cut between two frames decodes quietly, only short of the header's count
        boundary = [p.pos for p in c.demux(video=0) if p.size][12]
    cut_between = noisy.read_bytes()[:boundary]
    cut_index = mp4.read_bytes()[: mp4.stat().st_size // 2]  # moov is at the end: the index is cut off
    cases = [
        (Upload(b"", "empty.mp4", "video/mp4"), BadRequest, "empty \\(0 bytes\\)"),
        (Upload(b"hello, not a video\n" * 20, "notes.txt", None), BadRequest, "'notes.txt' is not a video"),
        (Upload(cut_stream, "cut.mp4", "video/mp4"), BadRequest, "'cut.mp4' is truncated or corrupt"),
        (Upload(cut_index, "half.mp4", "video/mp4"), BadRequest, "'half.mp4' is truncated"),
        (Upload(cut_between, "c.mp4", "video/mp4"), BadRequest, "'c.mp4' is truncated: 12 of the 20 frames its header"),
        (Upload(mp4.read_bytes(), "a.txt", "text/plain"), UnsupportedMediaType, "'text/plain' is not a video"),
        (Upload(b"\0" * (5 << 20), "big.mp4", "video/mp4"), PayloadTooLarge, "limits.max_upload_mb is 4"),
    ]
    for upload, error, message in cases:
        with pytest.raises(error, match=message):
            frames_from_upload(upload, FrameRange(), cfg)
    with pytest.raises(PayloadTooLarge, match="selects 8 frames and limits.max_frames is 5"):
        frames_from_upload(Upload(mp4.read_bytes()), FrameRange(),
                           cfg.model_copy(update={"limits": Limits(max_frames=5)}))  # fmt: skip
    with pytest.raises(BadRequest, match="start: 30 is past the video's last frame"):
        frames_from_upload(Upload(mp4.read_bytes()), FrameRange(start=30), cfg)
    assert os.listdir(cfg.upload_dir) == []
    for kwargs, field in (({"start": -1}, "start"), ({"stride": 0}, "stride"), ({"start": 4, "end": 4}, "end")):
        with pytest.raises(BadRequest, match=field):
            FrameRange(**kwargs)


def test_paths_are_confined_to_the_video_roots(cfg, mp4, tmp_path):
    from interrvos.serving.video_input import FrameRange, frames_from_path, resolve_video_path

    root = cfg.video_roots[0]
    os.makedirs(os.path.join(root, "sub"), exist_ok=True)
    shutil.copy(mp4, os.path.join(root, "sub", "clip.mp4"))
    outside = tmp_path / "secret.mp4"
    shutil.copy(mp4, outside)
    link = os.path.join(root, "link.mp4")
    if not os.path.lexists(link):
        os.symlink(outside, link)
    inside = os.path.realpath(os.path.join(root, "sub", "clip.mp4"))
    assert resolve_video_path("sub/clip.mp4", cfg.video_roots) == inside
    assert resolve_video_path(inside, cfg.video_roots) == inside
    assert resolve_video_path("sub/../sub/clip.mp4", cfg.video_roots) == inside
    for escape in ("../secret.mp4", f"sub/../../{os.path.basename(tmp_path)}/secret.mp4", str(outside), "link.mp4"):
        with pytest.raises(Forbidden, match="outside the configured video roots"):
            resolve_video_path(escape, cfg.video_roots)
    with pytest.raises(NotFound, match="no file at 'sub/missing.mp4'"):
        resolve_video_path("sub/missing.mp4", cfg.video_roots)
    with pytest.raises(BadRequest, match="not a file"):
        resolve_video_path("sub", cfg.video_roots)
    with pytest.raises(Forbidden, match="no video_roots"):
        resolve_video_path("sub/clip.mp4", [])
    with frames_from_path("sub/clip.mp4", FrameRange(end=3), cfg) as frames:
        assert frames.source == "path:sub/clip.mp4" and frames.frame_indices == [0, 1, 2]
        assert np.array_equal(frames[2], _decoded(mp4)[2])


def test_dataset_clips_are_listed_and_read_by_id(cfg, dataset_dir):
    from interrvos.data.mevis import load_dataset
    from interrvos.serving.video_input import FrameRange, clip_frame, clip_frame_jpeg, frames_from_clip, list_clips

    assert list_clips(cfg) == [{"dataset": "synth", "clip": "vid0", "frames": 6, "expressions": [UNI, "the blue disc"]}]
    ds = load_dataset(str(dataset_dir))
    frames = frames_from_clip("synth", "vid0", FrameRange(1, None, 2), cfg)
    assert frames.frame_indices == [1, 3, 5] and frames.source == "clip:synth/vid0"
    assert (frames.height, frames.width) == (48, 64)
    assert np.array_equal(frames[1], ds.read_frame("vid0", "00003"))
    jpeg = cv2.imdecode(np.frombuffer(clip_frame_jpeg(cfg, "synth", "vid0", 2), np.uint8), cv2.IMREAD_COLOR)
    assert jpeg.shape == (48, 64, 3) and clip_frame(cfg, "synth", "vid0", 2).shape == (48, 64, 3)
    with pytest.raises(NotFound, match="unknown dataset 'nope'; registered datasets: synth"):
        frames_from_clip("nope", "vid0", FrameRange(), cfg)
    with pytest.raises(NotFound, match="no clip 'vid9'"):
        frames_from_clip("synth", "vid9", FrameRange(), cfg)
    with pytest.raises(NotFound, match="has 6 frames"):
        clip_frame(cfg, "synth", "vid0", 6)
    with pytest.raises(PayloadTooLarge, match="limits.max_frames is 2"):
        frames_from_clip("synth", "vid0", FrameRange(), cfg.model_copy(update={"limits": Limits(max_frames=2)}))


# --- checkpoints ---


def test_the_catalog_lists_checkpoints_with_stable_content_hashes(cfg, checkpoints_root, tmp_path):
    from interrvos.serving.checkpoints import CheckpointCatalog, content_hash

    catalog = CheckpointCatalog(cfg.checkpoints_root)
    models = catalog.list()
    assert [m.id for m in models] == ["a", "b"] and "notes" in catalog.problems
    a, b = models
    assert (a.name, a.mode, a.kind, a.config["name"]) == ("tiny", "joint", "trainable", "tiny")
    assert a.config["inference"]["num_frames"] == 2 and a.path == str(checkpoints_root / "a")
    assert a.content_hash == b.content_hash == content_hash(str(checkpoints_root / "a")) and len(a.content_hash) == 64
    assert a.provenance() == {"id": "a", "content_hash": a.content_hash, "config_name": "tiny", "mode": "joint"}
    with pytest.raises(NotFound, match="unknown checkpoint 'zz'; known checkpoints: a, b") as err:
        catalog.get("zz")
    assert err.value.extra["known"] == ["a", "b"]
    with pytest.raises(NotFound, match="'notes' \\(.*checkpoint.json is missing\\)"):
        catalog.get("notes")
    # a change to any file gives a new hash (the cache keys on every file's size and mtime)
    copy = tmp_path / "c"
    shutil.copytree(checkpoints_root / "a", copy)
    before = content_hash(str(copy))
    assert before == a.content_hash
    info = json.loads((copy / "checkpoint.json").read_text())
    (copy / "checkpoint.json").write_text(json.dumps({**info, "note": "retrained"}, indent=2))
    assert content_hash(str(copy)) != before
    assert CheckpointCatalog(str(copy)).ids() == ["c"]  # a root that is itself a checkpoint


# --- segmentation ---


def test_run_segment_equals_segment_video_on_the_same_frames(cfg, loaded):
    from interrvos.model.inference import segment_video
    from interrvos.serving.segment import run_segment
    from interrvos.serving.video_input import open_video

    model, info = loaded
    request = _request(video={"dataset": "synth", "clip": "vid0"}, start=1, stride=2,
                       expressions=[UNI, "the blue disc"], force_answers=[BOTH, ACTOR_ONLY])  # fmt: skip
    with open_video(request, cfg) as frames:
        answer = run_segment(model, info, frames, request)
        expected = segment_video(model, [frames[i] for i in range(len(frames))], request.expressions,
                                 answers=request.force_answers)  # fmt: skip
    assert answer["checkpoint"] == info.provenance()
    assert answer["video"] == {"source": "clip:synth/vid0", "frames": 3, "height": 48, "width": 64,
                               "frame_indices": [1, 3, 5]}  # fmt: skip
    assert answer["mllm_frames"] == [0, 1] and "frames" not in answer
    uni, solo = answer["expressions"]
    assert (uni["expression"], uni["answers"], solo["answers"]) == (UNI, [BOTH], [ACTOR_ONLY])
    assert uni["actor"] == expected[0].actor and uni["target"] == expected[0].target and len(uni["target"]) == 3
    assert solo["actor"] == expected[1].actor and solo["target"] is None
    assert any(decode_rle(r).any() for r in uni["actor"] + uni["target"])  # something was segmented
    # each role gets its own prompt's masks: one expression answered with and without [SEG_TAR] has the same
    # actor prompt (causal: the same text up to [SEG_ACT]), so the same actor masks; the target's differ
    twice = _request(video={"dataset": "synth", "clip": "vid0"}, end=3, expressions=[UNI, UNI],
                     force_answers=[BOTH, ACTOR_ONLY])  # fmt: skip
    with open_video(twice, cfg) as frames:
        both, actor_only = run_segment(model, info, frames, twice)["expressions"]
    assert both["actor"] == actor_only["actor"] and both["target"] != both["actor"] and actor_only["target"] is None
    t = answer["timings"]
    assert set(t) == {"decode_s", "mllm_s", "encoder_s", "propagation_s", "total_s"}
    assert t["mllm_s"] > 0 and t["encoder_s"] > 0 and t["propagation_s"] > 0
    assert t["total_s"] >= t["mllm_s"] + t["encoder_s"] + t["propagation_s"]
    # the request's num_frames / sampling decide what the MLLM sees
    wider = _request(video={"dataset": "synth", "clip": "vid0"}, num_frames=3, sampling="uniform")
    with open_video(wider, cfg) as frames:
        assert run_segment(model, info, frames, wider)["mllm_frames"] == [0, 2, 5]


def test_served_masks_equal_interrvos_predict_on_the_same_clip(cfg, loaded, checkpoints_root, dataset_dir, tmp_path):
    from interrvos.model.predict import PredictWorker, part_name
    from interrvos.serving.segment import run_segment
    from interrvos.serving.video_input import open_video

    worker = PredictWorker(str(checkpoints_root / "a"), str(dataset_dir), str(tmp_path / "parts"), None, "cpu",
                           "float32")  # fmt: skip
    worker({"video": np.array(["vid0", "vid0"]), "expression": np.array(["0", "1"]),
            "text": np.array([UNI, "the blue disc"])})  # fmt: skip
    request = _request(video={"dataset": "synth", "clip": "vid0"}, expressions=[UNI, "the blue disc"])
    with open_video(request, cfg) as frames:
        answer = run_segment(loaded[0], loaded[1], frames, request)
    for exp_id, served in zip(("0", "1"), answer["expressions"], strict=True):
        line = json.loads((tmp_path / "parts" / part_name("vid0", exp_id)).read_text())
        assert served["actor"] == line["actor"] and served["target"] == line["target"]
        assert " | ".join(served["answers"]) == line["answer"] and len(served["actor"]) == 6


def test_iter_segment_streams_start_frames_end_with_the_same_masks(cfg, loaded):
    from interrvos.serving.segment import frame_data_url, iter_segment, ndjson_line, run_segment
    from interrvos.serving.video_input import open_video

    model, info = loaded
    request = _request(video={"dataset": "synth", "clip": "vid0"}, start=1, end=5, expressions=[UNI, "the blue disc"],
                       force_answers=[BOTH, ACTOR_ONLY], output="rle+frames")  # fmt: skip
    with open_video(request, cfg) as frames:
        events = [json.loads(ndjson_line(e)) for e in iter_segment(model, info, frames, request)]
        answer = run_segment(model, info, frames, request)
        for t, e in enumerate(events[1:-1]):
            assert e["image"] == answer["frames"][t] == frame_data_url(frames[t])
    assert len({e["image"] for e in events[1:-1]}) == 4  # the frames move: each preview is its own
    assert [e["type"] for e in events] == ["start", "frame", "frame", "frame", "frame", "end"]
    start = events[0]
    assert start["checkpoint"]["id"] == "a" and start["mllm_frames"] == [0, 1]
    assert start["video"]["frame_indices"] == [1, 2, 3, 4]
    assert start["expressions"] == [
        {"expression": UNI, "answers": [BOTH], "has_target": True},
        {"expression": "the blue disc", "answers": [ACTOR_ONLY], "has_target": False},
    ]
    for t, e in enumerate(events[1:-1]):
        assert (e["index"], e["frame"]) == (t, t + 1)
        uni, solo = answer["expressions"]
        assert e["masks"] == [{"actor": uni["actor"][t], "target": uni["target"][t]},
                              {"actor": solo["actor"][t], "target": None}]  # fmt: skip
    assert set(events[-1]["timings"]) == set(answer["timings"])
    image = events[1]["image"]
    assert image.startswith("data:image/jpeg;base64,")
    decoded = cv2.imdecode(np.frombuffer(base64.b64decode(image.split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (48, 64, 3)


def test_a_bf16_replica_answers_as_segment_video_under_autocast_without_leaking_it(cfg):
    import torch

    from interrvos.model.inference import inference_context, segment_video
    from interrvos.serving.checkpoints import CheckpointCatalog
    from interrvos.serving.segment import iter_segment, run_segment

    model, info = CheckpointCatalog(cfg.checkpoints_root).load("a", "cpu", "bfloat16")
    assert next(model.parameters()).dtype == torch.bfloat16
    frames = _frames(5, 40, 56)
    request = _request(video={"path": "x"}, force_answers=[BOTH])
    answer = run_segment(model, info, frames, request)
    with inference_context("cpu", torch.bfloat16):
        (expected,) = segment_video(model, frames, [UNI], answers=[BOTH])
    (served,) = answer["expressions"]
    assert served["actor"] == expected.actor and served["target"] == expected.target
    for _ in iter_segment(model, info, frames, request):  # the caller's code between events runs without it
        assert not torch.is_autocast_enabled("cpu") and torch.is_grad_enabled()


def test_preview_frames_are_scaled_down_to_320_pixels_wide():
    from interrvos.serving.segment import frame_data_url

    frame = np.zeros((300, 640, 3), np.uint8)
    frame[:, 320:] = 255
    decoded = cv2.imdecode(np.frombuffer(base64.b64decode(frame_data_url(frame).split(",", 1)[1]), np.uint8), 1)
    assert decoded.shape == (150, 320, 3) and decoded[:, :150].max() < 20 and decoded[:, 170:].min() > 235


class _CountingFrames:
    """A FrameSource that records which frames were read (and can fail on one)."""

    def __init__(self, frames, fail_at=None):
        self.frames, self.fail_at, self.read = frames, fail_at, set()

    def __len__(self):
        return len(self.frames)

    def __getitem__(self, i):
        from interrvos.errors import VideoError

        if i == self.fail_at:
            raise VideoError("clip.mp4", f"frame {i} does not decode")
        self.read.add(i)
        return self.frames[i]


def test_cancelling_stops_the_work_between_frames(loaded):
    from interrvos.serving.segment import SegmentCancelled, iter_segment, run_segment

    model, info = loaded
    request = _request(video={"path": "x"}, force_answers=[BOTH])
    source = _CountingFrames(_frames(12))
    served, events = [], []
    for event in iter_segment(model, info, source, request, cancelled=lambda: len(served) >= 2):
        events.append(event)
        if event["type"] == "frame":
            served.append(event["index"])
    assert [e["type"] for e in events] == ["start", "frame", "frame"] and served == [0, 1]
    assert max(source.read) == 3  # SAM2 encodes 4 frames at a time: frames 4.. were never read
    with pytest.raises(SegmentCancelled, match="at frame 1 of 12"):
        calls = iter(range(100))
        run_segment(model, info, _CountingFrames(_frames(12)), request, cancelled=lambda: next(calls) >= 2)
    with pytest.raises(RequestTimeout, match="request_timeout_s before the model ran"):
        run_segment(model, info, source, request, deadline=0.0)
    with pytest.raises(RequestTimeout):  # before anything streamed: raised, so the caller can answer 408
        next(iter_segment(model, info, source, request, deadline=0.0))
    assert not model.training


def test_a_failure_after_the_stream_started_is_an_error_event(loaded):
    from interrvos.model.inference import iter_segment_video
    from interrvos.serving.segment import iter_segment

    model, info = loaded
    request = _request(video={"path": "x"}, force_answers=[BOTH])
    events = list(iter_segment(model, info, _CountingFrames(_frames(8), fail_at=5), request))
    assert [e["type"] for e in events] == ["start", "frame", "frame", "frame", "frame", "error"]
    assert events[-1] == {"type": "error", "status": 400, "detail": "the video cannot be read: frame 5 does not decode"}
    # a generator abandoned half-way still gives the model back in the mode it had
    model.train()
    try:
        steps = iter_segment_video(model, _frames(6), [UNI], answers=[BOTH])
        next(steps), next(steps)
        assert not model.training
        steps.close()
        assert model.training
    finally:
        model.eval()


def test_an_untrained_model_answers_empty_masks_without_a_target(cfg, loaded):
    from interrvos.serving.segment import run_segment
    from interrvos.serving.video_input import open_video

    request = _request(video={"dataset": "synth", "clip": "vid0"}, end=3, expressions=["anything at all"])
    with open_video(request, cfg) as frames:
        (expr,) = run_segment(loaded[0], loaded[1], frames, request)["expressions"]
    assert expr["target"] is None and len(expr["actor"]) == 3
    assert not any(decode_rle(r).any() for r in expr["actor"]) or "[SEG_ACT]" in expr["answers"][0]


# --- compare ---


def test_comparing_identical_checkpoints_gives_iou_one_everywhere(cfg, loaded):
    from interrvos.serving.checkpoints import CheckpointCatalog
    from interrvos.serving.requests import parse_compare_request
    from interrvos.serving.segment import run_compare
    from interrvos.serving.video_input import open_video

    model_b, info_b = CheckpointCatalog(cfg.checkpoints_root).load("b", "cpu", "float32")
    body = {"video": {"dataset": "synth", "clip": "vid0"}, "checkpoints": ["a", "b"],
            "expressions": [UNI, "the blue disc"], "force_answers": [BOTH, ACTOR_ONLY]}  # fmt: skip
    request = parse_compare_request(json.dumps(body), cfg.limits)
    with open_video(request, cfg) as frames:
        result = run_compare(loaded[0], loaded[1], model_b, info_b, frames, request)
    assert result["a"]["checkpoint"]["id"] == "a" and result["b"]["checkpoint"]["id"] == "b"
    uni, solo = result["iou"]
    assert uni["expression"] == UNI and uni["actor"] == [1.0] * 6 and uni["target"] == [1.0] * 6
    assert uni["mean_actor"] == uni["mean_target"] == 1.0
    assert solo["target"] is None and solo["mean_target"] is None and solo["mean_actor"] == 1.0


def test_mask_iou_per_frame_and_a_target_only_one_side_has():
    from interrvos.serving.segment import compare_answers, mask_iou

    empty, full = np.zeros((4, 6), np.uint8), np.ones((4, 6), np.uint8)
    left = full.copy()
    left[:, 3:] = 0
    e, f, h = encode_mask(empty), encode_mask(full), encode_mask(left)
    assert (mask_iou(e, e), mask_iou(f, f), mask_iou(f, h), mask_iou(e, f)) == (1.0, 1.0, 0.5, 0.0)
    with pytest.raises(ValueError, match="different sizes"):
        mask_iou(e, encode_mask(np.zeros((3, 3), np.uint8)))
    video = {"frame_indices": [0, 1]}
    a = {"video": video, "expressions": [{"expression": "x", "actor": [f, h], "target": None}]}
    b = {"video": video, "expressions": [{"expression": "x", "actor": [f, f], "target": [e, f]}]}
    (row,) = compare_answers(a, b)
    assert row["actor"] == [1.0, 0.5] and row["mean_actor"] == 0.75
    assert row["target"] == [1.0, 0.0] and row["mean_target"] == 0.5  # a's missing target counts as empty
    with pytest.raises(BadRequest, match="same expressions"):
        compare_answers(a, {"video": video, "expressions": [{"expression": "y", "actor": [f, f], "target": None}]})
