"""Typed errors. Each names what was wrong (file, video, expression, field) so a user can act on it."""

from __future__ import annotations


class InterRVOSError(Exception):
    """Base class of every error this platform raises on purpose."""


class ConfigError(InterRVOSError):
    """A configuration value is missing or invalid; the message names the dotted field."""


class VideoError(InterRVOSError):
    """A video file cannot be opened or decoded."""

    def __init__(self, path: str, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class DatasetError(InterRVOSError):
    """A dataset folder cannot be read at all (for per-item problems see interrvos.data.validate)."""


class ClusterConnectionError(InterRVOSError):
    """A job cannot join the Ray cluster it was pointed at; the message names the address and what to check."""
