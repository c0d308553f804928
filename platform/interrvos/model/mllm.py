"""The MLLM: transformers' InternVLForConditionalGeneration (random or from a local HF-native dir),
with rows for the segmentation tokens, LoRA on the language model (peft), everything else frozen.

Trainable after `build_mllm`: the LoRA adapters, the segmentation tokens' embedding rows (and their
lm_head rows: tied for InternVL2.5's Qwen2.5, else adapted separately), optionally the projector.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from interrvos.errors import ConfigError
from interrvos.model.config import ModelConfig
from interrvos.model.tokens import TokenIds


def internvl_config(cfg: ModelConfig, vocab_size: int, image_token_id: int):
    """An InternVLConfig for random weights from the typed architecture fields."""
    from transformers import InternVLConfig, InternVLVisionConfig, Qwen2Config

    v, t = cfg.mllm.vision, cfg.mllm.text
    tokens_per_side = v.image_size // v.patch_size * cfg.mllm.downsample_ratio
    if tokens_per_side != int(tokens_per_side):
        raise ConfigError("mllm: image_size / patch_size * downsample_ratio must be a whole number")
    vision = InternVLVisionConfig(
        hidden_size=v.hidden_size, num_hidden_layers=v.num_hidden_layers, num_attention_heads=v.num_attention_heads,
        intermediate_size=v.intermediate_size, image_size=v.image_size, patch_size=v.patch_size,
        attention_bias=v.attention_bias, use_qk_norm=v.use_qk_norm, norm_type=v.norm_type,
        layer_norm_eps=v.layer_norm_eps,
    )  # fmt: skip
    text = Qwen2Config(
        hidden_size=t.hidden_size, num_hidden_layers=t.num_hidden_layers, num_attention_heads=t.num_attention_heads,
        num_key_value_heads=t.num_key_value_heads, intermediate_size=t.intermediate_size, rope_theta=t.rope_theta,
        max_position_embeddings=t.max_position_embeddings, rms_norm_eps=t.rms_norm_eps, vocab_size=vocab_size,
        tie_word_embeddings=t.tie_word_embeddings, initializer_range=t.initializer_range,
    )  # fmt: skip
    return InternVLConfig(
        vision_config=vision, text_config=text, image_token_id=image_token_id,
        image_seq_length=int(tokens_per_side) ** 2, downsample_ratio=cfg.mllm.downsample_ratio,
        tie_word_embeddings=t.tie_word_embeddings,
    )  # fmt: skip


def load_internvl(path: str, attn_implementation: str = "sdpa"):
    """A local HF-native InternVL directory (no network, no remote code)."""
    from pathlib import Path

    from transformers import InternVLForConditionalGeneration

    if not Path(path, "config.json").is_file():
        raise ConfigError(
            f"mllm.pretrained: {path} is not an HF-native InternVL folder (no config.json); convert original "
            "InternVL2.5 weights with scripts/convert_internvl.py"
        )
    return InternVLForConditionalGeneration.from_pretrained(
        path, dtype=torch.float32, attn_implementation=attn_implementation, local_files_only=True
    )


def add_token_rows(model, vocab_size: int, new_ids: list[int], seed: int, init: bool = True) -> None:
    """Grow the embedding (and lm_head) to the tokenizer's size. Rows of new tokens (init, or rows the
    resize created) start at the mean of the old rows plus a little seeded noise (so [SEG_ACT] and
    [SEG_TAR] differ from the first step); rows already trained (a merged export) are left alone."""
    emb = model.get_input_embeddings()
    old = emb.weight.shape[0]
    if vocab_size > old:
        model.resize_token_embeddings(vocab_size, mean_resizing=False)
    weight = model.get_input_embeddings().weight
    if weight.device.type == "meta" or not new_ids or not (init or max(new_ids) >= old):
        return
    with torch.no_grad():
        base = weight[: min(old, min(new_ids))].float()
        gen = torch.Generator().manual_seed(seed)
        noise = torch.randn(len(new_ids), weight.shape[1], generator=gen) * base.std() * 0.1
        weight[new_ids] = (base.mean(0, keepdim=True) + noise).to(weight.dtype)
        out = model.get_output_embeddings()
        if out is not None and out.weight is not weight:
            out.weight[new_ids] = (out.weight[: min(old, min(new_ids))].float().mean(0) + noise).to(out.weight.dtype)


def build_mllm(cfg: ModelConfig, tokenizer, ids: TokenIds, init_token_rows: bool = True) -> nn.Module:
    """InternVL + token rows + LoRA, frozen except the trainable parts (module docstring).
    init_token_rows: the segmentation tokens are new to this model (not a merged export)."""
    if cfg.mllm.pretrained:
        model = load_internvl(cfg.mllm.pretrained, cfg.mllm.attn_implementation)
        if model.config.image_token_id != ids.img_context:
            raise ConfigError(
                f"mllm.pretrained: the model's image_token_id ({model.config.image_token_id}) is not the tokenizer's "
                f"<IMG_CONTEXT> ({ids.img_context}); use the checkpoint's own tokenizer (tokenizer.kind=pretrained)"
            )
    else:
        from transformers import InternVLForConditionalGeneration

        vocab_before = min(ids.seg_ids)  # rows of the base vocabulary; the seg tokens come next
        config = internvl_config(cfg, vocab_before, ids.img_context)
        config._attn_implementation = cfg.mllm.attn_implementation
        model = InternVLForConditionalGeneration(config)
        if cfg.mllm.text.embedding_std and model.get_input_embeddings().weight.device.type != "meta":
            with torch.no_grad():
                model.get_input_embeddings().weight.normal_(0.0, cfg.mllm.text.embedding_std)
    add_token_rows(model, len(tokenizer), ids.seg_ids, cfg.seed, init=init_token_rows)
    model.requires_grad_(False)
    if cfg.mllm.train_projector:
        model.model.multi_modal_projector.requires_grad_(True)
    if cfg.mllm.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if not cfg.lora.enabled:
        return model
    from peft import LoraConfig, get_peft_model

    tied = model.get_output_embeddings().weight is model.get_input_embeddings().weight
    token_layers = {"embed_tokens": ids.seg_ids} if tied else {"embed_tokens": ids.seg_ids, "lm_head": ids.seg_ids}
    lora = LoraConfig(
        r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout, target_modules=cfg.lora.target_modules,
        bias="none", trainable_token_indices=token_layers,
    )  # fmt: skip
    with warnings.catch_warnings():  # peft calls a transformers API deprecated in 5.x
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        peft_model = get_peft_model(model, lora)
    if cfg.mllm.train_projector:  # peft marks only its own modules trainable
        peft_model.get_base_model().model.multi_modal_projector.requires_grad_(True)
    return peft_model


def base_internvl(mllm: nn.Module):
    """The InternVLForConditionalGeneration inside (LoRA layers are injected in place)."""
    return mllm.get_base_model() if hasattr(mllm, "get_base_model") else mllm


def language_layers(mllm: nn.Module) -> nn.ModuleList:
    return base_internvl(mllm).model.language_model.layers
