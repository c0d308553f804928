"""Config defaults and errors, the override list handed to `interrvos train`, prompts and samples."""

from __future__ import annotations

import random

import numpy as np
import pytest
from typer.testing import CliRunner

from interrvos.cli import app
from interrvos.config import REPO_ROOT, load_config
from interrvos.pretrain.config import TRUNKS, PretrainConfig
from interrvos.pretrain.data import BOX, POINT, SamSamples, choose_objects, collate, plan_sources, prompt_for
from interrvos.pretrain.task import train_overrides, train_set

YAML = REPO_ROOT / "jobs" / "configs" / "pretrain_sam.yaml"


def test_the_job_yaml_is_the_recipe():
    cfg = load_config(PretrainConfig, YAML)
    assert (cfg.optim.batch_size, cfg.data.objects_per_frame, cfg.optim.lr, cfg.warmup_steps) == (8, 4, 5e-4, 100)
    assert (cfg.model.bce_weight, cfg.model.dice_weight, cfg.data.box_jitter_px, cfg.data.point_fraction) == (5, 1, 2, .5)
    sam = cfg.model.sam_settings()
    assert sam.image_size == 128 and sam.config.endswith("sam2.1_hiera_t.yaml")
    assert set(TRUNKS["tiny-h48"]) <= set(sam.hydra_overrides)
    train = cfg.train_config()
    assert train.data.frames_per_sample == 1 and train.workers.num_workers == 1
    assert train.optim.warmup_ratio * train.optim.max_steps == pytest.approx(100)


@pytest.mark.parametrize(("override", "words"), [
    ("data.heldout_videos=40", "data.heldout_videos (40) must be below data.synth.num_videos (40)"),
    ("model.trunk=hiera-huge", "model.trunk: Input should be 'tiny-h48' or 'hiera-t'"),
    ("optim.max_steps=50", "warmup_steps (100) must be below optim.max_steps (50)"),
    ("model.image_size=100", "model.image_size (100) must be a multiple of 16"),
    ("data.point_fraction=1.5", "data.point_fraction: Input should be less than or equal to 1"),
])
def test_an_invalid_setting_is_one_readable_line_naming_the_field(override, words):
    result = CliRunner().invoke(app, ["pretrain-sam", "--config", str(YAML), "--set", override])
    assert result.exit_code == 2, result.output
    problems = [line for line in result.output.splitlines() if words in line]
    assert len(problems) == 1 and len(problems[0]) < 200, result.output


def test_train_overrides_survive_the_train_commands_set_parsing():
    """The summary's train_overrides, passed as `interrvos train --set model.overrides=...`, give ReVIOsA
    exactly this SAM2: config, checkpoint, input size and every hydra override (nested lists included)."""
    from interrvos.model.config import load_model_config
    from interrvos.train.config import TrainConfig

    cfg = load_config(PretrainConfig, YAML)
    overrides = train_overrides(cfg, "/runs/x/model/sam2.pt")
    train = load_config(TrainConfig, None, [train_set(overrides), "model.config=tiny"])
    sam = load_model_config(train.model.config, train.model.all_overrides()).sam
    expected = cfg.model.sam_settings()
    assert (sam.checkpoint, sam.image_size, sam.config) == ("/runs/x/model/sam2.pt", 128, expected.config)
    assert sam.hydra_overrides == expected.hydra_overrides


def test_prompts_are_in_input_pixels_inside_the_object():
    mask = np.zeros((128, 128), bool)
    mask[40:60, 70:100] = True
    rng = np.random.default_rng(0)
    for _ in range(20):
        (pt, pad), labels = prompt_for(mask, POINT, 2.0, rng)
        assert labels.tolist() == [1, -1] and mask[int(pt[1]), int(pt[0])]
        corners, labels = prompt_for(mask, BOX, 2.0, rng)
        assert labels.tolist() == [2, 3]
        assert np.abs(corners.ravel() - np.array([70, 40, 99, 59])).max() <= 2.0


def test_objects_of_a_frame_come_from_the_plan_then_other_visible_ones():
    rng = random.Random(0)
    assert choose_objects([2, 5], [1, 2, 3], 3, rng)[0] == 2
    assert sorted(choose_objects([2, 5], [1, 2, 3], 3, rng)) == [1, 2, 3]
    assert len(choose_objects([1], [1], 4, rng)) == 4


def test_samples_hold_aligned_frames_masks_and_prompts(tiny_synth):
    sets, cache = tiny_synth
    cfg = load_config(PretrainConfig, None, sets)
    (source,) = plan_sources(cfg.data, cache)
    assert len(source.videos) == 2  # the third video is held out
    video = source.videos[0]
    build = SamSamples(cfg.data, cache)
    rows = [build({"video": video.video, "frames": [f], "expressions": ["1", "2"], "seed": f}) for f in (0, 5)]
    batch = collate(rows)
    k = cfg.data.objects_per_frame
    assert batch["images"].shape == (2, 2, 3, 128, 128) and batch["masks"].shape == (2, 2, k, 128, 128)
    for b in range(2):
        for j in range(k):
            mask, labels = batch["masks"][b, 0, j].numpy() > 0, batch["point_labels"][b, j].tolist()
            assert mask.sum() >= cfg.data.min_area_px
            if labels[0] == 1:  # the positive point lies on its object's mask
                x, y = batch["point_coords"][b, j, 0].long().tolist()
                assert mask[y, x]
