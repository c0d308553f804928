"""HTTP plumbing shared by the two apps: errors as JSON answers, the API key, request bodies (JSON or
multipart with an uploaded file) within the configured limits. FastAPI only, no Serve: a plain
FastAPI app (or its TestClient) exercises all of it."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from interrvos.errors import InterRVOSError, VideoError
from interrvos.serving.auth import check_api_key
from interrvos.serving.config import AuthSettings, Limits
from interrvos.serving.errors import BadRequest, PayloadTooLarge, ServingError, UnsupportedMediaType
# Bytes, not FastAPI's UploadFile, which cannot be passed between deployments.
from interrvos.serving.video_input import Upload

STATIC_DIR = Path(__file__).resolve().parent / "static"
NDJSON = "application/x-ndjson"
log = logging.getLogger(__name__)


def add_error_handlers(api: FastAPI) -> None:
    @api.exception_handler(ServingError)
    async def _serving_error(_: Request, err: ServingError) -> JSONResponse:
        return JSONResponse(err.body(), status_code=err.status, headers=err.headers)

    @api.exception_handler(VideoError)
    async def _video_error(_: Request, err: VideoError) -> JSONResponse:
        return JSONResponse({"detail": f"the video cannot be read: {err.reason}"}, status_code=400)

    @api.exception_handler(InterRVOSError)
    async def _platform_error(_: Request, err: InterRVOSError) -> JSONResponse:
        log.exception("request failed")
        return JSONResponse({"detail": f"{type(err).__name__}: {err}"}, status_code=500)

    @api.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, err: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()]
        return JSONResponse({"detail": "; ".join(problems)}, status_code=400)


def authorize(request: Request, settings: AuthSettings) -> None:
    check_api_key(request.headers.get("authorization"), settings)


def wants_ndjson(request: Request) -> bool:
    return NDJSON in request.headers.get("accept", "")


def _limit_bytes(limits: Limits) -> int:
    return int(limits.max_upload_mb * 2**20)


def check_content_length(request: Request, limits: Limits) -> None:
    """413 before reading a body that says it is larger than the limit."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > _limit_bytes(limits) + 2**20:  # + room for form fields
        raise PayloadTooLarge(f"the request body is {int(declared) / 2**20:.1f} MiB; limits.max_upload_mb is "
                              f"{limits.max_upload_mb}")  # fmt: skip


def parse_json(raw: bytes | str, what: str = "request body") -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BadRequest(f"the {what} is not valid JSON ({err})") from None
    if not isinstance(value, dict):
        raise BadRequest(f"the {what} must be a JSON object, not {type(value).__name__}")
    return value


async def read_upload(form, field: str, limits: Limits) -> Upload | None:
    """The bytes of a multipart file field (None when absent); 413 past the limit."""
    part = form.get(field)
    if part is None or isinstance(part, str):
        return None
    limit = _limit_bytes(limits)
    data = await part.read(limit + 1)
    await part.close()
    if len(data) > limit:
        raise PayloadTooLarge(f"{field} {part.filename!r} is larger than limits.max_upload_mb ({limits.max_upload_mb})")
    return Upload(data, part.filename or field, part.content_type)


async def read_json_or_multipart(request: Request, limits: Limits, file_field: str = "video",
                                 json_field: str = "request") -> tuple[bytes | str, Upload | None]:  # fmt: skip
    """The raw JSON request (decoded by serving.requests) from a JSON body, or from a multipart form
    with a file part and the JSON request as a text part."""
    check_content_length(request, limits)
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=8)
        upload = await read_upload(form, file_field, limits)
        raw = form.get(json_field)
        if raw is not None and not isinstance(raw, str):
            raise BadRequest(f"multipart field {json_field!r} must be text (the JSON request), not a file")
        return raw or "", upload
    if kind not in ("application/json", ""):
        raise UnsupportedMediaType(f"content type {kind!r}: send application/json, or multipart/form-data with "
                                   f"a {file_field!r} file and a {json_field!r} JSON field")  # fmt: skip
    raw = await request.body()
    if len(raw) > _limit_bytes(limits):
        raise PayloadTooLarge(f"the JSON body is larger than limits.max_upload_mb ({limits.max_upload_mb})")
    return raw, None
