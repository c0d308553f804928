"""Errors a server answers with: each carries its HTTP status and a message naming what is wrong.
The Serve apps turn them into JSON `{"detail": message, ...}` answers; nothing else leaks out."""

from __future__ import annotations

from typing import Any

from interrvos.errors import InterRVOSError


class ServingError(InterRVOSError):
    status = 400

    def __init__(self, message: str, *, extra: dict[str, Any] | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message, self.extra, self.headers = message, extra or {}, headers or {}

    def body(self) -> dict[str, Any]:
        return {"detail": self.message, **self.extra}


class BadRequest(ServingError):
    status = 400


class Unauthorized(ServingError):
    status = 401


class Forbidden(ServingError):
    status = 403


class NotFound(ServingError):
    status = 404


class RequestTimeout(ServingError):
    status = 408


class PayloadTooLarge(ServingError):
    status = 413


class UnsupportedMediaType(ServingError):
    status = 415


class Unprocessable(ServingError):
    """Well-formed but invalid content (a predictions file that does not fit the dataset)."""

    status = 422


class Overloaded(ServingError):
    status = 503

    def __init__(self, message: str, retry_after_s: int = 1, **kw):
        super().__init__(message, headers={"Retry-After": str(retry_after_s)}, **kw)
