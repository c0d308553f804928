"""ReVIOsA: InternVL (+LoRA) emits [SEG_ACT] / [SEG_TAR]; the last hidden state at each is projected
(Linear(d,d) -> ReLU -> Linear(d,256)) into a sparse prompt for SAM2's mask decoder.

    model = build_model("tiny")                 # or a ModelConfig, or a YAML path
    batch = model.processor.collate([model.processor.sample(frames, expressions)])
    losses = model(batch)                       # {"loss": weighted total, "loss_lm": ..., ...}
    losses["loss"].backward()

Training decodes every sampled frame on its own (no memory), as the reference code does; inference
(interrvos.model.inference) prompts SAM2 on the K frames the MLLM saw and propagates with memory.
"""

from __future__ import annotations

import random

import torch
from torch import nn

from interrvos.model.attention_probe import AttentionProbe
from interrvos.model.config import ModelConfig, load_model_config
from interrvos.model.losses import attention_map_loss, lm_loss, mask_losses
from interrvos.model.mllm import base_internvl, build_mllm, language_layers
from interrvos.model.processor import Processor
from interrvos.model.sam_head import FrameFeatures, SamHead
from interrvos.model.tokenizer import add_seg_tokens, build_tokenizer, resolve_token_ids
from interrvos.model.tokens import ACTOR, TARGET

LOSS_KEYS = ("loss", "loss_lm", "loss_mask_actor", "loss_dice_actor", "loss_mask_target", "loss_dice_target")


class SegProjection(nn.Sequential):
    """(n, d) hidden states -> (n, 256) SAM2 sparse prompts."""

    def __init__(self, hidden: int, out: int = 256):
        super().__init__(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, out))


class ReVIOsA(nn.Module):
    def __init__(self, cfg: ModelConfig, tokenizer=None):
        super().__init__()
        self.cfg = cfg
        with torch.random.fork_rng(devices=[]):  # random weights depend on cfg.seed only
            torch.manual_seed(cfg.seed)
            self._build(cfg, tokenizer)

    def _build(self, cfg: ModelConfig, tokenizer) -> None:
        if tokenizer is None:
            tokenizer = build_tokenizer(cfg, with_seg_tokens=False)
        # new to this tokenizer (not a checkpoint's or a merged export's): their rows get initialised
        new_tokens = add_seg_tokens(tokenizer, cfg.mode) > 0
        self.tokenizer = tokenizer
        self.ids = resolve_token_ids(self.tokenizer, cfg.mode)
        self.mllm = build_mllm(cfg, self.tokenizer, self.ids, init_token_rows=new_tokens)
        config = base_internvl(self.mllm).config
        self.hidden_size = config.text_config.hidden_size
        self.projection = SegProjection(self.hidden_size, 256)
        self.sam = SamHead(cfg.sam)
        self.processor = Processor(
            self.tokenizer, self.ids, mode=cfg.mode, mllm_size=_side(config.vision_config.image_size),
            sam_size=cfg.sam.image_size, tokens_per_frame=config.image_seq_length, max_length=cfg.max_length,
            random_templates=cfg.random_templates,
        )  # fmt: skip
        self._probe = None
        if cfg.loss.attention.enabled:
            self._probe = AttentionProbe(language_layers(self.mllm), [tuple(h) for h in cfg.loss.attention.heads])

    # -- parameters --------------------------------------------------------------------------------
    def trainable_parameters(self) -> dict[str, nn.Parameter]:
        return {n: p for n, p in self.named_parameters() if p.requires_grad}

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """The tensors a training checkpoint holds (LoRA, token rows, projection, SAM2 mask decoder)."""
        return {n: p.detach() for n, p in self.trainable_parameters().items()}

    @property
    def device(self) -> torch.device:
        return self.projection[0].weight.device

    # -- pieces ------------------------------------------------------------------------------------
    def language_hidden(self, input_ids, pixel_values, attention_mask=None) -> torch.Tensor:
        """Last hidden state (B, L, d) of the language model, image features spliced in."""
        out = base_internvl(self.mllm).model(
            input_ids=input_ids, pixel_values=pixel_values.to(self._mllm_dtype()), attention_mask=attention_mask
        )
        return out.last_hidden_state

    def seg_prompts(self, hidden: torch.Tensor, input_ids: torch.Tensor, seg_expr: torch.Tensor | None = None):
        """Project the hidden state at every segmentation token. Returns prompts (n, 256) and, per
        prompt, its sample b, expression slot e (-1 when seg_expr is None) and role (0 actor, 1 target)."""
        is_seg = torch.isin(input_ids, torch.tensor(self.ids.seg_ids, device=input_ids.device))
        if seg_expr is not None:
            is_seg &= seg_expr >= 0
        b, pos = is_seg.nonzero(as_tuple=True)
        tokens = input_ids[b, pos]
        role = torch.full_like(tokens, ACTOR)
        for token_id, r in self.ids.seg.items():
            role[tokens == token_id] = r
        slot = seg_expr[b, pos] if seg_expr is not None else torch.full_like(tokens, -1)
        prompts = self.projection(hidden[b, pos].to(self.projection[0].weight.dtype))
        return prompts, b, slot, role, pos

    def sam_features(self, sam_images: torch.Tensor) -> FrameFeatures:
        """(F, 3, S, S) normalised frames -> decoder inputs (frozen encoder, trainable high-res convs)."""
        return self.sam.features(self.sam.encode(sam_images))

    def decode_frames(self, feats: FrameFeatures, frame_index: torch.Tensor, prompts: torch.Tensor) -> torch.Tensor:
        """Each prompt on its own frames, no memory. frame_index (n, T) into feats; prompts (n, 256)
        -> mask logits (n, T, m, m)."""
        n, t = frame_index.shape
        f = feats.select(frame_index.reshape(-1))
        out = self.sam.decode(self.sam.no_memory(f), f.high_res(), prompts.repeat_interleave(t, 0),
                              multimask=self.cfg.sam.multimask_output)  # fmt: skip
        return out.masks[:, 0].reshape(n, t, *out.masks.shape[-2:])

    # -- training ----------------------------------------------------------------------------------
    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        """Losses of one batch (processor's layout). Mask terms need gt_masks and sam_images (or
        precomputed `sam_backbone`, the frozen encoder's output for the B*T frames); without them only
        the LM term is computed. Terms are unweighted; "loss" is the weighted total."""
        cfg = self.cfg.loss
        if self._probe is not None:
            self._probe.clear()
        input_ids = batch["input_ids"]
        hidden = self.language_hidden(input_ids, batch["pixel_values"], batch.get("attention_mask"))
        losses = {"loss_lm": lm_loss(base_internvl(self.mllm).lm_head, hidden, batch["labels"])}
        total = cfg.lm_weight * losses["loss_lm"]
        if "gt_masks" in batch:
            mask_terms, prompts_info = self._mask_losses(batch, hidden)
            losses.update(mask_terms)
            total = total + sum(
                (cfg.bce_weight if "mask" in k else cfg.dice_weight) * v for k, v in mask_terms.items()
            )
            if self._probe is not None:
                losses["loss_attn"] = self._attention_loss(batch, prompts_info)
                total = total + self.cfg.loss.attention.weight * losses["loss_attn"]
        losses["loss"] = total
        return losses

    def _mask_losses(self, batch: dict, hidden: torch.Tensor):
        cfg = self.cfg.loss
        prompts, b, slot, role, pos = self.seg_prompts(hidden, batch["input_ids"], batch["seg_expr"])
        gt_all = batch["gt_masks"]  # (B, E, 2, T, m, m)
        n_frames = gt_all.shape[3]
        expr_valid = batch.get("expr_valid")
        if expr_valid is None:
            expr_valid = torch.ones(gt_all.shape[:2], dtype=torch.bool, device=b.device)
        keep = expr_valid[b, slot] & ((role == ACTOR) | batch["target_valid"][b, slot])
        prompts, b, slot, role, pos = prompts[keep], b[keep], slot[keep], role[keep], pos[keep]
        if prompts.shape[0] == 0:  # every segmentation token was cut off (max_length): nothing to decode
            zero = hidden.sum() * 0.0
            return {f"loss_{k}_{r}": zero for r in ("actor", "target") for k in ("mask", "dice")}, (b, pos, None)
        backbone = batch.get("sam_backbone")
        if backbone is None:
            backbone = self.sam.encode(batch["sam_images"].flatten(0, 1))
        feats = self.sam.features(backbone)
        frame_index = b[:, None] * n_frames + torch.arange(n_frames, device=b.device)[None]  # (n, T)
        logits = self.decode_frames(feats, frame_index, prompts)  # (n, T, m, m)
        gt = gt_all[b, slot, role].to(logits.device)  # (n, T, m, m)
        terms = {}
        for name, r in (("actor", ACTOR), ("target", TARGET)):
            sel = role == r
            bce, dice = mask_losses(
                logits[sel].flatten(0, 1), gt[sel].flatten(0, 1), cfg.num_points, cfg.oversample_ratio,
                cfg.importance_sample_ratio,
            )  # fmt: skip
            terms[f"loss_mask_{name}"], terms[f"loss_dice_{name}"] = bce, dice
        return terms, (b, pos, gt)

    def _attention_loss(self, batch: dict, prompts_info) -> torch.Tensor:
        b, pos, gt = prompts_info  # gt (n, T, m, m)
        if b.numel() == 0:
            return sum(p.sum() for p in self.projection.parameters()) * 0.0
        ids = self.ids
        image_tokens = batch["input_ids"] == ids.img_context  # (B, L)
        keys = torch.stack([image_tokens[i].nonzero()[:, 0] for i in b.tolist()])  # (n, T*g*g)
        grid = int(round((keys.shape[1] / gt.shape[1]) ** 0.5))
        small = nn.functional.interpolate(gt, size=(grid, grid), mode="nearest").flatten(1)  # (n, T*g*g)
        attn = self._probe.probabilities(b, pos, keys)  # (n, heads, T*g*g)
        return attention_map_loss(attn, small)

    def _mllm_dtype(self) -> torch.dtype:
        return base_internvl(self.mllm).model.vision_tower.embeddings.patch_embeddings.projection.weight.dtype

    def sample_rng(self, seed: int | None = None) -> random.Random:
        return random.Random(self.cfg.seed if seed is None else seed)


def _side(size) -> int:
    return int(size[0] if isinstance(size, list | tuple) else size)


def build_model(config: ModelConfig | str = "tiny", overrides: list[str] | None = None) -> ReVIOsA:
    """A ReVIOsA from a ModelConfig, a preset name (tiny, 1b, 4b) or a YAML path (+ dotted overrides)."""
    cfg = config if isinstance(config, ModelConfig) else load_model_config(config, overrides)
    return ReVIOsA(cfg)
