"""Typed config of `interrvos train` (YAML + dotted --set, like every job). Defaults are the paper's
training recipe (REFERENCE.md, "ReVIOsA model"): 4 frames and 5 expressions per sample, AdamW lr 4e-5,
weight decay 0.05, grad clip 1, 5% linear warm-up then cosine to 0, batch 2 per worker with gradient
accumulation 4, 10 epochs, bf16 on GPU, DeepSpeed ZeRO-2.

The DeepSpeed JSON is generated from `deepspeed` + `optim` (train/deepspeed_config.py), never written by
hand; `deepspeed.extra` merges raw keys into it for what the typed fields do not cover.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from interrvos.config import ActorPoolConfig, RayConfig, StrictModel


class SourceConfig(StrictModel):
    """One training dataset folder (InterRVOS, MeViS or Ref-YouTube-VOS layout; local path or URI)."""

    path: str
    ratio: float = Field(default=1.0, gt=0, description="mixing weight: share of an epoch's samples ∝ ratio")
    videos: list[str] | None = Field(default=None, description="only these videos (None: all)")


class DataConfig(StrictModel):
    sources: list[SourceConfig] = Field(default_factory=lambda: [SourceConfig(path="runs/annotated/train")])
    frames_per_sample: int = Field(default=4, ge=1, description="random frames (in order) shown to both models")
    expressions_per_sample: int = Field(default=5, ge=1, description="expressions asked in one conversation")
    samples_per_epoch: int | None = Field(
        default=None, ge=1, description="None: the sum of the sources' natural sample counts (every expression once)")
    decode_workers: int = Field(default=1, ge=1, description="Ray Data actors decoding samples, per training worker")
    decode_cpus: float = Field(default=0.5, gt=0, description="CPUs of each decoding actor")
    decode_memory_mb: int | None = Field(default=None, ge=1, description="memory each decoding actor reserves")
    prefetch_batches: int = Field(default=2, ge=0, description="batches decoded ahead of the training step")
    jitter: float = Field(default=0.0, ge=0, le=0.5,
                          description="photometric augmentation: random brightness/contrast scale in [1-j, 1+j]")
    answers: Literal["reviosa", "reading"] = Field(
        default="reviosa", description="reviosa: the paper's answers ('Sure, [SEG_ACT] and [SEG_TAR].'); reading: "
        "each segmentation token followed by its object's colour, shape and position (train/reading.py), which keeps "
        "what `interrvos pretrain-text` taught the MLLM")

    @field_validator("sources", mode="before")
    @classmethod
    def _paths_as_sources(cls, v):
        if isinstance(v, str):
            v = [v]
        return [{"path": s} if isinstance(s, str) else s for s in v]

    @model_validator(mode="after")
    def _some_source(self) -> DataConfig:
        if not self.sources:
            raise ValueError("sources: at least one dataset folder is needed")
        return self

    @property
    def decoders(self) -> ActorPoolConfig:
        """Each training worker's decoding pool (interrvos.stages): 1 to `decode_workers` actors."""
        return ActorPoolConfig(min_size=1, max_size=self.decode_workers, num_cpus=self.decode_cpus,
                               memory_mb=self.decode_memory_mb)


class ModelSpec(StrictModel):
    """Which ReVIOsA to build: a preset (tiny, 1b, 4b) or a YAML path, plus dotted overrides."""

    config: str = Field(default="1b", description="model preset or YAML file (interrvos.model.config)")
    overrides: list[str] = Field(default_factory=list, description="dotted model overrides, e.g. lora.r=64")
    mode: Literal["joint", "independent", "single"] | None = Field(
        default=None, description="ablation mode (Table 6); None: the preset's (joint)")
    lora_r: int | None = Field(default=None, ge=1)
    lora_alpha: int | None = Field(default=None, ge=1)
    lora_dropout: float | None = Field(default=None, ge=0, lt=1)

    def all_overrides(self) -> list[str]:
        extra = [f"mode={self.mode}"] if self.mode else []
        for key, value in (("r", self.lora_r), ("alpha", self.lora_alpha), ("dropout", self.lora_dropout)):
            if value is not None:
                extra.append(f"lora.{key}={value}")
        return [*self.overrides, *extra]


class OptimConfig(StrictModel):
    lr: float = Field(default=4e-5, gt=0)
    weight_decay: float = Field(default=0.05, ge=0, description="on matrices; biases, norms and 1-D tensors get none")
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(default=1e-8, gt=0)
    grad_clip: float = Field(default=1.0, ge=0, description="0: no clipping")
    warmup_ratio: float = Field(default=0.05, ge=0, lt=1, description="linear warm-up share of the steps")
    schedule: Literal["cosine", "constant"] = "cosine"
    lr_multipliers: dict[str, float] = Field(
        default_factory=dict, description="parameter-name prefix -> multiplier of lr (the longest matching prefix "
        "wins), e.g. {mllm: 0.1} trains the language model's LoRA ten times slower than the rest; a pretrained part "
        "wants a smaller step than a freshly initialised one")

    @field_validator("lr_multipliers")
    @classmethod
    def _positive_multipliers(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in value.items() if not v > 0}
        if bad:
            raise ValueError(f"lr multipliers must be > 0, got {bad}")
        return value
    batch_size: int = Field(default=2, ge=1, description="samples per worker per micro-step")
    grad_accum: int = Field(default=4, ge=1)
    epochs: int = Field(default=10, ge=1)
    max_steps: int | None = Field(default=None, ge=1, description="optimizer steps; overrides epochs when set")
    precision: Literal["auto", "fp32", "bf16", "bf16_weights"] = Field(
        default="auto", description="auto: bf16 on GPU, fp32 on CPU. bf16: fp32 weights, bf16 autocast compute and "
        "gradient communication (DeepSpeed torch_autocast; ReVIOsA mixes dtypes inside SAM2); bf16_weights: the "
        "module cast to bf16, fp32 master weights in the optimizer (DeepSpeed bf16; models that run fully in bf16)")


class DeepSpeedSettings(StrictModel):
    stage: Literal[0, 1, 2, 3] = Field(default=2, description="ZeRO stage (0: plain data parallel)")
    offload_optimizer: bool = Field(default=False, description="optimizer states in CPU memory")
    offload_params: bool = Field(default=False, description="stage 3 only: parameters in CPU memory")
    optimizer: Literal["auto", "torch", "deepspeed"] = Field(
        default="auto", description="auto: torch AdamW (fused on GPU) unless offloading on GPU (DeepSpeedCPUAdam)")
    extra: dict[str, Any] = Field(default_factory=dict, description="raw keys merged into the generated JSON")

    @model_validator(mode="after")
    def _offload_params_needs_stage3(self) -> DeepSpeedSettings:
        if self.offload_params and self.stage != 3:
            raise ValueError(f"offload_params needs stage 3 (stage is {self.stage})")
        return self


class WorkersConfig(StrictModel):
    """Ray Train scaling and fault tolerance."""

    num_workers: int = Field(default=2, ge=1)
    use_gpu: bool | Literal["auto"] = Field(default="auto", description="auto: when the cluster has GPUs")
    cpus_per_worker: float = Field(default=1.0, gt=0)
    gpus_per_worker: float = Field(default=1.0, gt=0)
    max_failures: int = Field(default=2, ge=-1,
                              description="worker-group restarts from the last checkpoint (-1: unlimited)")
    torch_threads: int | None = Field(default=None, ge=1,
                                      description="torch threads per worker (None: cpus_per_worker)")
    report_poll_s: float | None = Field(
        default=0.5, gt=0, description="Ray Train's controller poll interval (RAY_TRAIN_HEALTH_CHECK_INTERVAL_S, "
        "Ray's default 2 s): a report waits for the previous one to be polled; None: leave it to Ray")


class CheckpointSettings(StrictModel):
    every_n_steps: int = Field(default=100, ge=1)
    keep_last: int = Field(default=2, ge=1, description="checkpoints kept in the run folder")
    export: bool = Field(default=True, description="export the trained weights in the model's format at the end")


class LogSettings(StrictModel):
    every_n_steps: int = Field(default=1, ge=1, description="metrics into rank 0's CSV (and the progress bar) "
                               "every N steps: one all-reduce, no Ray call")
    report_every_n_steps: int | None = Field(
        default=None, ge=1, description="also ray.train.report the metrics every N steps (None: only with each "
        "checkpoint and at the end). Each report syncs the ranks through Ray's synchronisation actor and waits for "
        "the controller to have polled the previous one (workers.report_poll_s): 1 costs ~20% of a CPU step here")
    progress: bool | Literal["auto"] = Field(default="auto", description="progress bar (auto: when interactive)")


class TrainConfig(StrictModel):
    name: str = Field(default="reviosa", description="run name: a re-run with the same name resumes")
    storage: str = Field(default="runs/train", description="runs folder (local path or URI); run = <storage>/<name>")
    seed: int = 0
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelSpec = Field(default_factory=ModelSpec)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    deepspeed: DeepSpeedSettings = Field(default_factory=DeepSpeedSettings)
    workers: WorkersConfig = Field(default_factory=WorkersConfig)
    checkpoint: CheckpointSettings = Field(default_factory=CheckpointSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    ray: RayConfig = Field(default_factory=RayConfig)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        if not v or "/" in v or v.startswith("."):
            raise ValueError(f"run name {v!r} must be a plain folder name")
        return v
