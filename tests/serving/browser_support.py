"""Driving the web pages in a real browser: Debian's chromium through the system chromedriver
(selenium, no downloads), waiting for the page's status, and reading what the canvas shows.

Plain functions, imported by the browser tests (tests/serving is put on sys.path by the test
module itself: --import-mode=importlib does not, and tests cannot import a conftest).

How a canvas is read: the page draws each frame image, then the masks over it in two fixed
colours at a fixed alpha. `overlay_classes` reads the canvas pixels with getImageData, draws the
same frame image alone into a scratch canvas, and for every pixel finds which blend explains the
canvas pixel: none (the frame itself), actor, target or both. It works on any footage, not only on
flat test frames, and does not trust the page's own pixel counts.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import time
from pathlib import Path

import numpy as np

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ACTOR_RGB = (0xFF, 0x3B, 0x30)   # #ff3b30, the spec's actor colour
TARGET_RGB = (0x0A, 0x84, 0xFF)  # #0a84ff, the spec's target colour
NONE, ACTOR, TARGET, BOTH, UNKNOWN = 0, 1, 2, 3, 9
API_KEY_STORAGE = "interrvos.apiKey"  # common.js


def browser_skip_reason() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        return (f"{' and '.join(missing)} missing: run scripts/setup_env.sh as root "
                "(it installs Debian's chromium and chromium-driver)")
    if importlib.util.find_spec("selenium") is None:
        return "selenium is not installed (it is in the dev extra: pip install -e '.[dev]')"
    return None


def make_driver(width: int = 1280, height: int = 1000):
    """Headless chromium driven through the system chromedriver (selenium's manager never runs)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console errors for failure messages
    service = Service(str(CHROMEDRIVER), log_output=subprocess.DEVNULL)
    return webdriver.Chrome(service=service, options=options)


def driver_or_skip():
    """A module fixture's body: a headless Chromium for the module's tests, or a skip saying why."""
    import pytest

    reason = browser_skip_reason()
    if reason:
        pytest.skip(reason)
    driver = make_driver()
    yield driver
    driver.quit()


def console_log(driver) -> str:
    try:
        return "\n".join(f"{e['level']}: {e['message']}" for e in driver.get_log("browser"))
    except Exception:  # noqa: BLE001 - logs are a diagnostic only
        return "(no browser log)"


def open_page(driver, url: str, api_key: str | None = None) -> None:
    """Load a page with `api_key` (or none) already in its localStorage, as a returning user."""
    driver.get(url)
    driver.execute_script(
        "localStorage.clear(); if (arguments[1]) localStorage.setItem(arguments[0], arguments[1]);",
        API_KEY_STORAGE, api_key or "")
    driver.get(url)


def page_state(driver) -> str:
    return driver.execute_script("const s = document.getElementById('status'); return s ? s.dataset.state : null;")


def error_text(driver) -> str:
    return driver.execute_script("const e = document.getElementById('error'); return e && !e.hidden ? e.textContent : '';")


def wait_for_state(driver, states: str | tuple[str, ...], timeout: float = 60.0) -> str:
    """Wait until #status's data-state is one of `states`; an "error" not among them fails at once,
    with the page's error text and console."""
    wanted = (states,) if isinstance(states, str) else tuple(states)
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        state = page_state(driver)
        if state in wanted:
            return state
        if state == "error":
            raise AssertionError(f"the page shows an error: {error_text(driver)!r}\n{console_log(driver)}")
        time.sleep(0.05)
    raise AssertionError(f"page state stayed {state!r}, waited {timeout:.0f} s for {wanted}; "
                         f"error: {error_text(driver)!r}\n{console_log(driver)}")


def set_field(driver, element_id: str, text: str) -> None:
    """Type into an input/textarea as a user would (its change event fires on leaving it)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    field = driver.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(text + Keys.TAB)


def submit_form(driver, expressions: list[str], clip: str | None = None, checkpoint: str | None = None,
                compare_with: str | None = None, upload: Path | None = None, stream: bool = False) -> None:
    """Fill the segment form (clip given as "dataset/clip", else the first one) and press Segment."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    if upload is not None:
        driver.find_element(By.ID, "video-file").send_keys(str(Path(upload).resolve()))
        driver.find_element(By.CSS_SELECTOR, 'input[name="source"][value="upload"]').click()
    else:
        driver.find_element(By.CSS_SELECTOR, 'input[name="source"][value="clip"]').click()
        if clip is not None:
            select = Select(driver.find_element(By.ID, "clip"))
            select.select_by_visible_text(next(o.text for o in select.options if o.text.startswith(clip + " ")))
    area = driver.find_element(By.ID, "expressions")
    area.clear()
    area.send_keys("\n".join(expressions))
    if checkpoint is not None:
        Select(driver.find_element(By.ID, "checkpoint-a")).select_by_value(checkpoint)
    compare = driver.find_element(By.ID, "compare")
    if compare.is_selected() != (compare_with is not None):
        compare.click()
    if compare_with is not None:
        Select(driver.find_element(By.ID, "checkpoint-b")).select_by_value(compare_with)
    if stream:
        driver.find_element(By.CSS_SELECTOR, "details summary").click()  # open the options
        box = driver.find_element(By.ID, "stream")
        if not box.is_selected():
            box.click()
    driver.find_element(By.ID, "submit").click()


def wait_for_overlays(driver, timeout: float = 120.0) -> int:
    """Wait for the answer to be drawn: state "done" and mask pixels on the current frame.
    Returns the page's own count (window.interrvos.lastMaskPixels); check it against the canvas."""
    wait_for_state(driver, "done", timeout)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        drawn = driver.execute_script("return window.interrvos.lastMaskPixels;")
        if drawn:
            return int(drawn)
        time.sleep(0.05)
    return 0


_CLASSIFY_JS = """
const [canvasId, panel, actor, target, tolerance] = arguments;
const canvas = document.getElementById(canvasId);
const w = canvas.width, h = canvas.height;
const shown = canvas.getContext('2d').getImageData(0, 0, w, h).data;
// The frame alone, as the page drew it (same decoded image, same size), or its blank background.
const scratch = document.createElement('canvas');
scratch.width = w; scratch.height = h;
const sc = scratch.getContext('2d');
const img = window.interrvos.view.images[panel][window.interrvos.frame];
if (img) sc.drawImage(img, 0, 0, w, h); else { sc.fillStyle = '#222'; sc.fillRect(0, 0, w, h); }
const base = sc.getImageData(0, 0, w, h).data;
const a = window.interrvos.overlayAlpha / 255;
const both = actor.map((v, k) => (v + target[k]) >> 1);
const candidates = [null, actor, target, both];
let out = '';
for (let i = 0; i < w * h; i++) {
  let best = 9, bestErr = tolerance + 1;
  for (let c = 0; c < 4; c++) {
    let err = 0;
    for (let k = 0; k < 3; k++) {
      const b = base[4 * i + k];
      const want = candidates[c] ? b * (1 - a) + candidates[c][k] * a : b;
      err = Math.max(err, Math.abs(shown[4 * i + k] - want));
    }
    if (err < bestErr) { bestErr = err; best = c; }
  }
  out += String(best);
}
return [h, w, out];
"""


def overlay_classes(driver, canvas_id: str = "canvas-a", panel: int = 0, tolerance: float = 4.0) -> np.ndarray:
    """(H, W) array read from the canvas: NONE, ACTOR, TARGET, BOTH, or UNKNOWN where no blend of the
    frame with the spec's colours explains the pixel (within `tolerance` per channel)."""
    h, w, text = driver.execute_script(_CLASSIFY_JS, canvas_id, panel, list(ACTOR_RGB), list(TARGET_RGB), tolerance)
    return np.frombuffer(text.encode("ascii"), dtype=np.uint8).reshape(h, w) - ord("0")


def expected_classes(actor: np.ndarray | None, target: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    a = np.zeros(shape, bool) if actor is None else actor.astype(bool)
    t = np.zeros(shape, bool) if target is None else target.astype(bool)
    out = np.full(shape, NONE, np.uint8)
    out[a & ~t], out[t & ~a], out[a & t] = ACTOR, TARGET, BOTH
    return out


def class_mismatch(shown: np.ndarray, expected: np.ndarray) -> str:
    """'' when equal, else a short account of where they differ (for assertion messages)."""
    if shown.shape != expected.shape:
        return f"canvas is {shown.shape}, masks are {expected.shape}"
    wrong = shown != expected
    if not wrong.any():
        return ""
    ys, xs = np.nonzero(wrong)
    counts = {name: (int((shown == v).sum()), int((expected == v).sum()))
              for name, v in (("none", NONE), ("actor", ACTOR), ("target", TARGET), ("both", BOTH), ("unknown", UNKNOWN))}
    return (f"{int(wrong.sum())} pixels differ (first at y={ys[0]}, x={xs[0]}: shown {shown[ys[0], xs[0]]}, "
            f"expected {expected[ys[0], xs[0]]}); shown/expected per class: {json.dumps(counts)}")


def press_keys(driver, element_id: str, *keys: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, element_id).send_keys(*keys)


def save_screenshot(driver, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.execute_script("window.scrollTo(0, 0);")  # the page from its top, as a visitor first sees it
    if not driver.save_screenshot(str(path)):
        raise AssertionError(f"chromium could not save a screenshot to {path}")
    return path
