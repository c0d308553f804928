"""ReVIOsA as a training task (train/task.py): samples from dataset folders through the model's own
Processor, its batch layout, and its checkpoint format for the export.

Samples cross the object store compactly: frames as the uint8 images the Processor resized (its
normalisation is undone exactly, then redone in `collate` with the very same float32 arithmetic) and
masks as uint8, so a batch is bit-identical to `processor.collate([processor.sample(...)])`.
"""

from __future__ import annotations

import random
import threading
from functools import lru_cache
from typing import Any

import numpy as np

from interrvos.data.rle import decode_rle
from interrvos.model.config import ModelConfig
from interrvos.train.reading import reading_turns
from interrvos.train.task import fingerprint_frozen


@lru_cache(maxsize=4)
def _processor_cached(cfg_json: str):
    return processor_for(ModelConfig.model_validate_json(cfg_json))


def processor_for(cfg: ModelConfig):
    """The Processor a ReVIOsA built from `cfg` has, without building the model (tokenizer and sizes only)."""
    from interrvos.model.mllm import internvl_config
    from interrvos.model.processor import Processor
    from interrvos.model.tokenizer import build_tokenizer, resolve_token_ids

    tokenizer = build_tokenizer(cfg)
    ids = resolve_token_ids(tokenizer, cfg.mode)
    if cfg.mllm.pretrained:
        from transformers import InternVLConfig

        config = InternVLConfig.from_pretrained(cfg.mllm.pretrained, local_files_only=True)
    else:
        config = internvl_config(cfg, min(ids.seg_ids), ids.img_context)
    size = config.vision_config.image_size
    return Processor(
        tokenizer, ids, mode=cfg.mode, mllm_size=int(size[0] if isinstance(size, list | tuple) else size),
        sam_size=cfg.sam.image_size, tokens_per_frame=config.image_seq_length, max_length=cfg.max_length,
        random_templates=cfg.random_templates,
    )  # fmt: skip


def pixels_to_u8(pixels) -> np.ndarray:
    """(T, 3, S, S) ImageNet-normalised float32 -> the (T, 3, S, S) uint8 image it was made from (exact)."""
    from interrvos.model.processor import MEAN, STD

    hwc = pixels.permute(0, 2, 3, 1).numpy()
    return np.rint(hwc * STD + MEAN).clip(0, 255).astype(np.uint8).transpose(0, 3, 1, 2).copy()


def u8_to_pixels(images: np.ndarray):
    """Inverse of pixels_to_u8, with the Processor's own arithmetic (to_pixels)."""
    import torch

    from interrvos.model.processor import MEAN, STD

    hwc = np.ascontiguousarray(images.transpose(0, 2, 3, 1)).astype(np.float32)
    return torch.from_numpy((hwc - MEAN) / STD).permute(0, 3, 1, 2).contiguous()


def masks_at(ds, vid: str, anno_ids: list[str], frames: list[int], shape: tuple[int, int]) -> list[np.ndarray]:
    """Union of the anno ids' masks on the chosen frames only (a clip has hundreds; we need four)."""
    out = [np.zeros(shape, np.uint8) for _ in frames]
    for anno in anno_ids:
        track = ds.masks(anno)
        for k, i in enumerate(frames):
            rle = track[i] if i < len(track) else None
            if rle is not None:
                out[k] |= decode_rle(rle)
    return out


def jitter_frames(frames: list[np.ndarray], amount: float, rng: random.Random) -> list[np.ndarray]:
    """One random brightness and contrast change for all frames of a sample (colours are kept: expressions
    name them; no flips: expressions name left and right)."""
    if amount <= 0:
        return frames
    contrast, brightness = 1 + rng.uniform(-amount, amount), 255 * rng.uniform(-amount, amount) / 2
    return [np.clip((f.astype(np.float32) - 128) * contrast + 128 + brightness, 0, 255).astype(np.uint8)
            for f in frames]  # fmt: skip


class ReviosaSamples:
    """Plan row -> training row: decode the sample's frames and masks, then the model's Processor."""

    def __init__(self, cfg: ModelConfig, sources: list[str], jitter: float, answers: str = "reviosa"):
        self.processor = processor_for(cfg)
        self.sources, self.jitter, self.answers = sources, jitter, answers
        self._datasets: dict[int, Any] = {}

    def dataset(self, i: int):
        if i not in self._datasets:
            from interrvos.data.mevis import load_dataset

            self._datasets[i] = load_dataset(self.sources[i])
        return self._datasets[i]

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        from interrvos.model.processor import TrainingExpression
        from interrvos.model.tokens import expression_anno_roles

        ds, vid = self.dataset(int(row["source"])), str(row["video"])
        video = ds.videos[vid]
        idx = [int(i) for i in row["frames"]]
        rng = random.Random(int(row["seed"]))
        frames = jitter_frames([ds.read_frame(vid, video.frames[i]) for i in idx], self.jitter, rng)
        shape = frames[0].shape[:2]
        expressions = []
        for exp_id in row["expressions"]:
            e = video.expressions[str(exp_id)]
            actor, target = expression_anno_roles(e)
            expressions.append(TrainingExpression(e.exp, masks_at(ds, vid, actor, idx, shape),
                                                  masks_at(ds, vid, target, idx, shape) if target else None))
        s = self.processor.sample(frames, expressions, rng)
        out = {
            "input_ids": s["input_ids"].numpy(), "labels": s["labels"].numpy(), "seg_expr": s["seg_expr"].numpy(),
            "pixel_u8": pixels_to_u8(s["pixel_values"]), "sam_u8": pixels_to_u8(s["sam_images"]),
            "gt_masks": s["gt_masks"].numpy().astype(np.uint8), "target_valid": s["target_valid"].numpy(),
        }  # fmt: skip
        if self.answers == "reading":  # the same questions, answered with the reading answers (train/reading.py)
            turns = reading_turns(video, row["expressions"], lambda annos: masks_at(ds, vid, annos, idx, shape),
                                  self.processor, rng)  # fmt: skip
            ids, labels, seg_expr = self.processor.conversation(turns, len(idx))
            out.update(input_ids=np.asarray(ids), labels=np.asarray(labels), seg_expr=np.asarray(seg_expr))
        return out


class ReviosaTask:
    """ReVIOsA (interrvos.model) as the loop's TrainTask."""

    name = "reviosa"

    def __init__(self, cfg: ModelConfig, sources: list[str], jitter: float = 0.0, answers: str = "reviosa"):
        self.cfg, self.sources, self.jitter, self.answers = cfg, list(sources), jitter, answers
        self._lock = threading.Lock()

    def __getstate__(self):
        return {"cfg": self.cfg, "sources": self.sources, "jitter": self.jitter, "answers": self.answers}

    def __setstate__(self, state):
        self.__init__(state["cfg"], state["sources"], state["jitter"], state.get("answers", "reviosa"))

    def build_model(self):
        from interrvos.model.reviosa import ReVIOsA

        return ReVIOsA(self.cfg)

    def sample_builder(self) -> ReviosaSamples:
        return ReviosaSamples(self.cfg, self.sources, self.jitter, self.answers)

    def processor(self):
        with self._lock:  # collate runs in Ray Data's prefetch threads
            return _processor_cached(self.cfg.model_dump_json())

    def collate(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        samples = [{
            "input_ids": torch.tensor(np.asarray(r["input_ids"]), dtype=torch.long),
            "labels": torch.tensor(np.asarray(r["labels"]), dtype=torch.long),
            "seg_expr": torch.tensor(np.asarray(r["seg_expr"]), dtype=torch.long),
            "pixel_values": u8_to_pixels(np.asarray(r["pixel_u8"])),
            "sam_images": u8_to_pixels(np.asarray(r["sam_u8"])),
            "gt_masks": torch.tensor(np.asarray(r["gt_masks"]), dtype=torch.float32),
            "target_valid": torch.tensor(np.asarray(r["target_valid"]), dtype=torch.bool),
        } for r in rows]  # fmt: skip
        return self.processor().collate(samples)

    def batch_tokens(self, batch: dict[str, Any]) -> int:
        return int(batch["attention_mask"].sum())

    def fingerprint(self, model) -> float:
        return fingerprint_frozen(model)

    def export(self, trainable: dict[str, Any], uri: str, info: dict[str, Any]) -> str:
        """Rebuild the model from its config, check its frozen weights are the trained run's, load the
        trained tensors and write a model checkpoint (interrvos.model.checkpoint.save_checkpoint)."""
        from interrvos.model.checkpoint import save_checkpoint
        from interrvos.train.task import rebuild_trained

        model = rebuild_trained(self, trainable, info, uri)
        return save_checkpoint(model, uri, extra={"training": info})
