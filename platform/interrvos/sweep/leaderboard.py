"""Optional (`leaderboard.url`): every finished cell's predictions go to a running evaluation app
(serving/evaluate_app.py, `POST /v1/evaluate`), which scores them itself and lists them on its
leaderboard under the cell's label. The app keeps one result per file, so a re-run sends again
harmlessly. A failure to send is reported in the summary, never fails the sweep."""

from __future__ import annotations

import os
from typing import Any

from interrvos.data import storage
from interrvos.sweep.config import SweepConfig


def send_results(cfg: SweepConfig, outcomes: list) -> list[dict[str, Any]]:
    import requests

    lb = cfg.leaderboard
    token = os.environ.get(lb.token_env)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    sent = []
    for o in outcomes:
        if o.status != "done":
            continue
        dataset = lb.datasets.get(o.cell.dataset.id, o.cell.dataset.id)
        entry: dict[str, Any] = {"cell": o.cell.id, "dataset": dataset}
        try:
            body = storage.read_bytes(storage.join(cfg.out, "cells", o.cell.id, "predictions.jsonl"))
            reply = requests.post(f"{lb.url.rstrip('/')}/v1/evaluate", headers=headers, timeout=600,
                                  files={"file": (f"{o.cell.id}.jsonl", body)},
                                  data={"dataset": dataset, "name": f"{cfg.name}: {o.cell.label}",
                                        "submitted_by": f"sweep {cfg.name}"})  # fmt: skip
            entry["status"] = reply.status_code
            if reply.ok:
                answer = reply.json()
                entry.update(id=answer.get("id"), overall=answer.get("overall"), cached=answer.get("cached"))
            else:
                entry["error"] = reply.text[:300]
        except (OSError, requests.RequestException) as err:
            entry["error"] = f"{type(err).__name__}: {err}"
        sent.append(entry)
    return sent
