"""The JSON bodies of POST /v1/segment and /v1/compare, and their parsing from a JSON body or from the
`request` part of a multipart upload. Every problem is a BadRequest naming the field (or a
PayloadTooLarge naming the limit), so a client can fix its request without reading server logs."""

from __future__ import annotations

import json
from typing import Any, Literal, TypeVar

from pydantic import Field, ValidationError, field_validator, model_validator

from interrvos.config import StrictModel
from interrvos.serving.config import Limits
from interrvos.serving.errors import BadRequest, PayloadTooLarge

MAX_JSON_BYTES = 1 << 20  # a request body is a few lines of JSON; anything near this is a mistake
MAX_EXPRESSION_CHARS = 1000


class PathVideo(StrictModel):
    """A video file the cluster can read: a path (or URI) under one of the configured video roots."""

    path: str = Field(min_length=1, max_length=4096)


class ClipVideo(StrictModel):
    """A clip of a registered dataset, by id."""

    dataset: str = Field(min_length=1, max_length=200)
    clip: str = Field(min_length=1, max_length=500)


class _VideoRequest(StrictModel):
    video: PathVideo | ClipVideo | None = Field(default=None, description="None: the multipart upload")
    expressions: list[str] = Field(min_length=1)
    num_frames: int | None = Field(default=None, ge=1, le=256, description="frames the MLLM sees (None: checkpoint's)")
    sampling: Literal["first", "uniform"] | None = None
    start: int = Field(default=0, ge=0, description="first source frame")
    end: int | None = Field(default=None, ge=1, description="source frame to stop before (None: the video's end)")
    stride: int = Field(default=1, ge=1)
    output: Literal["rle", "rle+frames"] = "rle"
    force_answers: list[str | None] | None = Field(
        default=None, description="per expression, an answer to teacher-force instead of generating (benchmarks, "
        "tests, demos of an untrained model); null entries are generated")  # fmt: skip

    @field_validator("video", mode="before")
    @classmethod
    def _one_kind_of_video(cls, value: Any) -> Any:
        # Checked by hand: a plain union would answer with both models' errors for one typo.
        if value is None or isinstance(value, PathVideo | ClipVideo):
            return value
        if not isinstance(value, dict):
            raise ValueError('give {"path": ...} or {"dataset": ..., "clip": ...} (or null with a multipart upload)')
        keys = set(value)
        if keys == {"path"}:
            return PathVideo.model_validate(value)
        if keys == {"dataset", "clip"}:
            return ClipVideo.model_validate(value)
        raise ValueError(f'give {{"path": ...}} or {{"dataset": ..., "clip": ...}}, got the keys {sorted(keys)}')

    @field_validator("expressions")
    @classmethod
    def _texts(cls, value: list[str]) -> list[str]:
        cleaned = [" ".join(text.split()) for text in value]
        for i, text in enumerate(cleaned):
            if not text:
                raise ValueError(f"expression {i} is empty")
            if len(text) > MAX_EXPRESSION_CHARS:
                raise ValueError(f"expression {i} has {len(text)} characters (at most {MAX_EXPRESSION_CHARS})")
        return cleaned

    @model_validator(mode="after")
    def _consistent(self):
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be greater than start ({self.start}); end is exclusive")
        if self.force_answers is not None and len(self.force_answers) != len(self.expressions):
            raise ValueError(f"force_answers has {len(self.force_answers)} entries for "
                             f"{len(self.expressions)} expressions")  # fmt: skip
        return self


class SegmentRequest(_VideoRequest):
    checkpoint: str | None = Field(default=None, min_length=1, max_length=200,
                                   description="None: the serve_multiplexed_model_id header, else the default")


class CompareRequest(_VideoRequest):
    checkpoints: list[str] = Field(min_length=2, max_length=2, description="[A, B]")

    def for_checkpoint(self, checkpoint: str) -> SegmentRequest:
        """The same input as a segment request on one of the two checkpoints."""
        return SegmentRequest(**self.model_dump(exclude={"checkpoints"}), checkpoint=checkpoint)


Request = TypeVar("Request", SegmentRequest, CompareRequest)


def _field(loc: tuple) -> str:
    return ".".join(str(part) for part in loc) or "request"


def _decode(data: bytes | str | dict) -> Any:
    if isinstance(data, dict):
        return data
    if isinstance(data, bytes):
        if len(data) > MAX_JSON_BYTES:
            raise PayloadTooLarge(f"the JSON request has {len(data)} bytes (at most {MAX_JSON_BYTES})")
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise BadRequest(f"the request body is not UTF-8 text (byte {err.start})") from None
    if len(data) > MAX_JSON_BYTES:
        raise PayloadTooLarge(f"the JSON request has {len(data)} characters (at most {MAX_JSON_BYTES})")
    if not data.strip():
        raise BadRequest("the request body is empty: expected a JSON object")
    try:
        return json.loads(data)
    except json.JSONDecodeError as err:
        raise BadRequest(f"malformed JSON at line {err.lineno} column {err.colno}: {err.msg}") from None


def parse_request(data: bytes | str | dict, model: type[Request], limits: Limits, has_upload: bool = False) -> Request:
    """A SegmentRequest / CompareRequest from JSON (bytes, text or an already decoded object).
    has_upload: the body also carried a video file (multipart), so request.video must be null."""
    raw = _decode(data)
    if not isinstance(raw, dict):
        raise BadRequest(f"the request must be a JSON object, got {type(raw).__name__}")
    try:
        request = model.model_validate(raw)
    except ValidationError as err:
        problems = [{"field": _field(e["loc"]), "message": e["msg"].removeprefix("Value error, ")}
                    for e in err.errors(include_input=False)]  # fmt: skip
        text = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        raise BadRequest(f"invalid request: {text}", extra={"problems": problems}) from None
    if len(request.expressions) > limits.max_expressions:
        raise PayloadTooLarge(f"expressions: {len(request.expressions)} given, limits.max_expressions is "
                              f"{limits.max_expressions}")  # fmt: skip
    check_video_given(request, has_upload)
    return request


def parse_segment_request(data: bytes | str | dict, limits: Limits, has_upload: bool = False) -> SegmentRequest:
    return parse_request(data, SegmentRequest, limits, has_upload)


def parse_compare_request(data: bytes | str | dict, limits: Limits, has_upload: bool = False) -> CompareRequest:
    return parse_request(data, CompareRequest, limits, has_upload)


def parse_multipart_request(request_part: bytes | str | None, has_upload: bool, model: type[Request],
                            limits: Limits) -> Request:  # fmt: skip
    """The `request` part of a multipart body; with an uploaded `video` part, request.video must be null."""
    if request_part is None:
        raise BadRequest("the multipart body needs a 'request' part holding the JSON request")
    return parse_request(request_part, model, limits, has_upload)


def check_video_given(request: SegmentRequest | CompareRequest, has_upload: bool) -> None:
    """Exactly one video: an upload, or request.video."""
    if has_upload and request.video is not None:
        raise BadRequest("video: give either an uploaded 'video' part or request.video, not both")
    if not has_upload and request.video is None:
        raise BadRequest("video: missing; give {\"path\": ...} or {\"dataset\": ..., \"clip\": ...}, "
                         "or upload the file as the multipart part 'video'")  # fmt: skip
