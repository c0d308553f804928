"""Typed config of `interrvos pretrain-sam` (YAML + dotted --set). It reuses the sections of
`interrvos train` (optim, deepspeed, workers, checkpoint, log, ray) and adds what pretraining SAM2
needs: the synthetic videos, the prompts, the trainable SAM2 and the held-out measurement.

Defaults are the recipe measured on the 2-core machine (../shared/ENVIRONMENT.md, "SAM2 pretrained
from scratch"): 128 px, a 48-wide Hiera ("tiny-h48"), batch 8 frames x 4 objects, half one positive
point and half the box with 2 px jitter, AdamW 5e-4 after 100 warm-up steps, 5 * BCE + Dice.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from interrvos.config import ActorPoolConfig, RayConfig, StrictModel, SynthConfig
from interrvos.errors import ConfigError
from interrvos.model.config import SamSettings
from interrvos.train.config import (
    CheckpointSettings,
    DataConfig,
    DeepSpeedSettings,
    LogSettings,
    ModelSpec,
    OptimConfig,
    SourceConfig,
    TrainConfig,
    WorkersConfig,
)

# Hiera trunks (hydra overrides of configs/sam2.1/sam2.1_hiera_t.yaml). "tiny-h48" halves the stock
# Hiera-T width and keeps 7 blocks: 0.34-0.45 s per step at 2 threads against 1.09 s for stock hiera_t
# (ENVIRONMENT.md), which is what makes a 5-minute CPU pretraining reach a useful IoU.
TRUNKS: dict[str, list[str]] = {
    "tiny-h48": [
        "++model.image_encoder.trunk.embed_dim=48",
        "++model.image_encoder.trunk.num_heads=1",
        "++model.image_encoder.trunk.stages=[1,2,3,1]",
        "++model.image_encoder.trunk.global_att_blocks=[4]",
        "++model.image_encoder.neck.backbone_channel_list=[384,192,96,48]",
    ],
    "hiera-t": [],
}
# One mask per prompt in training, measurement and tracking (a box is 2 points, SAM2 would otherwise
# decode 3 masks for a single click and pick one by its predicted IoU).
SINGLE_MASK = ["++model.multimask_output_in_sam=false", "++model.multimask_output_for_tracking=false"]


def _synth_default() -> SynthConfig:
    return SynthConfig(out="runs/pretrain/synth", num_videos=40, num_frames=150, width=160, height=120, seed=0)


class PretrainData(StrictModel):
    synth: SynthConfig = Field(default_factory=_synth_default,
                               description="the `interrvos synth` videos (generated when missing)")
    heldout_videos: int = Field(default=8, ge=1, description="the last N videos are held out (measurement only)")
    cache: str = Field(default="runs/pretrain/cache", description="local folder of the decoded, resized frames and "
                       "label maps (one .npy pair per video, memory-mapped by the decoders)")
    objects_per_frame: int = Field(default=4, ge=1, description="objects prompted per training frame")
    point_fraction: float = Field(default=0.5, ge=0, le=1, description="share of prompts that are one positive "
                                  "point (the rest are the object's box)")
    box_jitter_px: float = Field(default=2.0, ge=0, description="uniform jitter of each box corner, in input pixels")
    clip_gap: int = Field(default=3, ge=1, description="the tracked frame is 1..clip_gap frames after the prompted one")
    min_area_px: int = Field(default=16, ge=1, description="objects smaller than this (at image_size) are not prompted")
    samples_per_epoch: int | None = Field(default=None, ge=1, description="None: one sample per training frame")
    decode_workers: int = Field(default=1, ge=1)
    decode_cpus: float = Field(default=0.5, gt=0)
    prefetch_batches: int = Field(default=2, ge=0)

    @property
    def decoders(self) -> ActorPoolConfig:
        return ActorPoolConfig(min_size=1, max_size=self.decode_workers, num_cpus=self.decode_cpus)


class PretrainModel(StrictModel):
    trunk: Literal["tiny-h48", "hiera-t"] = Field(default="tiny-h48", description="Hiera trunk (TRUNKS)")
    config: str = "configs/sam2.1/sam2.1_hiera_t.yaml"
    image_size: int = Field(default=128, ge=64)
    hydra_overrides: list[str] = Field(default_factory=list, description="extra ++model.* overrides")
    propagation_per_batch: int = Field(default=2, ge=0, description="samples of each micro-batch whose next frame is "
                                       "also decoded from SAM2's memory (trains memory attention and encoder); "
                                       "more than the batch: all of them")
    propagation_start_step: int = Field(default=300, ge=0, description="tracked frames only after this many steps "
                                        "(their prompt-free loss delays the decoder's learning to follow prompts)")
    high_res_warmup_steps: int = Field(default=0, ge=0, description="ramp the decoder's high-res skip features "
                                       "from 0 to 1 over these steps (0: on from the start); see model.py")
    bce_weight: float = Field(default=5.0, ge=0)
    dice_weight: float = Field(default=1.0, ge=0)
    iou_weight: float = Field(default=1.0, ge=0, description="MSE of the IoU head against the mask's real IoU")
    object_weight: float = Field(default=1.0, ge=0, description="BCE of the object-score head (present or not)")
    propagation_weight: float = Field(default=1.0, ge=0, description="weight of the tracked frame's mask loss")

    def sam_settings(self) -> SamSettings:
        return SamSettings(config=self.config, image_size=self.image_size, multimask_output=False,
                           hydra_overrides=[*TRUNKS[self.trunk], *SINGLE_MASK, *self.hydra_overrides])  # fmt: skip


class MeasureConfig(StrictModel):
    objects: int = Field(default=400, ge=1, description="held-out (frame, object) pairs prompted once by a point "
                         "and once by the exact box")
    tracks: int = Field(default=48, ge=1, description="held-out object tracks for propagation")
    track_frames: int = Field(default=8, ge=1, description="frames tracked after the box-prompted one")
    batch: int = Field(default=32, ge=1)
    seed: int = 123


def _optim_default() -> OptimConfig:
    return OptimConfig(lr=5e-4, weight_decay=0.01, grad_clip=0.0, warmup_ratio=0.0, schedule="constant",
                       batch_size=8, grad_accum=1, max_steps=600)  # fmt: skip


class PretrainConfig(StrictModel):
    name: str = Field(default="sam2-tiny", description="run name: a re-run with the same name resumes")
    storage: str = "runs/pretrain"
    seed: int = 0
    data: PretrainData = Field(default_factory=PretrainData)
    model: PretrainModel = Field(default_factory=PretrainModel)
    warmup_steps: int = Field(default=100, ge=0, description="linear warm-up steps (then optim.schedule)")
    optim: OptimConfig = Field(default_factory=_optim_default)
    deepspeed: DeepSpeedSettings = Field(default_factory=DeepSpeedSettings)
    workers: WorkersConfig = Field(default_factory=lambda: WorkersConfig(num_workers=1))
    checkpoint: CheckpointSettings = Field(default_factory=lambda: CheckpointSettings(every_n_steps=200))
    log: LogSettings = Field(default_factory=LogSettings)
    measure: MeasureConfig = Field(default_factory=MeasureConfig)
    ray: RayConfig = Field(default_factory=RayConfig)

    @model_validator(mode="after")
    def _checks(self) -> PretrainConfig:
        """Checks across sections, raised as a ConfigError: one line naming the fields (a ValueError here
        would be reported with the whole config tree as its input)."""
        if self.optim.max_steps is None:
            raise ConfigError("optim.max_steps must be set (pretraining runs for a number of steps, not epochs)")
        if self.warmup_steps >= self.optim.max_steps:
            raise ConfigError(f"warmup_steps ({self.warmup_steps}) must be below optim.max_steps "
                              f"({self.optim.max_steps})")  # fmt: skip
        if self.data.heldout_videos >= self.data.synth.num_videos:
            raise ConfigError(f"data.heldout_videos ({self.data.heldout_videos}) must be below data.synth.num_videos "
                              f"({self.data.synth.num_videos}): no video would be left to train on")  # fmt: skip
        if self.model.image_size % 16:
            raise ConfigError(f"model.image_size ({self.model.image_size}) must be a multiple of 16")
        return self

    def train_config(self) -> TrainConfig:
        """The same run as `interrvos train` sees it (run_train's loop, plan, checkpoints, export): a sample
        is one prompted frame (frames_per_sample 1) and its objects play the expressions' part."""
        d = self.data
        optim = self.optim.model_copy(update={"warmup_ratio": self.warmup_steps / self.optim.max_steps})
        return TrainConfig(
            name=self.name, storage=self.storage, seed=self.seed,
            data=DataConfig(sources=[SourceConfig(path=d.synth.out)], frames_per_sample=1,
                            expressions_per_sample=d.objects_per_frame, samples_per_epoch=d.samples_per_epoch,
                            decode_workers=d.decode_workers, decode_cpus=d.decode_cpus,
                            prefetch_batches=d.prefetch_batches),
            model=ModelSpec(config="tiny"), optim=optim, deepspeed=self.deepspeed, workers=self.workers,
            checkpoint=self.checkpoint, log=self.log, ray=self.ray,
        )  # fmt: skip
