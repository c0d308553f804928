"""Training checkpoints: DeepSpeed's own (every rank writes its ZeRO shard; Ray merges the ranks' files
into one checkpoint folder of the run) plus `train_state.json` and the metrics log, and the
consolidation of the trained weights out of it (every ZeRO stage) for the export.

Checkpoint folder (`<run>/step_00000100/`):
  ds/                   DeepSpeed: mp_rank_00_model_states.pt (trainable tensors only, lr scheduler),
                        *_optim_states.pt (one per rank, ZeRO partitions of the fp32 weights and Adam states)
  latest                DeepSpeed's pointer to ds/
  train_state.json      step, epoch, total_steps, world_size, ZeRO stage, frozen-weight fingerprint, config
  metrics.csv           the metrics log up to this step
"""

from __future__ import annotations

import glob
import json
import logging
import os
from typing import Any

from interrvos.data import storage
from interrvos.errors import InterRVOSError

TAG = "ds"
STATE_FILE = "train_state.json"
LOG_FILE = "metrics.csv"
SNAPSHOT_FILE = "checkpoint_manager_snapshot.json"  # Ray Train's record of the run's checkpoints

log = logging.getLogger(__name__)


class ResumeError(InterRVOSError):
    """A checkpoint cannot be resumed with this configuration."""


def checkpoint_dir_name(step: int) -> str:
    return f"step_{step:08d}"


def save_deepspeed(engine, folder: str, step: int) -> None:
    """Every rank: its part of the DeepSpeed checkpoint (frozen weights are not saved: they come from the
    model's config, and train_state.json's fingerprint checks that)."""
    engine.save_checkpoint(folder, tag=TAG, client_state={"step": step}, exclude_frozen_parameters=True)


def load_deepspeed(engine, folder: str) -> dict[str, Any]:
    """Every rank: weights, optimizer and lr-scheduler states; returns train_state.json."""
    state = read_state(folder)
    world = engine.world_size if hasattr(engine, "world_size") else None
    if world is not None and state.get("world_size") not in (None, world):
        raise ResumeError(
            f"checkpoint at step {state['step']} was written by {state['world_size']} workers, this run has {world}: "
            "ZeRO partitions do not carry over; resume with the same workers.num_workers or start a new run name")
    path, _ = engine.load_checkpoint(folder, tag=TAG, load_module_strict=False, load_optimizer_states=True,
                                     load_lr_scheduler_states=True)  # fmt: skip
    if path is None:
        raise ResumeError(f"{folder}: DeepSpeed found no checkpoint to load (tag {TAG!r})")
    return state


def write_state(folder: str, state: dict[str, Any]) -> None:
    with open(os.path.join(folder, STATE_FILE), "w") as f:
        json.dump(state, f, indent=2)


def read_state(folder: str) -> dict[str, Any]:
    path = storage.join(folder, STATE_FILE)
    if not storage.exists(path):
        raise ResumeError(f"{folder}: not a training checkpoint ({STATE_FILE} is missing)")
    return storage.read_json(path)


def resume_step_hint(run_uri: str) -> int:
    """The step of the checkpoint Ray Train will hand the next worker group (its latest reported one),
    read from Ray's snapshot of the run; 0 when there is none. Only used to skip planning samples that
    are already trained; the workers check the step they actually resume from."""
    path = storage.join(run_uri, SNAPSHOT_FILE)
    try:
        if not storage.exists(path):
            return 0
        snap = storage.read_json(path)
        latest = snap.get("latest_checkpoint_result") or {}
        return int((latest.get("metrics") or {}).get("step", 0))
    except (OSError, ValueError, TypeError, AttributeError):
        return 0


def consolidated_trainable(folder: str) -> dict[str, Any]:
    """name -> fp32 tensor of every trained parameter, from a checkpoint folder of any ZeRO stage
    (stages 1-3: DeepSpeed's fp32 partitions merged; stage 0: the saved module)."""
    import torch

    ds_dir = os.path.join(folder, TAG)
    if glob.glob(os.path.join(ds_dir, "*optim_states.pt")):
        from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

        try:
            state = get_fp32_state_dict_from_zero_checkpoint(folder, tag=TAG, exclude_frozen_parameters=True)
            return {k: v.detach().float().clone() for k, v in state.items()}
        except (ValueError, KeyError) as err:  # not ZeRO partitions (stage 0 with bf16): the module itself
            log.debug("no ZeRO partitions in %s (%s); reading the saved module", folder, err)
    files = sorted(glob.glob(os.path.join(ds_dir, "*model_states.pt")))
    if not files:
        raise ResumeError(f"{folder}: no DeepSpeed model states under {TAG}/")
    state = torch.load(files[0], map_location="cpu", weights_only=False)["module"]
    return {k: v.detach().float().clone() for k, v in state.items()}
