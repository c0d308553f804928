"""The web pages (platform/interrvos/serving/static) in a real browser, against a stand-in API.

A small http.server on 127.0.0.1 serves the static folder at the paths the model app uses (/, /leaderboard,
/static/<file>) and answers /v1/models, /v1/clips, /v1/clips/.../frames/i, /v1/segment, /v1/compare and
the evaluation app's /eval/v1/datasets and /eval/v1/leaderboard in the shapes of the serving contract,
with masks encoded by pycocotools (interrvos.data.rle.encode_mask) from shapes known here. Headless
chromium loads the page, submits, waits for the overlays, and the canvas pixels are compared with those
masks: that proves the page's JavaScript RLE decoder (column-major, pycocotools' string form) and its
overlay drawing. The same browser helpers (browser_support.py) serve the test against the real app.
"""

from __future__ import annotations

import base64
import io
import json
import re
import sys
import threading
import time
import tomllib
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))  # browser_support.py (--import-mode=importlib adds nothing)
import browser_support as bs  # noqa: E402

from interrvos.data.rle import decode_rle, encode_mask  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
STATIC = REPO / "platform" / "interrvos" / "serving" / "static"
PAGES = {"/": "index.html", "/leaderboard": "leaderboard.html"}
API_KEY = "test-key-7f3a"

# The stand-in clip: 4 frames, 90 x 160 (not square, so a transposed decode cannot pass).
H, W, T = 90, 160, 4
CLIP = {"dataset": "synth", "clip": "video_0001", "frames": T,
        "expressions": ["the brown dog pushing the yellow ball", "the ball rolling away"]}
MODELS = [
    {"id": "tiny-a", "path": "runs/checkpoints/tiny-a", "name": "tiny", "mode": "actor_target", "kind": "merged",
     "content_hash": "a1" * 32, "config": {"name": "tiny"}},
    {"id": "tiny-b", "path": "runs/checkpoints/tiny-b", "name": "tiny", "mode": "actor_target", "kind": "trainable",
     "content_hash": "b2" * 32, "config": {"name": "tiny"}},
]
SHIFT = {"tiny-a": 0, "tiny-b": 7}  # checkpoint b's dog sits 7 px to the right: the panels differ


def _ellipse(cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    y, x = np.mgrid[0:H, 0:W]
    return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0


def scene_masks(t: int, shift: int = 0) -> dict[str, np.ndarray]:
    """The dog (an ellipse, plus an ear so the shape is not symmetric) and the ball, at frame t."""
    dog = _ellipse(40 + 12 * t + shift, 55, 22, 12)
    dog[30:44, 30 + 12 * t + shift:36 + 12 * t + shift] = True
    return {"dog": dog, "ball": _ellipse(60 + 14 * t, 62, 10, 10)}


def known_masks(checkpoint: str, expression_index: int, t: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(actor, target) of an expression: 0 = the dog pushes the ball, 1 = the ball alone (no target)."""
    m = scene_masks(t, SHIFT[checkpoint])
    return (m["dog"], m["ball"]) if expression_index % 2 == 0 else (m["ball"], None)


def frame_jpeg(t: int) -> bytes:
    """A frame with a gradient background and the objects painted in (no colour near the overlay's)."""
    y, x = np.mgrid[0:H, 0:W]
    img = np.stack([90 + 40 * y / H, 120 + 50 * x / W, np.full((H, W), 80.0)], axis=-1)
    m = scene_masks(t)
    img[m["dog"]] = (150, 95, 45)
    img[m["ball"]] = (230, 200, 40)
    buf = io.BytesIO()
    Image.fromarray(img.astype(np.uint8)).save(buf, format="JPEG", quality=92)
    return buf.getvalue()


FRAMES = [frame_jpeg(t) for t in range(T)]
DATA_URLS = ["data:image/jpeg;base64," + base64.b64encode(f).decode("ascii") for f in FRAMES]


def segment_answer(checkpoint: str, request: dict, source: str) -> dict:
    expressions = []
    for i, text in enumerate(request["expressions"]):
        masks = [known_masks(checkpoint, i, t) for t in range(T)]
        expressions.append({
            "expression": text, "answers": [f"[SEG_ACT] answer {i} from {checkpoint}"],
            "actor": [encode_mask(a) for a, _ in masks],
            "target": None if masks[0][1] is None else [encode_mask(b) for _, b in masks],
        })
    answer = {
        "checkpoint": {"id": checkpoint, "content_hash": next(m["content_hash"] for m in MODELS if m["id"] == checkpoint),
                       "config_name": "tiny", "mode": "actor_target"},
        "video": {"source": source, "frames": T, "height": H, "width": W, "frame_indices": list(range(T))},
        "mllm_frames": [0, 2], "expressions": expressions,
        "timings": {"decode_s": 0.01, "mllm_s": 0.02, "encoder_s": 0.03, "propagation_s": 0.04, "total_s": 0.1},
    }
    if request.get("output") == "rle+frames":
        answer["frames"] = list(DATA_URLS)
    return answer


def iou(a: dict, b: dict) -> float:
    x, y = decode_rle(a).astype(bool), decode_rle(b).astype(bool)
    union = (x | y).sum()
    return 1.0 if union == 0 else float((x & y).sum() / union)


def compare_answer(request: dict, source: str) -> dict:
    a, b = (segment_answer(c, request, source) for c in request["checkpoints"])
    rows = []
    for ea, eb in zip(a["expressions"], b["expressions"], strict=True):
        actor = [iou(x, y) for x, y in zip(ea["actor"], eb["actor"], strict=True)]
        target = None if ea["target"] is None else [iou(x, y) for x, y in zip(ea["target"], eb["target"], strict=True)]
        rows.append({"expression": ea["expression"], "actor": actor, "target": target, "mean_actor": float(np.mean(actor)),
                     "mean_target": None if target is None else float(np.mean(target))})
    return {"a": a, "b": b, "iou": rows}


DATASETS = {"datasets": [
    {"name": "synth-val", "videos": 4, "expressions": 12, "items": {"referring": 8, "actor_target": 4}},
    {"name": "synth-test", "videos": 2, "expressions": 6, "items": {"referring": 4, "actor_target": 2}},
]}


def leaderboard(dataset: str) -> dict:
    scores = {"synth-val": [("run-2", "tiny-b", 61.25), ("predictions.jsonl", None, 48.5)], "synth-test": [("run-9", "tiny-a", 33.0)]}
    rows = [{"rank": i + 1, "id": 10 + i, "name": name, "checkpoint": ckpt, "file_sha256": f"{i:x}" * 64,
             "overall": {"J": jf - 1, "F": jf + 1, "JF": jf}, "referring": {"J": 50.0, "F": 52.0, "JF": 51.0},
             "actor_target": {"J": None, "F": None, "JF": None}, "submitted_by": "ci",
             "submitted_at": "2026-12-01T10:00:00+00:00"} for i, (name, ckpt, jf) in enumerate(scores[dataset])]
    return {"dataset": dataset, "rows": rows}


class StandInApi(BaseHTTPRequestHandler):
    """The serving contract's routes, answered from the known masks; every request is recorded."""

    server: ThreadingHTTPServer

    def log_message(self, *args) -> None:  # quiet test output
        pass

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization")
        if header is None:
            self._json(401, {"detail": "missing API key: send 'Authorization: Bearer <key>'"})
            return False
        if header != f"Bearer {API_KEY}":
            self._json(403, {"detail": "wrong API key"})
            return False
        return True

    def _record(self, **extra) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}  # fetch() sends set headers in lower case
        self.server.requests.append({"method": self.command, "path": self.path, "headers": headers, **extra})

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        url = urlparse(self.path)
        path = url.path
        if path in PAGES or path.startswith("/static/"):  # page files need no key, as in the app
            name = PAGES.get(path) or unquote(path.removeprefix("/static/"))
            file = STATIC / name
            if "/" in name or not file.is_file():
                return self._json(404, {"detail": f"no static file {name!r}"})
            kind = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}.get(file.suffix, "application/octet-stream")
            return self._send(200, file.read_bytes(), kind + "; charset=utf-8")
        self._record()
        if not self._authorized():
            return None
        if path == "/v1/models":
            return self._json(200, {"default": "tiny-a", "models": MODELS})
        if path == "/v1/clips":
            return self._json(200, {"clips": [CLIP]})
        frame = re.fullmatch(r"/v1/clips/([^/]+)/([^/]+)/frames/(\d+)", path)
        if frame:
            if (unquote(frame[1]), unquote(frame[2])) != (CLIP["dataset"], CLIP["clip"]) or int(frame[3]) >= T:
                return self._json(404, {"detail": f"unknown clip or frame {path}"})
            return self._send(200, FRAMES[int(frame[3])], "image/jpeg")
        if path == "/eval/v1/datasets":
            return self._json(200, DATASETS)
        if path == "/eval/v1/leaderboard":
            name = parse_qs(url.query).get("dataset", [""])[0]
            if name not in {d["name"] for d in DATASETS["datasets"]}:
                return self._json(404, {"detail": f"unknown dataset {name!r}"})
            return self._json(200, leaderboard(name))
        return self._json(404, {"detail": f"no route {path}"})

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        content_type = self.headers.get("Content-Type", "")
        parts = {}
        if content_type.startswith("multipart/form-data"):
            message = BytesParser().parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
            for part in message.get_payload():
                parts[part.get_param("name", header="content-disposition")] = {
                    "filename": part.get_filename(), "content_type": part.get_content_type(),
                    "data": part.get_payload(decode=True)}
            request = json.loads(parts["request"]["data"])
            source = f"upload:{parts['video']['filename']}"
        else:
            request = json.loads(body)
            source = f"clip:{request['video']['dataset']}/{request['video']['clip']}"
        self._record(json=request, parts=parts)
        if not self._authorized():
            return None
        if "FAIL" in request.get("expressions", []):
            return self._json(400, {"detail": "expressions[1]: 'FAIL' is rejected by the stand-in server"})
        if self.path == "/v1/compare":
            return self._json(200, compare_answer(request, source))
        if self.path != "/v1/segment":
            return self._json(404, {"detail": f"no route {self.path}"})
        answer = segment_answer(request.get("checkpoint") or "tiny-a", request, source)
        if self.headers.get("Accept") == "application/x-ndjson":
            return self._stream(answer)
        return self._json(200, answer)

    def _stream(self, answer: dict) -> None:
        """NDJSON as the contract streams it; without Content-Length the body ends when we close."""
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.end_headers()
        exps = [{"expression": e["expression"], "answers": e["answers"], "has_target": e["target"] is not None}
                for e in answer["expressions"]]
        events = [{"type": "start", "checkpoint": answer["checkpoint"], "video": answer["video"],
                   "mllm_frames": answer["mllm_frames"], "expressions": exps}]
        events += [{"type": "frame", "index": t, "frame": t, "image": answer["frames"][t],
                    "masks": [{"actor": e["actor"][t], "target": e["target"][t] if e["target"] else None}
                              for e in answer["expressions"]]} for t in range(T)]
        events.append({"type": "end", "timings": answer["timings"]})
        for event in events:
            self.wfile.write(json.dumps(event).encode() + b"\n")
            self.wfile.flush()
            time.sleep(0.05)  # lines arrive apart, as frames do while SAM2 propagates
        self.close_connection = True


# ---------------------------------------------------------------- static files (no browser)

def test_static_files_exist_and_reference_only_local_resources():
    names = {"index.html", "leaderboard.html", "app.js", "leaderboard.js", "common.js", "rle.js", "style.css"}
    assert names <= {p.name for p in STATIC.iterdir()}
    for page in ("index.html", "leaderboard.html"):
        html = (STATIC / page).read_text()
        refs = re.findall(r'(?:src|href)="([^"]*)"', html)
        assert refs, page
        for ref in refs:
            assert not re.match(r"^(https?:)?//", ref), f"{page} loads {ref} from outside the app"
            if ref.startswith("/static/"):
                assert (STATIC / ref.removeprefix("/static/")).is_file(), f"{page} references missing {ref}"
            else:
                assert ref in PAGES or ref.startswith("#") or ref == "data:,", f"{page}: unexpected reference {ref}"
    for script in STATIC.glob("*.js"):
        text = script.read_text()
        assert not re.search(r"https?://", text), f"{script.name} names an outside URL"
        assert not re.search(r"\bimport\s*\(|^\s*import\s", text, re.M), f"{script.name} imports modules"
    css = (STATIC / "style.css").read_text()
    assert "@import" not in css and not re.search(r"url\(\s*['\"]?(https?:)?//", css)
    # The page files install with the package (wheel or editable).
    globs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["interrvos"]
    assert {"**/*.html", "**/*.js", "**/*.css"} <= set(globs)


# ---------------------------------------------------------------- the browser

@pytest.fixture(scope="module")
def api():
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandInApi)
    server.daemon_threads = True
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, name="stand-in-api", daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def driver():
    yield from bs.driver_or_skip()


def last_request(api, path: str) -> dict:
    return next(r for r in reversed(api.requests) if urlparse(r["path"]).path == path)


def assert_canvas_shows(driver, checkpoint: str, expression: int, t: int, canvas: str = "canvas-a", panel: int = 0):
    actor, target = known_masks(checkpoint, expression, t)
    shown = bs.overlay_classes(driver, canvas, panel)
    expected = bs.expected_classes(actor, target, (H, W))
    problem = bs.class_mismatch(shown, expected)
    assert not problem, f"{canvas}, expression {expression}, frame {t}: {problem}"
    return shown


def page_pixels(driver) -> list[dict]:
    return driver.execute_script("return window.interrvos.panelPixels;")


@pytest.mark.slow
def test_sample_clip_masks_drawn_where_the_rles_say(api, driver, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    # A first visit without a key: the server's 401 detail shows; typing the key loads the lists.
    bs.open_page(driver, api.url + "/")
    bs.wait_for_state(driver, "error", timeout=30)
    assert "HTTP 401" in bs.error_text(driver) and "missing API key" in bs.error_text(driver)
    bs.set_field(driver, "api-key", API_KEY)
    bs.wait_for_state(driver, "ready", timeout=30)
    assert driver.execute_script("return localStorage.getItem('interrvos.apiKey');") == API_KEY
    assert last_request(api, "/v1/models")["headers"]["authorization"] == f"Bearer {API_KEY}"
    options = [o.get_attribute("value") for o in Select(driver.find_element(By.ID, "checkpoint-a")).options]
    assert options == ["tiny-a", "tiny-b"]
    assert driver.find_element(By.ID, "expressions").get_attribute("value") == CLIP["expressions"][0]
    assert len(driver.find_elements(By.CSS_SELECTOR, "#suggestions .chip")) == 2

    bs.submit_form(driver, CLIP["expressions"], clip="synth/video_0001", checkpoint="tiny-a")
    drawn = bs.wait_for_overlays(driver, timeout=60)
    sent = last_request(api, "/v1/segment")
    assert sent["json"] == {"expressions": CLIP["expressions"], "output": "rle+frames", "start": 0, "stride": 1,
                            "video": {"dataset": "synth", "clip": "video_0001"}, "checkpoint": "tiny-a"}
    assert sent["headers"]["content-type"] == "application/json"

    # Frame 0, expression 0: actor and target exactly where the masks are (they overlap a little).
    shown = assert_canvas_shows(driver, "tiny-a", 0, 0)
    assert (shown == bs.BOTH).any() and (shown == bs.ACTOR).any() and (shown == bs.TARGET).any()
    assert drawn == int((shown != bs.NONE).sum())
    # The scrubber, by keyboard: frame 2.
    bs.press_keys(driver, "scrubber", Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)
    assert driver.execute_script("return window.interrvos.frame;") == 2
    assert_canvas_shows(driver, "tiny-a", 0, 2)
    # The second expression has no target: only the actor colour.
    Select(driver.find_element(By.ID, "expression-view")).select_by_index(1)
    shown = assert_canvas_shows(driver, "tiny-a", 1, 2)
    assert not (shown == bs.TARGET).any()
    assert page_pixels(driver)[0]["target"] == 0
    # The legend's colours are the two fixed ones.
    swatches = [driver.execute_script("return getComputedStyle(document.querySelector(arguments[0])).backgroundColor;", s)
                for s in (".swatch.actor", ".swatch.target")]
    assert swatches == ["rgb(255, 59, 48)", "rgb(10, 132, 255)"]
    # Play advances frames; pause stops.
    driver.find_element(By.ID, "play").click()
    time.sleep(0.35)
    driver.find_element(By.ID, "play").click()
    stopped = driver.execute_script("return window.interrvos.frame;")
    time.sleep(0.25)
    assert driver.execute_script("return window.interrvos.frame;") == stopped
    assert driver.find_element(By.ID, "play").get_attribute("aria-label") == "play"
    # The download is the answer as sent, without the frame images.
    downloaded = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(document.getElementById('download').href).then((r) => r.text()).then(done);")
    want = segment_answer("tiny-a", sent["json"], "clip:synth/video_0001")
    del want["frames"]
    assert json.loads(downloaded) == want

    # A screenshot renders (the one in docs/ comes from the real app: test_apps.py).
    # Play stopped on whichever frame the clock reached (it wraps), so step back from there.
    Select(driver.find_element(By.ID, "expression-view")).select_by_index(0)
    bs.press_keys(driver, "scrubber", Keys.ARROW_LEFT)
    frame = max(stopped - 1, 0)
    assert driver.execute_script("return window.interrvos.frame;") == frame
    assert_canvas_shows(driver, "tiny-a", 0, frame)
    shot = tmp_path / "web-page-stand-in.png"
    bs.save_screenshot(driver, shot)
    assert shot.stat().st_size > 10_000


@pytest.mark.slow
def test_js_rle_decoder_equals_pycocotools(driver, api):
    """Masks whose runs need several characters and negative deltas, at sizes the page meets."""
    bs.open_page(driver, api.url + "/", API_KEY)
    rng = np.random.default_rng(13)
    masks = [np.zeros((3, 5), np.uint8), np.ones((7, 2), np.uint8), (rng.random((48, 64)) < 0.4).astype(np.uint8)]
    big = np.zeros((720, 1280), np.uint8)
    big[100:600, 200:900] = 1
    big[300:320, :] = 0
    big[rng.random(big.shape) < 0.001] = 1
    masks.append(big)
    for mask in masks:
        rle = encode_mask(mask)
        flat = driver.execute_script(
            "const m = window.interrvos.decodeRle(arguments[0]); return [m.area, Array.from(m.data).join('')];", rle)
        assert flat[0] == int(mask.sum())
        decoded = np.frombuffer(flat[1].encode(), np.uint8).reshape(mask.shape) - ord("0")
        assert np.array_equal(decoded, mask), f"decode differs for a {mask.shape} mask"
    # A truncated string, or runs that do not cover h*w pixels, are refused rather than drawn.
    refuse = "try { window.interrvos.decodeRle(arguments[0]); return ''; } catch (e) { return e.message; }"
    assert "end inside a run" in driver.execute_script(refuse, {"size": [4, 4], "counts": "a"})
    assert "cover 2 pixels, expected 4x4" in driver.execute_script(refuse, {"size": [4, 4], "counts": "2"})


@pytest.mark.slow
def test_server_error_detail_shown(api, driver):
    bs.open_page(driver, api.url + "/", API_KEY)
    bs.wait_for_state(driver, "ready", timeout=30)
    bs.submit_form(driver, ["the dog", "FAIL"])
    bs.wait_for_state(driver, "error", timeout=30)
    assert bs.error_text(driver) == "HTTP 400: expressions[1]: 'FAIL' is rejected by the stand-in server"


@pytest.mark.slow
def test_upload_is_sent_as_multipart(api, driver, tmp_path):
    video = tmp_path / "my clip.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    bs.open_page(driver, api.url + "/", API_KEY)
    bs.wait_for_state(driver, "ready", timeout=30)
    bs.submit_form(driver, [CLIP["expressions"][0]], upload=video, checkpoint="tiny-b")
    bs.wait_for_overlays(driver, timeout=60)
    sent = last_request(api, "/v1/segment")
    assert sent["headers"]["content-type"].startswith("multipart/form-data; boundary=")
    assert sent["parts"]["video"]["filename"] == "my clip.mp4"
    assert sent["parts"]["video"]["data"] == video.read_bytes()
    assert sent["json"]["video"] is None and sent["json"]["checkpoint"] == "tiny-b"
    assert sent["json"]["output"] == "rle+frames"
    assert_canvas_shows(driver, "tiny-b", 0, 0)


@pytest.mark.slow
def test_compare_mode_two_panels_and_iou(api, driver):
    from selenium.webdriver.common.by import By

    bs.open_page(driver, api.url + "/", API_KEY)
    bs.wait_for_state(driver, "ready", timeout=30)
    bs.submit_form(driver, CLIP["expressions"], checkpoint="tiny-a", compare_with="tiny-b")
    drawn = bs.wait_for_overlays(driver, timeout=60)
    sent = last_request(api, "/v1/compare")
    assert sent["json"]["checkpoints"] == ["tiny-a", "tiny-b"] and "checkpoint" not in sent["json"]
    assert_canvas_shows(driver, "tiny-a", 0, 0, "canvas-a", 0)
    assert_canvas_shows(driver, "tiny-b", 0, 0, "canvas-b", 1)
    pixels = page_pixels(driver)
    assert drawn == pixels[0]["union"] + pixels[1]["union"]
    table = driver.find_element(By.ID, "iou").text
    want = compare_answer(sent["json"], "clip:synth/video_0001")["iou"][0]
    assert f"{want['mean_actor']:.3f}" in table and f"{want['mean_target']:.3f}" in table
    downloaded = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(document.getElementById('download').href).then((r) => r.json()).then(done);")
    assert set(downloaded) == {"a", "b", "iou"} and "frames" not in downloaded["a"]


@pytest.mark.slow
def test_streamed_answer_drawn_frame_by_frame(api, driver):
    bs.open_page(driver, api.url + "/", API_KEY)
    bs.wait_for_state(driver, "ready", timeout=30)
    bs.submit_form(driver, CLIP["expressions"], stream=True)
    bs.wait_for_overlays(driver, timeout=60)
    sent = last_request(api, "/v1/segment")
    assert sent["headers"]["accept"] == "application/x-ndjson"
    # The page followed the newest frame while lines arrived.
    assert driver.execute_script("return window.interrvos.frame;") == T - 1
    assert_canvas_shows(driver, "tiny-a", 0, T - 1)
    downloaded = driver.execute_script("return window.interrvos.download;")
    want = segment_answer("tiny-a", sent["json"], "clip:synth/video_0001")
    del want["frames"]
    assert downloaded == want


@pytest.mark.slow
def test_leaderboard_page_ranks_results(api, driver):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    bs.open_page(driver, api.url + "/leaderboard", API_KEY)
    bs.wait_for_state(driver, "done", timeout=30)
    rows = driver.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr")
    cells = [[td.text for td in r.find_elements(By.TAG_NAME, "td")] for r in rows]
    assert [c[:4] for c in cells] == [["1", "run-2", "checkpoint tiny-b", "61.3"],
                                      ["2", "predictions.jsonl", "file " + "1" * 12, "48.5"]]
    assert cells[0][7] == "–"  # a setting without items
    assert "4 videos, 12 expressions" in driver.find_element(By.ID, "dataset-counts").text
    Select(driver.find_element(By.ID, "dataset")).select_by_value("synth-test")
    deadline = time.monotonic() + 30
    while "synth-test" not in driver.find_element(By.ID, "status").text and time.monotonic() < deadline:
        time.sleep(0.05)
    bs.wait_for_state(driver, "done", timeout=30)
    assert driver.find_element(By.CSS_SELECTOR, "#leaderboard tbody tr td:nth-child(2)").text == "run-9"
    assert last_request(api, "/eval/v1/leaderboard")["path"] == "/eval/v1/leaderboard?dataset=synth-test"
