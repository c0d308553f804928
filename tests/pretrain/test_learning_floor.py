"""A learning floor that a prompt-blind SAM2 cannot pass: after a short in-process training on a fixed
tiny set (the model, losses and samples of the real job, no Ray), the mask decoded for one object's
prompt must match that object better than it matches another object of the same frame. A model that
ignores its prompts predicts one mask per frame whatever the prompt, so its own-minus-other IoU margin
is exactly 0 (the bug of an earlier attempt); a model whose prompt coordinates are mis-scaled fails too."""

from __future__ import annotations

import random

import torch

from interrvos.config import load_config
from interrvos.pretrain.config import PretrainConfig
from interrvos.pretrain.data import SamSamples, cached_video, collate, plan_sources
from interrvos.pretrain.model import SamPretrain, mask_iou

STEPS = 120


def own_minus_other_iou(model: SamPretrain, batch) -> tuple[float, float]:
    """(mean IoU of each prompt's mask with its own object, with the frame's other objects)."""
    model.eval()
    with torch.no_grad():
        feats, _, sizes = model.encode(batch["images"][:, 0])
        (masks, _, _, _), _ = model.prompted_from(feats, sizes, batch["point_coords"], batch["point_labels"])
    model.train()
    b, _, k = batch["masks"].shape[:3]
    masks = masks.view(b, k, -1)
    gts = batch["masks"][:, 0].reshape(b, k, -1)
    own, other = [], []
    for i in range(k):
        own.append(mask_iou(masks[:, i], gts[:, i]).mean())
        other.append(torch.stack([mask_iou(masks[:, i], gts[:, j]) for j in range(k) if j != i]).mean())
    return float(torch.stack(own).mean()), float(torch.stack(other).mean())


def test_masks_follow_their_prompts_after_a_short_training(tiny_synth):
    sets, cache = tiny_synth
    cfg = load_config(PretrainConfig, None, [*sets, "data.objects_per_frame=3", "model.propagation_per_batch=0"])
    (source,) = plan_sources(cfg.data, cache)
    build, rng = SamSamples(cfg.data, cache), random.Random(0)
    rows = []
    for v in source.videos:  # 2 frames per training video, objects distinct within a frame where possible
        for f in rng.sample(range(v.num_frames), 2):
            rows.append(build({"video": v.video, "frames": [f], "expressions": ["1", "2", "3"], "seed": f}))
    batch = collate(rows)
    torch.manual_seed(0)
    model = SamPretrain(cfg.model)
    own0, other0 = own_minus_other_iou(model, batch)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for step in range(STEPS):
        for g in opt.param_groups:
            g["lr"] = 1e-3 * min(1.0, (step + 1) / 10)
        loss = model(batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    own, other = own_minus_other_iou(model, batch)
    assert own - other > 0.25, (own, other, own0, other0)
    assert own > own0 + 0.3
