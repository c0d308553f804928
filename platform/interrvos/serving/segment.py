"""One /v1/segment request on a loaded model: the answer as one JSON document (`run_segment`) or as
NDJSON events frame by frame while SAM2 propagates (`iter_segment`), and the A/B comparison of two
answers (`compare_answers`). Both forms come from the same event stream over
`interrvos.model.inference.iter_segment_video`, the generator `segment_video` (and so
`interrvos predict`) collects: served masks equal predicted ones exactly.

All of a request's expressions are segmented in one pass: SAM2 encodes each frame once and decodes
every expression's prompts on it (see interrvos.model.tracking)."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable, Iterator

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from interrvos.data.rle import RLE
from interrvos.errors import VideoError
from interrvos.model.config import InferenceSettings
from interrvos.model.inference import FrameSource, inference_context, iter_segment_video
from interrvos.model.tracking import Timings
from interrvos.serving.errors import BadRequest, RequestTimeout, ServingError

log = logging.getLogger(__name__)
PREVIEW_WIDTH = 320  # `rle+frames` images: small enough to ship every frame, big enough to see the overlay


class SegmentCancelled(ServingError):
    """The client went away (or the caller said stop) before the answer was complete."""

    status = 499  # nginx's "client closed request": nobody reads it, but logs and metrics tell it apart


def inference_settings(model, request) -> InferenceSettings:
    """The checkpoint's inference settings with the request's num_frames / sampling applied."""
    update = {k: getattr(request, k) for k in ("num_frames", "sampling") if getattr(request, k) is not None}
    return model.cfg.inference.model_copy(update=update)


def frame_data_url(frame: np.ndarray, max_width: int = PREVIEW_WIDTH, quality: int = 80) -> str:
    """An RGB frame as a JPEG data URL, scaled down to at most `max_width` pixels wide."""
    h, w = frame.shape[:2]
    if w > max_width:
        frame = cv2.resize(frame, (max_width, max(1, round(h * max_width / w))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, quality])  # fmt: skip
    if not ok:
        raise ValueError("JPEG encoding failed")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def ndjson_line(event: dict) -> bytes:
    return (json.dumps(event, separators=(",", ":")) + "\n").encode("utf-8")


def error_event(err: BaseException) -> dict:
    """The in-band error of a stream that has already started (its HTTP status is already 200)."""
    if isinstance(err, ServingError):
        return {"type": "error", "status": err.status, "detail": err.message}
    if isinstance(err, VideoError):
        return {"type": "error", "status": 400, "detail": f"the video cannot be read: {err.reason}"}
    return {"type": "error", "status": 500, "detail": f"internal error: {type(err).__name__}: {str(err)[:300]}"}


def _provenance(model_info) -> dict:
    return model_info.provenance() if hasattr(model_info, "provenance") else dict(model_info)


def _video_block(frames: FrameSource) -> dict:
    if hasattr(frames, "metadata"):
        return frames.metadata()
    h, w = frames[0].shape[:2]
    return {"source": "frames", "frames": len(frames), "height": int(h), "width": int(w),
            "frame_indices": list(range(len(frames)))}  # fmt: skip


def _model_dtype(model):
    return next(model.parameters()).dtype


def _events(model, model_info, frames: FrameSource, request, settings: InferenceSettings | None,
            cancelled: Callable[[], bool] | None, deadline: float | None) -> Iterator[dict]:  # fmt: skip
    """start, frame..., end. Raises on any problem (SegmentCancelled, RequestTimeout, ...)."""
    began = time.perf_counter()
    settings = settings or inference_settings(model, request)
    timings = Timings()
    video = _video_block(frames)
    with_images = request.output == "rle+frames"
    decode_s = float(getattr(frames, "decode_s", 0.0))

    def check(where: str) -> None:
        if cancelled is not None and cancelled():
            raise SegmentCancelled(f"cancelled {where}")
        if deadline is not None and time.monotonic() > deadline:
            raise RequestTimeout(f"the request ran past limits.request_timeout_s {where}")

    check("before the model ran")
    steps = iter_segment_video(model, frames, request.expressions, settings, timings, request.force_answers)
    # autocast entered per step only: a generator that held it across yields would leak it to the caller
    context = lambda: inference_context(model.device, _model_dtype(model))  # noqa: E731
    try:
        with context():
            start = next(steps)
        expressions = [{"expression": e, "answers": a, "has_target": t}
                       for e, a, t in zip(start.expressions, start.answers, start.has_target, strict=True)]  # fmt: skip
        yield {"type": "start", "checkpoint": _provenance(model_info), "video": video,
               "mllm_frames": list(start.cond_frames), "expressions": expressions}  # fmt: skip
        for t in range(start.num_frames):
            check(f"at frame {t} of {start.num_frames}")
            with context():
                masks = next(steps)
            pairs = zip(masks.actor, masks.target, strict=True)
            event = {"type": "frame", "index": t, "frame": video["frame_indices"][t],
                     "masks": [{"actor": a, "target": g} for a, g in pairs]}  # fmt: skip
            if with_images:
                event["image"] = frame_data_url(frames[t])
            yield event
    finally:
        steps.close()  # an abandoned request stops SAM2 here and puts the model back in its mode
    yield {"type": "end", "timings": {
        "decode_s": round(decode_s, 6), "mllm_s": round(timings.mllm, 6), "encoder_s": round(timings.encoder, 6),
        "propagation_s": round(timings.propagation, 6), "total_s": round(decode_s + time.perf_counter() - began, 6),
    }}  # fmt: skip


def iter_segment(model, model_info, frames: FrameSource, request, settings: InferenceSettings | None = None, *,
                 cancelled: Callable[[], bool] | None = None,
                 deadline: float | None = None) -> Iterator[dict]:  # fmt: skip
    """The NDJSON events of a request: {"type": "start"}, one {"type": "frame"} per frame, {"type": "end"}.
    Problems before the start event raise (the caller can still answer with their HTTP status: take the
    first event before sending anything); after it they end the stream with {"type": "error"}.
    cancelled() is asked between frames: True stops the work and the stream ends without an end event.
    deadline: a time.monotonic() after which the request stops with 408."""
    started = False
    try:
        for event in _events(model, model_info, frames, request, settings, cancelled, deadline):
            started = started or event["type"] == "start"
            yield event
    except SegmentCancelled as err:
        log.info("segment request %s", err.message)
        if not started:
            raise
    except Exception as err:
        if not started:
            raise
        log.exception("segment stream failed after it started")
        yield error_event(err)


def run_segment(model, model_info, frames: FrameSource, request, settings: InferenceSettings | None = None, *,
                cancelled: Callable[[], bool] | None = None, deadline: float | None = None) -> dict:  # fmt: skip
    """The whole answer of a /v1/segment request (see the serving spec); raises ServingError subclasses."""
    answer: dict = {}
    for event in _events(model, model_info, frames, request, settings, cancelled, deadline):
        if event["type"] == "start":
            answer = {"checkpoint": event["checkpoint"], "video": event["video"], "mllm_frames": event["mllm_frames"],
                      "expressions": [{"expression": e["expression"], "answers": e["answers"], "actor": [],
                                       "target": [] if e["has_target"] else None}
                                      for e in event["expressions"]]}  # fmt: skip
            if request.output == "rle+frames":
                answer["frames"] = []
        elif event["type"] == "frame":
            for expr, masks in zip(answer["expressions"], event["masks"], strict=True):
                expr["actor"].append(masks["actor"])
                if expr["target"] is not None:
                    expr["target"].append(masks["target"])
            if "image" in event:
                answer["frames"].append(event["image"])
        else:
            answer["timings"] = event["timings"]
    return answer


# --- A/B comparison ---


def _coco(rle: RLE) -> dict:
    counts = rle["counts"]
    return {"size": list(rle["size"]), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


def mask_iou(a: RLE, b: RLE) -> float:
    """Intersection over union of two RLE masks of one size; two empty masks agree fully (1.0)."""
    if list(a["size"]) != list(b["size"]):
        raise ValueError(f"masks of different sizes {a['size']} and {b['size']}")
    pair = [_coco(a), _coco(b)]
    union = int(mask_utils.area(mask_utils.merge(pair, intersect=False)))
    if union == 0:
        return 1.0
    return int(mask_utils.area(mask_utils.merge(pair, intersect=True))) / union


def _empty_like(rles: list[RLE]) -> list[RLE]:
    from interrvos.data.rle import empty_mask_rle

    return [empty_mask_rle(*r["size"]) for r in rles]


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else 1.0


def compare_answers(a: dict, b: dict) -> list[dict]:
    """Per expression, the per-frame mask IoU of two answers on the same input. A target only one side
    has is compared with empty masks on the other (so 1.0 where it is empty too); none: null."""
    texts_a = [e["expression"] for e in a["expressions"]]
    if texts_a != [e["expression"] for e in b["expressions"]]:
        raise BadRequest("the two answers are not for the same expressions")
    if a["video"]["frame_indices"] != b["video"]["frame_indices"]:
        raise BadRequest("the two answers are not on the same frames")
    out = []
    for ea, eb in zip(a["expressions"], b["expressions"], strict=True):
        actor = [mask_iou(x, y) for x, y in zip(ea["actor"], eb["actor"], strict=True)]
        target = None
        if ea["target"] is not None or eb["target"] is not None:
            ta = ea["target"] if ea["target"] is not None else _empty_like(eb["target"])
            tb = eb["target"] if eb["target"] is not None else _empty_like(ea["target"])
            target = [mask_iou(x, y) for x, y in zip(ta, tb, strict=True)]
        out.append({"expression": ea["expression"], "actor": actor, "target": target, "mean_actor": _mean(actor),
                    "mean_target": _mean(target) if target is not None else None})  # fmt: skip
    return out


def compare_response(a: dict, b: dict) -> dict:
    """The /v1/compare answer from the two checkpoints' answers."""
    return {"a": a, "b": b, "iou": compare_answers(a, b)}


def run_compare(model_a, info_a, model_b, info_b, frames: FrameSource, request, *,
                cancelled: Callable[[], bool] | None = None, deadline: float | None = None) -> dict:  # fmt: skip
    """Both checkpoints of a CompareRequest on the same frames, and their IoU."""
    a = run_segment(model_a, info_a, frames, request.for_checkpoint(request.checkpoints[0]),
                    cancelled=cancelled, deadline=deadline)  # fmt: skip
    b = run_segment(model_b, info_b, frames, request.for_checkpoint(request.checkpoints[1]),
                    cancelled=cancelled, deadline=deadline)  # fmt: skip
    return compare_response(a, b)
