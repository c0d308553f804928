"""Shapes through the whole model and video inference (generation, prompting, propagation)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interrvos.data.rle import decode_rle
from interrvos.model.inference import generate, sample_frames, segment_video
from interrvos.model.synthetic import synthetic_clip
from interrvos.model.tracking import Timings, track

BOTH = "It is [SEG_ACT] and [SEG_TAR]."


def test_shapes_through_the_whole_model(tiny_model, clip, batch_of):
    m = tiny_model
    batch = batch_of(m, clip, frames=3, samples=2)  # B=2, T=3, E=2
    b, t = 2, 3
    s, side = m.cfg.sam.image_size, m.cfg.sam.image_size // 4
    with torch.no_grad():
        hidden = m.language_hidden(batch["input_ids"], batch["pixel_values"], batch["attention_mask"])
        assert hidden.shape == (*batch["input_ids"].shape, m.hidden_size)
        prompts, bi, slot, role, _ = m.seg_prompts(hidden, batch["input_ids"], batch["seg_expr"])
        assert prompts.shape == (6, 256) and bi.tolist() == [0, 0, 0, 1, 1, 1] and role.tolist() == [0, 1, 0] * 2
        feats = m.sam_features(batch["sam_images"].flatten(0, 1))
        assert feats.top().shape == (b * t, 256, s // 16, s // 16)
        assert [x.shape[1:] for x in feats.high_res()] == [(32, s // 4, s // 4), (64, s // 8, s // 8)]
        index = bi[:, None] * t + torch.arange(t)[None]
        logits = m.decode_frames(feats, index, prompts)
        assert logits.shape == (6, t, side, side)
    assert batch["gt_masks"].shape == (b, 2, 2, t, side, side)


def test_frame_sampling():
    assert sample_frames(20, 5, "first") == [0, 1, 2, 3, 4]
    assert sample_frames(21, 5, "uniform") == [0, 5, 10, 15, 20]
    assert sample_frames(3, 5, "uniform") == [0, 1, 2] == sample_frames(3, 5, "first")
    with pytest.raises(ValueError):
        sample_frames(0, 5)


def test_inference_on_a_20_frame_clip_gives_masks_for_every_frame(tiny_model):
    clip = synthetic_clip(num_frames=20, height=60, width=80, seed=3)
    timings = Timings()
    results = segment_video(tiny_model, clip.frames, ["red square pushing the blue disc", "the blue disc"],
                            timings=timings, answers=[BOTH, "It is [SEG_ACT]."])  # fmt: skip
    assert [r.answers for r in results] == [[BOTH], ["It is [SEG_ACT]."]]
    uni, solo = results
    assert len(uni.actor) == len(uni.target) == len(solo.actor) == 20 and solo.target is None
    for rle in uni.actor + uni.target + solo.actor:
        mask = decode_rle(rle)
        assert mask.shape == (60, 80) and mask.dtype == np.uint8
    assert timings.frames == 20 and timings.encoder > 0 and timings.propagation > 0 and timings.mllm > 0


def test_generated_answers_decide_the_roles(tiny_model):
    """Untrained, the tiny model answers nothing useful: no [SEG_*] token means an empty actor mask on
    every frame and no target (never a crash)."""
    clip = synthetic_clip(num_frames=6, height=40, width=40)
    (result,) = segment_video(tiny_model, clip.frames, ["anything"])
    assert len(result.actor) == 6 and result.target is None
    assert not any(decode_rle(r).any() for r in result.actor) or "[SEG_ACT]" in result.answers[0]


def test_generation_keeps_the_hidden_state_at_each_forced_segmentation_token(tiny_model):
    frames = synthetic_clip(num_frames=2, height=40, width=40).frames
    from interrvos.model.processor import to_pixels

    pixels = to_pixels(frames, tiny_model.processor.mllm_size)
    g = generate(tiny_model, pixels, "Please segment the dog.", forced=BOTH)
    assert [role for role, _ in g.seg] == [0, 1] and g.text == BOTH
    # the same hidden state as a teacher-forced pass over prompt + answer
    ids = tiny_model.processor.prompt_ids("Please segment the dog.", 2) + g.token_ids
    with torch.no_grad():
        hidden = tiny_model.language_hidden(torch.tensor([ids]), pixels)
    positions = [i for i, t in enumerate(ids) if t in tiny_model.ids.seg]
    for (_, h), p in zip(g.seg, positions, strict=True):
        assert torch.allclose(h, hidden[0, p], atol=1e-4)


def test_tracking_uses_memory_and_yields_every_frame_in_order(tiny_model, monkeypatch):
    head = tiny_model.sam
    # the random model scores every object absent, which empties its masks: look at the raw logits
    monkeypatch.setattr(head.sam, "pred_obj_scores", False)
    s = head.image_size
    frames = torch.randn(8, 3, s, s)
    prompts = torch.randn(2, 256)
    seen = []
    for t, logits in track(head, lambda idx: frames[list(idx)], 8, prompts, [0, 3, 6], chunk=3):
        assert logits.shape == (2, 1, s // 4, s // 4)
        seen.append(t)
    assert seen == list(range(8))
    # a frame's mask depends on the memory of the earlier frames, not only on the frame itself
    a = dict(track(head, lambda idx: frames[list(idx)], 4, prompts, [0]))
    changed = frames.clone()
    changed[0] = torch.randn(3, s, s)
    b = dict(track(head, lambda idx: changed[list(idx)], 4, prompts, [0]))
    assert torch.equal(a[0], a[0]) and not torch.equal(a[3], b[3])
    with pytest.raises(ValueError, match="start at 0"):
        list(track(head, lambda idx: frames[list(idx)], 8, prompts, [3]))


def test_bf16_inference_under_autocast(fresh_tiny):
    from interrvos.model.inference import inference_context

    model = fresh_tiny().to(torch.bfloat16).eval()
    clip = synthetic_clip(num_frames=6, height=40, width=56)
    with inference_context("cpu", torch.bfloat16):
        (result,) = segment_video(model, clip.frames, ["red square pushing the blue disc"], answers=[BOTH])
    assert len(result.actor) == len(result.target) == 6 and decode_rle(result.target[5]).shape == (40, 56)


def test_prompted_propagation_decodes_every_frame_on_its_own(tiny_model):
    """`inference.propagation: prompted`: each frame's mask depends on that frame and the prompts only,
    and a conditioning frame gets the same mask as with memory propagation."""
    head = tiny_model.sam
    s = head.image_size
    frames = torch.randn(5, 3, s, s)
    prompts = torch.randn(2, 256)
    run = lambda fr, memory: dict(track(head, lambda idx: fr[list(idx)], 5, prompts, [0, 2], memory=memory,  # noqa: E731
                                        gate_absent=False))  # fmt: skip
    prompted, remembered = run(frames, False), run(frames, True)
    assert sorted(prompted) == list(range(5)) and prompted[3].shape == (2, 1, s // 4, s // 4)
    assert torch.allclose(prompted[2], remembered[2], atol=1e-5)  # a prompted frame: decoded alone in both modes
    assert not torch.allclose(prompted[3], remembered[3], atol=1e-3)  # memory changes the propagated frames
    changed = frames.clone()
    changed[0] = torch.randn(3, s, s)
    again = run(changed, False)
    assert torch.equal(again[3], prompted[3]) and not torch.equal(again[0], prompted[0])
    # SAM2's gate empties the frames the random object-score head calls absent; without it the logits stay
    gated = dict(track(head, lambda idx: frames[list(idx)], 5, prompts, [0], memory=False, gate_absent=True))
    absent = [t for t in gated if (gated[t] <= -1024).all()]
    assert all(torch.equal(gated[t], prompted[t]) for t in gated if t not in absent)
