"""Training on Ray Train with DeepSpeed ZeRO (docs/training.md).

    from interrvos.train import TrainConfig, run_train
    summary = run_train(load_config(TrainConfig, "jobs/configs/train_tiny.yaml"))

Names are imported lazily so that `import interrvos.train` stays cheap.
"""

from __future__ import annotations

from interrvos.lazy import lazy_getattr

_EXPORTS = {
    "TrainConfig": "interrvos.train.config",
    "run_train": "interrvos.train.run",
    "export_checkpoint": "interrvos.train.export",
    "deepspeed_config": "interrvos.train.deepspeed_config",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
