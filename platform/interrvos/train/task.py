"""What the training loop needs from a model, and nothing more: the loop, the data pipeline, the
checkpoints and the export are written against this interface (ReVIOsA's is `train.reviosa.ReviosaTask`;
the tests plug in a small torch module).

A task is a picklable object (it travels to the Ray Data actors, the Train workers and the export task):

  build_model()            -> torch.nn.Module; module(batch) returns a dict of scalar loss tensors whose
                              "loss" entry is the total that is back-propagated; every other entry is logged.
                              Built with the same weights on every call (seeded), on the CPU.
  sample_builder()         -> a callable: one plan row (train.plan.SamplePlan.rows) -> one training row, a
                              dict of numpy arrays/scalars. Runs in Ray Data actors, off the training step.
  collate(rows)            -> the model's batch (dict of tensors) from a list of training rows.
  batch_tokens(batch)      -> tokens in a batch (for tokens/s); 0 when the notion does not apply.
  export(trainable, uri, info) -> write the trained weights (name -> fp32 tensor, the model's trainable
                              parameters) in the model's own checkpoint format; returns the uri.
  fingerprint(model)       -> a number identifying the frozen weights, so an export can check that the
                              model it rebuilds is the one that was trained.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np


class TrainTask(Protocol):
    name: str

    def build_model(self) -> Any: ...
    def sample_builder(self) -> Any: ...
    def collate(self, rows: list[dict[str, Any]]) -> dict[str, Any]: ...
    def batch_tokens(self, batch: dict[str, Any]) -> int: ...
    def export(self, trainable: dict[str, Any], uri: str, info: dict[str, Any]) -> str: ...
    def fingerprint(self, model: Any) -> float: ...


META_KEYS = ("step", "micro", "slot", "epoch")


class BuildSamples:
    """Ray Data callable class: the task's sample builder, created once per actor. Plan bookkeeping
    (step, micro, slot, epoch) is carried through so the worker can check what it trains on."""

    def __init__(self, task: TrainTask):
        import torch

        torch.set_num_threads(1)
        self.build = task.sample_builder()

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        out = self.build(row)
        out.update({k: row[k] for k in META_KEYS})
        return out


def rows_from_batch(batch: dict[str, Any]) -> list[dict[str, Any]]:
    """A columnar numpy batch (Ray Data) -> one dict per row (ragged columns arrive as object arrays)."""
    n = len(next(iter(batch.values())))
    return [{k: (v[i] if not isinstance(v, np.ndarray) or v.dtype != object else np.asarray(v[i]))
             for k, v in batch.items()} for i in range(n)]  # fmt: skip


def fingerprint_frozen(model) -> float:
    """Sum of |w| over frozen parameters and buffers, in float64 (cheap, order-independent enough to
    tell two differently initialised models apart)."""
    import torch

    total = 0.0
    with torch.no_grad():
        for _, p in model.named_parameters():
            if not p.requires_grad and p.numel():
                total += float(p.detach().double().abs().sum())
    return total


def rebuild_trained(task: TrainTask, trainable: dict[str, Any], info: dict[str, Any], uri: str) -> Any:
    """What an export starts from: the task's model rebuilt, its frozen weights checked against the run's
    fingerprint (info["fingerprint"]), every trainable parameter loaded from `trainable` (name -> tensor)."""
    import torch

    from interrvos.model.checkpoint import CheckpointError

    model = task.build_model()
    expected = info.get("fingerprint")
    if expected is not None and not np.isclose(task.fingerprint(model), expected, rtol=1e-9, atol=0):
        raise CheckpointError(f"{uri}: the rebuilt model's frozen weights differ from the trained run's "
                              f"(fingerprint {task.fingerprint(model)!r} != {expected!r})")  # fmt: skip
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    missing = sorted(set(params) - set(trainable))
    if missing:  # extra names are fine: buffers and tied aliases DeepSpeed also lists
        raise CheckpointError(f"{uri}: the checkpoint lacks trained tensors of the model: {missing[:3]} "
                              f"({len(missing)} in all)")  # fmt: skip
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(trainable[name].to(p.dtype))
    return model
