"""The evaluation app on Ray Serve: a scoring server that holds registered evaluation sets (the ground
truth never leaves it), scores uploaded predictions files exactly as `interrvos evaluate` does,
evaluates a checkpoint by calling the model app through a DeploymentHandle, and keeps every result
in a durable store with a leaderboard. Thin over serving.scoring and serving.results_store.

    serve run serve/evaluate.yaml       # or: interrvos serve evaluate (both apps: interrvos serve all)
"""


import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from ray import serve

from interrvos.serving.config import EvaluateAppConfig
from interrvos.serving.errors import BadRequest, Overloaded, ServingError
from interrvos.serving.http import add_error_handlers, authorize, check_content_length, parse_json, read_upload

api = FastAPI(title="InterRVOS evaluation server", docs_url="/docs")
add_error_handlers(api)


# Module helpers come before the deployment class: Serve pickles the class when it is decorated.
def _by_video(expressions: list[dict]) -> list[tuple[str, list[dict]]]:
    groups: dict[str, list[dict]] = {}
    for e in expressions:
        groups.setdefault(e["video"], []).append(e)
    return list(groups.items())


def _answer(record: dict, cached: bool) -> dict:
    """A stored result as the API answers it: the scoring result plus who, when and which."""
    meta = {k: v for k, v in record.items() if k != "result"}
    return {**record["result"], **meta, "cached": cached}


def _line(event: dict) -> str:
    return json.dumps(event, separators=(",", ":")) + "\n"


@serve.deployment(name="EvaluationServer")
@serve.ingress(api)
class EvaluationServer:
    def __init__(self, config: dict[str, Any]):
        from interrvos.serving.results_store import ResultsStore
        from interrvos.serving.scoring import EvaluationSets

        self.cfg = EvaluateAppConfig.model_validate(config)
        self.sets = EvaluationSets(self.cfg.datasets)
        self.store = ResultsStore(self.cfg.database())

    @api.get("/healthz")
    def healthz(self) -> dict:
        return {"status": "ok", "datasets": sorted(self.cfg.datasets)}

    @api.get("/v1/datasets")
    def datasets(self, request: Request) -> dict:
        authorize(request, self.cfg.auth)
        return {"datasets": self.sets.list()}

    @api.get("/v1/leaderboard")
    def leaderboard(self, request: Request, dataset: str) -> dict:
        authorize(request, self.cfg.auth)
        self.sets.root(dataset)  # 404 naming an unknown dataset
        return {"dataset": dataset, "rows": self.store.leaderboard(dataset)}

    @api.post("/v1/evaluate")
    async def evaluate(self, request: Request) -> JSONResponse:
        """A predictions file (multipart `file`, `dataset`, optional `name`, `submitted_by`) -> the tables."""
        from interrvos.serving.scoring import score_submission

        authorize(request, self.cfg.auth)
        check_content_length(request, self.cfg.limits)
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise BadRequest("send multipart/form-data with a `file` (predictions .jsonl or .parquet) and a "
                             "`dataset` field")  # fmt: skip
        form = await request.form(max_files=1, max_fields=8)
        upload = await read_upload(form, "file", self.cfg.limits)
        dataset = form.get("dataset")
        if upload is None or not isinstance(dataset, str) or not dataset:
            raise BadRequest("multipart fields `file` (the predictions) and `dataset` (a registered name) are required")
        self.sets.root(dataset)
        name, who = str(form.get("name") or upload.filename), str(form.get("submitted_by") or "anonymous")
        sha = hashlib.sha256(upload.data).hexdigest()
        stored = self.store.find(dataset, sha)
        if stored is not None:  # the same file again: the stored result, not a second scoring
            return JSONResponse(_answer(stored, cached=True))
        result = await asyncio.wait_for(asyncio.to_thread(
            score_submission, self.sets, dataset, upload.filename, upload.data, name),
            self.cfg.limits.request_timeout_s)  # fmt: skip
        stored_id = self.store.put(dataset, name, "file", result, file_sha256=sha, submitted_by=who)
        return JSONResponse(_answer(self.store.get(stored_id), cached=False))

    @api.post("/v1/evaluate/checkpoint")
    async def evaluate_checkpoint(self, request: Request) -> StreamingResponse:
        """{"checkpoint": id, "dataset": name, options...} -> NDJSON: one line per expression, then the result."""
        authorize(request, self.cfg.auth)
        body = parse_json(await request.body())
        checkpoint, dataset = body.pop("checkpoint", None), body.pop("dataset", None)
        if not isinstance(checkpoint, str) or not isinstance(dataset, str):
            raise BadRequest("`checkpoint` (an id of GET /v1/models) and `dataset` (a registered name) are required")
        who = str(body.pop("submitted_by", None) or "anonymous")
        self.sets.root(dataset)
        handle = self._model_handle()
        return StreamingResponse(self._checkpoint_events(handle, checkpoint, dataset, who, body),
                                 media_type="application/x-ndjson")

    # ---- helpers -------------------------------------------------------------------------------------
    def _model_handle(self):
        try:
            handle = serve.get_deployment_handle(self.cfg.model_deployment, app_name=self.cfg.model_app)
        except Exception as err:  # noqa: BLE001 - Serve raises several kinds for "not running"
            raise Overloaded(f"the model app {self.cfg.model_app!r} ({self.cfg.model_deployment}) is not running: "
                             f"{err}", retry_after_s=10) from None  # fmt: skip
        return handle

    async def _checkpoint_events(self, handle, checkpoint: str, dataset: str, who: str,
                                 options: dict[str, Any]) -> AsyncIterator[str]:  # fmt: skip
        from interrvos.evaluate.predictions import prediction_record
        from interrvos.serving.scoring import score_lines, score_record

        records, provenance = [], None
        handle = handle.options(multiplexed_model_id=checkpoint)
        try:
            for vid, expressions in _by_video(self.sets.expressions(dataset)):
                # One call per video: its expressions share one pass of SAM2's image encoder.
                answer = await handle.predict_clip.remote(checkpoint, self.sets.root(dataset), vid,
                                                          [e["exp"] for e in expressions], options)  # fmt: skip
                provenance = provenance or answer["checkpoint"]
                for e, given in zip(expressions, answer["expressions"], strict=True):
                    record = prediction_record(vid, e["expression"], given["actor"], given["target"])
                    records.append(record)
                    scored = await asyncio.to_thread(score_record, self.sets, dataset, record)
                    yield _line({"type": "expression", **scored})
            name = f"{checkpoint} ({provenance['content_hash'][:12]})" if provenance else checkpoint
            result = await asyncio.to_thread(score_lines, self.sets, dataset, records, name)
            stored_id = self.store.put(dataset, name, "checkpoint", result, checkpoint=checkpoint,
                                       checkpoint_hash=provenance["content_hash"] if provenance else None,
                                       options=options or None, submitted_by=who)  # fmt: skip
            yield _line({"type": "result", **_answer(self.store.get(stored_id), cached=False)})
        except ServingError as err:
            yield _line({"type": "error", "status": err.status, "detail": err.message})
        except Exception as err:  # noqa: BLE001 - the stream reports it; the server stays up
            yield _line({"type": "error", "status": 500, "detail": f"{type(err).__name__}: {err}"})


def evaluation_deployment(cfg: EvaluateAppConfig):
    return EvaluationServer.options(**cfg.deployment.serve_options())


def build_app(args: dict[str, Any] | None = None):
    """Serve application builder (`import_path` of serve/evaluate.yaml); args: an EvaluateAppConfig."""
    cfg = EvaluateAppConfig.model_validate(args or {})
    return evaluation_deployment(cfg).bind(cfg.model_dump(mode="json"))
