"""The prediction cache: one SQLite row per predicted expression (keys.expression_key -> the
predictions-format line), plus content hashes of folders by their files' (name, size, mtime).

SQLite because every write is a transaction: a row is either wholly there or not, so a sweep killed
at any moment resumes from exactly the expressions it had finished, and several sweeps on one
machine can share a cache (WAL mode, a busy timeout). The cache lives on the driver's disk (a local
folder); workers send their lines back through Ray, they never write here.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from typing import Any

from interrvos.data import storage

SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (key TEXT PRIMARY KEY, line TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS folder_hashes (path TEXT PRIMARY KEY, signature TEXT NOT NULL, hash TEXT NOT NULL);
"""
CHUNK = 500  # keys per IN (...) query: below SQLite's variable limit


class PredictionCache:
    """Thread-safe (one connection behind a lock): the sweep's prediction threads commit through it."""

    def __init__(self, folder: str):
        if storage.is_remote(folder):
            raise ValueError(f"cache {folder!r}: the prediction cache is a local folder (SQLite), not a URI")
        os.makedirs(folder, exist_ok=True)
        self.folder = folder
        self.path = os.path.join(folder, "predictions.sqlite")
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=60, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def present(self, keys: Iterable[str]) -> set[str]:
        """The keys that have a cached prediction."""
        keys, found = list(keys), set()
        with self._lock:
            for i in range(0, len(keys), CHUNK):
                part = keys[i:i + CHUNK]
                rows = self._db.execute(f"SELECT key FROM predictions WHERE key IN ({','.join('?' * len(part))})", part)
                found.update(k for (k,) in rows)
        return found

    def lines(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """key -> line for the keys that are cached."""
        keys, out = list(keys), {}
        with self._lock:
            for i in range(0, len(keys), CHUNK):
                part = keys[i:i + CHUNK]
                rows = self._db.execute(
                    f"SELECT key, line FROM predictions WHERE key IN ({','.join('?' * len(part))})", part)
                out.update((k, json.loads(line)) for k, line in rows)
        return out

    def put(self, key: str, line: dict[str, Any] | str) -> None:
        """Store one expression's line (committed at once: what a kill leaves is what was finished)."""
        text = line if isinstance(line, str) else json.dumps(line, separators=(",", ":"))
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO predictions (key, line, created) VALUES (?, ?, ?)",
                             (key, text, time.time()))

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM predictions").fetchone()[0])

    def folder_hash(self, folder: str) -> str:
        """Content hash of a folder (serving.checkpoints.content_hash), remembered across runs by its
        files' (name, size, mtime): an unchanged multi-GB checkpoint is not read again."""
        from interrvos.serving.checkpoints import _files, content_hash

        where = folder if storage.is_remote(folder) else storage.resolve(folder)[1]
        signature = hashlib.sha256(repr(_files(folder)).encode()).hexdigest()
        with self._lock:
            row = self._db.execute("SELECT signature, hash FROM folder_hashes WHERE path = ?", (where,)).fetchone()
        if row is not None and row[0] == signature:
            return row[1]
        value = content_hash(folder)
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO folder_hashes (path, signature, hash) VALUES (?, ?, ?)",
                             (where, signature, value))
        return value
