"""Training behaviour of the tiny model: what is trainable, each loss term, the ablation modes, and
that it learns (masks overfit, tokens follow the expression kind)."""

from __future__ import annotations

import pytest
import torch

from interrvos.model.reviosa import LOSS_KEYS


def _groups(names):
    out = {"lora": 0, "token_rows": 0, "projection": 0, "sam_decoder": 0, "other": 0}
    for n in names:
        key = ("lora" if "lora_" in n else "token_rows" if "trainable_tokens" in n else "projection"
               if n.startswith("projection.") else "sam_decoder" if ".sam_mask_decoder." in n else "other")  # fmt: skip
        out[key] += 1
    return out


def test_trainable_parts_are_lora_token_rows_projection_and_mask_decoder(tiny_model):
    names = list(tiny_model.trainable_parameters())
    groups = _groups(names)
    assert groups["other"] == 0 and all(groups[k] > 0 for k in ("lora", "token_rows", "projection", "sam_decoder"))
    frozen = [n for n, p in tiny_model.named_parameters() if not p.requires_grad]
    assert any(".vision_tower." in n for n in frozen) and any(".image_encoder." in n for n in frozen)
    assert not any("lora_" in n for n in frozen)
    assert all(".layers." in n for n in names if "lora_" in n)  # LoRA on the language model only
    assert not any(".vision_tower." in n or ".image_encoder." in n for n in names)


def test_gradients_reach_exactly_the_trainable_parameters_and_frozen_ones_stay_identical(fresh_tiny, clip, batch_of):
    model = fresh_tiny().train()
    batch = batch_of(model, clip, frames=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    losses = model(batch)
    losses["loss"].backward()
    trainable = model.trainable_parameters()
    for name, p in model.named_parameters():
        if name in trainable:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
        else:
            assert p.grad is None, name
    nonzero = _groups(n for n, p in trainable.items() if p.grad.abs().sum() > 0)
    assert all(nonzero[k] > 0 for k in ("lora", "token_rows", "projection", "sam_decoder"))
    torch.optim.AdamW(trainable.values(), lr=1e-2).step()
    after = model.state_dict()
    trainable_keys = set(trainable) | {k for k in after if "trainable_tokens_delta" in k}  # tied alias
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    assert changed and changed <= trainable_keys
    assert all(torch.equal(after[k], before[k]) for k in after if k not in trainable_keys)


def test_loss_terms_and_weights(fresh_tiny, clip, batch_of):
    model = fresh_tiny().eval()
    with torch.no_grad():
        both = model(batch_of(model, clip, frames=2))
        actor_only = model(batch_of(model, clip, frames=2, unidirectional=False))
        lm_only = model({k: v for k, v in batch_of(model, clip, frames=2).items() if k not in ("gt_masks",)})
    assert set(both) == set(LOSS_KEYS)
    assert all(torch.isfinite(v) and v > 0 for v in both.values())
    w = model.cfg.loss
    expected = (w.lm_weight * both["loss_lm"] + w.bce_weight * (both["loss_mask_actor"] + both["loss_mask_target"])
                + w.dice_weight * (both["loss_dice_actor"] + both["loss_dice_target"]))  # fmt: skip
    assert torch.allclose(both["loss"], expected)
    # no unidirectional expression: no target term
    assert actor_only["loss_mask_target"] == 0 and actor_only["loss_dice_target"] == 0
    assert actor_only["loss_mask_actor"] > 0
    # without masks only the LM term
    assert set(lm_only) == {"loss", "loss_lm"} and torch.allclose(lm_only["loss"], both["loss_lm"])


def test_point_sampled_losses_and_the_attention_loss(fresh_tiny, clip, batch_of):
    model = fresh_tiny("loss.num_points=256", "loss.attention.enabled=true").eval()
    with torch.no_grad():
        losses = model(batch_of(model, clip, frames=2))
    assert "loss_attn" in losses and 0 < losses["loss_attn"] < 10
    assert torch.isfinite(losses["loss"])


def test_attention_probe_matches_eager_attention(fresh_tiny, clip, batch_of):
    model = fresh_tiny("mllm.attn_implementation=eager", "loss.attention.enabled=true",
                       "loss.attention.heads=[[1,0],[1,3],[0,2]]").eval()  # fmt: skip
    batch = batch_of(model, clip, frames=2, samples=2)  # rows of a batch share one rotary table
    from interrvos.model.mllm import base_internvl

    base = base_internvl(model.mllm)
    with torch.no_grad():
        out = base.model(input_ids=batch["input_ids"], pixel_values=batch["pixel_values"], output_attentions=True)
        rows = torch.tensor([0, 1])
        positions = torch.tensor([40, batch["input_ids"].shape[1] - 3])
        keys = torch.stack([torch.arange(30), torch.arange(30)])
        probs = model._probe.probabilities(rows, positions, keys)  # (2, heads, 30)
    for h, (layer, head) in enumerate(model.cfg.loss.attention.heads):
        ref = out.attentions[layer][rows, head, positions][:, :30]
        assert torch.allclose(probs[:, h], ref, atol=1e-5), (layer, head)


@pytest.mark.parametrize("mode", ["joint", "independent", "single"])
def test_ablation_modes(fresh_tiny, clip, batch_of, mode):
    model = fresh_tiny(f"mode={mode}").train()
    batch = batch_of(model, clip, frames=2)
    n_seg = int((batch["seg_expr"] >= 0).sum())
    assert n_seg == {"joint": 3, "independent": 3, "single": 2}[mode]  # (uni actor+target, single actor)
    turns = int((batch["input_ids"] == model.ids.im_start).sum()) // 2
    assert turns == {"joint": 2, "independent": 4, "single": 2}[mode]
    losses = model(batch)
    losses["loss"].backward()
    if mode == "single":
        assert len(model.ids.seg) == 1 and losses["loss_mask_target"] == 0 and not batch["target_valid"].any()
    else:
        assert losses["loss_mask_target"] > 0 and batch["target_valid"][0, 0]
    assert all(p.grad is not None for p in model.trainable_parameters().values())


def test_tiny_model_overfits_one_batch(fresh_tiny, clip, batch_of):
    """Mask loss (2 BCE + 0.5 Dice, actor and target) falls by >= 80% within 60 steps (~10 needed)."""
    model = fresh_tiny().train()
    batch = batch_of(model, clip, frames=2)
    batch["sam_backbone"] = model.sam.encode(batch["sam_images"].flatten(0, 1))  # the frozen encoder, once
    opt = torch.optim.AdamW(model.trainable_parameters().values(), lr=1e-3, weight_decay=0.0)

    def mask_loss(losses):
        return float(2.0 * (losses["loss_mask_actor"] + losses["loss_mask_target"]).detach()
                     + 0.5 * (losses["loss_dice_actor"] + losses["loss_dice_target"]).detach())  # fmt: skip

    history = []
    for _ in range(60):
        losses = model(batch)
        history.append(mask_loss(losses))
        if history[-1] <= 0.2 * history[0]:
            break
        opt.zero_grad()
        losses["loss"].backward()
        opt.step()
    assert history[-1] <= 0.2 * history[0], f"{history[0]:.3f} -> {history[-1]:.3f} in {len(history)} steps"


@pytest.mark.slow
def test_emitted_tokens_follow_the_expression_kind_after_a_short_teaching_run(fresh_tiny, clip):
    """After LM-only teaching, [SEG_TAR] is generated for unidirectional interactions only."""
    from interrvos.model.inference import generate
    from interrvos.model.processor import TrainingExpression
    from interrvos.model.templates import inference_questions
    from interrvos.model.tokens import SEG_ACT, SEG_TAR

    model = fresh_tiny("random_templates=false").train()
    kinds = {"red square pushing the blue disc": True, "the dog chasing a cat": True,
             "the blue disc": False, "two people hugging each other": False}  # fmt: skip
    p = model.processor
    samples = [p.sample(clip.frames[:1], [TrainingExpression(text, clip.actor[:1], clip.target[:1] if uni else None)])
               for text, uni in kinds.items()]  # fmt: skip
    batch = {k: v for k, v in p.collate(samples).items() if k != "gt_masks"}  # LM loss only
    opt = torch.optim.AdamW(model.trainable_parameters().values(), lr=1e-2, weight_decay=0.0)
    for _ in range(200):  # ~80 steps needed
        loss = model(batch)["loss_lm"]
        if loss.item() < 0.05:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    pixels = samples[0]["pixel_values"]
    for text, uni in kinds.items():
        (question,) = inference_questions(text, "joint")
        answer = generate(model, pixels, question).text
        assert SEG_ACT in answer and (SEG_TAR in answer) == uni, (text, answer)


def test_bf16_model_trains_and_truncated_answers_give_zero_mask_terms(fresh_tiny, clip, batch_of):
    """A model cast to bf16 (as DeepSpeed's bf16 mode does) runs forward and backward; an answer cut
    off before its segmentation tokens gives zero mask terms rather than an error."""
    model = fresh_tiny().to(torch.bfloat16).train()
    losses = model(batch_of(model, clip, frames=2))
    assert all(torch.isfinite(v.float()) for v in losses.values())
    losses["loss"].backward()
    assert all(p.grad is not None for p in model.trainable_parameters().values())
    batch = batch_of(model, clip, frames=2)
    batch["seg_expr"][:] = -1  # as if max_length had cut every answer
    cut = model(batch)
    assert cut["loss_mask_actor"] == 0 and cut["loss_dice_target"] == 0 and torch.isfinite(cut["loss_lm"].float())


def test_empty_prompts_are_what_sam2s_prompt_encoder_gives(tiny_model):
    encoder = tiny_model.sam.sam.sam_prompt_encoder
    points = (torch.zeros(3, 1, 2), -torch.ones(3, 1, dtype=torch.int32))
    with torch.no_grad():
        sparse, dense = encoder(points=points, boxes=None, masks=None)
    ours = tiny_model.sam.empty_prompts(3)
    assert torch.equal(ours[0], sparse) and torch.equal(ours[1], dense)
