"""SAM2 (the sam2 package) as ReVIOsA's segmentation head: a frozen image encoder, a trainable mask
decoder prompted by the projected [SEG_*] embedding (appended to the prompt encoder's sparse
embeddings, as the reference code does), and SAM2's own memory modules (frozen) for propagation.

Shapes: S = sam.image_size, h = w = S / 16 (lowest feature level), C = 256. Masks come out at 4h x 4w
(S / 4) as logits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from interrvos.errors import ConfigError
from interrvos.model.config import SamSettings

# Parts of the mask decoder that no loss reaches (IoU and object-score predictions): kept frozen so that
# the trainable set is exactly what the losses train. They stay active (pretrained) at inference.
UNSUPERVISED_DECODER_PARTS = ("iou_prediction_head", "pred_obj_score_head")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class FrameFeatures:
    """One batch of frames through the encoder, in SAM2's flattened layout (N frames)."""

    vision_feats: list[torch.Tensor]  # per level (HW_l, N, C_l); last level (h*w, N, 256)
    vision_pos: list[torch.Tensor]  # same shapes
    feat_sizes: list[tuple[int, int]]  # [(4h, 4w), (2h, 2w), (h, w)]

    def select(self, index: torch.Tensor) -> FrameFeatures:
        """Frames `index` (M,) -> a batch of M (repeats allowed)."""
        return FrameFeatures([f[:, index] for f in self.vision_feats], [p[:, index] for p in self.vision_pos],
                             self.feat_sizes)  # fmt: skip

    def high_res(self) -> list[torch.Tensor]:
        """[(N, 32, 4h, 4w), (N, 64, 2h, 2w)] for the decoder's upsampling path."""
        return [x.permute(1, 2, 0).reshape(x.shape[1], x.shape[2], *s)
                for x, s in zip(self.vision_feats[:-1], self.feat_sizes[:-1], strict=True)]  # fmt: skip

    def top(self) -> torch.Tensor:
        """(N, 256, h, w)"""
        x, (h, w) = self.vision_feats[-1], self.feat_sizes[-1]
        return x.permute(1, 2, 0).reshape(x.shape[1], x.shape[2], h, w)


@dataclass
class DecoderOutput:
    masks: torch.Tensor  # (N, 1, 4h, 4w) logits of the chosen mask
    obj_ptr: torch.Tensor  # (N, 256) object pointer for SAM2's memory
    object_score: torch.Tensor  # (N, 1) logit that the object is present


def sam_overrides(cfg: SamSettings) -> list[str]:
    side = cfg.image_size // 16
    return [
        f"++model.image_size={cfg.image_size}",
        f"++model.memory_attention.layer.self_attention.feat_sizes=[{side},{side}]",
        f"++model.memory_attention.layer.cross_attention.feat_sizes=[{side},{side}]",
        *cfg.hydra_overrides,
    ]


def build_sam2_model(cfg: SamSettings) -> nn.Module:
    """SAM2Base from a packaged hydra config, random or loaded from a local checkpoint file."""
    from sam2.build_sam import build_sam2

    try:
        with torch.device("cpu"):  # SAM2's Hiera needs real tensors at build time, even inside a meta context
            model = build_sam2(cfg.config, None, device="cpu", mode="eval", hydra_overrides_extra=sam_overrides(cfg),
                               apply_postprocessing=False)  # fmt: skip
    except Exception as err:  # hydra reports a missing config as a long MissingConfigException
        raise ConfigError(f"sam.config {cfg.config!r}: cannot build SAM2 ({type(err).__name__}: {err})") from None
    if cfg.checkpoint:
        load_sam2_weights(model, cfg.checkpoint)
    return model


def load_sam2_weights(model: nn.Module, path: str) -> None:
    if not Path(path).is_file():
        raise ConfigError(f"sam.checkpoint: {path} is not a file")
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("model", state) if isinstance(state, dict) else state
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ConfigError(
            f"sam.checkpoint {path} does not fit sam.config: {len(missing)} missing keys (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})"
        )


class SamHead(nn.Module):
    def __init__(self, cfg: SamSettings, sam: nn.Module | None = None):
        super().__init__()
        self.cfg = cfg
        self.sam = sam if sam is not None else build_sam2_model(cfg)
        self.sam.requires_grad_(False)
        self.sam.sam_mask_decoder.requires_grad_(True)
        for part in UNSUPERVISED_DECODER_PARTS:
            getattr(self.sam.sam_mask_decoder, part).requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255, persistent=False)

    def _apply(self, fn, recurse=True):
        """Casting the model (e.g. to bf16) keeps SAM2's random Fourier matrix in float32: SAM2 builds
        its positional encodings from float32 grids and multiplies them by this matrix."""
        super()._apply(fn, recurse)
        pe = self.sam.sam_prompt_encoder.pe_layer
        pe.positional_encoding_gaussian_matrix = pe.positional_encoding_gaussian_matrix.float()
        return self

    @property
    def image_size(self) -> int:
        return self.cfg.image_size

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) uint8 or 0..255 float -> normalised float."""
        return (images.to(self.mean.dtype) - self.mean) / self.std

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> dict:
        """The frozen image encoder: (N, 3, S, S) normalised -> SAM2 backbone output (no grad)."""
        return self.sam.image_encoder(images.to(self._dtype()))

    def features(self, backbone: dict) -> FrameFeatures:
        """Backbone output -> decoder inputs. The high-res projections conv_s0/conv_s1 belong to the
        (trainable) mask decoder, so they run here, with gradients."""
        dtype = self._dtype()  # SAM2's neck upsamples in float32: bring every level to the model's dtype
        fpn = [f.to(dtype) for f in backbone["backbone_fpn"]]
        backbone = {**backbone, "vision_pos_enc": [p.to(dtype) for p in backbone["vision_pos_enc"]]}
        if self.sam.use_high_res_features_in_sam:
            fpn[0] = self.sam.sam_mask_decoder.conv_s0(fpn[0])
            fpn[1] = self.sam.sam_mask_decoder.conv_s1(fpn[1])
        _, feats, pos, sizes = self.sam._prepare_backbone_features({**backbone, "backbone_fpn": fpn})
        return FrameFeatures(feats, pos, sizes)

    def no_memory(self, feats: FrameFeatures) -> torch.Tensor:
        """(N, 256, h, w) features of a frame decoded on its own (SAM2's first conditioning frame)."""
        if not self.sam.directly_add_no_mem_embed:
            raise ConfigError("sam.config: only SAM2 configs with directly_add_no_mem_embed are supported")
        x, (h, w) = feats.vision_feats[-1] + self.sam.no_mem_embed, feats.feat_sizes[-1]
        return x.permute(1, 2, 0).reshape(x.shape[1], x.shape[2], h, w)

    def decode(self, pix_feat: torch.Tensor, high_res: list[torch.Tensor] | None, prompt: torch.Tensor | None,
               multimask: bool, gate_absent: bool = False) -> DecoderOutput:  # fmt: skip
        """SAM2's prompt encoder + mask decoder with the text prompt (N, 256) appended to the sparse
        embeddings. gate_absent: SAM2's inference rule (a frame whose object score is <= 0 gets an
        empty mask); training keeps the raw logits so the mask loss always has a gradient."""
        sam, n = self.sam, pix_feat.shape[0]
        sparse, dense = self.empty_prompts(n)  # (N, 2, C), (N, C, h, w)
        if prompt is not None:
            sparse = torch.cat([sparse, prompt[:, None].to(sparse.dtype)], dim=1)  # (N, 3, C)
        image_pe = sam.sam_prompt_encoder.get_dense_pe().to(pix_feat.dtype)  # (1, C, h, w)
        masks, ious, tokens, object_score = sam.sam_mask_decoder(
            image_embeddings=pix_feat, image_pe=image_pe, sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense, multimask_output=multimask, repeat_image=False, high_res_features=high_res,
        )  # fmt: skip  masks (N, M, 4h, 4w), M = 3 if multimask else 1
        token = tokens[:, 0]
        if multimask:
            best = ious.argmax(-1)
            rows = torch.arange(n, device=masks.device)
            masks = masks[rows, best][:, None]
            token = tokens[rows, best] if tokens.shape[1] > 1 else token
        masks = masks.float()
        obj_ptr = sam.obj_ptr_proj(token)
        if sam.pred_obj_scores:
            present = (object_score > 0).float()
            if gate_absent:
                masks = torch.where(present[:, :, None, None] > 0, masks, torch.full_like(masks, -1024.0))
            if sam.fixed_no_obj_ptr:
                obj_ptr = present * obj_ptr
            obj_ptr = obj_ptr + (1 - present) * sam.no_obj_ptr
        return DecoderOutput(masks, obj_ptr, object_score)

    def empty_prompts(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """What SAM2's prompt encoder gives for "no point, no box, no mask" (a padded not-a-point
        twice; the no-mask embedding), built from its weights directly: its point path computes a
        float32 positional encoding that is then discarded, and fails once the model is cast to bf16."""
        pe = self.sam.sam_prompt_encoder
        sparse = pe.not_a_point_embed.weight[None].expand(n, 2, -1)  # (N, 2, C)
        dense = pe.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(n, -1, *pe.image_embedding_size)  # (N, C, h, w)
        return sparse, dense

    def upscale(self, masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """(N, 1, 4h, 4w) logits -> (N, 1, H, W) logits."""
        return F.interpolate(masks.float(), size=size, mode="bilinear", align_corners=False)

    def _dtype(self) -> torch.dtype:
        return self.sam.sam_mask_decoder.iou_token.weight.dtype
