"""The trainable SAM2 (every module: image encoder, prompt encoder, mask decoder, memory attention and
encoder) and its losses, as the training loop's module (`forward(batch) -> losses`).

Prompted frame (SAM2's image path): forward_image -> fpn[-1] + no_mem_embed is the image embedding,
fpn[0..1] (already projected by conv_s0/s1) the high-res features -> prompt encoder (points in input
pixels; a box is its two corners, labels 2 and 3) -> mask decoder, one mask.
Tracked frame (SAM2's memory path, as its training does on clips): the prompted frame's mask and
features go through the memory encoder, its object pointer is kept, and the next frame is decoded with
no prompt from `_prepare_memory_conditioned_features` (memory attention over that memory).

The decoder's raw logits are used for the losses: SAM2's inference rule that replaces a mask by -1024
when its object score is <= 0 would cut the mask loss's gradient (the object-score head has its own loss).
Shapes: B frames, K objects per frame, N = B*K prompts, S input side, h = S/16.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from interrvos.model.losses import bce_loss, dice_loss
from interrvos.model.sam_head import IMAGENET_MEAN, IMAGENET_STD, build_sam2_model
from interrvos.pretrain.config import PretrainModel


def mask_iou(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """IoU per mask of logits > 0 against binary targets, (N, ...) each -> (N,); both empty counts 1."""
    pred, gt = logits.flatten(1) > 0, targets.flatten(1) > 0.5
    inter, union = (pred & gt).sum(-1).float(), (pred | gt).sum(-1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


class SamPretrain(nn.Module):
    def __init__(self, cfg: PretrainModel):
        super().__init__()
        self.cfg = cfg
        self.sam = build_sam2_model(cfg.sam_settings())
        self.sam.train()  # build_sam2 returns it in eval mode
        self.sam.requires_grad_(True)
        # optimizer steps seen (forward calls in training mode; saved with the training checkpoints)
        self.register_buffer("seen_steps", torch.zeros((), dtype=torch.long))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255, persistent=False)

    # ---- building blocks (shared with measure.py) ----
    def encode(self, images: torch.Tensor):
        """(M, 3, S, S) uint8 -> (vision_feats, vision_pos, feat_sizes) in SAM2's flattened (HW, M, C) layout."""
        x = (images.float() - self.mean) / self.std
        _, feats, pos, sizes = self.sam._prepare_backbone_features(self.sam.forward_image(x))
        return feats, pos, sizes

    def high_res_scale(self) -> float:
        """Weight of the decoder's high-res skip features: ramped from 0 to 1 over `high_res_warmup_steps`.
        From random init the stride-4/8 skip lets the decoder paint every object of the frame without
        reading its prompt (a prompt-blind optimum: the same mask for every prompt); with the skip off at
        first, the mask must come through the prompt-conditioned tokens, and the skip then adds detail."""
        n = self.cfg.high_res_warmup_steps
        return 1.0 if n == 0 else min(1.0, float(self.seen_steps) / n)

    def high_res(self, feats, sizes, index: torch.Tensor) -> list[torch.Tensor]:
        scale = self.high_res_scale()
        return [f[:, index].permute(1, 2, 0).reshape(len(index), f.shape[2], *s) * scale
                for f, s in zip(feats[:-1], sizes[:-1], strict=True)]  # fmt: skip

    def decode(self, pix: torch.Tensor, high_res: list[torch.Tensor], coords: torch.Tensor | None,
               labels: torch.Tensor | None):  # fmt: skip
        """pix (N, 256, h, w), prompts (N, P, 2) / (N, P) or None -> (mask logits (N, 1, S, S), predicted
        IoU (N, 1), output token (N, 256), object-score logit (N, 1)). No prompt: SAM2's padding point."""
        n = pix.shape[0]
        if coords is None:
            coords = torch.zeros(n, 1, 2, device=pix.device)
            labels = -torch.ones(n, 1, dtype=torch.int32, device=pix.device)
        sparse, dense = self.sam.sam_prompt_encoder(points=(coords, labels), boxes=None, masks=None)
        low, iou, tokens, obj = self.sam.sam_mask_decoder(
            image_embeddings=pix, image_pe=self.sam.sam_prompt_encoder.get_dense_pe(), sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense, multimask_output=False, repeat_image=False, high_res_features=high_res,
        )  # fmt: skip  low (N, 1, 4h, 4w)
        size = self.sam.image_size
        masks = F.interpolate(low.float(), size=(size, size), mode="bilinear", align_corners=False)
        return masks, iou, tokens[:, 0], obj

    def object_pointer(self, token: torch.Tensor, obj: torch.Tensor) -> torch.Tensor:
        """SAM2's object pointer of a decoded mask (with its no-object handling)."""
        sam = self.sam
        ptr = sam.obj_ptr_proj(token)
        if sam.pred_obj_scores:
            present = obj.sigmoid() if sam.soft_no_obj_ptr else (obj > 0).float()
            if sam.fixed_no_obj_ptr:
                ptr = present * ptr
            ptr = ptr + (1 - present) * sam.no_obj_ptr
        return ptr

    def prompted_from(self, feats, sizes, coords: torch.Tensor, labels: torch.Tensor):
        """Frames 0..B-1 of an encoded batch with K prompts each, (B, K, P, 2) / (B, K, P) -> (decode() of
        the N = B*K prompts, prompt -> frame index (N,))."""
        b, k = coords.shape[:2]
        index = torch.arange(b, device=coords.device).repeat_interleave(k)
        h, w = sizes[-1]
        pix = (feats[-1][:, index] + self.sam.no_mem_embed).permute(1, 2, 0).reshape(b * k, -1, h, w)
        out = self.decode(pix, self.high_res(feats, sizes, index), coords.flatten(0, 1), labels.flatten(0, 1))
        return out, index

    def memory_of(self, feats, sizes, index, masks, obj, token) -> dict:
        """A decoded frame as a conditioning memory (SAM2's memory encoder on its mask)."""
        top = [feats[-1][:, index]]
        maskmem, maskmem_pos = self.sam._encode_new_memory(
            current_vision_feats=top, feat_sizes=sizes[-1:], pred_masks_high_res=masks, object_score_logits=obj,
            is_mask_from_pts=True)  # fmt: skip
        return {"maskmem_features": maskmem, "maskmem_pos_enc": maskmem_pos, "obj_ptr": self.object_pointer(token, obj)}

    def tracked(self, feats, pos, sizes, index, memory: dict, frame_idx: int = 1):
        """Decode frames `index` of an encoded batch with no prompt, from the memory of frame 0."""
        h, w = sizes[-1]
        output_dict = {"cond_frame_outputs": {0: memory}, "non_cond_frame_outputs": {}}
        pix = self.sam._prepare_memory_conditioned_features(
            frame_idx=frame_idx, is_init_cond_frame=False, current_vision_feats=[feats[-1][:, index]],
            current_vision_pos_embeds=[pos[-1][:, index]], feat_sizes=[(h, w)], output_dict=output_dict,
            num_frames=frame_idx + 1)  # fmt: skip
        return self.decode(pix, self.high_res(feats, sizes, index), None, None)

    # ---- training ----
    def mask_terms(self, masks, iou_pred, obj, targets) -> dict[str, torch.Tensor]:
        """Mask BCE, Dice, IoU-head MSE and object-score BCE of N masks (N, 1, S, S) against (N, S, S)."""
        logits, gt = masks.flatten(1), targets.flatten(1)
        present = (gt.sum(-1) > 0).float()
        real_iou = mask_iou(logits, gt).detach()
        return {"bce": bce_loss(logits, gt), "dice": dice_loss(logits, gt),
                "iou_mse": F.mse_loss(iou_pred[:, 0].float(), real_iou),
                "obj": F.binary_cross_entropy_with_logits(obj[:, 0].float(), present), "iou": real_iou.mean()}

    def weighted(self, t: dict[str, torch.Tensor]) -> torch.Tensor:
        c = self.cfg
        return c.bce_weight * t["bce"] + c.dice_weight * t["dice"] + c.iou_weight * t["iou_mse"] + c.object_weight * t["obj"]

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        images, masks = batch["images"], batch["masks"]  # (B, 2, 3, S, S), (B, 2, K, S, S)
        if self.training:
            self.seen_steps += 1
        b, _, k = masks.shape[:3]
        # the tracked frames start once the prompt path works: decoded with no prompt, their loss rewards a
        # mask that ignores prompts, which keeps a random decoder in its prompt-blind phase (docs/training.md)
        p = min(self.cfg.propagation_per_batch, b) if int(self.seen_steps) > self.cfg.propagation_start_step else 0
        # one encoder pass: the B prompted frames, then the next frames of the first p samples
        frames = torch.cat([images[:, 0], images[:p, 1]])
        feats, pos, sizes = self.encode(frames)
        (m0, iou0, tok0, obj0), index = self.prompted_from(feats, sizes, batch["point_coords"], batch["point_labels"])
        t0 = self.mask_terms(m0, iou0, obj0, masks[:, 0].flatten(0, 1))
        loss = self.weighted(t0)
        out = {"loss_bce": t0["bce"], "loss_dice": t0["dice"], "loss_iou_head": t0["iou_mse"],
               "loss_object": t0["obj"], "train_iou": t0["iou"]}  # fmt: skip
        if p:
            n = p * k
            memory = self.memory_of(feats, sizes, index[:n], m0[:n], obj0[:n], tok0[:n])
            index1 = b + torch.arange(p, device=frames.device).repeat_interleave(k)
            m1, iou1, _, obj1 = self.tracked(feats, pos, sizes, index1, memory)
            t1 = self.mask_terms(m1, iou1, obj1, masks[:p, 1].flatten(0, 1))
            loss = loss + self.cfg.propagation_weight * self.weighted(t1)
            out.update({"loss_prop_bce": t1["bce"], "loss_prop_dice": t1["dice"], "train_prop_iou": t1["iou"]})
        out["loss"] = loss
        return {key: v.detach() if key.startswith("train_") else v for key, v in out.items()}
