"""Loss terms: LM cross-entropy on the answer, mask BCE and Dice (dense, or on points sampled by
uncertainty as in the reference code / Mask2Former), and the reference code's attention-map loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE = -100


def lm_loss(lm_head: torch.nn.Module, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy over the labelled (answer) positions only: the logits of the other
    positions are never computed, which saves a (B, L, vocab) tensor. hidden (B, L, d), labels (B, L)."""
    target = labels[:, 1:]
    keep = target != IGNORE  # (B, L-1)
    if not keep.any():
        return hidden.sum() * 0.0
    logits = lm_head(hidden[:, :-1][keep]).float()  # (n, vocab)
    return F.cross_entropy(logits, target[keep])


def dice_loss(logits: torch.Tensor, targets: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - (2|P.G| + eps) / (|P| + |G| + eps) per mask (naive dice, eps 1), averaged. (n, k) each."""
    probs = logits.sigmoid()
    inter = (probs * targets).sum(-1)
    return (1 - (2 * inter + eps) / (probs.sum(-1) + targets.sum(-1) + eps)).mean()


def bce_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy over every point of every mask. (n, k) each."""
    return F.binary_cross_entropy_with_logits(logits, targets)


def point_sample(maps: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Bilinear values of (n, 1, H, W) maps at (n, k, 2) coordinates in [0, 1] (x, y) -> (n, k)."""
    grid = 2.0 * coords[:, :, None] - 1.0  # (n, k, 1, 2)
    return F.grid_sample(maps, grid, mode="bilinear", align_corners=False)[:, 0, :, 0]


def uncertain_points(logits: torch.Tensor, num_points: int, oversample_ratio: float, importance_ratio: float,
                     generator: torch.Generator | None = None) -> torch.Tensor:  # fmt: skip
    """Mask2Former's sampling: oversample at random, keep the most uncertain (|logit| smallest) share,
    fill the rest uniformly. logits (n, 1, H, W) -> coords (n, num_points, 2)."""
    n = logits.shape[0]
    over = int(num_points * oversample_ratio)
    coords = torch.rand(n, over, 2, device=logits.device, generator=generator)
    uncertainty = -point_sample(logits, coords).abs()  # (n, over)
    n_important = int(importance_ratio * num_points)
    top = uncertainty.topk(n_important, dim=1).indices  # (n, n_important)
    picked = torch.gather(coords, 1, top[..., None].expand(-1, -1, 2))
    rest = torch.rand(n, num_points - n_important, 2, device=logits.device, generator=generator)
    return torch.cat([picked, rest], dim=1)


def mask_losses(logits: torch.Tensor, targets: torch.Tensor, num_points: int = 0, oversample_ratio: float = 3.0,
                importance_ratio: float = 0.75) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """(BCE, Dice) of predicted mask logits against 0/1 targets, both (n, H, W), one mask per row.
    num_points > 0: on uncertainty-sampled points (as the reference code), else on every pixel."""
    if logits.shape[0] == 0:
        zero = logits.sum() * 0.0
        return zero, zero
    logits, targets = logits.float(), targets.float()
    if num_points > 0:
        with torch.no_grad():
            coords = uncertain_points(logits[:, None], num_points, oversample_ratio, importance_ratio)
            point_targets = point_sample(targets[:, None], coords)
        point_logits = point_sample(logits[:, None], coords)
        return bce_loss(point_logits, point_targets), dice_loss(point_logits, point_targets)
    flat_logits, flat_targets = logits.flatten(1), targets.flatten(1)
    return bce_loss(flat_logits, flat_targets), dice_loss(flat_logits, flat_targets)


def attention_map_loss(attn: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """The reference code's extra term: BCE between the attention probabilities a segmentation token
    puts on the image tokens and the ground-truth mask at the image-token grid.
    attn (n, heads, T*g*g) in [0, 1]; masks (n, T*g*g) 0/1."""
    probs = attn.float().clamp(1e-6, 1 - 1e-6)
    return F.binary_cross_entropy(probs, masks[:, None].expand_as(probs).float())
