"""Batches (conversations, labels, masks) and the loss terms on their own."""

from __future__ import annotations

import pytest
import torch

from interrvos.model.losses import IGNORE, bce_loss, dice_loss, lm_loss, mask_losses, point_sample, uncertain_points


def test_labels_cover_exactly_the_answers(tiny_model, clip, batch_of):
    batch = batch_of(tiny_model, clip, frames=2)
    ids, labels = batch["input_ids"][0], batch["labels"][0]
    answer = tiny_model.tokenizer.decode(ids[labels != IGNORE])
    assert "[SEG_ACT] and [SEG_TAR]" in answer and answer.count("<|im_end|>") == 2
    assert "user" not in answer and "blue disc" not in answer and "<IMG_CONTEXT>" not in answer
    # every image token of the two frames is in the prompt, once
    assert int((ids == tiny_model.ids.img_context).sum()) == 2 * tiny_model.processor.tokens_per_frame


def test_seg_tokens_point_at_their_expression_slot(tiny_model, clip, batch_of):
    batch = batch_of(tiny_model, clip, frames=2)
    ids, slots = batch["input_ids"][0], batch["seg_expr"][0]
    seg = [(int(t), int(s)) for t, s in zip(ids, slots, strict=True) if s >= 0]
    act, tar = sorted(tiny_model.ids.seg, key=lambda k: tiny_model.ids.seg[k])
    assert seg == [(act, 0), (tar, 0), (act, 1)]
    assert batch["target_valid"][0].tolist() == [True, False] and batch["expr_valid"][0].tolist() == [True, True]


def test_collate_pads_and_shapes(tiny_model, clip):
    from interrvos.model.processor import TrainingExpression

    p = tiny_model.processor
    one = p.sample(clip.frames[:3], [TrainingExpression("the disc", clip.target[:3])])
    two = p.sample(clip.frames[:3], [TrainingExpression("red square pushing the blue disc", clip.actor[:3],
                                                        clip.target[:3]), TrainingExpression("x", clip.actor[:3])])
    batch = p.collate([one, two])
    s, m = p.sam_size, p.mask_size
    assert batch["sam_images"].shape == (2, 3, 3, s, s) and batch["pixel_values"].shape == (6, 3, p.mllm_size, p.mllm_size)
    assert batch["gt_masks"].shape == (2, 2, 2, 3, m, m)
    assert batch["expr_valid"].tolist() == [[True, False], [True, True]]
    n = len(one["input_ids"])
    assert batch["attention_mask"][0, :n].all() and not batch["attention_mask"][0, n:].any()
    assert (batch["input_ids"][0, n:] == tiny_model.ids.pad).all() and (batch["labels"][0, n:] == IGNORE).all()
    with pytest.raises(ValueError, match="same number of frames"):
        p.collate([one, p.sample(clip.frames[:2], [TrainingExpression("x", clip.actor[:2])])])


def test_lm_loss_equals_shifted_cross_entropy():
    torch.manual_seed(0)
    head = torch.nn.Linear(8, 11, bias=False)
    hidden = torch.randn(2, 5, 8)
    labels = torch.full((2, 5), IGNORE)
    labels[0, 3:] = torch.tensor([4, 7])
    labels[1, 2] = 1
    logits = head(hidden)
    ref = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 11), labels[:, 1:].reshape(-1), ignore_index=IGNORE)
    assert torch.allclose(lm_loss(head, hidden, labels), ref)
    assert lm_loss(head, hidden, torch.full((2, 5), IGNORE)).item() == 0.0


def test_dice_and_bce_reward_exact_masks():
    target = torch.zeros(3, 16)
    target[:, :5] = 1
    perfect = (target * 2 - 1) * 30
    assert dice_loss(perfect, target) < 1e-3 and bce_loss(perfect, target) < 1e-3
    assert dice_loss(-perfect, target) > 0.9 and bce_loss(-perfect, target) > 10
    # eps=1 dice of an empty prediction for an empty target is 0 (nothing to find, nothing found)
    assert dice_loss(torch.full((1, 16), -30.0), torch.zeros(1, 16)) < 1e-3


def test_point_sampling_reads_pixel_centres_and_prefers_uncertain_points():
    maps = torch.arange(16.0).view(1, 1, 4, 4)
    centre = torch.tensor([[[(1 + 0.5) / 4, (2 + 0.5) / 4]]])  # x=1, y=2
    assert point_sample(maps, centre).item() == pytest.approx(9.0)
    logits = torch.full((2, 1, 32, 32), 20.0)
    logits[:, :, :, 16:] = -20.0
    logits[:, :, :, 15:17] = 0.0  # the uncertain band
    coords = uncertain_points(logits, 100, 10.0, 0.75, torch.Generator().manual_seed(0))
    assert coords.shape == (2, 100, 2) and coords.min() >= 0 and coords.max() <= 1
    near_band = ((coords[:, :75, 0] - 0.5).abs() < 0.1).float().mean()
    assert near_band > 0.9


def test_point_sampled_mask_loss_is_close_to_the_dense_one():
    torch.manual_seed(0)
    logits = torch.randn(4, 32, 32)
    targets = (torch.rand(4, 32, 32) > 0.5).float()
    dense = mask_losses(logits, targets, 0)
    sampled = mask_losses(logits, targets, 4096, 1.0, 0.0)  # uniform points
    assert sampled[0].item() == pytest.approx(dense[0].item(), rel=0.1)
    assert sampled[1].item() == pytest.approx(dense[1].item(), rel=0.1)
    zero = mask_losses(logits[:0], targets[:0], 0)
    assert zero[0].item() == 0.0 and zero[1].item() == 0.0
