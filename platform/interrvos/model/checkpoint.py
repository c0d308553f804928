"""Checkpoints: the trainable parts plus the config (training), and a merged export (serving).

Training checkpoint (`save_checkpoint`), a folder (local path or URI):
  checkpoint.json          {"format": 1, "kind": "trainable", ...}
  model.yaml               the ModelConfig that builds the model
  trainable.safetensors    LoRA adapters, segmentation-token rows, projection, SAM2 mask decoder
  base.safetensors         only for parts built with random weights (no mllm.pretrained / sam.checkpoint):
                           their frozen weights, so a load reproduces the model exactly
  tokenizer/               the tokenizer with [SEG_ACT]/[SEG_TAR]
Merged export (`export_merged`): LoRA and the token rows merged into the language model.
  checkpoint.json          {"format": 1, "kind": "merged", ...}
  model.yaml               lora disabled, paths relative to the folder
  mllm/                    an HF-native InternVL folder (from_pretrained-able) with its tokenizer
  sam2.pt                  SAM2 weights in sam2's own format ({"model": state_dict}), trained decoder
  projection.safetensors
`load_checkpoint` reads either kind. Every folder is written in a staging folder and renamed.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch
import yaml

from interrvos.data import storage
from interrvos.errors import ConfigError, InterRVOSError
from interrvos.model.config import ModelConfig
from interrvos.model.mllm import base_internvl

FORMAT = 1
INFO_FILE = "checkpoint.json"
CONFIG_FILE = "model.yaml"


class CheckpointError(InterRVOSError):
    """A checkpoint folder is missing, incomplete, or does not fit its model."""


def _unique(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors without duplicates (tied weights share storage) and alias -> saved key."""
    seen: dict[tuple, str] = {}
    tensors, aliases = {}, {}
    for key, t in state.items():
        ident = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape))
        if ident in seen:
            aliases[key] = seen[ident]
        else:
            seen[ident] = key
            tensors[key] = t.detach().to("cpu").contiguous()
    return tensors, aliases


def _safetensors_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    from safetensors.torch import save

    return save({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()})


def _load_safetensors(uri: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load

    return load(storage.read_bytes(uri))


def random_parts(cfg: ModelConfig) -> list[str]:
    """Module prefixes whose frozen weights are random (not reproducible from a pretrained file)."""
    return [p for p, pretrained in (("mllm.", cfg.mllm.pretrained), ("sam.", cfg.sam.checkpoint)) if not pretrained]


def save_checkpoint(model, uri: str, extra: dict | None = None) -> str:
    """Write a training checkpoint folder (see the module docstring); returns `uri`."""
    trainable = model.trainable_state_dict()
    state = model.state_dict()
    parts = random_parts(model.cfg)
    base = {k: v for k, v in state.items() if k not in trainable and k.startswith(tuple(parts))}
    base_tensors, base_aliases = _unique(base)
    base_aliases = {a: k for a, k in base_aliases.items() if a not in trainable}
    info = {
        "format": FORMAT, "kind": "trainable", "name": model.cfg.name, "mode": model.cfg.mode,
        "trainable_tensors": len(trainable), "trainable_numel": int(sum(v.numel() for v in trainable.values())),
        "base_parts": [p.rstrip(".") for p in parts], "base_aliases": base_aliases,
        "seg_token_ids": {str(k): v for k, v in model.ids.seg.items()}, "versions": _versions(), **(extra or {}),
    }  # fmt: skip
    with storage.staged_dir(uri) as tmp:
        Path(tmp, CONFIG_FILE).write_text(yaml.safe_dump(model.cfg.model_dump(mode="json"), sort_keys=False))
        Path(tmp, "trainable.safetensors").write_bytes(_safetensors_bytes(trainable))
        if base_tensors:
            Path(tmp, "base.safetensors").write_bytes(_safetensors_bytes(base_tensors))
        model.tokenizer.save_pretrained(os.path.join(tmp, "tokenizer"))
        Path(tmp, INFO_FILE).write_text(json.dumps(info, indent=2))
    return uri


def export_merged(model, uri: str) -> str:
    """Write a merged export: LoRA folded into the language model (the live model is not changed)."""
    mllm = copy.deepcopy(model.mllm)
    merged = mllm.merge_and_unload() if hasattr(mllm, "merge_and_unload") else mllm
    cfg = model.cfg.model_copy(deep=True)
    cfg.mllm.pretrained, cfg.sam.checkpoint = "mllm", "sam2.pt"
    cfg.tokenizer.kind, cfg.tokenizer.path, cfg.lora.enabled = "pretrained", None, False
    info = {"format": FORMAT, "kind": "merged", "name": cfg.name, "mode": cfg.mode, "versions": _versions()}
    with storage.staged_dir(uri) as tmp:
        merged.save_pretrained(os.path.join(tmp, "mllm"))
        model.tokenizer.save_pretrained(os.path.join(tmp, "mllm"))
        buf = io.BytesIO()
        torch.save({"model": model.sam.sam.state_dict()}, buf)
        Path(tmp, "sam2.pt").write_bytes(buf.getvalue())
        Path(tmp, "projection.safetensors").write_bytes(_safetensors_bytes(dict(model.projection.state_dict())))
        Path(tmp, CONFIG_FILE).write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
        Path(tmp, INFO_FILE).write_text(json.dumps(info, indent=2))
    return uri


def read_info(uri: str) -> dict:
    path = storage.join(uri, INFO_FILE)
    if not storage.exists(path):
        raise CheckpointError(f"{uri}: not a ReVIOsA checkpoint ({INFO_FILE} is missing)")
    info = storage.read_json(path)
    if info.get("format") != FORMAT or info.get("kind") not in ("trainable", "merged"):
        raise CheckpointError(f"{path}: unknown checkpoint format {info.get('format')!r} / kind {info.get('kind')!r}")
    return info


def read_config(uri: str) -> ModelConfig:
    try:
        return ModelConfig.model_validate(yaml.safe_load(storage.read_bytes(storage.join(uri, CONFIG_FILE))))
    except Exception as err:
        raise CheckpointError(f"{uri}/{CONFIG_FILE}: not a valid model config ({err})") from None


@contextlib.contextmanager
def local_folder(uri: str) -> Iterator[str]:
    """A local copy of a checkpoint folder (the folder itself when it is local)."""
    if not storage.is_remote(uri):
        yield storage.resolve(uri)[1]
        return
    import pyarrow.fs as pafs

    fs, root = storage.resolve(uri)
    with tempfile.TemporaryDirectory(prefix="interrvos-ckpt-") as tmp:
        for f in fs.get_file_info(pafs.FileSelector(root, recursive=True)):
            if f.type == pafs.FileType.File:
                dest = Path(tmp, os.path.relpath(f.path, root))
                dest.parent.mkdir(parents=True, exist_ok=True)
                with fs.open_input_stream(f.path) as src:
                    dest.write_bytes(src.read())
        yield tmp


def load_checkpoint(uri: str, overrides: list[str] | None = None):
    """A ReVIOsA from a checkpoint folder of either kind. overrides: dotted settings applied to the
    saved config that do not change the weights (e.g. `inference.num_frames=8`)."""
    from interrvos.model.reviosa import ReVIOsA
    from interrvos.model.tokenizer import load_pretrained_tokenizer

    info = read_info(uri)
    with local_folder(uri) as root:
        cfg = _apply_overrides(read_config(root), overrides)
        if info["kind"] == "merged":
            cfg.mllm.pretrained = os.path.join(root, cfg.mllm.pretrained or "mllm")
            cfg.sam.checkpoint = os.path.join(root, cfg.sam.checkpoint or "sam2.pt")
            model = ReVIOsA(cfg, load_pretrained_tokenizer(cfg.mllm.pretrained))
            _load_into(model.projection, _load_safetensors(os.path.join(root, "projection.safetensors")), root)
            return model
        model = ReVIOsA(cfg, load_pretrained_tokenizer(os.path.join(root, "tokenizer")))
        expected = set(model.trainable_parameters())
        trainable = _load_safetensors(os.path.join(root, "trainable.safetensors"))
        if set(trainable) != expected:
            missing, unexpected = sorted(expected - set(trainable)), sorted(set(trainable) - expected)
            raise CheckpointError(f"{uri}: trainable tensors do not fit the model: missing {missing[:3]} "
                                  f"({len(missing)}), unexpected {unexpected[:3]} ({len(unexpected)})")  # fmt: skip
        base_file = os.path.join(root, "base.safetensors")
        base = _load_safetensors(base_file) if os.path.exists(base_file) else {}
        _load_into(model, {**base, **trainable}, root)
    return model


def _load_into(module: torch.nn.Module, tensors: dict[str, torch.Tensor], where: str) -> None:
    state = module.state_dict()
    bad = [k for k, v in tensors.items() if k not in state or state[k].shape != v.shape]
    if bad:
        raise CheckpointError(f"{where}: tensors that do not fit the model: {bad[:3]} ({len(bad)})")
    with torch.no_grad():
        for k, v in tensors.items():
            state[k].copy_(v)


def _apply_overrides(cfg: ModelConfig, overrides: list[str] | None) -> ModelConfig:
    if not overrides:
        return cfg
    from interrvos.config import _set_dotted, parse_override

    tree = cfg.model_dump(mode="json")
    for text in overrides:
        _set_dotted(tree, *parse_override(text))
    try:
        return ModelConfig.model_validate(tree)
    except Exception as err:
        raise ConfigError(f"checkpoint overrides {overrides}: {err}") from None


def _versions() -> dict[str, str]:
    import transformers

    out = {"torch": torch.__version__, "transformers": transformers.__version__}
    with contextlib.suppress(ImportError):
        import peft

        out["peft"] = peft.__version__
    return out


def merged_language_model(model):
    """The InternVL with LoRA merged, without touching `model` (for serving or inspection)."""
    mllm = copy.deepcopy(model.mllm)
    return mllm.merge_and_unload() if hasattr(mllm, "merge_and_unload") else base_internvl(mllm)
