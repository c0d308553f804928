"""Route (a) of issue 15: a short synthetic pretraining that makes the tiny MLLM read the expression.

The random tiny language model does not read the expression (docs/training.md, "Does the language model read
the expression?"). Before ReVIOsA training, this task trains the MLLM alone on the same clips with a
question/answer task whose answer can only be given by reading the expression's words and looking at the
frames: the ReVIOsA question about an expression, answered with the [SEG_ACT] token followed by the referred
object's colour word, shape word and where it is in the frames, e.g.

    user: <frames> Please segment red star pushing a blue circle. If there are both an actor and ...
    assistant: It is [SEG_ACT] red star, top left.

The colour word comes right after [SEG_ACT], so it is the [SEG_ACT] state itself that must carry it (the state
ReVIOsA projects into SAM2's prompt, and the one `interrvos probe-text` reads). The position is measured
from the ground-truth masks on the sample's frames (the grounding part).

It runs on Ray Train + DeepSpeed through `train.run.run_train` with the task interface (train/task.py): the
sample plan, data pipeline, checkpoints and resume are ReVIOsA's own; only the conversation, the model (the
MLLM, everything trainable except the token embeddings) and the export differ. The export is an HF-native
InternVL folder with its tokenizer, usable as `mllm.pretrained=<abs path>`.

The token embeddings (tied to the output layer) stay frozen on purpose: ReVIOsA re-initialises the
[SEG_ACT]/[SEG_TAR] rows of a pretrained model from the mean of the other rows plus seeded noise
(model/mllm.py, add_token_rows); with the other rows untouched that re-initialisation gives exactly the rows
this pretraining trained with.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from torch import nn

from interrvos.model.config import ModelConfig
from interrvos.probe.features import colour_word, shape_word
from interrvos.train.reviosa import ReviosaSamples, ReviosaTask, masks_at, pixels_to_u8, u8_to_pixels

READING_FILE = "reading.json"  # what the export records about its pretraining


def where(masks: list[np.ndarray]) -> str:
    """Coarse position of an object over the sample's frames: '<top|middle|bottom> <left|centre|right>'
    of its mean mask centroid, or 'not visible'."""
    ys, xs, h, w = [], [], 1, 1
    for m in masks:
        h, w = m.shape
        yy, xx = np.nonzero(m)
        ys.append(yy), xs.append(xx)
    y, x = np.concatenate(ys), np.concatenate(xs)
    if y.size == 0:
        return "not visible"
    row = ("top", "middle", "bottom")[min(2, int(3 * y.mean() / h))]
    col = ("left", "centre", "right")[min(2, int(3 * x.mean() / w))]
    return f"{row} {col}"


def reading_answer(text: str, actor_masks: list[np.ndarray], seg_token: str, objects: list[dict],
                   shape_first: bool = False) -> str:  # fmt: skip
    """'It is [SEG_ACT] red star, top left.' ('... star red, ...' when shape_first): the expression's colour and
    shape words (else the referred object's own, from the dataset's object records) and the object's position."""
    first = objects[0] if objects else {}
    colour = colour_word(text) or first.get("colour")
    shape = shape_word(text) or first.get("category") or "object"
    words = " ".join(w for w in ((shape, colour) if shape_first else (colour, shape)) if w)
    return f"It is {seg_token} {words}, {where(actor_masks)}."


ORDERS = ("colour_first", "random")


def reading_turns(ds, vid: str, row: dict[str, Any], processor, rng: random.Random | None = None,
                  order: str = "colour_first", shape: tuple[int, int] | None = None,
                  with_target: bool = False) -> list:  # fmt: skip
    """(Turn, slot) per expression of a plan row: ReVIOsA's question (first wording unless the processor draws
    them at random and an rng is given), answered with the reading answer. order "random": colour or shape
    first at random in each answer (the [SEG_ACT] state, which predicts the first word, must then carry both).
    with_target: unidirectional interactions end with ReVIOsA's "and [SEG_TAR]." (joint mode)."""
    from interrvos.model.templates import Turn, training_turns
    from interrvos.model.tokens import SEG, SEG_ACT, SEG_TAR, expression_anno_roles

    video = ds.videos[vid]
    idx = [int(i) for i in row["frames"]]
    shape = shape or ds.frame_size(vid)
    seg = SEG if processor.mode == "single" else SEG_ACT
    turns = []
    for slot, exp_id in enumerate(row["expressions"]):
        e = video.expressions[str(exp_id)]
        actor, target = expression_anno_roles(e)
        wording = rng if processor.random_templates else None
        question = training_turns(e.exp, target is not None, processor.mode, wording)[0].question
        objects = [video.objects.get(o, {}) for o in (e.actor_ids or e.obj_id)]
        shape_first = order == "random" and rng is not None and rng.random() < 0.5
        answer = reading_answer(e.exp, masks_at(ds, vid, actor, idx, shape), seg, objects, shape_first)
        if with_target and target is not None and processor.mode == "joint":
            answer = f"{answer[:-1]} and {SEG_TAR}."
        turns.append((Turn(question, answer), slot))
    return turns


class ReadingSamples(ReviosaSamples):
    """Plan row -> training row of the reading task (tokens and the MLLM's frames only)."""

    order = "colour_first"

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        from interrvos.model.processor import to_pixels

        p = self.processor
        ds, vid = self.dataset(int(row["source"])), str(row["video"])
        frames = [ds.read_frame(vid, ds.videos[vid].frames[int(i)]) for i in row["frames"]]
        turns = reading_turns(ds, vid, row, p, random.Random(int(row["seed"])), self.order, frames[0].shape[:2])
        input_ids, labels, _ = p.conversation(turns, len(frames))
        return {"input_ids": np.asarray(input_ids), "labels": np.asarray(labels),
                "pixel_u8": pixels_to_u8(to_pixels(frames, p.mllm_size))}  # fmt: skip


class KeepReadingSamples(ReviosaSamples):
    """ReVIOsA's own training row, its answers extended with the reading answer: "It is [SEG_ACT] red star,
    top left." ("... and [SEG_TAR]." for unidirectional interactions). ReVIOsA's LM loss on those answers is
    the pretraining's loss kept as an auxiliary term, so mask training does not push the [SEG_ACT] state
    towards predicting "." (what erodes the reading) while the masks are learnt from the same state.
    Questions take the first wording (the tiny recipe's random_templates=false)."""

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        out = super().__call__(row)  # frames, masks, and the conversation we replace
        p = self.processor
        if p.mode not in ("joint", "single"):
            raise ValueError("the reading answer is defined for the joint and single modes")
        ds, vid = self.dataset(int(row["source"])), str(row["video"])
        ids, labels, seg_expr = p.conversation(reading_turns(ds, vid, row, p, with_target=True), len(row["frames"]))
        out.update(input_ids=np.asarray(ids), labels=np.asarray(labels), seg_expr=np.asarray(seg_expr))
        return out


class KeepReadingTask(ReviosaTask):
    """ReVIOsA training whose answers keep the reading answer (KeepReadingSamples); the model and export are
    ReVIOsA's."""

    name = "reviosa-keep-reading"

    def sample_builder(self) -> KeepReadingSamples:
        return KeepReadingSamples(self.cfg, self.sources, self.jitter)


class TextReader(nn.Module):
    """The tiny MLLM on its own (no LoRA, no SAM2): InternVL built exactly as ReVIOsA builds it (seeded, the
    segmentation-token rows added), then everything trainable except the token embeddings."""

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
        self.mllm.get_input_embeddings().requires_grad_(False)  # tied to lm_head; see the module docstring

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
    order: ReadingSamples'). The summary's `pretrained` is the export's absolute path, for
    `model.overrides=[mllm.pretrained=<it>]`."""
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
    return summary


def run_train_keep_reading(cfg, progress=None) -> dict[str, Any]:
    """`interrvos train-reading`: `interrvos train` (cfg: a TrainConfig) with KeepReadingTask."""
    from interrvos.model.config import load_model_config
    from interrvos.train.run import run_train

    model_cfg = load_model_config(cfg.model.config, cfg.model.all_overrides())
    return run_train(cfg, task=KeepReadingTask(model_cfg, [s.path for s in cfg.data.sources], cfg.data.jitter),
                     progress=progress)
