"""What a prediction depends on, as hashes: the cache's keys.

An expression's prediction is a function of the checkpoint's bytes, the video's frames (the dataset
content that prediction reads), the expression's text, the prediction settings and the prediction code.
So its key is

    expression_key = sha256(settings_key, video_key, text)
    settings_key   = sha256(checkpoint content hash, settings (inference, model overrides, device, dtype),
                            prediction code version)
    video_key      = sha256(the video's frame list, content hash of its JPEG folder)

Resource knobs (batch size, actors, CPUs) are not in it: they do not change a prediction. Keys at
expression granularity mean a dataset that gains videos, or a grid that gains a value, only predicts
what is new; the ground truth is not in them (a re-scored metric never predicts again).
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # platform/interrvos
# The code a prediction runs: the model package, frame decoding and mask encoding.
CODE_GLOBS = ("model/**/*.py", "model/configs/*.yaml", "data/mevis.py", "data/rle.py")
LIBRARIES = ("torch", "transformers", "peft", "sam2", "numpy", "opencv-python-headless", "pycocotools")


def digest(*parts: Any) -> str:
    """sha256 over the canonical JSON of the parts."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


@lru_cache(maxsize=1)
def prediction_code_version() -> str:
    """A hash of the prediction code's sources and the numeric libraries' versions: any change to either
    invalidates cached predictions (pin `code_version` in the config to keep a cache across a change
    known not to alter predictions)."""
    h = hashlib.sha256()
    for pattern in CODE_GLOBS:
        for path in sorted(PACKAGE_ROOT.glob(pattern)):
            h.update(str(path.relative_to(PACKAGE_ROOT)).encode() + b"\0" + path.read_bytes())
    for lib in LIBRARIES:
        try:
            h.update(f"{lib}={metadata.version(lib)}".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{lib}=-".encode())
    return h.hexdigest()[:16]


def settings_key(checkpoint_hash: str, settings: dict[str, Any], code_version: str) -> str:
    return digest("settings", checkpoint_hash, settings, code_version)


def video_key(frames: list[str], frames_folder_hash: str) -> str:
    return digest("video", frames, frames_folder_hash)


def expression_key(settings: str, video: str, text: str) -> str:
    return digest("expression", settings, video, text)
