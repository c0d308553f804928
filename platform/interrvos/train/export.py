"""Export: the trained weights of a training checkpoint, consolidated from DeepSpeed's ZeRO partitions
(any stage) into the model's own checkpoint format (`interrvos.model.checkpoint`), which `predict`,
`evaluate` and serving load. The model is rebuilt from the run's config; its frozen weights are
checked against the fingerprint the run recorded."""

from __future__ import annotations

from typing import Any

from interrvos.train.checkpointing import consolidated_trainable, read_state


def task_from_state(state: dict[str, Any]):
    """The ReVIOsA task a run was trained with, from a checkpoint's train_state.json."""
    from interrvos.train.config import TrainConfig
    from interrvos.train.run import default_task

    return default_task(TrainConfig.model_validate(state["config"]))


def export_folder(folder: str, out: str, task=None) -> dict[str, Any]:
    """A local checkpoint folder -> a model checkpoint at `out` (local path or URI); returns its info."""
    state = read_state(folder)
    task = task or task_from_state(state)
    trainable = consolidated_trainable(folder)
    info = {"step": state["step"], "epoch": state.get("epoch"), "zero_stage": state.get("zero_stage"),
            "world_size": state.get("world_size"), "fingerprint": state.get("fingerprint"),
            "run": (state.get("config") or {}).get("name")}  # fmt: skip
    task.export(trainable, out, info)
    return {"checkpoint": out, **info, "trainable_tensors": len(trainable),
            "trainable_numel": int(sum(v.numel() for v in trainable.values()))}


def export_checkpoint(checkpoint, out: str, task=None) -> dict[str, Any]:
    """A Ray Train Checkpoint (or a checkpoint folder path/URI) -> a model checkpoint at `out`."""
    from ray.train import Checkpoint

    if not isinstance(checkpoint, Checkpoint):
        checkpoint = Checkpoint(str(checkpoint))
    with checkpoint.as_directory() as folder:
        return export_folder(folder, out, task)


def export_on_ray(checkpoint, out: str, task=None, num_cpus: float = 1.0) -> dict[str, Any]:
    """export_checkpoint as a Ray task (the model is rebuilt on a worker, not in the driver)."""
    import ray

    return ray.get(ray.remote(num_cpus=num_cpus)(export_checkpoint).remote(checkpoint, out, task))
