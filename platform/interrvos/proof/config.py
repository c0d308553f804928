"""The proof's config: which data, which pretraining, which ReVIOsA runs (modes x seeds)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from interrvos.config import ClipRuleConfig, RayConfig, StrictModel, SynthConfig

Mode = Literal["joint", "single", "independent"]


class ProofData(StrictModel):
    """The synthetic set: every video annotated by the offline backend, split into train / valid by video."""

    synth: SynthConfig = Field(default_factory=lambda: SynthConfig(num_videos=24, num_frames=120, width=160,
                                                                   height=120, seed=1))  # fmt: skip
    clip: ClipRuleConfig = Field(default_factory=lambda: ClipRuleConfig(min_bin_frames=100))
    val_fraction: float = Field(default=0.25, gt=0, lt=1, description="share of videos held out for evaluation")


class PretrainStep(StrictModel):
    """One pretraining job, run before ReVIOsA training; its summary says which model overrides start from it."""

    enabled: bool = True
    config: str = Field(description="the job's YAML (relative paths: from the repository root)")
    set: list[str] = Field(default_factory=list, description="dotted overrides of that YAML")


class ProofTraining(StrictModel):
    config: str = "jobs/configs/train_tiny.yaml"
    set: list[str] = Field(default_factory=list, description="dotted overrides of the training YAML")
    max_steps: int = Field(default=300, ge=1)
    modes: list[Mode] = Field(default_factory=lambda: ["joint"], min_length=1,
                              description="paper Table 6: joint, single, independent; the first is the headline")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)


class ProofGoals(StrictModel):
    """What the headline model must reach on the held-out videos (issue 15): the report checks each."""

    beat_overall: list[str] = Field(default_factory=lambda: ["largest_object"],
                                    description="baselines whose Overall J&F the headline model must exceed")
    beat_actor_target: list[str] = Field(default_factory=lambda: ["largest_object"],
                                         description="baselines whose Actor-Target J&F it must exceed")
    max_cross_iou: float = Field(default=30.0, ge=0, le=100,
                                 description="cross-expression mask IoU at most this (100: one mask whatever the expression)")


class ProofConfig(StrictModel):
    out: str = "runs/proof"
    data: ProofData = Field(default_factory=ProofData)
    pretrain_sam: PretrainStep = Field(default_factory=lambda: PretrainStep(config="jobs/configs/pretrain_sam.yaml"))
    pretrain_text: PretrainStep = Field(default_factory=lambda: PretrainStep(config="jobs/configs/pretrain_text.yaml"))
    training: ProofTraining = Field(default_factory=ProofTraining)
    goals: ProofGoals = Field(default_factory=ProofGoals)
    overlays: int = Field(default=6, ge=0, description="overlay pictures of the headline model's predictions")
    ray: RayConfig = Field(default_factory=lambda: RayConfig(num_cpus=2))
