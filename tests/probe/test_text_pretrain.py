"""`interrvos pretrain-text` end to end on the session's Ray (Ray Train + DeepSpeed, the real tiny MLLM): a short
run writes a folder that builds the ReVIOsA tiny model through `mllm.pretrained` (tokenizer and segmentation rows
as the pretraining had them), and the [SEG_ACT] state of that model reads the expression's colour word on videos
the probe was not fitted on, far above the random model and the majority class (a floor a blind model fails)."""

from __future__ import annotations

import json

import pytest
import torch

from interrvos.config import RayConfig, load_config

pytestmark = pytest.mark.slow

STEPS = 150


def test_pretrain_text_writes_an_mllm_pretrained_folder_that_reads_the_expression(ray_cluster, colour_shape_dataset,
                                                                                 tmp_path):  # fmt: skip
    from interrvos.model import build_model
    from interrvos.model.config import load_model_config
    from interrvos.model.mllm import base_internvl, load_internvl
    from interrvos.probe.measure import measure_reading
    from interrvos.probe.text_pretrain import READING_FILE, TextReader, run_pretrain_text
    from interrvos.train.config import TrainConfig

    cfg = load_config(TrainConfig, "jobs/configs/pretrain_text.yaml", [
        f"data.sources=[{colour_shape_dataset}]", f"storage={tmp_path}", "name=reading", f"optim.max_steps={STEPS}",
        "data.frames_per_sample=2", "data.expressions_per_sample=3", f"checkpoint.every_n_steps={STEPS}",
        "optim.schedule=constant", "log.every_n_steps=10"])  # fmt: skip
    cfg = cfg.model_copy(update={"ray": RayConfig(address=ray_cluster)})
    summary = run_pretrain_text(cfg)
    folder = summary["pretrained"]
    assert summary["steps"] == STEPS and json.loads(open(f"{folder}/{READING_FILE}").read())["step"] == STEPS
    assert summary["final_metrics"]["loss_lm"] < 0.5 * summary["first_metrics"]["loss_lm"], summary["final_metrics"]

    pretrained = build_model("tiny", summary["train_overrides"]).eval()
    random_model = build_model("tiny").eval()
    reader = TextReader(load_model_config("tiny"))  # built as the pretraining built it (same seed)
    # The tokenizer comes along (the tiny BPE, its [SEG_*] tokens included), and ReVIOsA keeps the [SEG_*] rows
    # the pretraining trained instead of initialising them again.
    assert pretrained.tokenizer.get_vocab() == reader.tokenizer.get_vocab()
    emb = base_internvl(pretrained.mllm).get_input_embeddings().weight
    trained = load_internvl(folder).get_input_embeddings().weight
    assert torch.equal(emb[pretrained.ids.seg_ids], trained[pretrained.ids.seg_ids])
    assert not torch.equal(emb[pretrained.ids.seg_ids], reader.mllm.get_input_embeddings().weight[reader.ids.seg_ids])

    with torch.no_grad():
        before = measure_reading(random_model, [colour_shape_dataset], num_frames=2, folds=4, blank=False)
        after = measure_reading(pretrained, [colour_shape_dataset], num_frames=2, folds=4, blank=False)
    b, a = before["scores"]["frames"]["colour"], after["scores"]["frames"]["colour"]
    (tmp_path / "probe.json").write_text(json.dumps({"before": before, "after": after}))
    assert a["accuracy"] >= b["accuracy"] + 25 and a["accuracy"] >= a["majority"] + 30, (b, a)
