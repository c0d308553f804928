"""SAM2 pretraining as the training loop's task (train/task.py): the loop, its Ray Data pipeline, its
checkpoints and the export are `interrvos train`'s own; this supplies the model, the samples and the
checkpoint format: `<run>/model/sam2.pt`, sam2's `{'model': state_dict}`, which `sam.checkpoint` loads
strictly (interrvos.model.sam_head.load_sam2_weights) with the same `sam.hydra_overrides`.
"""

from __future__ import annotations

import io
import json
from typing import Any


from interrvos.data import storage
from interrvos.pretrain.config import PretrainConfig
from interrvos.pretrain.data import SamSamples, collate
from interrvos.train.task import rebuild_trained

SAM2_FILE = "sam2.pt"
SETTINGS_FILE = "sam2.json"


def train_overrides(cfg: PretrainConfig, checkpoint: str) -> list[str]:
    """The ReVIOsA model overrides (`interrvos train --set 'model.overrides=[...]'` entries) that start
    its SAM2 from this checkpoint. Values are JSON (valid YAML), so nested lists survive --set parsing."""
    sam = cfg.model.sam_settings()
    return [f"sam.config={sam.config}", f"sam.checkpoint={checkpoint}", f"sam.image_size={sam.image_size}",
            f"sam.hydra_overrides={json.dumps(sam.hydra_overrides)}"]  # fmt: skip


def train_set(overrides: list[str]) -> str:
    """The one `--set` argument of `interrvos train` that applies `overrides`."""
    return "model.overrides=" + json.dumps(overrides)


class SamPretrainTask:
    name = "sam2-pretrain"

    def __init__(self, cfg: PretrainConfig, cache: str):
        self.cfg, self.cache = cfg, cache

    def __getstate__(self):
        return {"cfg": self.cfg.model_dump(mode="json"), "cache": self.cache}

    def __setstate__(self, state):
        self.__init__(PretrainConfig.model_validate(state["cfg"]), state["cache"])

    def build_model(self):
        """Seeded from the config (not from the caller's RNG): every build has the same weights and the same
        random buffers (the prompt encoder's Fourier matrix), which the export relies on."""
        import torch

        from interrvos.pretrain.model import SamPretrain

        with torch.random.fork_rng():
            torch.manual_seed(self.cfg.seed)
            return SamPretrain(self.cfg.model)

    def sample_builder(self) -> SamSamples:
        return SamSamples(self.cfg.data, self.cache)

    def collate(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return collate(rows)

    def batch_tokens(self, batch: dict[str, Any]) -> int:
        return int(batch["masks"].shape[0] * batch["masks"].shape[2])  # prompts (frames x objects)

    def fingerprint(self, model) -> float:
        """Every parameter trains, so the frozen part is the buffers: sum of |b| (the random Fourier matrix)."""
        import torch

        with torch.no_grad():
            return float(sum(b.detach().double().abs().sum() for name, b in model.named_buffers()
                             if name != "seen_steps"))

    def export(self, trainable: dict[str, Any], uri: str, info: dict[str, Any]) -> str:
        """Rebuild, load the trained tensors (every parameter), write `<uri>/sam2.pt` and `<uri>/sam2.json`."""
        import torch

        model = rebuild_trained(self, trainable, info, uri)  # buffers checked by fingerprint(), every parameter loaded
        buf = io.BytesIO()
        torch.save({"model": model.sam.state_dict()}, buf)
        storage.write_bytes(storage.join(uri, SAM2_FILE), buf.getvalue())
        sam = self.cfg.model.sam_settings()
        storage.write_json(storage.join(uri, SETTINGS_FILE), {
            "sam": sam.model_dump(mode="json"), "trunk": self.cfg.model.trunk, "training": info}, indent=2)
        return uri
