"""The DeepSpeed JSON, generated from the typed config (never maintained by hand), and the optimizer and
learning-rate schedule that go with it.

CPU (tests, demo): fp32, torch AdamW, gloo; `zero_force_ds_cpu_optimizer: false` lets a torch optimizer
run with ZeRO offload. GPU: bf16 (DeepSpeed's torch_autocast: fp32 weights, bf16 compute), torch's fused
AdamW, nccl; with optimizer offload DeepSpeedCPUAdam (declared in the JSON, so DeepSpeed builds it).
Nothing else differs.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from interrvos.train.config import TrainConfig


def precision(cfg: TrainConfig, use_gpu: bool) -> str:
    return ("bf16" if use_gpu else "fp32") if cfg.optim.precision == "auto" else cfg.optim.precision


def optimizer_kind(cfg: TrainConfig, use_gpu: bool) -> str:
    """'torch' (our own torch.optim.AdamW, fused on GPU) or 'deepspeed' (declared in the JSON)."""
    if cfg.deepspeed.optimizer != "auto":
        return cfg.deepspeed.optimizer
    offloading = cfg.deepspeed.offload_optimizer or cfg.deepspeed.offload_params
    return "deepspeed" if use_gpu and offloading else "torch"


def _merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def deepspeed_config(cfg: TrainConfig, world_size: int, use_gpu: bool) -> dict[str, Any]:
    """The DeepSpeed config dict for `world_size` data-parallel workers."""
    opt, ds = cfg.optim, cfg.deepspeed
    zero: dict[str, Any] = {"stage": ds.stage}
    if ds.stage >= 1:
        zero.update({"contiguous_gradients": True, "overlap_comm": use_gpu, "reduce_scatter": True,
                     "reduce_bucket_size": 5e7, "allgather_bucket_size": 5e7})  # fmt: skip
    if ds.stage == 3:
        zero.update({"stage3_prefetch_bucket_size": 5e7, "stage3_param_persistence_threshold": 1e5,
                     "stage3_gather_16bit_weights_on_model_save": False})  # fmt: skip
    if ds.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": use_gpu}
    if ds.offload_params:
        zero["offload_param"] = {"device": "cpu", "pin_memory": use_gpu}
    conf: dict[str, Any] = {
        "train_micro_batch_size_per_gpu": opt.batch_size,
        "gradient_accumulation_steps": opt.grad_accum,
        "train_batch_size": opt.batch_size * opt.grad_accum * world_size,
        "gradient_clipping": opt.grad_clip,
        "zero_optimization": zero,
        "bf16": {"enabled": precision(cfg, use_gpu) == "bf16_weights"},
        "fp16": {"enabled": False},
        "zero_allow_untested_optimizer": True,
        "zero_force_ds_cpu_optimizer": False,
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }
    if precision(cfg, use_gpu) == "bf16":
        conf["torch_autocast"] = {"enabled": True, "dtype": "bfloat16"}
    if optimizer_kind(cfg, use_gpu) == "deepspeed":
        conf["optimizer"] = {"type": "AdamW", "params": {"lr": opt.lr, "betas": list(opt.betas), "eps": opt.eps,
                                                         "weight_decay": opt.weight_decay}}  # fmt: skip
    return _merge(conf, ds.extra)


def lr_multiplier(name: str, multipliers: dict[str, float]) -> float:
    """The multiplier of parameter `name`: that of the longest prefix in `multipliers` it starts with, else 1."""
    matches = [prefix for prefix in multipliers if name == prefix or name.startswith(prefix + ".")]
    return multipliers[max(matches, key=len)] if matches else 1.0


def param_groups(model, weight_decay: float, lr: float | None = None,
                 multipliers: dict[str, float] | None = None) -> list[dict]:  # fmt: skip
    """Trainable parameters grouped by (weight decay, lr): matrices with weight decay, biases/norms/1-D
    without, and each `multipliers` prefix at lr x its multiplier (the lr schedule scales every group alike)."""
    multipliers = multipliers or {}
    unmatched = [p for p in multipliers if not any(n == p or n.startswith(p + ".") for n, _ in model.named_parameters())]
    if unmatched:
        raise ValueError(f"optim.lr_multipliers: no parameter is named like {unmatched}")
    groups: dict[tuple[bool, float], list] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            groups.setdefault((p.ndim >= 2, lr_multiplier(name, multipliers)), []).append(p)
    if not groups:
        raise ValueError("the model has no trainable parameters")
    out = []
    for (decay, mult), params in sorted(groups.items(), key=lambda kv: (not kv[0][0], kv[0][1] != 1.0, kv[0][1])):
        group = {"params": params, "weight_decay": weight_decay if decay else 0.0}
        if mult != 1.0:
            if lr is None:
                raise ValueError("param_groups: lr multipliers need the base lr")
            group["lr"] = lr * mult
        out.append(group)
    return out


def build_optimizer(cfg: TrainConfig, groups: list[dict], use_gpu: bool):
    """torch AdamW (fused on GPU, foreach on CPU), or None when DeepSpeed builds it from the JSON."""
    if optimizer_kind(cfg, use_gpu) == "deepspeed":
        return None
    import torch

    opt = cfg.optim
    kwargs = {"fused": True} if use_gpu else {"foreach": True}
    return torch.optim.AdamW(groups, lr=opt.lr, betas=opt.betas, eps=opt.eps, weight_decay=opt.weight_decay, **kwargs)


def lr_factor(step: int, total_steps: int, warmup_ratio: float, schedule: str = "cosine") -> float:
    """Multiplier of the base lr for optimizer step `step` (0-based): linear warm-up over the first
    ceil(warmup_ratio * total) steps, then cosine decay reaching 0 at `total_steps`."""
    warmup = math.ceil(warmup_ratio * total_steps)
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total_steps - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def scheduler_factory(cfg: TrainConfig, total_steps: int):
    """What deepspeed.initialize takes as lr_scheduler: optimizer -> LambdaLR (stepped by the engine at
    every accumulation boundary, saved and restored with its checkpoints)."""
    from functools import partial

    import torch

    fn = partial(lr_factor, total_steps=total_steps, warmup_ratio=cfg.optim.warmup_ratio, schedule=cfg.optim.schedule)
    return lambda optimizer: torch.optim.lr_scheduler.LambdaLR(optimizer, fn)
