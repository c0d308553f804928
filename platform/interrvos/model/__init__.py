"""ReVIOsA: InternVL + LoRA + SAM2 with [SEG_ACT] / [SEG_TAR] (docs/model.md).

    from interrvos.model import build_model, segment_video, save_checkpoint, load_checkpoint
    model = build_model("tiny")                      # presets: tiny, 1b, 4b; or a YAML path / ModelConfig
    losses = model(batch)                            # training: dict of loss tensors, "loss" is the total
    results = segment_video(model, frames, ["dog pushing a toy"])

Names are imported lazily so that `import interrvos.model` stays cheap (no torch until used).
"""

from __future__ import annotations

from interrvos.lazy import lazy_getattr

_EXPORTS = {
    "ModelConfig": "interrvos.model.config",
    "PredictConfig": "interrvos.model.config",
    "load_model_config": "interrvos.model.config",
    "ReVIOsA": "interrvos.model.reviosa",
    "build_model": "interrvos.model.reviosa",
    "TrainingExpression": "interrvos.model.processor",
    "segment_video": "interrvos.model.inference",
    "sample_frames": "interrvos.model.inference",
    "save_checkpoint": "interrvos.model.checkpoint",
    "load_checkpoint": "interrvos.model.checkpoint",
    "export_merged": "interrvos.model.checkpoint",
    "run_predict": "interrvos.model.predict",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
