"""Checkpoints (trainable parts + config, merged export) and loading real weights from local paths."""

from __future__ import annotations

import json

import pytest
import torch

from interrvos.errors import ConfigError
from interrvos.model.checkpoint import CheckpointError, export_merged, load_checkpoint, save_checkpoint


@pytest.fixture(scope="module")
def trained(clip):
    """A tiny model whose trainable parts moved away from their initial values."""
    from interrvos.model.reviosa import build_model

    model = build_model("tiny")
    with torch.no_grad():
        gen = torch.Generator().manual_seed(0)
        for p in model.trainable_parameters().values():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    return model.eval()


def _losses(model, batch):
    with torch.no_grad():
        return model.eval()(batch)


def test_trainable_checkpoint_round_trip_is_exact(trained, tmp_path, clip, batch_of):
    save_checkpoint(trained, str(tmp_path / "ckpt"), extra={"step": 7})
    files = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert files == ["base.safetensors", "checkpoint.json", "model.yaml", "tokenizer", "trainable.safetensors"]
    info = json.loads((tmp_path / "ckpt" / "checkpoint.json").read_text())
    assert info["kind"] == "trainable" and info["step"] == 7 and info["base_parts"] == ["mllm", "sam"]
    loaded = load_checkpoint(str(tmp_path / "ckpt"))
    a, b = trained.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert loaded.cfg == trained.cfg and loaded.tokenizer.get_vocab() == trained.tokenizer.get_vocab()
    batch = batch_of(trained, clip, frames=2)
    la, lb = _losses(trained, batch), _losses(loaded, batch)
    assert all(torch.equal(la[k], lb[k]) for k in la)


def test_overrides_apply_to_the_loaded_config(trained, tmp_path):
    save_checkpoint(trained, str(tmp_path / "ckpt"))
    loaded = load_checkpoint(str(tmp_path / "ckpt"), ["inference.num_frames=3"])
    assert loaded.cfg.inference.num_frames == 3


def test_merged_export_matches_the_model_and_reloads_exactly(trained, tmp_path, clip, batch_of):
    export_merged(trained, str(tmp_path / "merged"))
    assert (tmp_path / "merged" / "mllm" / "config.json").exists() and (tmp_path / "merged" / "sam2.pt").exists()
    merged = load_checkpoint(str(tmp_path / "merged"))
    assert not merged.cfg.lora.enabled
    batch = batch_of(trained, clip, frames=2)
    la, lb = _losses(trained, batch), _losses(merged, batch)
    for k in la:
        assert torch.allclose(la[k], lb[k], atol=1e-4), k
    again = tmp_path / "merged2"
    export_merged(merged, str(again))
    a, b = merged.state_dict(), load_checkpoint(str(again)).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoint_errors_name_the_problem(trained, tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint.json is missing"):
        load_checkpoint(str(tmp_path / "nothing"))
    save_checkpoint(trained, str(tmp_path / "ckpt"))
    (tmp_path / "ckpt" / "model.yaml").write_text((tmp_path / "ckpt" / "model.yaml").read_text().replace("r: 8", "r: 4"))
    with pytest.raises(CheckpointError, match="do not fit the model"):
        load_checkpoint(str(tmp_path / "ckpt"))


def test_real_weights_load_from_local_paths(trained, tmp_path):
    """An HF-native InternVL folder and a SAM2 checkpoint file, as real runs use them."""
    from interrvos.model.checkpoint import merged_language_model
    from interrvos.model.config import load_model_config
    from interrvos.model.reviosa import ReVIOsA

    internvl = merged_language_model(trained)
    internvl.save_pretrained(tmp_path / "internvl-hf")
    trained.tokenizer.save_pretrained(tmp_path / "internvl-hf")
    torch.save({"model": trained.sam.sam.state_dict()}, tmp_path / "sam2.pt")
    cfg = load_model_config("tiny", [f"mllm.pretrained={tmp_path / 'internvl-hf'}", "tokenizer.kind=auto",
                                     f"sam.checkpoint={tmp_path / 'sam2.pt'}"])  # fmt: skip
    model = ReVIOsA(cfg)
    want = internvl.state_dict()
    got = {k.replace("base_model.model.", "").replace(".base_layer", "").replace(".token_adapter", ""): v
           for k, v in model.mllm.state_dict().items() if "lora_" not in k and "trainable_tokens" not in k}  # fmt: skip
    assert all(torch.equal(got[k], want[k]) for k in want)
    sam = trained.sam.sam.state_dict()
    assert all(torch.equal(v, sam[k]) for k, v in model.sam.sam.state_dict().items())
    # with pretrained parts, a training checkpoint stores no base weights
    save_checkpoint(model, str(tmp_path / "ckpt"))
    assert not (tmp_path / "ckpt" / "base.safetensors").exists()
    with pytest.raises(ConfigError, match="not an HF-native InternVL folder"):
        ReVIOsA(load_model_config("tiny", [f"mllm.pretrained={tmp_path}", f"tokenizer.path={tmp_path / 'internvl-hf'}"]))
    with pytest.raises(ConfigError, match="does not fit sam.config"):
        torch.save({"model": {"bogus": torch.zeros(1)}}, tmp_path / "bad.pt")
        ReVIOsA(load_model_config("tiny", [f"sam.checkpoint={tmp_path / 'bad.pt'}"]))
