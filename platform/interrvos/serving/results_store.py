"""Every evaluation result, stored durably: who submitted what (a file by its sha256, or a checkpoint
by id and content hash), when, its headline J&F, and the whole answer; the leaderboard reads it.

SQLite from the standard library ("sqlite:///relative/path" or "sqlite:////absolute/path", the
SQLAlchemy spelling). Write-ahead logging lets readers go on while one writer writes; every write is
one short IMMEDIATE transaction on its own connection, so several threads, replicas or processes can
share one file. A file submitted twice to one dataset is stored once (looked up under the write
lock, and a unique index), so a race of two identical uploads still leaves one row; both get its id.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from interrvos.errors import ConfigError

Kind = Literal["file", "checkpoint"]
SCHEMA_VERSION = 1
PREFIX = "sqlite:///"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('file', 'checkpoint')),
    file_sha256 TEXT,
    checkpoint TEXT,
    checkpoint_hash TEXT,
    options TEXT,
    submitted_by TEXT,
    submitted_at TEXT NOT NULL,
    overall REAL,
    referring REAL,
    actor_target REAL,
    result TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS results_file ON results (dataset, file_sha256) WHERE kind = 'file';
CREATE INDEX IF NOT EXISTS results_checkpoint ON results (dataset, checkpoint_hash) WHERE kind = 'checkpoint';
CREATE INDEX IF NOT EXISTS results_rank ON results (dataset, overall DESC);
"""

_COLUMNS = ("id", "dataset", "name", "kind", "file_sha256", "checkpoint", "checkpoint_hash", "options",
            "submitted_by", "submitted_at", "overall", "referring", "actor_target")


def database_path(database_url: str) -> str:
    """The file of a "sqlite:///path" URL; ConfigError naming `database_url` for anything else."""
    url = str(database_url)
    if not url.startswith(PREFIX):
        scheme = url.split("://", 1)[0] + "://" if "://" in url else url
        raise ConfigError(f"database_url: {scheme!r} is not supported; use sqlite:///relative/path or "
                          f"sqlite:////absolute/path (got {url!r})")
    path = url[len(PREFIX):]
    if not path or path == ":memory:" or path.startswith("file:"):
        raise ConfigError(f"database_url: {url!r} names no database file (results must outlive the process)")
    return path


def now_utc() -> str:
    """ISO 8601 in UTC, to the millisecond: sorts as text in time order."""
    return iso_utc(datetime.now(UTC))


def iso_utc(when: datetime | str) -> str:
    """One spelling for every stored time (so text order is time order); naive times are taken as UTC."""
    if isinstance(when, str):
        when = datetime.fromisoformat(when.replace("Z", "+00:00"))
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _options_key(options: Mapping[str, Any] | None) -> str | None:
    return None if options is None else json.dumps(dict(options), sort_keys=True, separators=(",", ":"))


def _jf(result: Mapping[str, Any], setting: str) -> float | None:
    value = ((result.get("settings") or {}).get(setting) or {}).get("JF")
    return None if value is None else float(value)


class ResultsStore:
    """The results table of one SQLite file. Records: {id, dataset, name, kind, file_sha256, checkpoint,
    checkpoint_hash, options, submitted_by, submitted_at, overall, referring, actor_target, result}
    (the three J&F columns are the result's settings' JF, x100; `result` is the stored answer)."""

    def __init__(self, database_url: str, timeout_s: float = 30.0):
        self.path = database_path(database_url)
        self.timeout_s = timeout_s
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")  # persistent: stored in the file once set
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise ConfigError(f"database_url: {self.path} has schema version {version}, newer than this "
                                  f"code's {SCHEMA_VERSION}")
            # One transaction: processes starting together on a new file create the schema once.
            db.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}PRAGMA user_version = {SCHEMA_VERSION};COMMIT;")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # A connection per operation: nothing shared between threads, and nothing left open.
        db = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None)
        try:
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA synchronous=NORMAL")  # durable across crashes of the process under WAL
            yield db
        finally:
            db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")  # take the write lock now: no deadlock upgrading a read lock
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def put(self, dataset: str, name: str, kind: Kind, result: Mapping[str, Any], *, file_sha256: str | None = None,
            checkpoint: str | None = None, checkpoint_hash: str | None = None,
            options: Mapping[str, Any] | None = None, submitted_by: str | None = None,
            submitted_at: str | datetime | None = None) -> int:
        """Store a result; returns its id. A file (kind "file", by `file_sha256`) already stored for
        the dataset is not stored again: its id comes back."""
        if kind not in ("file", "checkpoint"):
            raise ValueError(f"kind must be 'file' or 'checkpoint', not {kind!r}")
        if kind == "file" and not file_sha256:
            raise ValueError("a file result needs its file_sha256")
        if kind == "checkpoint" and not checkpoint:
            raise ValueError("a checkpoint result needs its checkpoint id")
        row = (dataset, name, kind, file_sha256, checkpoint, checkpoint_hash, _options_key(options), submitted_by,
               iso_utc(submitted_at) if submitted_at else now_utc(), _jf(result, "overall"), _jf(result, "referring"),
               _jf(result, "actor_target"), json.dumps(result, separators=(",", ":")))
        with self._write() as db:
            if kind == "file":  # under the write lock: two identical uploads racing still give one row
                found = db.execute("SELECT id FROM results WHERE dataset = ? AND kind = 'file' AND file_sha256 = ?",
                                   (dataset, file_sha256)).fetchone()
                if found is not None:
                    return int(found["id"])
            cur = db.execute(
                "INSERT INTO results (dataset, name, kind, file_sha256, checkpoint, checkpoint_hash, options, "
                "submitted_by, submitted_at, overall, referring, actor_target, result) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
            return int(cur.lastrowid)

    def get(self, result_id: int) -> dict[str, Any] | None:
        """The stored record {id, dataset, name, kind, ..., overall, referring, actor_target, result}."""
        with self._connect() as db:
            row = db.execute("SELECT * FROM results WHERE id = ?", (int(result_id),)).fetchone()
        return None if row is None else _record(row)

    def find(self, dataset: str, sha256: str, kind: Kind = "file",
             options: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """The stored record of the same submission: a file with this sha256, or (kind "checkpoint")
        the latest evaluation of a checkpoint with this content hash and these options."""
        with self._connect() as db:
            if kind == "file":
                row = db.execute("SELECT * FROM results WHERE dataset = ? AND kind = 'file' AND file_sha256 = ?",
                                 (dataset, sha256)).fetchone()
            else:
                row = db.execute("SELECT * FROM results WHERE dataset = ? AND kind = 'checkpoint' AND "
                                 "checkpoint_hash = ? AND options IS ? ORDER BY id DESC LIMIT 1",
                                 (dataset, sha256, _options_key(options))).fetchone()
        return None if row is None else _record(row)

    def find_by_sha(self, dataset: str, sha256: str) -> dict[str, Any] | None:
        return self.find(dataset, sha256, "file")

    def leaderboard(self, dataset: str, limit: int | None = None) -> list[dict[str, Any]]:
        """Rows by Overall J&F, best first (ties share a rank, 1, 1, 3; the earlier submission is
        listed first); results without an Overall J&F come last, unranked."""
        with self._connect() as db:
            rows = db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM results WHERE dataset = ? "
                "ORDER BY overall IS NULL, overall DESC, submitted_at, id", (dataset,)).fetchall()
        out: list[dict[str, Any]] = []
        for n, row in enumerate(rows, start=1):
            entry = _summary(row)
            if entry["overall"] is None:
                rank = None
            elif out and out[-1]["overall"] == entry["overall"]:
                rank = out[-1]["rank"]
            else:
                rank = n
            out.append({"rank": rank, **entry})
        return out[:limit] if limit is not None else out

    def datasets(self) -> list[str]:
        with self._connect() as db:
            return [r[0] for r in db.execute("SELECT DISTINCT dataset FROM results ORDER BY dataset")]


def _summary(row: sqlite3.Row) -> dict[str, Any]:
    entry = {k: row[k] for k in _COLUMNS}
    entry["options"] = None if entry["options"] is None else json.loads(entry["options"])
    return entry


def _record(row: sqlite3.Row) -> dict[str, Any]:
    return {**_summary(row), "result": json.loads(row["result"])}
