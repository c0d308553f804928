"""`interrvos probe-text`'s measurement: held-out probe accuracy of the expression's colour word and shape word
from the [SEG_ACT] state, over the clips' frames and over blank frames (the control), with the majority-class
floor scored on the same held-out rows.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from interrvos.probe.features import expression_states
from interrvos.probe.probe import heldout_accuracy

WORDS = ("colour", "shape")


def probe_states(states, folds: int = 5, seed: int = 0) -> dict[str, Any]:
    """{frames|blank: {colour|shape: ProbeScore.as_dict()}} for one ExpressionStates."""
    return {kind: {word: heldout_accuracy(x, getattr(states, word), states.group, folds, seed).as_dict()
                   for word in WORDS}
            for kind, x in states.states.items()}  # fmt: skip


def measure_reading(model, datasets: Sequence[str], num_frames: int = 4, folds: int = 5, seed: int = 0,
                    blank: bool = True, limit: int | None = None) -> dict[str, Any]:  # fmt: skip
    """Extract the states of every expression of `datasets`, then probe them (held out by source video)."""
    started = time.perf_counter()
    states = expression_states(model, datasets, num_frames=num_frames, blank=blank, limit=limit)
    extracted = time.perf_counter() - started
    return {
        "datasets": list(datasets), "expressions": len(states), "videos": len(set(states.group)),
        "num_frames": num_frames, "folds": folds, "seed": seed, "scores": probe_states(states, folds, seed),
        "seconds": {"features": round(extracted, 1), "total": round(time.perf_counter() - started, 1)},
    }  # fmt: skip


def summary_line(result: dict[str, Any]) -> str:
    """'colour 8.3 / shape 4.3 (blank frames 58.0 / 33.0; majority 24.0 / 20.0)' (held-out accuracy %)."""
    s = result["scores"]
    line = f"colour {s['frames']['colour']['accuracy']} / shape {s['frames']['shape']['accuracy']}"
    if "blank" in s:
        line += f" (blank frames {s['blank']['colour']['accuracy']} / {s['blank']['shape']['accuracy']}"
    else:
        line += " ("
    line += f"; majority {s['frames']['colour']['majority']} / {s['frames']['shape']['majority']})"
    return line.replace("( ;", "(").replace("(;", "(")
