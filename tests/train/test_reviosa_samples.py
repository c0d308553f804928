"""ReVIOsA training samples: the decoder side builds exactly the model's own batches."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from interrvos.data.mevis import load_dataset
from interrvos.model.config import load_model_config
from interrvos.model.processor import TrainingExpression
from interrvos.model.tokens import expression_anno_roles
from interrvos.train.reviosa import ReviosaTask, jitter_frames, pixels_to_u8, processor_for, u8_to_pixels


def test_pixels_survive_the_uint8_round_trip_exactly():
    from interrvos.model.processor import to_pixels

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (30, 40, 3), dtype=np.uint8) for _ in range(3)]
    pixels = to_pixels(frames, 32)
    assert torch.equal(u8_to_pixels(pixels_to_u8(pixels)), pixels)


def test_jitter_changes_brightness_but_not_shape_and_is_seeded():
    frame = np.full((8, 8, 3), 100, np.uint8)
    a = jitter_frames([frame], 0.2, random.Random(1))[0]
    b = jitter_frames([frame], 0.2, random.Random(1))[0]
    assert a.shape == frame.shape and a.dtype == np.uint8 and np.array_equal(a, b)
    assert jitter_frames([frame], 0.0, random.Random(1))[0] is frame


@pytest.mark.slow
def test_sample_builder_and_collate_give_the_models_own_batch(pushing_dataset):
    from interrvos.model.reviosa import ReVIOsA

    cfg = load_model_config("tiny")
    model = ReVIOsA(cfg)
    proc = processor_for(cfg)
    assert (proc.mllm_size, proc.sam_size, proc.tokens_per_frame, proc.mask_size) == (
        model.processor.mllm_size, model.processor.sam_size, model.processor.tokens_per_frame,
        model.processor.mask_size)
    assert proc.ids == model.ids and len(proc.tokenizer) == len(model.tokenizer)

    task = ReviosaTask(cfg, [pushing_dataset])
    build = task.sample_builder()
    ds = load_dataset(pushing_dataset)
    rows = [{"source": 0, "video": "push00", "frames": [0, 2, 5], "expressions": ["2", "0"], "seed": 7},
            {"source": 0, "video": "push01", "frames": [1, 3, 4], "expressions": ["3"], "seed": 8}]
    batch = task.collate([build(r) for r in rows])

    samples = []
    for r in rows:
        video = ds.videos[r["video"]]
        frames = [ds.read_frame(r["video"], video.frames[i]) for i in r["frames"]]
        exps = []
        for e_id in r["expressions"]:
            actor, target = expression_anno_roles(video.expressions[e_id])
            pick = lambda ids: [ds.union_masks(r["video"], ids)[i] for i in r["frames"]]  # noqa: E731
            exps.append(TrainingExpression(video.expressions[e_id].exp, pick(actor), pick(target) if target else None))
        samples.append(model.processor.sample(frames, exps, random.Random(r["seed"])))
    expected = model.processor.collate(samples)
    assert set(batch) == set(expected)
    for key in expected:
        assert torch.equal(batch[key], expected[key]), key
    assert batch["target_valid"].tolist() == [[True, False], [True, False]]
    losses = model(batch)
    assert torch.isfinite(losses["loss"])


@pytest.mark.slow
def test_plain_mevis_folders_mix_with_interrvos_ones(pushing_dataset, tmp_path):
    """A plain MeViS folder (no roles: every expression's ground truth is its objects' union) trains beside
    an InterRVOS one; the mixing ratio decides each source's share of an epoch."""
    import json
    import shutil

    from interrvos.train.config import TrainConfig
    from interrvos.train.data import load_sources, make_plan

    mevis = tmp_path / "mevis"
    shutil.copytree(pushing_dataset, mevis)
    meta = json.loads((mevis / "meta_expressions.json").read_text())
    for video in meta["videos"].values():
        video.pop("objects")
        for e in video["expressions"].values():
            for key in ("interaction", "actor_ids", "target_ids", "actor_anno_id", "target_anno_id", "caption_type"):
                e.pop(key, None)
    (mevis / "meta_expressions.json").write_text(json.dumps(meta))
    assert load_dataset(str(mevis)).kind == "mevis"

    cfg = TrainConfig.model_validate({"data": {"sources": [{"path": pushing_dataset, "ratio": 1},
                                                           {"path": str(mevis), "ratio": 3}],
                                               "samples_per_epoch": 8, "frames_per_sample": 2},
                                      "optim": {"batch_size": 1, "grad_accum": 1}})  # fmt: skip
    plan = make_plan(cfg, load_sources(cfg), world_size=2)
    assert [s.source for s in plan.epoch(0)].count(1) == 6
    task = ReviosaTask(load_model_config("tiny"), [s.path for s in cfg.data.sources])
    build = task.sample_builder()
    plan_rows = list(plan.rows(0, 0, 2))
    batch = task.collate([build(r) for r in plan_rows])
    assert batch["gt_masks"].shape[:3] == (2, 5, 2) and batch["pixel_values"].shape[0] == 4
    from_mevis = [i for i, r in enumerate(plan_rows) if r["source"] == 1]
    assert from_mevis and not batch["target_valid"][from_mevis].any()  # MeViS has no actor-target pairs
    assert all(batch["gt_masks"][i, :, 0].sum() > 0 for i in range(2))
