"""Test helpers for training: the tiny pushing dataset (interrvos.train.sample_data) and `ToyTask`, a
small real torch module behind the loop's TrainTask interface (it decodes real frames and masks from the
dataset; a frozen layer, LayerNorm and bias terms)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import torch
from torch import nn

from interrvos.train.sample_data import write_pushing_dataset  # noqa: F401  (re-exported for the tests)
from interrvos.train.task import fingerprint_frozen


class ToyModel(nn.Module):
    """frames (B, T, 3, 8, 8) -> per-frame actor-area predictions (B, T); a frozen random projection."""

    def __init__(self):
        super().__init__()
        self.frozen = nn.Linear(192, 64)
        self.frozen.requires_grad_(False)
        self.norm = nn.LayerNorm(64)
        self.head = nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 1))

    def forward(self, batch: dict) -> dict:
        x = batch["x"]  # (B, T, 192)
        pred = self.head(self.norm(torch.relu(self.frozen(x)))).squeeze(-1)  # (B, T)
        mse = ((pred - batch["y"]) ** 2).mean()
        return {"loss": mse + 0.1 * (pred - batch["y"]).abs().mean(), "loss_mse": mse}


class ToySamples:
    def __init__(self, sources: list[str]):
        from interrvos.data.mevis import load_dataset

        self.datasets = [load_dataset(s) for s in sources]

    def __call__(self, row: dict) -> dict:
        import cv2

        from interrvos.train.reviosa import masks_at

        ds, vid = self.datasets[int(row["source"])], str(row["video"])
        video = ds.videos[vid]
        idx = [int(i) for i in row["frames"]]
        frames = [ds.read_frame(vid, video.frames[i]) for i in idx]
        x = np.stack([cv2.resize(f, (8, 8), interpolation=cv2.INTER_AREA).astype(np.float32) / 255 for f in frames])
        e = video.expressions[str(row["expressions"][0])]
        actor = masks_at(ds, vid, list(e.actor_anno_id or e.anno_id), idx, frames[0].shape[:2])
        y = np.array([m.mean() * 10 for m in actor], np.float32)
        return {"x": x.reshape(len(idx), -1), "y": y}


class ToyTask:
    """The loop's TrainTask for ToyModel. pid_dir: the Train worker writes `<pid>` files holding the step
    of the batch it collated last (tests kill a worker by that pid); delay_s slows every micro-batch."""

    name = "toy"

    def __init__(self, sources: list[str], pid_dir: str | None = None, delay_s: float = 0.0):
        self.sources, self.pid_dir, self.delay_s = sources, pid_dir, delay_s

    def build_model(self):
        torch.manual_seed(0)
        return ToyModel()

    def sample_builder(self):
        return ToySamples(self.sources)

    def collate(self, rows: list[dict]) -> dict:
        import time

        time.sleep(self.delay_s)
        if self.pid_dir:
            Path(self.pid_dir).mkdir(parents=True, exist_ok=True)
            tmp = Path(self.pid_dir, f".{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps({"pid": os.getpid(), "step": int(rows[0]["step"])}))
            os.replace(tmp, Path(self.pid_dir, str(os.getpid())))
        return {"x": torch.as_tensor(np.stack([np.asarray(r["x"]) for r in rows])),
                "y": torch.as_tensor(np.stack([np.asarray(r["y"]) for r in rows]))}  # fmt: skip

    def batch_tokens(self, batch: dict) -> int:
        return 0

    def fingerprint(self, model) -> float:
        return fingerprint_frozen(model)

    def export(self, trainable: dict, uri: str, info: dict) -> str:
        Path(uri).mkdir(parents=True, exist_ok=True)
        torch.save(trainable, Path(uri, "trainable.pt"))
        Path(uri, "info.json").write_text(json.dumps(info))
        return uri
