"""API-key check of the serving routes: when the environment variable named by `auth.api_key_env`
holds a non-empty key, a request needs `Authorization: Bearer <key>` (401 without, 403 wrong).
The key is read from the environment at each call (a rotated secret applies without a restart) and
never appears in a message, a log line or an exception."""

from __future__ import annotations

import hmac
import os

from interrvos.serving.config import AuthSettings
from interrvos.serving.errors import Forbidden, Unauthorized

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def api_key(settings: AuthSettings) -> str | None:
    """The configured key, or None when auth is off (variable unset or empty)."""
    key = os.environ.get(settings.api_key_env, "").strip()
    return key or None


def auth_enabled(settings: AuthSettings) -> bool:
    return api_key(settings) is not None


def check_api_key(authorization_header: str | None, settings: AuthSettings) -> None:
    """Raise Unauthorized (no or malformed credentials) or Forbidden (a wrong key); None when allowed."""
    key = api_key(settings)
    if key is None:
        return
    if not authorization_header or not authorization_header.strip():
        raise Unauthorized("this route needs an API key: send 'Authorization: Bearer <key>'", headers=_CHALLENGE)
    scheme, _, given = authorization_header.strip().partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <key>'", headers=_CHALLENGE)
    # compare_digest on bytes: constant time, and it accepts non-ASCII input (str would raise)
    if not hmac.compare_digest(given.strip().encode("utf-8"), key.encode("utf-8")):
        raise Forbidden("the API key is not valid")
