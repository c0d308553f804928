"""`interrvos evaluate` configuration (YAML + dotted --set, like every job)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from interrvos.config import ActorPoolConfig, RayConfig, StrictModel
from interrvos.evaluate.baselines import BaselineName


class OverlayConfig(StrictModel):
    samples: int = Field(default=8, ge=0, description="expressions drawn (0: no overlays)")
    frames: int = Field(default=6, ge=1, description="frames per strip or GIF, evenly spaced")
    format: Literal["png", "gif"] = "png"
    cell_width: int = Field(default=200, ge=32, description="width of one frame in a strip")


class EvaluateConfig(StrictModel):
    dataset: str = Field(default="runs/dataset", description="dataset folder or URI (ground truth)")
    predictions: str | None = Field(default=None, description=".jsonl / .parquet file or PNG folder")
    baseline: BaselineName | None = Field(default=None, description="score a baseline instead of predictions")
    out: str = "runs/evaluate"
    name: str | None = Field(default=None, description="row label in the tables (default: baseline or file name)")
    frame_averaging: Literal["mevis", "davis"] = Field(
        default="mevis", description="mevis: every frame; davis: drop the first and the last frame (Ref-DAVIS)")
    unpaired_interactions: Literal["referring", "actor_target"] = Field(
        default="referring", description="setting of interaction expressions without an actor-target pair")
    expressions: Literal["dataset", "objects"] = Field(
        default="dataset", description="objects: one 'the <category>' expression per object (datasets not annotated yet)")
    allow_missing: bool = Field(default=False, description="score what is present and report the rest")
    seed: int = Field(default=0, description="random_object baseline")
    expressions_per_task: int = Field(default=16, ge=1, description="expressions per unit of parallel work")
    sensitivity_pairs: int = Field(
        default=32, ge=0, description="expression pairs per video for the cross-expression IoU (0: off)")
    executor: Literal["ray", "local"] = Field(default="ray", description="local: one process, no Ray")
    workers: ActorPoolConfig = Field(default_factory=lambda: ActorPoolConfig(min_size=1, max_size=2))
    overlays: OverlayConfig = Field(default_factory=OverlayConfig)
    ray: RayConfig = Field(default_factory=RayConfig)

    @model_validator(mode="after")
    def _one_source(self) -> EvaluateConfig:
        if (self.predictions is None) == (self.baseline is None):
            raise ValueError("give exactly one of predictions (a file or folder) and baseline "
                             "(oracle, empty, full, random_object, largest_object)")
        return self

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        if self.baseline:
            return f"baseline: {self.baseline}"
        return self.predictions.rstrip("/").rsplit("/", 1)[-1]
