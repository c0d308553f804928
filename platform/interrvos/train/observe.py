"""Observability: the per-step metrics log (CSV, kept inside every checkpoint so a resumed run's log is
the log of the steps it really trained), a progress file the driver reads, the driver's progress bar,
and the loss-curve PNG of the run's report."""

from __future__ import annotations

import csv
import io
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from interrvos.data import storage

PROGRESS_FILE = "progress.json"
FIRST_COLUMNS = ("step", "epoch", "loss", "lr", "samples_per_s", "tokens_per_s", "step_time_s", "data_wait_s")


class MetricsLog:
    """Rank 0's CSV of reported metrics, in a local file (copied into each checkpoint)."""

    def __init__(self, path: str):
        self.path = path
        self.rows: list[dict[str, Any]] = []
        self._columns: list[str] = list(FIRST_COLUMNS)

    def restore(self, folder: str | None, up_to_step: int) -> None:
        """Start from a checkpoint's log, dropping any row after its step."""
        self.rows = []
        src = os.path.join(folder, "metrics.csv") if folder else None
        if src and os.path.exists(src):
            with open(src, newline="") as f:
                self.rows = [r for r in csv.DictReader(f) if int(float(r["step"])) <= up_to_step]
        self._write()

    def append(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if self.rows[:-1] and set(row) <= set(self._columns):  # same columns: append one line
            with open(self.path, "a", newline="") as f:
                csv.DictWriter(f, fieldnames=self._columns, extrasaction="ignore").writerow(row)
        else:
            self._write()

    def _write(self) -> None:
        columns = list(FIRST_COLUMNS)
        for r in self.rows:
            columns += [k for k in r if k not in columns]
        self._columns = columns
        tmp = f"{self.path}.tmp"
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(self.rows)
        os.replace(tmp, self.path)


def read_metrics_csv(uri: str) -> list[dict[str, float]]:
    text = storage.read_bytes(uri).decode()
    return [{k: float(v) for k, v in r.items() if v not in ("", None)} for r in csv.DictReader(io.StringIO(text))]


def write_progress(run_uri: str, metrics: dict[str, Any], total_steps: int) -> None:
    progress = {**metrics, "total_steps": total_steps, "time": time.time()}
    storage.write_json(storage.join(run_uri, PROGRESS_FILE), progress)


class ProgressWriter:
    """Rank 0's progress file, written at most every `min_interval_s` (the driver polls it once a second;
    on object storage each write is a request inside the step), always for the last step and when forced."""

    def __init__(self, run_uri: str, total_steps: int, min_interval_s: float = 1.0):
        self.run_uri, self.total_steps, self.min_interval_s = run_uri, total_steps, min_interval_s
        self._last: float | None = None

    def write(self, metrics: dict[str, Any], force: bool = False) -> bool:
        now = time.monotonic()
        due = self._last is None or now - self._last >= self.min_interval_s
        if not (due or force or metrics.get("step") == self.total_steps):
            return False
        write_progress(self.run_uri, metrics, self.total_steps)
        self._last = now
        return True


class ProgressWatcher:
    """Driver side: a thread polling the run's progress file; calls `update(progress)` on every change."""

    def __init__(self, run_uri: str, update: Callable[[dict], None], interval_s: float = 1.0):
        self.path = storage.join(run_uri, PROGRESS_FILE)
        self.update, self.interval_s = update, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="train-progress")
        self._last: float | None = None

    def __enter__(self) -> ProgressWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._poll()

    def _poll(self) -> None:
        try:
            progress = storage.read_json(self.path)
        except (OSError, ValueError):
            return
        if progress.get("time") != self._last:
            self._last = progress.get("time")
            self.update(progress)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._poll()


def tqdm_progress(total_hint: int | None = None):
    """(update callback, close) drawing a tqdm bar of optimizer steps with the latest loss."""
    from tqdm.auto import tqdm

    bar = tqdm(total=total_hint, unit="step", desc="train", dynamic_ncols=True)

    def update(p: dict) -> None:
        bar.total = p.get("total_steps", bar.total)
        if bar.n == 0 and p.get("step", 0) > 1:  # resumed: start the bar (and its rate) at the step
            bar.n = bar.last_print_n = int(p["step"]) - 1
        bar.update(max(0, int(p.get("step", 0)) - bar.n))
        bar.set_postfix(loss=f"{p.get('loss', float('nan')):.4f}", lr=f"{p.get('lr', 0):.2e}",
                        sps=f"{p.get('samples_per_s', 0):.2f}")  # fmt: skip

    return update, bar.close


def _moving_mean(values: Sequence[float], window: int) -> list[float]:
    out = []
    for i in range(len(values)):
        chunk = [v for v in values[max(0, i - window + 1):i + 1] if v == v]  # NaN-free
        out.append(sum(chunk) / len(chunk) if chunk else float("nan"))
    return out


def loss_curve_png(rows: Sequence[dict[str, float]], uri: str, title: str = "training") -> str | None:
    """Loss terms and the learning rate against the step; None when there is nothing to draw."""
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in rows]
    terms = [k for k in rows[0] if k.startswith("loss")]
    fig, (ax, ax_lr) = plt.subplots(2, 1, figsize=(8, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    window = max(1, len(rows) // 30)
    for i, k in enumerate(terms):
        # A term of exactly 0 is absent from that step (e.g. no target in the batch): not drawn.
        values = [r.get(k, float("nan")) or float("nan") for r in rows]
        colour = f"C{i}"
        ax.plot(steps, values, color=colour, alpha=0.25, linewidth=0.8)
        ax.plot(steps, _moving_mean(values, window), color=colour, label=k, linewidth=2.0 if k == "loss" else 1.2)
    ax.set_ylabel("loss")
    ax.set_yscale("log" if all(r.get("loss", 1) > 0 for r in rows) else "linear")
    ax.legend(fontsize=8, title=f"mean of {window} steps" if window > 1 else None, title_fontsize=8)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax_lr.plot(steps, [r.get("lr", float("nan")) for r in rows], color="gray")
    ax_lr.set_ylabel("lr")
    ax_lr.set_xlabel("optimizer step")
    ax_lr.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    storage.write_bytes(uri, buf.getvalue())
    return uri
