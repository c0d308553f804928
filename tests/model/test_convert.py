"""scripts/convert_internvl.py on a tiny random checkpoint written in the original internvl_chat layout."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest
import torch

from interrvos.errors import ConfigError
from interrvos.model.convert_internvl import convert_internvl_chat

REPO = Path(__file__).resolve().parents[2]
VISION = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
          "image_size": 64, "patch_size": 8}  # fmt: skip
TEXT = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "intermediate_size": 128, "rope_theta": 1000000.0, "max_position_embeddings": 4096, "rms_norm_eps": 1e-6}  # fmt: skip


def _reference_model(tokenizer):
    """A tiny HF-native InternVL with random weights (the expected conversion result)."""
    from transformers import InternVLConfig, InternVLForConditionalGeneration, InternVLVisionConfig, Qwen2Config

    torch.manual_seed(0)
    config = InternVLConfig(
        vision_config=InternVLVisionConfig(**VISION, attention_bias=True),
        text_config=Qwen2Config(**TEXT, vocab_size=len(tokenizer), tie_word_embeddings=True),
        image_token_id=tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>"), image_seq_length=16, downsample_ratio=0.5,
    )  # fmt: skip
    model = InternVLForConditionalGeneration(config).eval()
    with torch.no_grad():  # layer-scale and norms start at constants: make every tensor distinct
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    return model


def _to_internvl_chat(model, with_lm_head: bool) -> dict[str, torch.Tensor]:
    """The inverse mapping, spelled out independently of the converter (OpenGVLab's names)."""
    sd = model.state_dict()
    out = {
        "vision_model.embeddings.class_embedding": sd["model.vision_tower.embeddings.cls_token"],
        "vision_model.embeddings.position_embedding": sd["model.vision_tower.embeddings.position_embeddings"],
    }
    for kind in ("weight", "bias"):
        out[f"vision_model.embeddings.patch_embedding.{kind}"] = sd[f"model.vision_tower.embeddings.patch_embeddings.projection.{kind}"]
    for i in range(VISION["num_hidden_layers"]):
        hf, og = f"model.vision_tower.encoder.layer.{i}.", f"vision_model.encoder.layers.{i}."
        for kind in ("weight", "bias"):
            out[og + f"attn.qkv.{kind}"] = torch.cat([sd[hf + f"attention.{n}_proj.{kind}"] for n in "qkv"])
            out[og + f"attn.proj.{kind}"] = sd[hf + f"attention.projection_layer.{kind}"]
            out[og + f"mlp.fc1.{kind}"] = sd[hf + f"mlp.fc1.{kind}"]
            out[og + f"mlp.fc2.{kind}"] = sd[hf + f"mlp.fc2.{kind}"]
            out[og + f"norm1.{kind}"] = sd[hf + f"layernorm_before.{kind}"]
            out[og + f"norm2.{kind}"] = sd[hf + f"layernorm_after.{kind}"]
        out[og + "ls1"], out[og + "ls2"] = sd[hf + "lambda_1"], sd[hf + "lambda_2"]
    for og, hf in (("0", "layer_norm"), ("1", "linear_1"), ("3", "linear_2")):
        for kind in ("weight", "bias"):
            out[f"mlp1.{og}.{kind}"] = sd[f"model.multi_modal_projector.{hf}.{kind}"]
    for k, v in sd.items():
        if k.startswith("model.language_model."):
            out["language_model.model." + k[len("model.language_model."):]] = v
    if with_lm_head:
        out["language_model.lm_head.weight"] = sd["lm_head.weight"]
    return {k: v.clone().contiguous() for k, v in out.items()}


def _write_original(folder: Path, tokenizer, model, with_lm_head: bool) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    save_file(_to_internvl_chat(model, with_lm_head), str(folder / "model.safetensors"))
    tokenizer.save_pretrained(folder)
    config = {
        "architectures": ["InternVLChatModel"], "model_type": "internvl_chat", "auto_map": {"AutoModel": "x.y"},
        "downsample_ratio": 0.5, "force_image_size": 64, "select_layer": -1, "template": "internvl2_5", "ps_version": "v2",
        "vision_config": {**VISION, "architectures": ["InternVisionModel"], "model_type": "intern_vit_6b", "qkv_bias": True,
                          "qk_normalization": False, "norm_type": "layer_norm", "layer_norm_eps": 1e-6, "hidden_act": "gelu",
                          "dropout": 0.0, "attention_dropout": 0.0, "drop_path_rate": 0.0, "use_flash_attn": True},
        "llm_config": {**TEXT, "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": len(tokenizer),
                       "tie_word_embeddings": True, "torch_dtype": "bfloat16", "use_sliding_window": False,
                       "attn_implementation": "flash_attention_2", "bos_token_id": 0, "eos_token_id": 2},
    }  # fmt: skip
    (folder / "config.json").write_text(json.dumps(config))


@pytest.fixture(scope="module")
def tokenizer():
    from interrvos.model.tokenizer import train_bpe_tokenizer

    return train_bpe_tokenizer(400)


@pytest.mark.parametrize("with_lm_head", [True, False])
def test_conversion_reproduces_the_model_exactly(tmp_path, tokenizer, with_lm_head):
    from transformers import InternVLForConditionalGeneration

    reference = _reference_model(tokenizer)
    _write_original(tmp_path / "orig", tokenizer, reference, with_lm_head)
    summary = convert_internvl_chat(str(tmp_path / "orig"), str(tmp_path / "hf"))
    assert summary["image_token_id"] == reference.config.image_token_id
    converted = InternVLForConditionalGeneration.from_pretrained(tmp_path / "hf", local_files_only=True).eval()
    want, got = reference.state_dict(), converted.state_dict()
    assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)
    ids = torch.tensor([[1] + [reference.config.image_token_id] * 16 + [40, 41, 42]])
    pixels = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(reference(input_ids=ids, pixel_values=pixels).logits,
                           converted(input_ids=ids, pixel_values=pixels).logits)  # fmt: skip


def test_the_script_converts_into_a_folder_reviosa_loads(tmp_path, tokenizer, monkeypatch, capsys):
    from interrvos.model.config import load_model_config
    from interrvos.model.reviosa import ReVIOsA

    _write_original(tmp_path / "orig", tokenizer, _reference_model(tokenizer), True)
    argv = ["convert_internvl.py", str(tmp_path / "orig"), str(tmp_path / "hf"), "--dtype", "float32"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(REPO / "scripts" / "convert_internvl.py"), run_name="__main__")
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert json.loads(out[out.index("{"):])["dst"] == str(tmp_path / "hf")
    model = ReVIOsA(load_model_config("tiny", [f"mllm.pretrained={tmp_path / 'hf'}", "tokenizer.kind=pretrained"]))
    assert len(model.tokenizer) == len(tokenizer) + 2 and model.hidden_size == TEXT["hidden_size"]


def test_conversion_rejects_what_it_does_not_know(tmp_path, tokenizer):
    from safetensors.torch import save_file

    _write_original(tmp_path / "orig", tokenizer, _reference_model(tokenizer), True)
    save_file({"vision_model.mystery.weight": torch.zeros(1)}, str(tmp_path / "orig" / "model.safetensors"))
    with pytest.raises(ConfigError, match="unknown InternVL2.5 tensors"):
        convert_internvl_chat(str(tmp_path / "orig"), str(tmp_path / "hf"))
    config = json.loads((tmp_path / "orig" / "config.json").read_text())
    config["llm_config"]["architectures"] = ["InternLM2ForCausalLM"]
    (tmp_path / "orig" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="only Qwen2-based"):
        convert_internvl_chat(str(tmp_path / "orig"), str(tmp_path / "hf"))
    assert not (tmp_path / "hf").exists()
