"""Route (a) of issue 15: a short synthetic pretraining that makes the tiny MLLM read the expression.

The random tiny language model does not read the expression (docs/training.md, "Does the language model read
the expression?"). Before ReVIOsA training, this task trains the MLLM alone on the same clips with a
question/answer task whose answer can only be given by reading the expression's words and looking at the
frames: ReVIOsA's question about an expression, answered with each segmentation token followed by the colour
word, shape word and position of the object it segments (`reading_turns`), e.g.

    user: <frames> Please segment red star pushing a blue circle. If there are both an actor and ...
    assistant: It is [SEG_ACT] red star, top left, and [SEG_TAR] blue circle, bottom right.

The colour word comes right after the token, so it is the token's state itself that must carry it (the state
ReVIOsA projects into SAM2's prompt, and the one `interrvos probe-text` reads). The position is measured
from the ground-truth masks on the sample's frames (the grounding part).

It runs on Ray Train + DeepSpeed through `train.run.run_train` with the task interface (train/task.py): the
sample plan, data pipeline, checkpoints and resume are ReVIOsA's own; only the conversation, the model (the
MLLM, all of it trainable) and the export differ. The export is an HF-native
InternVL folder with its tokenizer, usable as `mllm.pretrained=<abs path>` with `tokenizer.kind=pretrained`.

Every weight of the MLLM trains, the token embeddings (tied to the output layer) included: the
[SEG_ACT]/[SEG_TAR] rows must learn to be emitted (an untrained row is never the LM's choice: the model then says
"N" where the token belongs) and their states to carry the words. The export's tokenizer holds those tokens, so
ReVIOsA built from it keeps the trained rows (model/reviosa.py initialises only tokens new to the tokenizer;
single mode's [SEG] is new and starts from the mean row).
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from torch import nn

from interrvos.model.config import ModelConfig
from interrvos.train.reading import ORDERS, reading_turns
from interrvos.train.reviosa import ReviosaSamples, ReviosaTask, masks_at, pixels_to_u8, u8_to_pixels

READING_FILE = "reading.json"  # what the export records about its pretraining


class ReadingSamples(ReviosaSamples):
    """Plan row -> training row of the reading task (tokens and the MLLM's frames only)."""

    order = "colour_first"

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        from interrvos.model.processor import to_pixels

        p = self.processor
        ds, vid = self.dataset(int(row["source"])), str(row["video"])
        idx = [int(i) for i in row["frames"]]
        frames = [ds.read_frame(vid, ds.videos[vid].frames[i]) for i in idx]
        shape = frames[0].shape[:2]
        turns = reading_turns(ds.videos[vid], row["expressions"], lambda annos: masks_at(ds, vid, annos, idx, shape),
                              p, random.Random(int(row["seed"])), self.order)  # fmt: skip
        input_ids, labels, _ = p.conversation(turns, len(frames))
        return {"input_ids": np.asarray(input_ids), "labels": np.asarray(labels),
                "pixel_u8": pixels_to_u8(to_pixels(frames, p.mllm_size))}  # fmt: skip


class TextReader(nn.Module):
    """The tiny MLLM on its own (no LoRA, no SAM2): InternVL built exactly as ReVIOsA builds it (seeded, the
    segmentation-token rows added), then everything trainable (module docstring)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        from interrvos.model.mllm import build_mllm
        from interrvos.model.tokenizer import build_tokenizer, resolve_token_ids

        self.cfg = cfg
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.tokenizer = build_tokenizer(cfg)
            self.ids = resolve_token_ids(self.tokenizer, cfg.mode)
            plain = cfg.model_copy(update={"lora": cfg.lora.model_copy(update={"enabled": False})})
            self.mllm = build_mllm(plain, self.tokenizer, self.ids)
        self.mllm.requires_grad_(True)

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        from interrvos.model.losses import lm_loss

        hidden = self.mllm.model(input_ids=batch["input_ids"], pixel_values=batch["pixel_values"],
                                 attention_mask=batch["attention_mask"]).last_hidden_state  # fmt: skip
        loss = lm_loss(self.mllm.lm_head, hidden, batch["labels"])
        return {"loss": loss, "loss_lm": loss}


class TextPretrainTask(ReviosaTask):
    """The reading task behind the training loop's interface (train/task.py); ReVIOsA's plan and Processor."""

    name = "pretrain-text"

    def __init__(self, cfg: ModelConfig, sources: list[str], order: str = "colour_first"):
        if order not in ORDERS:
            raise ValueError(f"order {order!r}: expected one of {ORDERS}")
        super().__init__(cfg, sources, 0.0)
        self.order = order

    def __getstate__(self):
        return {**super().__getstate__(), "order": self.order}

    def __setstate__(self, state):
        self.__init__(state["cfg"], state["sources"], state.get("order", "colour_first"))

    def build_model(self) -> TextReader:
        return TextReader(self.cfg)

    def sample_builder(self) -> ReadingSamples:
        samples = ReadingSamples(self.cfg, self.sources, 0.0)
        samples.order = self.order
        return samples

    def collate(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """Right-pad tokens (pad id; labels -100), stack the frames sample-major."""
        from interrvos.model.processor import IGNORE

        pad = self.processor().ids.pad
        n = max(len(r["input_ids"]) for r in rows)
        batch = {"input_ids": torch.full((len(rows), n), pad, dtype=torch.long),
                 "attention_mask": torch.zeros(len(rows), n, dtype=torch.long),
                 "labels": torch.full((len(rows), n), IGNORE, dtype=torch.long)}  # fmt: skip
        for i, r in enumerate(rows):
            k = len(r["input_ids"])
            batch["input_ids"][i, :k] = torch.as_tensor(np.asarray(r["input_ids"]), dtype=torch.long)
            batch["labels"][i, :k] = torch.as_tensor(np.asarray(r["labels"]), dtype=torch.long)
            batch["attention_mask"][i, :k] = 1
        batch["pixel_values"] = torch.cat([u8_to_pixels(np.asarray(r["pixel_u8"])) for r in rows])
        return batch

    def export(self, trainable: dict[str, Any], uri: str, info: dict[str, Any]) -> str:
        """An HF-native InternVL folder + tokenizer (+ reading.json): what `mllm.pretrained` loads."""
        from interrvos.data import storage
        from interrvos.train.task import rebuild_trained

        model = rebuild_trained(self, trainable, info, uri)
        with storage.staged_dir(uri) as folder:
            model.mllm.save_pretrained(folder)
            model.tokenizer.save_pretrained(folder)
            storage.write_json(f"{folder}/{READING_FILE}", {
                "task": self.name, "sources": self.sources, "order": self.order,
                "model": self.cfg.model_dump(mode="json"), **info}, indent=2)  # fmt: skip
        return uri


def run_pretrain_text(cfg, progress=None, order: str = "colour_first") -> dict[str, Any]:
    """`interrvos pretrain-text`: run_train with the reading task (cfg: a TrainConfig, jobs/configs/pretrain_text.yaml;
    order: ReadingSamples'). The summary's `pretrained` is the export's absolute path and `train_overrides` the
    model overrides that start ReVIOsA from it (`model.overrides=[mllm.pretrained=<it>, tokenizer.kind=pretrained]`)."""
    import os

    from interrvos.data import storage
    from interrvos.model.config import load_model_config
    from interrvos.train.run import run_train

    model_cfg = load_model_config(cfg.model.config, cfg.model.all_overrides())
    task = TextPretrainTask(model_cfg, [s.path for s in cfg.data.sources], order)
    summary = run_train(cfg, task=task, progress=progress)
    exported = (summary.get("export") or {}).get("checkpoint")
    if exported:
        summary["pretrained"] = exported if storage.is_remote(exported) else os.path.abspath(exported)
        # The export's own tokenizer holds the trained [SEG_*] tokens; a preset's fresh tokenizer (the tiny BPE)
        # would add them as new tokens and ReVIOsA would initialise their rows again.
        summary["train_overrides"] = [f"mllm.pretrained={summary['pretrained']}", "tokenizer.kind=pretrained"]
    return summary
