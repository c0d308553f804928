"""A short real run of `interrvos pretrain-sam` through run_train (Ray Train + DeepSpeed ZeRO-2, 1 CPU
worker): the exported sam2.pt loads strictly into the configured SAM2, and the summary's
train_overrides build a tiny ReVIOsA whose SAM2 holds exactly those weights."""

from __future__ import annotations

import json

import pytest
import torch

from interrvos.config import load_config
from interrvos.pretrain.config import PretrainConfig

pytestmark = pytest.mark.slow


def test_a_short_run_writes_a_checkpoint_that_reviosa_starts_from(tiny_synth, tmp_path, ray_cluster):
    from interrvos.model.config import load_model_config
    from interrvos.model.reviosa import build_model
    from interrvos.model.sam_head import build_sam2_model, load_sam2_weights
    from interrvos.pretrain.run import run_pretrain
    from interrvos.train.config import TrainConfig

    sets, _ = tiny_synth
    cfg = load_config(PretrainConfig, None, [
        *sets, f"storage={tmp_path}", "name=tiny", "optim.max_steps=8", "warmup_steps=2", "optim.batch_size=2",
        "model.propagation_per_batch=1", "model.propagation_start_step=3", "checkpoint.every_n_steps=4", "workers.use_gpu=false",
        "measure.objects=8", "measure.tracks=2", "measure.track_frames=2", "log.progress=false"])  # fmt: skip
    summary = run_pretrain(cfg)
    run = tmp_path / "tiny"
    assert summary["steps"] == 8 and (run / "model" / "sam2.pt").is_file()
    assert json.loads((run / "pretrain_summary.json").read_text())["train_overrides"] == summary["train_overrides"]
    for figures in summary["heldout"].values():
        assert set(figures) >= {"point_iou", "box_iou", "propagation_iou", "filled_box_iou"}
        assert all(0.0 <= v <= 1.0 for v in figures.values())
    assert "loss_prop_dice" in summary["final_metrics"]  # the tracked frames (memory path) were trained
    assert (run / "report" / "pretrain.md").is_file() and (run / "report" / "loss_curve.png").is_file()

    # strict load into the SAM2 the config names (load_sam2_weights raises on any missing/unexpected key)
    sam = build_sam2_model(cfg.model.sam_settings())
    load_sam2_weights(sam, summary["sam2_checkpoint"])
    saved = torch.load(summary["sam2_checkpoint"], weights_only=True)["model"]
    untrained = build_sam2_model(cfg.model.sam_settings()).state_dict()
    name = "image_encoder.trunk.patch_embed.proj.weight"
    assert not torch.equal(saved[name], untrained[name])  # trained, not the random init

    # `interrvos train --set model.overrides=[...]` with the summary's list: a tiny ReVIOsA on this SAM2
    train = load_config(TrainConfig, None, [summary["train_set"], "model.config=tiny"])
    model = build_model(load_model_config(train.model.config, train.model.all_overrides()))
    ours = model.sam.sam.state_dict()
    assert ours.keys() == saved.keys()
    assert all(torch.equal(ours[k], saved[k]) for k in saved)
