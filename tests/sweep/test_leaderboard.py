"""The leaderboard flag: each finished cell's predictions go to the evaluation app's POST /v1/evaluate."""

from __future__ import annotations

from types import SimpleNamespace

from interrvos.sweep.config import SweepConfig
from interrvos.sweep.leaderboard import send_results


def _outcome(cid: str, status: str) -> SimpleNamespace:
    return SimpleNamespace(status=status, cell=SimpleNamespace(id=cid, label=f"ckpt K={cid[-1]}",
                                                               dataset=SimpleNamespace(id="push")))


def test_finished_cells_are_sent_to_the_evaluation_app_under_their_labels(tmp_path, monkeypatch):
    import requests

    cfg = SweepConfig.model_validate({
        "name": "grid", "out": str(tmp_path), "checkpoints": [{"path": "ckpt"}], "datasets": [{"path": "push"}],
        "leaderboard": {"url": "http://127.0.0.1:9/eval/", "datasets": {"push": "heldout"}}})
    (tmp_path / "cells" / "c1").mkdir(parents=True)
    (tmp_path / "cells" / "c1" / "predictions.jsonl").write_text('{"video": "v"}\n')
    monkeypatch.setenv("INTERRVOS_API_TOKEN", "secret")
    calls = []

    def post(url, **kw):
        calls.append((url, kw))
        return SimpleNamespace(ok=True, status_code=200, json=lambda: {"id": 7, "overall": 12.5, "cached": False})

    monkeypatch.setattr(requests, "post", post)
    sent = send_results(cfg, [_outcome("c1", "done"), _outcome("c2", "failed")])
    assert sent == [{"cell": "c1", "dataset": "heldout", "status": 200, "id": 7, "overall": 12.5, "cached": False}]
    (url, kw), = calls
    assert url == "http://127.0.0.1:9/eval/v1/evaluate" and kw["headers"] == {"Authorization": "Bearer secret"}
    assert kw["data"] == {"dataset": "heldout", "name": "grid: ckpt K=1", "submitted_by": "sweep grid"}
    assert kw["files"]["file"][1] == b'{"video": "v"}\n'
    monkeypatch.setattr(requests, "post", lambda url, **kw: (_ for _ in ()).throw(requests.ConnectionError("refused")))
    assert "refused" in send_results(cfg, [_outcome("c1", "done")])[0]["error"]  # reported, never raised
