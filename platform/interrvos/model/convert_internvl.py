"""Convert an original InternVL2.5 checkpoint (the `internvl_chat` remote-code layout of
OpenGVLab/InternVL2_5-1B / -4B: vision_model.*, mlp1.*, language_model.*) into an HF-native
InternVLForConditionalGeneration folder, offline and without remote code (which needs timm and
so torchvision). Only Qwen2-based InternVL2.5 models (1B, 4B) are supported.

Key mapping (original -> HF-native):
  vision_model.embeddings.class_embedding           -> model.vision_tower.embeddings.cls_token
  vision_model.embeddings.patch_embedding.*         -> model.vision_tower.embeddings.patch_embeddings.projection.*
  vision_model.embeddings.position_embedding        -> model.vision_tower.embeddings.position_embeddings
  vision_model.encoder.layers.N.attn.qkv.*          -> ...encoder.layer.N.attention.{q,k,v}_proj.* (split in 3)
  vision_model.encoder.layers.N.attn.proj.*         -> ...encoder.layer.N.attention.projection_layer.*
  vision_model.encoder.layers.N.attn.{q,k}_norm.*   -> ...encoder.layer.N.attention.{q,k}_norm.*
  vision_model.encoder.layers.N.mlp.fc{1,2}.*       -> ...encoder.layer.N.mlp.fc{1,2}.*
  vision_model.encoder.layers.N.norm{1,2}.*         -> ...encoder.layer.N.layernorm_{before,after}.*
  vision_model.encoder.layers.N.ls{1,2}             -> ...encoder.layer.N.lambda_{1,2}
  mlp1.{0,1,3}.*                                    -> model.multi_modal_projector.{layer_norm,linear_1,linear_2}.*
  language_model.model.*                           -> model.language_model.*
  language_model.lm_head.weight                     -> lm_head.weight
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import torch

from interrvos.errors import ConfigError

VISION_RULES = (
    (r"^vision_model\.embeddings\.class_embedding$", "model.vision_tower.embeddings.cls_token"),
    (r"^vision_model\.embeddings\.patch_embedding\.", "model.vision_tower.embeddings.patch_embeddings.projection."),
    (r"^vision_model\.embeddings\.position_embedding$", "model.vision_tower.embeddings.position_embeddings"),
    (r"^vision_model\.encoder\.layers\.(\d+)\.attn\.proj\.",
     r"model.vision_tower.encoder.layer.\1.attention.projection_layer."),
    (r"^vision_model\.encoder\.layers\.(\d+)\.attn\.(q_norm|k_norm)\.",
     r"model.vision_tower.encoder.layer.\1.attention.\2."),
    (r"^vision_model\.encoder\.layers\.(\d+)\.mlp\.", r"model.vision_tower.encoder.layer.\1.mlp."),
    (r"^vision_model\.encoder\.layers\.(\d+)\.norm1\.", r"model.vision_tower.encoder.layer.\1.layernorm_before."),
    (r"^vision_model\.encoder\.layers\.(\d+)\.norm2\.", r"model.vision_tower.encoder.layer.\1.layernorm_after."),
    (r"^vision_model\.encoder\.layers\.(\d+)\.ls(\d)$", r"model.vision_tower.encoder.layer.\1.lambda_\2"),
    (r"^mlp1\.0\.", "model.multi_modal_projector.layer_norm."),
    (r"^mlp1\.1\.", "model.multi_modal_projector.linear_1."),
    (r"^mlp1\.3\.", "model.multi_modal_projector.linear_2."),
    (r"^language_model\.model\.", "model.language_model."),
    (r"^language_model\.lm_head\.", "lm_head."),
)  # fmt: skip
QKV = re.compile(r"^vision_model\.encoder\.layers\.(\d+)\.attn\.qkv\.(weight|bias)$")


def convert_key(key: str) -> str | None:
    for pattern, replacement in VISION_RULES:
        new, n = re.subn(pattern, replacement, key)
        if n:
            return new
    return None


def convert_state_dict(original: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename every tensor and split the fused qkv projections; unknown keys are an error."""
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in original.items():
        qkv = QKV.match(key)
        if qkv:
            layer, kind = qkv.groups()
            q, k, v = value.chunk(3, dim=0)  # (3D, D) -> 3 x (D, D); biases (3D,) -> 3 x (D,)
            for name, part in (("q_proj", q), ("k_proj", k), ("v_proj", v)):
                out[f"model.vision_tower.encoder.layer.{layer}.attention.{name}.{kind}"] = part.contiguous()
            continue
        new = convert_key(key)
        if new is None:
            unknown.append(key)
        else:
            out[new] = value
    if unknown:
        raise ConfigError(
            f"unknown InternVL2.5 tensors (not an internvl_chat checkpoint?): {unknown[:5]} ({len(unknown)})"
        )
    return out


def _fields(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()


def hf_config(original: dict, image_token_id: int):
    """InternVLConfig from an internvl_chat config.json."""
    from transformers import InternVLConfig, InternVLVisionConfig, Qwen2Config

    llm = dict(original.get("llm_config") or {})
    arch = (llm.get("architectures") or ["?"])[0]
    if not arch.startswith("Qwen2"):
        raise ConfigError(f"only Qwen2-based InternVL2.5 models (1B, 4B) are supported; this one's LLM is {arch}")
    vis = dict(original.get("vision_config") or {})
    renames = {"qkv_bias": "attention_bias", "qk_normalization": "use_qk_norm", "dropout": "hidden_dropout_prob"}
    vis = {renames.get(k, k): v for k, v in vis.items()}
    known = _fields(InternVLVisionConfig) - {"architectures"}
    vision = InternVLVisionConfig(**{k: v for k, v in vis.items() if k in known})
    keep = _fields(Qwen2Config) | {"rope_theta"}
    text = Qwen2Config(**{k: v for k, v in llm.items() if k in keep and k not in ("architectures", "dtype")})
    image_size = original.get("force_image_size") or vision.image_size[0]
    patch = vision.patch_size[0]
    ratio = float(original.get("downsample_ratio", 0.5))
    return InternVLConfig(
        vision_config=vision, text_config=text, image_token_id=image_token_id,
        image_seq_length=int((image_size // patch) ** 2 * ratio**2), downsample_ratio=ratio,
        vision_feature_layer=int(original.get("select_layer", -1)), projector_hidden_act="gelu",
        tie_word_embeddings=bool(llm.get("tie_word_embeddings", False)),
    )  # fmt: skip


def read_weights(src: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    index = src / "model.safetensors.index.json"
    if index.exists():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        out: dict[str, torch.Tensor] = {}
        for shard in shards:
            out.update(load_file(str(src / shard)))
        return out
    if (src / "model.safetensors").exists():
        return load_file(str(src / "model.safetensors"))
    if (src / "pytorch_model.bin").exists():
        return torch.load(src / "pytorch_model.bin", map_location="cpu", weights_only=True)
    raise ConfigError(f"{src}: no model.safetensors(.index.json) or pytorch_model.bin")


def convert_internvl_chat(src: str, dst: str, dtype: str | None = None) -> dict:
    """Write an HF-native InternVL folder (weights, config, tokenizer) at dst; returns a summary."""
    from transformers import AutoTokenizer, InternVLForConditionalGeneration
    from transformers.utils import logging as hf_logging

    from interrvos.data import storage

    hf_logging.disable_progress_bar()
    source = Path(src)
    cfg_file = source / "config.json"
    if not cfg_file.exists():
        raise ConfigError(f"{src}: no config.json")
    original = json.loads(cfg_file.read_text())
    if original.get("model_type") not in ("internvl_chat", None) and "llm_config" not in original:
        raise ConfigError(f"{src}: not an internvl_chat checkpoint (model_type {original.get('model_type')!r})")
    tokenizer = AutoTokenizer.from_pretrained(src, local_files_only=True, trust_remote_code=False)
    image_token_id = tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>")
    if image_token_id is None or image_token_id == tokenizer.unk_token_id:
        raise ConfigError(f"{src}: the tokenizer has no <IMG_CONTEXT> token")
    config = hf_config(original, image_token_id)
    state = convert_state_dict(read_weights(source))
    torch_dtype = getattr(torch, dtype) if dtype else next(iter(state.values())).dtype
    with torch.device("meta"):
        model = InternVLForConditionalGeneration(config)
    if config.tie_word_embeddings:
        state.pop("lm_head.weight", None)
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    missing = [k for k in missing if not (config.tie_word_embeddings and k == "lm_head.weight")]
    if missing or unexpected:
        raise ConfigError(
            f"{src}: converted weights do not fit InternVL: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    if config.tie_word_embeddings:
        model.tie_weights()
    model = model.to(torch_dtype)
    with storage.staged_dir(dst) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return {"src": src, "dst": dst, "tensors": len(state), "dtype": str(torch_dtype).replace("torch.", ""),
            "image_token_id": image_token_id, "vocab_size": config.text_config.vocab_size}  # fmt: skip
