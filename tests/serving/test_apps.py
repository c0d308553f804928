"""Both Serve apps on the session's local Ray: real Serve, real HTTP on 127.0.0.1, tiny checkpoints.
Segment (JSON, upload, NDJSON stream), multiplexing with LRU eviction, compare, auth, bad input,
evaluation equal to `interrvos evaluate`, checkpoint evaluation through a DeploymentHandle, the
leaderboard, a replica killed by PID being replaced, and the web page in a real browser."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # browser_support.py (--import-mode=importlib adds nothing)
import browser_support as bs  # noqa: E402

pytestmark = pytest.mark.slow

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "web-page.png"

UNI = "red square pushing the blue disc"
SOLO = "the blue disc"
BOTH = "It is [SEG_ACT] and [SEG_TAR]."


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mp4(path, frames: list[np.ndarray], fps: int = 8) -> bytes:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path.read_bytes()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A 2-video dataset, two different tiny checkpoints under one root, a predictions file."""
    from interrvos.data.mevis import write_dataset, write_frame
    from interrvos.data.records import Expression, VideoEntry
    from interrvos.data.rle import encode_mask
    from interrvos.model.checkpoint import save_checkpoint
    from interrvos.model.reviosa import build_model
    from interrvos.model.synthetic import synthetic_clip

    root = tmp_path_factory.mktemp("apps")
    ds = root / "ds"
    videos, masks, clips = {}, {}, {}
    for v, n in enumerate((5, 6)):
        clip, vid = synthetic_clip(n, 48, 64, seed=v), f"vid{v}"
        clips[vid] = clip
        names = [f"{i:05d}" for i in range(n)]
        for name, frame in zip(names, clip.frames, strict=True):
            write_frame(str(ds), vid, name, frame)
        masks[f"{vid}:0"] = [encode_mask(m) for m in clip.actor]
        masks[f"{vid}:1"] = [encode_mask(m) for m in clip.target]
        uni = Expression(exp=UNI, caption_type="interaction", obj_id=["0", "1"], anno_id=[f"{vid}:0", f"{vid}:1"],
                         interaction="unidirectional", actor_ids=["0"], target_ids=["1"],
                         actor_anno_id=[f"{vid}:0"], target_anno_id=[f"{vid}:1"])  # fmt: skip
        solo = Expression(exp=SOLO, caption_type="single_all", obj_id=["1"], anno_id=[f"{vid}:1"])
        videos[vid] = VideoEntry(vid_id=vid, frames=names, expressions={"0": uni, "1": solo},
                                 objects={"0": {"category": "square", "anno_id": f"{vid}:0"},
                                          "1": {"category": "disc", "anno_id": f"{vid}:1"}})  # fmt: skip
    write_dataset(str(ds), videos, masks)
    ckpts = root / "checkpoints"
    save_checkpoint(build_model("tiny", ["inference.num_frames=2"]), str(ckpts / "tiny-a"))
    save_checkpoint(build_model("tiny", ["inference.num_frames=2", "seed=1"]), str(ckpts / "tiny-b"))
    video_dir = root / "videos"
    video_dir.mkdir()
    mp4 = _mp4(video_dir / "clip.mp4", clips["vid1"].frames)
    return {"root": root, "dataset": str(ds), "checkpoints": str(ckpts), "videos": str(video_dir), "mp4": mp4,
            "clips": clips}


@pytest.fixture(scope="module")
def apps(ray_cluster, world):
    """Serve on a free port with the model app (cap 1 model per replica) and the evaluation app."""
    from ray import serve

    from interrvos.serving.config import AuthSettings, EvaluateAppConfig, ModelAppConfig
    from interrvos.serving.evaluate_app import evaluation_deployment
    from interrvos.serving.model_app import model_deployment

    port = _free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    model_cfg = ModelAppConfig(
        checkpoints_root=world["checkpoints"], default_checkpoint="tiny-a", max_models_per_replica=1,
        datasets={"demo": world["dataset"]}, video_roots=[world["videos"]], device="cpu", dtype="float32",
        limits={"max_upload_mb": 1, "max_frames": 50, "max_expressions": 3, "request_timeout_s": 120},
        deployment={"num_replicas": 1, "num_cpus": 0.5, "max_ongoing_requests": 4, "health_check_period_s": 1},
    )  # fmt: skip
    eval_cfg = EvaluateAppConfig(datasets={"demo": world["dataset"]}, storage=str(world["root"] / "eval"),
                                 deployment={"num_replicas": 1, "num_cpus": 0.25})  # fmt: skip
    serve.run(model_deployment(model_cfg).bind(model_cfg.model_dump(mode="json")), name="model", route_prefix="/")
    serve.run(evaluation_deployment(eval_cfg).bind(eval_cfg.model_dump(mode="json")), name="evaluate",
              route_prefix="/eval")  # fmt: skip
    # The same app with an API key, for the auth tests (the key reaches only this app's replicas).
    auth_cfg = model_cfg.model_copy(update={"auth": AuthSettings(api_key_env="INTERRVOS_TEST_KEY")})
    serve.run(model_deployment(auth_cfg).options(name="AuthModelServer", ray_actor_options={
        "num_cpus": 0.25, "runtime_env": {"env_vars": {"INTERRVOS_TEST_KEY": "s3cret-key"}}}).bind(
        auth_cfg.model_dump(mode="json")), name="model_auth", route_prefix="/auth")  # fmt: skip
    yield f"http://127.0.0.1:{port}"
    serve.shutdown()


def _post(url, **kw):
    import requests

    return requests.post(url, timeout=120, **kw)


def _get(url, **kw):
    import requests

    return requests.get(url, timeout=60, **kw)


def test_models_lists_both_checkpoints_and_an_unknown_id_is_404(apps):
    r = _get(f"{apps}/v1/models")
    assert r.status_code == 200, r.text
    listing = r.json()
    assert listing["default"] == "tiny-a"
    ids = {m["id"]: m for m in listing["models"]}
    assert set(ids) == {"tiny-a", "tiny-b"}
    assert ids["tiny-a"]["content_hash"] != ids["tiny-b"]["content_hash"]
    assert ids["tiny-a"]["config"]["inference"]["num_frames"] == 2
    r = _post(f"{apps}/v1/segment", json={"checkpoint": "nope", "video": {"dataset": "demo", "clip": "vid0"},
                                          "expressions": [SOLO]})  # fmt: skip
    assert r.status_code == 404 and "nope" in r.json()["detail"]


def test_served_masks_equal_interrvos_predict(apps, world, tmp_path):
    from interrvos.model.config import PredictConfig
    from interrvos.model.predict import run_predict
    from interrvos.model.predictions_io import read_predictions

    out = str(tmp_path / "pred.jsonl")
    run_predict(PredictConfig(dataset=world["dataset"], checkpoint=f"{world['checkpoints']}/tiny-a", out=out,
                              device="cpu", dtype="float32"))  # fmt: skip
    predicted = read_predictions(out)
    r = _post(f"{apps}/v1/segment", json={"checkpoint": "tiny-a", "video": {"dataset": "demo", "clip": "vid1"},
                                          "expressions": [UNI, SOLO]})  # fmt: skip
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["checkpoint"]["id"] == "tiny-a" and answer["video"]["frames"] == 6
    for exp_id, served in zip(("0", "1"), answer["expressions"], strict=True):
        line = predicted[("vid1", exp_id)]
        assert served["actor"] == line["actor"] and served["target"] == line["target"]
    assert set(answer["timings"]) >= {"mllm_s", "encoder_s", "propagation_s", "total_s"}


def test_forced_answers_draw_masks_on_an_upload_and_stream_frame_by_frame(apps, world):
    request = {"expressions": [UNI, SOLO], "force_answers": [BOTH, "It is [SEG_ACT]."], "video": None}
    files = {"video": ("clip.mp4", world["mp4"], "video/mp4"), "request": (None, json.dumps(request))}
    whole = _post(f"{apps}/v1/segment", files=files)
    assert whole.status_code == 200, whole.text
    answer = whole.json()
    assert answer["video"]["source"].startswith("upload:") and answer["video"]["frames"] == 6
    assert answer["expressions"][0]["target"] is not None and answer["expressions"][1]["target"] is None
    streamed = _post(f"{apps}/v1/segment", files=files, headers={"Accept": "application/x-ndjson"}, stream=True)
    assert streamed.headers["content-type"].startswith("application/x-ndjson")
    events = [json.loads(line) for line in streamed.iter_lines() if line]
    assert [e["type"] for e in events] == ["start"] + ["frame"] * 6 + ["end"]
    assert [m["actor"] for m in events[1]["masks"]] == [e["actor"][0] for e in answer["expressions"]]


def test_multiplexing_loads_by_header_and_evicts_least_recently_used(apps):
    body = {"video": {"dataset": "demo", "clip": "vid0"}, "expressions": [SOLO]}
    assert _post(f"{apps}/v1/segment", json=body, headers={"serve_multiplexed_model_id": "tiny-b"}).json()[
        "checkpoint"]["id"] == "tiny-b"  # fmt: skip
    assert _get(f"{apps}/healthz").json()["loaded"] == ["tiny-b"]
    assert _post(f"{apps}/v1/segment", json={**body, "checkpoint": "tiny-a"}).json()["checkpoint"]["id"] == "tiny-a"
    assert _get(f"{apps}/healthz").json()["loaded"] == ["tiny-a"]  # the cap is 1: tiny-b was evicted


def test_compare_of_a_checkpoint_with_itself_is_iou_one(apps):
    body = {"video": {"dataset": "demo", "clip": "vid0"}, "expressions": [UNI], "force_answers": [BOTH]}
    same = _post(f"{apps}/v1/compare", json={**body, "checkpoints": ["tiny-a", "tiny-a"]}).json()
    assert same["iou"][0]["actor"] == [1.0] * 5 and same["iou"][0]["mean_target"] == 1.0
    other = _post(f"{apps}/v1/compare", json={**body, "checkpoints": ["tiny-a", "tiny-b"]})
    assert other.status_code == 200 and other.json()["b"]["checkpoint"]["id"] == "tiny-b"


def test_bad_requests_get_4xx_naming_the_problem_and_the_replica_stays_healthy(apps, world):
    good = {"video": {"dataset": "demo", "clip": "vid0"}, "expressions": [SOLO]}
    upload = {"request": (None, json.dumps({"expressions": [SOLO]}))}
    cases = [
        (dict(data=b"{not json", headers={"Content-Type": "application/json"}), 400, "JSON"),
        (dict(json={**good, "video": {"dataset": "nowhere", "clip": "vid0"}}), 404, "nowhere"),
        (dict(json={**good, "start": -1}), 400, "start"),
        (dict(json={**good, "expressions": [SOLO] * 4}), 413, "max_expressions"),
        (dict(json={**good, "video": {"path": "../../etc/passwd"}}), 403, "outside"),
        (dict(files={**upload, "video": ("x.mp4", b"", "video/mp4")}), 400, "empty"),
        (dict(files={**upload, "video": ("x.mp4", b"this is not a video" * 50, "video/mp4")}), 400, "video"),
        (dict(files={**upload, "video": ("x.mp4", world["mp4"][: len(world["mp4"]) // 3], "video/mp4")}), 400, ""),
        (dict(files={**upload, "video": ("x.txt", b"hello", "text/plain")}), 415, "text/plain"),
        (dict(files={**upload, "video": ("x.mp4", b"0" * (2 * 2**20), "video/mp4")}), 413, "max_upload_mb"),
        (dict(data="x", headers={"Content-Type": "text/plain"}), 415, "content type"),
    ]
    for kwargs, status, words in cases:
        r = _post(f"{apps}/v1/segment", **kwargs)
        assert r.status_code == status, (kwargs.get("json"), r.status_code, r.text)
        assert words.lower() in r.json()["detail"].lower(), r.text
    assert _post(f"{apps}/v1/segment", json=good).status_code == 200


def test_api_key_required_except_for_health_and_never_echoed(apps):
    body = {"video": {"dataset": "demo", "clip": "vid0"}, "expressions": [SOLO]}
    assert _get(f"{apps}/auth/healthz").status_code == 200
    missing = _get(f"{apps}/auth/v1/models")
    wrong = _post(f"{apps}/auth/v1/segment", json=body, headers={"Authorization": "Bearer not-the-key"})
    assert (missing.status_code, wrong.status_code) == (401, 403)
    assert "s3cret" not in missing.text + wrong.text
    ok = _post(f"{apps}/auth/v1/segment", json=body, headers={"Authorization": "Bearer s3cret-key"})
    assert ok.status_code == 200 and "s3cret" not in ok.text


def test_evaluation_of_a_file_equals_interrvos_evaluate_and_is_stored_once(apps, world, tmp_path):
    from interrvos.evaluate.baselines import BaselinePredictions
    from interrvos.evaluate.config import EvaluateConfig, OverlayConfig
    from interrvos.evaluate.predictions import prediction_record, write_predictions
    from interrvos.evaluate.run import run_evaluate
    from interrvos.data.mevis import load_dataset

    ds, source = load_dataset(world["dataset"]), BaselinePredictions("largest_object")
    records = [prediction_record(v, e, p.actor, p.target) for v, e, _ in ds.all_expressions()
               for p in [source.load(ds, v, e)]]  # fmt: skip
    path = tmp_path / "largest.jsonl"
    write_predictions(str(path), records)
    cli = run_evaluate(EvaluateConfig(dataset=world["dataset"], predictions=str(path), out=str(tmp_path / "ev"),
                                      executor="local", overlays=OverlayConfig(samples=0)))  # fmt: skip
    assert _get(f"{apps}/eval/v1/datasets").json()["datasets"][0]["expressions"] == 4
    form = {"dataset": (None, "demo"), "submitted_by": (None, "ci")}
    first = _post(f"{apps}/eval/v1/evaluate", files={**form, "file": ("largest.jsonl", path.read_bytes())}).json()
    assert first["cached"] is False
    assert first["settings"] == json.loads(json.dumps(cli["settings"]))
    again = _post(f"{apps}/eval/v1/evaluate", files={**form, "file": ("largest.jsonl", path.read_bytes())}).json()
    assert again["cached"] is True and again["id"] == first["id"]
    bad = _post(f"{apps}/eval/v1/evaluate", files={**form, "file": ("bad.jsonl", b'{"video": "ghost"}\n')})
    assert bad.status_code == 422 and bad.json()["problems"]
    board = _get(f"{apps}/eval/v1/leaderboard", params={"dataset": "demo"}).json()["rows"]
    assert [r["id"] for r in board].count(first["id"]) == 1 and board[0]["rank"] == 1
    assert _get(f"{apps}/eval/v1/leaderboard", params={"dataset": "ghost"}).status_code == 404


def test_checkpoint_evaluation_streams_expressions_through_the_model_app(apps):
    r = _post(f"{apps}/eval/v1/evaluate/checkpoint", json={"checkpoint": "tiny-b", "dataset": "demo"}, stream=True)
    assert r.status_code == 200
    events = [json.loads(line) for line in r.iter_lines() if line]
    assert [e["type"] for e in events] == ["expression"] * 4 + ["result"], events[-1]
    result = events[-1]
    assert result["checkpoint"] == "tiny-b" and result["checkpoint_hash"]
    streamed = {(e["video"], e["expression"]): e["JF"] for e in events[:-1]}
    final = {(e["video"], e["expression"]): e["JF"] for e in result["expressions"]}
    assert streamed == final


def test_a_replica_killed_by_pid_is_replaced_and_serving_resumes(apps):
    before = _get(f"{apps}/healthz").json()["pid"]
    os.kill(before, signal.SIGKILL)
    deadline, after = time.monotonic() + 90, None
    while time.monotonic() < deadline:
        try:
            r = _get(f"{apps}/healthz")
            if r.status_code == 200 and r.json()["pid"] != before:
                after = r.json()["pid"]
                break
        except Exception:  # noqa: BLE001 - the proxy may refuse while the replica restarts
            pass
        time.sleep(0.5)
    assert after is not None, "no new replica within 90 s"
    body = {"video": {"dataset": "demo", "clip": "vid0"}, "expressions": [SOLO]}
    assert _post(f"{apps}/v1/segment", json=body).status_code == 200


def test_web_page_and_static_files_are_served(apps):
    page = _get(f"{apps}/")
    assert page.status_code == 200 and "<canvas" in page.text.lower() or "app.js" in page.text
    assert _get(f"{apps}/static/app.js").status_code == 200
    assert _get(f"{apps}/static/..%2Fmodel_app.py").status_code == 404


# ---------------------------------------------------------------- the web page, in a real browser

@pytest.fixture(scope="module")
def browser():
    yield from bs.driver_or_skip()


def test_web_page_draws_the_served_masks_and_the_leaderboard_shows_an_evaluation(apps, world, browser, tmp_path):
    """The real app behind the page: a sample clip, a teacher-forced answer (the tiny checkpoints are
    untrained and emit no [SEG_*] of their own), the masks on the canvas where the served RLEs say;
    then a file evaluation and its row on the leaderboard page."""
    from selenium.webdriver.common.by import By

    from interrvos.data.mevis import load_dataset
    from interrvos.data.rle import decode_rle
    from interrvos.evaluate.baselines import BaselinePredictions
    from interrvos.evaluate.predictions import prediction_record, write_predictions

    bs.open_page(browser, f"{apps}/")
    bs.wait_for_state(browser, "ready", timeout=60)
    browser.find_element(By.CSS_SELECTOR, "details summary").click()  # the options hold the forced answer
    bs.set_field(browser, "force-answer", BOTH)
    bs.submit_form(browser, [UNI], clip="demo/vid1", checkpoint="tiny-a")
    drawn = bs.wait_for_overlays(browser, timeout=180)
    shown_answer = browser.execute_script("return window.interrvos.download;")
    assert shown_answer["checkpoint"]["id"] == "tiny-a" and shown_answer["video"]["source"] == "clip:demo/vid1"
    # The page sent force_answers: its answer is the API's for the same request.
    body = {"checkpoint": "tiny-a", "video": {"dataset": "demo", "clip": "vid1"}, "expressions": [UNI],
            "force_answers": [BOTH]}  # fmt: skip
    direct = _post(f"{apps}/v1/segment", json=body).json()["expressions"][0]
    served = shown_answer["expressions"][0]
    assert (served["actor"], served["target"]) == (direct["actor"], direct["target"])
    assert "[SEG_ACT]" in " ".join(served["answers"]) and served["target"] is not None

    frame = browser.execute_script("return window.interrvos.frame;")
    actor, target = decode_rle(served["actor"][frame]), decode_rle(served["target"][frame])
    assert actor.shape == (48, 64) and actor.any(), "the served actor mask is empty: nothing to see drawn"
    shown = bs.overlay_classes(browser, "canvas-a", 0)
    problem = bs.class_mismatch(shown, bs.expected_classes(actor, target, actor.shape))
    assert not problem, f"frame {frame}: {problem}\n{bs.console_log(browser)}"
    assert np.isin(shown[actor.astype(bool)], (bs.ACTOR, bs.BOTH)).all()  # actor colour wherever the mask is
    assert drawn == int((shown != bs.NONE).sum())
    bs.save_screenshot(browser, SCREENSHOT)
    assert SCREENSHOT.stat().st_size > 5_000

    # A file evaluation (the oracle baseline: a file no other test submits), then its leaderboard row.
    ds, source = load_dataset(world["dataset"]), BaselinePredictions("oracle")
    records = [prediction_record(v, e, p.actor, p.target) for v, e, _ in ds.all_expressions()
               for p in [source.load(ds, v, e)]]  # fmt: skip
    path = tmp_path / "oracle.jsonl"
    write_predictions(str(path), records)
    form = {"dataset": (None, "demo"), "name": (None, "oracle-in-browser"), "submitted_by": (None, "ci")}
    result = _post(f"{apps}/eval/v1/evaluate", files={**form, "file": ("oracle.jsonl", path.read_bytes())})
    assert result.status_code == 200, result.text
    result = result.json()
    row = next(r for r in _get(f"{apps}/eval/v1/leaderboard", params={"dataset": "demo"}).json()["rows"]
               if r["id"] == result["id"])  # fmt: skip
    bs.open_page(browser, f"{apps}/leaderboard")
    bs.wait_for_state(browser, "done", timeout=60)
    rows = browser.find_elements(By.CSS_SELECTOR, f'#leaderboard tbody tr[data-id="{result["id"]}"]')
    assert len(rows) == 1, browser.find_element(By.ID, "leaderboard").text
    cells = [td.text for td in rows[0].find_elements(By.TAG_NAME, "td")]
    overall = row["overall"]["JF"] if isinstance(row["overall"], dict) else row["overall"]  # a number, or {J, F, JF}
    assert cells[:4] == [str(row["rank"]), result["name"], f"file {result['file_sha256'][:12]}", f"{overall:.1f}"]


def test_requests_past_the_queue_cap_get_503_with_retry_after(apps, world):
    from concurrent.futures import ThreadPoolExecutor

    from ray import serve

    from interrvos.serving.config import ModelAppConfig
    from interrvos.serving.model_app import model_deployment

    cfg = ModelAppConfig(checkpoints_root=world["checkpoints"], default_checkpoint="tiny-a",
                         datasets={"demo": world["dataset"]}, device="cpu", dtype="float32",
                         deployment={"num_replicas": 1, "num_cpus": 0.25, "max_ongoing_requests": 1,
                                     "max_queued_requests": 1, "retry_after_s": 3})  # fmt: skip
    serve.run(model_deployment(cfg).options(name="OverflowServer").bind(cfg.model_dump(mode="json")),
              name="overflow", route_prefix="/overflow")  # fmt: skip
    try:
        body = {"video": {"dataset": "demo", "clip": "vid1"}, "expressions": [UNI, SOLO], "force_answers": [BOTH, BOTH]}
        with ThreadPoolExecutor(8) as pool:
            replies = list(pool.map(lambda _: _post(f"{apps}/overflow/v1/segment", json=body), range(8)))
        codes = sorted(r.status_code for r in replies)
        assert 200 in codes and 503 in codes and set(codes) <= {200, 503}, codes
        assert all(r.headers.get("retry-after") == "3" for r in replies if r.status_code == 503)
    finally:
        serve.delete("overflow")
