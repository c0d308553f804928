"""The results database: round trip, the same file found again, the leaderboard's order, results that
outlive the store object, and writers in several threads and processes at once."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from datetime import datetime

import pytest

from interrvos.errors import ConfigError
from interrvos.serving.results_store import ResultsStore, database_path


def result(overall: float | None, referring: float | None = 10.0, actor_target: float | None = 20.0) -> dict:
    return {"settings": {"overall": {"J": overall, "F": overall, "JF": overall},
                         "referring": {"JF": referring}, "actor_target": {"JF": actor_target}},
            "markdown": "| m |", "expressions": [{"video": "v1", "expression": "0", "JF": 1.5}]}


@pytest.fixture
def url(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/nested/folder/results.sqlite"  # absolute: sqlite:////tmp/...


def test_round_trip_keeps_everything(url):
    store = ResultsStore(url)
    rid = store.put("tiny", "mine", "file", result(55.5, 40.0, 60.0), file_sha256="ab" * 32, submitted_by="ana")
    got = store.get(rid)
    assert got["result"] == result(55.5, 40.0, 60.0)
    assert {k: got[k] for k in ("id", "dataset", "name", "kind", "file_sha256", "checkpoint", "submitted_by",
                                "overall", "referring", "actor_target")} == {
        "id": rid, "dataset": "tiny", "name": "mine", "kind": "file", "file_sha256": "ab" * 32, "checkpoint": None,
        "submitted_by": "ana", "overall": 55.5, "referring": 40.0, "actor_target": 60.0}
    when = datetime.fromisoformat(got["submitted_at"].replace("Z", "+00:00"))
    assert when.utcoffset().total_seconds() == 0 and got["submitted_at"].endswith("Z")
    assert store.get(rid + 1000) is None
    with sqlite3.connect(database_path(url)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_same_file_is_found_and_stored_once_per_dataset(url):
    store = ResultsStore(url)
    first = store.put("tiny", "a", "file", result(50.0), file_sha256="f" * 64)
    assert store.find("tiny", "f" * 64)["id"] == first
    assert store.find_by_sha("tiny", "f" * 64)["name"] == "a"
    assert store.put("tiny", "renamed", "file", result(50.0), file_sha256="f" * 64) == first
    assert store.find("tiny", "0" * 64) is None and store.find("other", "f" * 64) is None
    elsewhere = store.put("other", "a", "file", result(50.0), file_sha256="f" * 64)
    assert elsewhere != first and len(store.leaderboard("tiny")) == 1 and len(store.leaderboard("other")) == 1


def test_checkpoint_results_are_found_by_content_hash_and_options(url):
    store = ResultsStore(url)
    rid = store.put("tiny", "ckpt-a", "checkpoint", result(30.0), checkpoint="ckpt-a", checkpoint_hash="h1",
                    options={"num_frames": 4, "sampling": None})
    assert store.find("tiny", "h1", "checkpoint", {"sampling": None, "num_frames": 4})["id"] == rid
    assert store.find("tiny", "h1", "checkpoint", {"num_frames": 8, "sampling": None}) is None
    assert store.find("tiny", "h1", "file") is None
    rows = store.leaderboard("tiny")
    assert rows[0]["checkpoint"] == "ckpt-a" and rows[0]["checkpoint_hash"] == "h1" and rows[0]["file_sha256"] is None
    with pytest.raises(ValueError, match="checkpoint id"):
        store.put("tiny", "x", "checkpoint", result(1.0))
    with pytest.raises(ValueError, match="file_sha256"):
        store.put("tiny", "x", "file", result(1.0))


def test_leaderboard_ranks_by_overall_jf_ties_share_a_rank(url):
    store = ResultsStore(url)
    for name, overall, when in [("low", 20.0, "2025-01-01T00:00:01.000Z"), ("none", None, "2025-01-01T00:00:00Z"),
                                ("tie-late", 70.0, "2025-01-03T00:00:00Z"), ("best", 90.5, "2025-01-04T00:00:00Z"),
                                ("tie-early", 70.0, "2025-01-02T00:00:00Z")]:
        store.put("tiny", name, "file", result(overall), file_sha256=name, submitted_at=when)
    store.put("other", "elsewhere", "file", result(99.0), file_sha256="x")
    rows = store.leaderboard("tiny")
    assert [(r["rank"], r["name"], r["overall"]) for r in rows] == [
        (1, "best", 90.5), (2, "tie-early", 70.0), (2, "tie-late", 70.0), (4, "low", 20.0), (None, "none", None)]
    assert "result" not in rows[0] and rows[0]["referring"] == 10.0
    assert [r["name"] for r in store.leaderboard("tiny", limit=2)] == ["best", "tie-early"]
    assert rows[1]["submitted_at"] == "2025-01-02T00:00:00.000Z"  # one spelling, whatever was given
    assert store.leaderboard("nothing") == [] and store.datasets() == ["other", "tiny"]


def test_results_outlive_the_store_and_a_relative_url_makes_its_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rid = ResultsStore("sqlite:///runs/serve/evaluate/results.sqlite").put(
        "tiny", "kept", "file", result(42.0), file_sha256="k")
    assert (tmp_path / "runs/serve/evaluate/results.sqlite").is_file()
    again = ResultsStore("sqlite:///runs/serve/evaluate/results.sqlite")
    assert again.get(rid)["name"] == "kept" and again.find("tiny", "k")["result"] == result(42.0)


def test_writers_in_threads_lose_nothing_and_duplicate_once(url):
    store = ResultsStore(url)
    ids: list[int] = []
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for n in range(10):
                ids.append(store.put("tiny", f"w{worker}-{n}", "file", result(float(n)), file_sha256=f"{worker}-{n}"))
                ids.append(store.put("tiny", "same", "file", result(1.0), file_sha256="shared"))
        except BaseException as err:  # noqa: BLE001 - surfaced by the assert below
            errors.append(err)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    rows = ResultsStore(url).leaderboard("tiny")
    assert len(rows) == 6 * 10 + 1 and len({r["id"] for r in rows}) == len(rows)
    assert len(set(ids)) == len(rows)  # every put answered with the id of a stored row
    assert sum(r["file_sha256"] == "shared" for r in rows) == 1


WRITER = """
import sys
from interrvos.serving.results_store import ResultsStore
store = ResultsStore(sys.argv[1])
for n in range(15):
    store.put("tiny", f"{sys.argv[2]}-{n}", "file", {"settings": {"overall": {"JF": float(n)}}},
              file_sha256=f"{sys.argv[2]}-{n}")
    store.put("tiny", "same", "file", {"settings": {}}, file_sha256="shared")
"""


def test_writers_in_processes_share_one_file(url):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, url, f"p{i}"], env=env, stderr=subprocess.PIPE)
             for i in range(3)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    rows = ResultsStore(url).leaderboard("tiny")
    assert len(rows) == 3 * 15 + 1 and sum(r["file_sha256"] == "shared" for r in rows) == 1


@pytest.mark.parametrize("bad", ["postgresql://db/results", "results.sqlite", "sqlite://relative.db",
                                 "sqlite:///:memory:", "sqlite:///"])
def test_unsupported_database_urls_name_the_field(bad):
    with pytest.raises(ConfigError, match="database_url"):
        ResultsStore(bad)


def test_a_database_from_newer_code_is_refused(url):
    ResultsStore(url)
    with sqlite3.connect(database_path(url)) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(ConfigError, match="schema version 99"):
        ResultsStore(url)


def test_results_with_nan_or_missing_settings_are_stored(url):
    store = ResultsStore(url)
    rid = store.put("tiny", "odd", "file", {"settings": {}, "x": float("nan")}, file_sha256="odd")
    got = store.get(rid)
    assert got["overall"] is None and json.dumps(got["result"]) == '{"settings": {}, "x": NaN}'
