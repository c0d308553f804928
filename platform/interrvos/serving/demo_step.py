"""The demo's serving step: the checkpoint it just trained goes behind the model app and the held-out
set behind the evaluation app, on the demo's own Ray; one HTTP segmentation request (its overlay goes
into the report) and one evaluation of the trained model's predictions file through the evaluation
app (its table goes into the report, checked against `interrvos evaluate`), then Serve stops."""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

import numpy as np

from interrvos.data import storage
from interrvos.data.mevis import load_dataset
from interrvos.serving.config import EvaluateAppConfig, ModelAppConfig
from interrvos.viz import overlay_masks, save_png, tile_rows

ACTOR_COLOUR, TARGET_COLOUR = (255, 59, 48), (10, 132, 255)  # the web page's legend colours
DATASET_NAME = "heldout"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _link(target: str, link: str) -> None:
    """A checkpoints root made of links to the run's checkpoints (nothing copied)."""
    if os.path.islink(link) or os.path.exists(link):
        return
    os.makedirs(os.path.dirname(link), exist_ok=True)
    os.symlink(os.path.abspath(target), link)


def app_configs(root: str, checkpoints: dict[str, str], dataset: str) -> tuple[ModelAppConfig, EvaluateAppConfig]:
    """Both apps sized for the demo's 2 CPUs (one model replica, one scoring replica)."""
    ckpt_root = storage.join(root, "checkpoints")
    for name, path in checkpoints.items():
        _link(path, storage.join(ckpt_root, name))
    model = ModelAppConfig(checkpoints_root=ckpt_root, default_checkpoint=next(iter(checkpoints)),
                           datasets={DATASET_NAME: dataset}, device="cpu", dtype="float32",
                           deployment={"num_replicas": 1, "num_cpus": 0.5})  # fmt: skip
    evaluation = EvaluateAppConfig(datasets={DATASET_NAME: dataset}, storage=storage.join(root, "evaluate"),
                                   deployment={"num_replicas": 1, "num_cpus": 0.25})  # fmt: skip
    return model, evaluation


def web_page_command(model: ModelAppConfig, evaluation: EvaluateAppConfig) -> str:
    return ("interrvos serve all "
            f"--set model.checkpoints_root={model.checkpoints_root} "
            f"--set model.default_checkpoint={model.default_checkpoint} "
            f"--set model.datasets.{DATASET_NAME}={model.datasets[DATASET_NAME]} "
            f"--set evaluate.datasets.{DATASET_NAME}={evaluation.datasets[DATASET_NAME]} "
            f"--set evaluate.storage={evaluation.storage}   # then open http://127.0.0.1:8000/")  # fmt: skip


def serve_for_demo(root: str, checkpoints: dict[str, str], dataset: str, predictions: str,
                   cli_overall: float) -> dict[str, Any]:  # fmt: skip
    """Serve `checkpoints` (id -> folder; the first is the default), send one segmentation request for
    the first clip of `dataset` and one evaluation of `predictions` (whose `interrvos evaluate` Overall
    J&F, to 2 decimals, is `cli_overall`); returns what the report shows."""
    import requests
    from ray import serve

    from interrvos.serving.evaluate_app import evaluation_deployment
    from interrvos.serving.model_app import model_deployment

    model_cfg, eval_cfg = app_configs(root, checkpoints, dataset)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    logging.getLogger("ray.serve").setLevel(logging.WARNING)  # Serve's per-app INFO lines stay off the report's console
    try:
        serve.run(model_deployment(model_cfg).bind(model_cfg.model_dump(mode="json")), name="model", route_prefix="/")
        serve.run(evaluation_deployment(eval_cfg).bind(eval_cfg.model_dump(mode="json")), name="evaluate",
                  route_prefix="/eval")  # fmt: skip
        ready_s = time.perf_counter() - started
        ds = load_dataset(dataset)
        clip = next(v for v, entry in ds.videos.items() if entry.expressions)
        texts = [e.exp for e in ds.videos[clip].expressions.values()][:3]
        t0 = time.perf_counter()
        reply = requests.post(f"{base}/v1/segment", timeout=600,
                              json={"video": {"dataset": DATASET_NAME, "clip": clip}, "expressions": texts})  # fmt: skip
        reply.raise_for_status()
        answer = reply.json()
        segment_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        with open(predictions, "rb") as f:
            scored = requests.post(f"{base}/eval/v1/evaluate", timeout=600, files={"file": (
                os.path.basename(predictions), f.read())}, data={"dataset": DATASET_NAME, "submitted_by": "demo"})  # fmt: skip
        scored.raise_for_status()
        result = scored.json()
        evaluate_s = time.perf_counter() - t0
        board = requests.get(f"{base}/eval/v1/leaderboard", params={"dataset": DATASET_NAME}, timeout=60).json()
    finally:
        serve.shutdown()
    overlay = storage.join(root, "served_overlay.png")
    draw_answer(ds, clip, answer, overlay)
    storage.write_json(storage.join(root, "served_answer.json"), answer)
    return {
        "clip": clip, "expressions": texts, "answer": answer, "overlay": overlay, "result": result,
        "leaderboard": board["rows"], "equal_to_cli": round(result["settings"]["overall"]["JF"], 2) == cli_overall,
        "seconds": {"start": round(ready_s, 1), "segment": round(segment_s, 2), "evaluate": round(evaluate_s, 2)},
        "command": web_page_command(model_cfg, eval_cfg),
    }  # fmt: skip


def draw_answer(ds, clip: str, answer: dict, png: str, frames_shown: int = 5) -> None:
    """The served masks over the clip's frames: a row per expression, actor and target in the page's colours."""
    names = ds.videos[clip].frames
    shown = sorted({int(i) for i in np.linspace(0, len(names) - 1, min(frames_shown, len(names)))})
    rows, titles = [], []
    for e in answer["expressions"]:
        cells = []
        for i in shown:
            masks = [("actor", e["actor"][i], ACTOR_COLOUR)]
            if e["target"] is not None:
                masks.append(("target", e["target"][i], TARGET_COLOUR))
            cells.append(overlay_masks(ds.read_frame(clip, names[i]), masks))
        rows.append(cells)
        titles.append(f"{e['expression']}  ->  {' | '.join(e['answers'])}")
    save_png(png, tile_rows(rows, titles))


def report_section(served: dict[str, Any], out: str) -> str:
    """The report's serving section (links relative to the report file in `out`)."""
    answer, result = served["answer"], served["result"]
    ckpt = answer["checkpoint"]
    timings = answer["timings"]
    lines = [
        "## Serving: the trained checkpoint on Ray Serve",
        f"The model app served checkpoint `{ckpt['id']}` (content hash `{ckpt['content_hash'][:16]}`, config "
        f"`{ckpt['config_name']}`) and the evaluation app held the {DATASET_NAME} set; both started in "
        f"{served['seconds']['start']} s on the demo's Ray. One `POST /v1/segment` for clip `{served['clip']}` with "
        f"{len(served['expressions'])} expressions took {served['seconds']['segment']} s (MLLM "
        f"{timings['mllm_s']:.2f} s, SAM2 encoder {timings['encoder_s']:.2f} s, propagation "
        f"{timings['propagation_s']:.2f} s; the MLLM saw frames {answer['mllm_frames']}).",
        f"![served overlay]({os.path.relpath(served['overlay'], out)})",
        f"`POST /eval/v1/evaluate` scored the trained model's predictions file in {served['seconds']['evaluate']} s: "
        f"Overall J&F {result['settings']['overall']['JF']:.2f}, "
        + ("equal to `interrvos evaluate` on the same file." if served["equal_to_cli"]
           else "**different from `interrvos evaluate` on the same file**."),
        result["markdown"],
        f"Start the web page on this checkpoint:\n\n```bash\n{served['command']}\n```",
    ]  # fmt: skip
    return "\n\n".join(lines)
