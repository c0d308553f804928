"""The model app on Ray Serve: ReVIOsA checkpoints as multiplexed, autoscaling replicas behind one
FastAPI ingress (routes in docs/serving.md), plus the web page. Thin: every request is decoded,
run and encoded by the library (serving.requests, video_input, checkpoints, segment); this module
only wires HTTP, Serve's multiplexing and a replica's health.

    serve run serve/model.yaml          # or: interrvos serve model --config serve/model.yaml
"""


import asyncio
import json
import os
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from ray import serve

from interrvos.serving.config import ModelAppConfig
from interrvos.serving.errors import NotFound, RequestTimeout, ServingError
from interrvos.serving.http import (
    NDJSON,
    STATIC_DIR,
    add_error_handlers,
    authorize,
    read_json_or_multipart,
    wants_ndjson,
)

api = FastAPI(title="InterRVOS model server", docs_url="/docs")
EVALUATION_SET = "__evaluation__"  # the name a dataset root from the evaluation app is opened under
add_error_handlers(api)


class ServedModel:
    """A loaded checkpoint in a replica. Serve's LRU eviction calls __del__, which only forgets it here:
    a request still holding it (e.g. /v1/compare of two checkpoints with a cap of 1) finishes with it,
    and its memory goes when the last reference does."""

    def __init__(self, info, model, loaded: "dict[str, ServedModel]"):
        self.info, self.model, self._loaded = info, model, loaded
        loaded[info.id] = self

    def __del__(self):
        if self._loaded.get(self.info.id) is self:
            del self._loaded[self.info.id]


@serve.deployment(name="ModelServer")
@serve.ingress(api)
class ModelServer:
    def __init__(self, config: dict[str, Any]):
        import torch

        from interrvos.serving.checkpoints import CheckpointCatalog

        self.cfg = ModelAppConfig.model_validate(config)
        torch.set_num_threads(self.cfg.num_threads)
        self.catalog = CheckpointCatalog(self.cfg.checkpoints_root)
        self.loaded: dict[str, ServedModel] = {}
        # One model call at a time per replica: torch already uses the replica's threads, and a
        # bounded working set keeps a replica's memory flat under load; the rest wait in Serve's queue.
        self._compute = threading.Lock()
        self._broken: str | None = None
        # A plain coroutine function (Serve keeps its LRU state on it), with the cap from config.
        async def load(checkpoint_id: str) -> ServedModel:
            return await self._load(checkpoint_id)

        self.get_model = serve.multiplexed(max_num_models_per_replica=self.cfg.max_models_per_replica)(load)

    async def _load(self, checkpoint_id: str) -> ServedModel:
        from interrvos.serving.checkpoints import load_model

        info = self.catalog.get(checkpoint_id)
        model = await asyncio.to_thread(load_model, info, self.cfg.device, self.cfg.dtype)
        return ServedModel(info, model, self.loaded)

    async def _model_for(self, requested: str | None) -> ServedModel:
        checkpoint_id = requested or serve.get_multiplexed_model_id() or self.cfg.default_checkpoint
        if not checkpoint_id:
            raise NotFound("no checkpoint named: give `checkpoint` (or the serve_multiplexed_model_id header); "
                           f"the known ids are at GET /v1/models ({', '.join(self.catalog.ids()) or 'none'})")
        self.catalog.get(checkpoint_id)  # 404 naming the id before Serve's loader wraps the error
        return await self.get_model(checkpoint_id)

    def check_health(self) -> None:
        """Serve restarts a replica whose model can no longer run (e.g. a lost CUDA context)."""
        import torch

        if self._broken:
            raise RuntimeError(f"the model failed: {self._broken}")
        if self.cfg.device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device is cuda but no GPU is visible to this replica")

    # ---- pages ---------------------------------------------------------------------------------------
    @api.get("/", include_in_schema=False)
    def page(self) -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    @api.get("/leaderboard", include_in_schema=False)
    def leaderboard_page(self) -> FileResponse:
        return FileResponse(STATIC_DIR / "leaderboard.html")

    @api.get("/static/{name}", include_in_schema=False)
    def static(self, name: str) -> FileResponse:
        path = (STATIC_DIR / name).resolve()
        if path.parent != STATIC_DIR.resolve() or not path.is_file():
            raise NotFound(f"no static file {name!r}")
        return FileResponse(path)

    # ---- API -----------------------------------------------------------------------------------------
    @api.get("/healthz")
    def healthz(self) -> dict:
        return {"status": "ok", "pid": os.getpid(), "loaded": sorted(self.loaded)}

    @api.get("/v1/models")
    def models(self, request: Request) -> dict:
        authorize(request, self.cfg.auth)
        return {"default": self.cfg.default_checkpoint, "models": [m.model_dump(mode="json") for m in self.catalog.list()]}

    @api.get("/v1/clips")
    def clips(self, request: Request) -> dict:
        from interrvos.serving.video_input import list_clips

        authorize(request, self.cfg.auth)
        return {"clips": list_clips(self.cfg)}

    @api.get("/v1/clips/{dataset}/{clip}/frames/{index}")
    def clip_frame(self, dataset: str, clip: str, index: int, request: Request) -> Response:
        from interrvos.serving.video_input import clip_frame_jpeg

        authorize(request, self.cfg.auth)
        return Response(clip_frame_jpeg(self.cfg, dataset, clip, index), media_type="image/jpeg")

    @api.post("/v1/segment")
    async def segment(self, request: Request) -> Response:
        from interrvos.serving.requests import SegmentRequest, parse_request

        authorize(request, self.cfg.auth)
        body, upload = await read_json_or_multipart(request, self.cfg.limits)
        req = parse_request(body, SegmentRequest, self.cfg.limits, has_upload=upload is not None)
        served = await self._model_for(req.checkpoint)
        if wants_ndjson(request):
            return await self._stream(served, req, upload)
        answer = await self._run(lambda cancelled: self._answer(served, req, upload, cancelled))
        return JSONResponse(answer)

    @api.post("/v1/compare")
    async def compare(self, request: Request) -> JSONResponse:
        from interrvos.serving.requests import CompareRequest, parse_request
        from interrvos.serving.segment import compare_answers

        authorize(request, self.cfg.auth)
        body, upload = await read_json_or_multipart(request, self.cfg.limits)
        req = parse_request(body, CompareRequest, self.cfg.limits, has_upload=upload is not None)
        a, b = [await self._model_for(c) for c in req.checkpoints]
        answers = await self._run(lambda cancelled: [
            self._answer(m, req.for_checkpoint(m.info.id), upload, cancelled) for m in (a, b)])
        return JSONResponse({"a": answers[0], "b": answers[1], "iou": compare_answers(*answers)})

    # Called through a DeploymentHandle by the evaluation app (model composition), not over HTTP: the
    # dataset root comes from the evaluation app's registry, inside the cluster.
    async def predict_clip(self, checkpoint: str, dataset_root: str, clip: str, expressions: list[str],
                           options: dict[str, Any] | None = None) -> dict:  # fmt: skip
        from interrvos.serving.requests import SegmentRequest, parse_request

        served = await self._model_for(checkpoint)
        cfg = self.cfg.model_copy(update={"datasets": {**self.cfg.datasets, EVALUATION_SET: dataset_root}})
        req = parse_request({**(options or {}), "video": {"dataset": EVALUATION_SET, "clip": clip},
                             "expressions": expressions}, SegmentRequest, self.cfg.limits)  # fmt: skip
        return await self._run(lambda cancelled: self._answer(served, req, None, cancelled, cfg))

    # ---- running the model ---------------------------------------------------------------------------
    def _guard(self, work):
        """Run model work; a torch failure (out of memory, a lost device) marks the replica unhealthy."""
        try:
            return work()
        except RuntimeError as err:
            if not isinstance(err, ServingError):
                self._broken = f"{type(err).__name__}: {err}"
            raise

    def _answer(self, served: ServedModel, req, upload, cancelled, cfg: ModelAppConfig | None = None) -> dict:
        from interrvos.serving.segment import run_segment
        from interrvos.serving.video_input import open_video

        with self._compute, open_video(req, cfg or self.cfg, upload) as video:
            return self._guard(lambda: run_segment(served.model, served.info, video, req, cancelled=cancelled,
                                                   deadline=self._deadline()))  # fmt: skip

    def _deadline(self) -> float:
        return time.monotonic() + self.cfg.limits.request_timeout_s

    async def _run(self, work):
        """Run blocking model work in a thread, cancelled (between frames) on timeout or disconnect."""
        stop = threading.Event()
        task = asyncio.ensure_future(asyncio.to_thread(work, stop.is_set))
        try:
            return await asyncio.wait_for(asyncio.shield(task), self.cfg.limits.request_timeout_s)
        except asyncio.TimeoutError:
            stop.set()
            raise RequestTimeout(f"the request took longer than limits.request_timeout_s "
                                 f"({self.cfg.limits.request_timeout_s} s)") from None
        except asyncio.CancelledError:  # the client went away
            stop.set()
            raise

    async def _stream(self, served: ServedModel, req, upload) -> StreamingResponse:
        """NDJSON events from a worker thread as SAM2 propagates. A problem before the first event is
        an HTTP error; after it, an error line. A disconnect stops the thread at the next frame."""
        from interrvos.serving.segment import iter_segment
        from interrvos.serving.video_input import open_video

        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue(maxsize=8)
        stop = threading.Event()
        done = object()

        def put(item) -> None:
            asyncio.run_coroutine_threadsafe(queue.put(item), loop).result()

        def produce() -> None:
            try:
                with self._compute, open_video(req, self.cfg, upload) as video:
                    events = iter_segment(served.model, served.info, video, req, cancelled=stop.is_set,
                                          deadline=self._deadline())  # fmt: skip
                    self._guard(lambda: [put(event) for event in events if not stop.is_set()])
            except BaseException as err:  # noqa: BLE001 - handed to the request's coroutine
                put(err)
            finally:
                put(done)

        worker = asyncio.ensure_future(asyncio.to_thread(produce))
        first = await queue.get()
        if isinstance(first, BaseException):
            await worker
            raise first

        async def lines() -> AsyncIterator[str]:
            try:
                event = first
                while event is not done:
                    if isinstance(event, BaseException):
                        from interrvos.serving.segment import error_event

                        event = error_event(event)
                    yield json.dumps(event, separators=(",", ":")) + "\n"
                    event = await queue.get()
            finally:
                stop.set()
                while not worker.done():  # drain so the producer never blocks on a full queue
                    try:
                        queue.get_nowait()
                    except asyncio.QueueEmpty:
                        await asyncio.sleep(0.01)

        return StreamingResponse(lines(), media_type=NDJSON)


def model_deployment(cfg: ModelAppConfig):
    """The ModelServer deployment with the replicas and resources of `cfg.deployment`."""
    return ModelServer.options(**cfg.deployment.serve_options())


def build_app(args: dict[str, Any] | None = None):
    """Serve application builder (`import_path` of serve/model.yaml); args: a ModelAppConfig."""
    cfg = ModelAppConfig.model_validate(args or {})
    return model_deployment(cfg).bind(cfg.model_dump(mode="json"))
